"""Ask an administrator, reject, and the notification events, black box (issue 17).

- A signed-in regular user who meets a pending client in the authorization flow gets a `403`
  page "Administrator approval required" with `form#request-access`; posting it records the
  request (once per user) and answers `200` "Request sent". The admin API shows the requests on
  the pending client (`access_requests`, oldest first); approving it emits `client.approved`
  naming who asked, and the user then connects.
- `POST {issuer}/api/v1/oauth-clients/{id}/reject` deletes a pending client (`204`, event
  `client.rejected`); an approved one is `409`.
- Every event is a structured log line (target `gatehouse::events`, message `gatehouse event`,
  the representation as a JSON string in `event`).

This module runs its own server per store mode with `GATEHOUSE_LOG_FORMAT=json`, so the events
can be read back from the log. The helpers at the top (an HTML tree, the log's events, the
event shape, asking) are shared with `test_access_requests_admin.py` (reject, the console's
queue, EventBridge) and the audit trail tests.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    USER_EMAIL,
    Admin,
    assert_consent_page,
    assert_json,
    assert_no_content,
    authorize,
    code_of,
    is_approval_page,
    register,
    unique,
    unique_email,
)
from conftest import DEMO_USER_PASSWORD, MODES, Server, find_nulls  # noqa: E402
from test_authorization import Browser, Form, Resp, assert_page  # noqa: E402
from test_tokens import assert_tokens, exchange  # noqa: E402

PASSWORD = "a long enough password"
TEN_MINUTES = 600

# --------------------------------------------------------------------------------------------
# An HTML tree (the standard library's parser), for ids, classes and data attributes
# --------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)  # Node or str

    def text(self) -> str:
        parts: list[str] = []

        def walk(n: Node) -> None:
            if n.tag in ("script", "style"):
                return
            for c in n.children:
                if isinstance(c, str):
                    parts.append(c)
                else:
                    walk(c)
        walk(self)
        return " ".join(" ".join(parts).split())

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all(self, tag: str | None = None, id: str | None = None, cls: str | None = None,
            **attrs: str | None) -> list["Node"]:
        """Descendants matching every condition; an attribute given as None must be present."""
        out: list[Node] = []
        for c in self.children:
            if isinstance(c, str):
                continue
            ok = ((tag is None or c.tag == tag) and (id is None or c.attrs.get("id") == id)
                  and (cls is None or cls in c.classes()))
            for name, value in attrs.items():
                name = name.replace("_", "-")
                ok = ok and name in c.attrs and (value is None or c.attrs[name] == value)
            if ok:
                out.append(c)
            out.extend(c.all(tag, id, cls, **attrs))
        return out

    def one(self, tag: str | None = None, id: str | None = None, cls: str | None = None,
            **attrs: str | None) -> "Node":
        found = self.all(tag, id, cls, **attrs)
        assert len(found) == 1, (
            f"expected one {tag or '*'}#{id}.{cls} {attrs}, found {len(found)} in {self.text()[:800]!r}")
        return found[0]

    def hidden(self) -> dict[str, str]:
        """A form's hidden inputs, name → value."""
        return {i.attrs["name"]: i.attrs.get("value", "")
                for i in self.all("input", type="hidden") if "name" in i.attrs}

    def pairs(self) -> list[tuple[str, str]]:
        """What a browser submits: named inputs (checkboxes and radios only when checked, each
        one: a name may repeat) and each select's selected (else first) option."""
        out: list[tuple[str, str]] = []
        for i in self.all("input"):
            kind = i.attrs.get("type", "text").lower()
            if "name" in i.attrs and (kind not in ("checkbox", "radio") or "checked" in i.attrs):
                out.append((i.attrs["name"], i.attrs.get("value", "on" if kind == "checkbox" else "")))
        for sel in self.all("select"):
            options = sel.all("option")
            chosen = [o for o in options if "selected" in o.attrs] or options[:1]
            if "name" in sel.attrs and chosen:
                out.append((sel.attrs["name"], chosen[0].attrs.get("value", chosen[0].text())))
        return out

    def as_form(self, base: str) -> Form:
        """This form for `Browser.submit` (one value per name: see `post_form` otherwise)."""
        action = urllib.parse.urljoin(base, self.attrs.get("action", ""))
        return Form(action, self.attrs.get("method", "get").lower(), dict(self.pairs()))

    def post(self, browser: Browser, base: str, **overrides: str) -> Resp:
        """Submits this form as a browser would (repeated names kept), `overrides` replacing
        single-valued fields."""
        pairs = [(k, overrides.get(k, v)) for k, v in self.pairs()]
        pairs += [(k, v) for k, v in overrides.items() if k not in dict(pairs)]
        action = urllib.parse.urljoin(base, self.attrs.get("action", ""))
        return browser.post(action, urllib.parse.urlencode(pairs))


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: (v or "") for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def dom(resp: Resp) -> Node:
    builder = _TreeBuilder()
    builder.feed(resp.body)
    builder.close()
    return builder.root


# --------------------------------------------------------------------------------------------
# Events: the structured log lines and the representation
# --------------------------------------------------------------------------------------------

EVENT_FIELDS = {"id", "type", "occurred_at", "tenant", "actor", "via", "client_id", "source_ip",
                "client", "console_url", "access_requests", "detail"}
SUMMARY_FIELDS = {"client_id", "client_name", "redirect_uris", "software_id", "createdByType",
                  "status", "expires_at"}


def logged_events(srv) -> list[dict]:
    """Every `gatehouse event` line of a server started with GATEHOUSE_LOG_FORMAT=json: one JSON
    object per line, fields flattened at the top level, `event` the representation as a JSON
    string."""
    out = []
    for line in srv.log().splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("target") != "gatehouse::events" or record.get("message") != "gatehouse event":
            continue
        assert record.get("level") == "INFO", record
        assert isinstance(record.get("event"), str), f"event is not a JSON string: {record}"
        event = json.loads(record["event"])
        assert record.get("event_type") == event.get("type"), record
        out.append(event)
    return out


def events_of(srv, type_: str, client_id: str | None = None, count: int | None = None) -> list[dict]:
    """The logged events of a type (and client); with `count`, waits up to 3 s for that many."""
    deadline = time.monotonic() + 3
    while True:
        found = [e for e in logged_events(srv) if e.get("type") == type_
                 and (client_id is None or e.get("client_id") == client_id)]
        if count is None or len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def console_url(srv, client_id: str) -> str:
    return f"{srv.issuer}/admin/clients/{urllib.parse.quote(client_id, safe='')}"


def assert_event(srv, event: dict, type_: str, *, actor: dict | None = None,
                 via: str | None = None, client: dict | None = None,
                 status: str | None = None) -> dict:
    """The documented representation: only the documented fields, never null, a 128-bit hex id,
    the tenant; the actor and `via` when given; for a client event the summary of `client` (the
    admin API's or the registration's document) with `status`, and its console link."""
    assert set(event) <= EVENT_FIELDS, f"undocumented fields {set(event) - EVENT_FIELDS}: {event}"
    assert not find_nulls(event), f"null fields {find_nulls(event)}: {event}"
    assert re.fullmatch(r"[0-9a-f]{32}", event.get("id", "")), event
    assert event.get("type") == type_, event
    assert isinstance(event.get("occurred_at"), int), event
    assert abs(event["occurred_at"] - time.time()) < TEN_MINUTES, event
    assert event.get("tenant") == "demo", event
    if actor is not None:
        assert event.get("actor") == actor, event
    if via is not None:
        assert event.get("via") == via, event
    if client is not None:
        assert_summary(srv, event, client, status)
    return event


def assert_summary(srv, event: dict, client: dict, status: str | None) -> None:
    cid = client["client_id"]
    assert event.get("client_id") == cid, event
    assert event.get("console_url") == console_url(srv, cid), event
    summary = event.get("client")
    assert isinstance(summary, dict), event
    assert set(summary) <= SUMMARY_FIELDS, summary
    assert summary.get("client_id") == cid, summary
    assert summary.get("client_name") == client["client_name"], summary
    assert summary.get("redirect_uris") == client["redirect_uris"], summary
    assert summary.get("software_id") == client.get("software_id"), summary
    assert summary.get("createdByType") == client.get("createdByType", "dcr"), summary
    if status is not None:
        assert summary.get("status") == status, summary
    if summary.get("status") == "pending":
        assert isinstance(summary.get("expires_at"), int), summary
        if "expires_at" in client:
            assert summary["expires_at"] == client["expires_at"], summary
    else:
        assert "expires_at" not in summary, summary


def user_actor(admin: Admin, email: str) -> dict:
    user = admin.user(email)
    assert user, f"no user {email}"
    return {"type": "user", "id": user["id"], "email": email}


def requester(admin: Admin, email: str) -> dict:
    """The `access_requests` entry of a user, without its time."""
    return {"user_id": admin.user(email)["id"], "email": email}


def without_times(requests: list[dict]) -> list[dict]:
    for r in requests:
        assert set(r) == {"user_id", "email", "requested_at"}, r
        assert isinstance(r["requested_at"], int), r
        assert abs(r["requested_at"] - time.time()) < TEN_MINUTES, r
    return [{"user_id": r["user_id"], "email": r["email"]} for r in requests]


# --------------------------------------------------------------------------------------------
# The hosted pages: meeting a pending client, asking
# --------------------------------------------------------------------------------------------


def meet(srv, client: dict, browser: Browser | None = None, email: str = USER_EMAIL,
         password: str = DEMO_USER_PASSWORD) -> tuple[Browser, Resp]:
    """A user's authorization request for `client`, signing in on the way when asked."""
    browser = browser or Browser(srv)
    resp = browser.authorize(client)
    if resp.status == 200 and any(f.fields.get("action") == "sign_in" for f in resp.forms):
        resp = browser.sign_in(resp, email, password)
    return browser, resp


def request_access_form(srv, resp: Resp, client: dict) -> Form:
    """The "Administrator approval required" page and its form#request-access."""
    assert_page(resp, 403, "Administrator approval required")
    page = dom(resp)
    assert page.one("h1").text() == "Administrator approval required", resp
    form = page.one("form", id="request-access")
    assert form.attrs.get("method", "").lower() == "post", form.attrs
    assert form.attrs.get("action") == f"{srv.issuer}/oauth/authorize", form.attrs
    hidden = form.hidden()
    assert hidden.get("action") == "request_access", hidden
    assert hidden.get("client_id") == client["client_id"], hidden
    assert hidden.get("request_id") and hidden.get("csrf_token"), hidden
    button = form.one("button")
    assert button.attrs.get("type", "submit") == "submit", button.attrs
    assert button.text() == "Ask an administrator", button.text()
    return form.as_form(srv.issuer)


def assert_request_sent(srv, resp: Resp, client: dict, tenant_name: str) -> None:
    assert_page(resp, 200, "Request sent", "connect again")
    page = dom(resp)
    assert page.one("h1").text() == "Request sent", resp
    sent = page.one(id="access-requested").text()
    assert tenant_name in resp.text and client["client_name"] in resp.text, resp.text
    assert not page.all("form", id="request-access"), "the form is shown again after asking"
    assert sent, resp


def asked(srv, admin: Admin, client: dict, browser: Browser | None = None,
          email: str = USER_EMAIL, password: str = DEMO_USER_PASSWORD) -> Browser:
    """`email` meets `client` and asks an administrator; the "Request sent" page."""
    browser, resp = meet(srv, client, browser, email, password)
    done = browser.submit(request_access_form(srv, resp, client))
    assert_request_sent(srv, done, client, admin.settings()["display_name"])
    return browser


def pending_view(admin: Admin, cid: str) -> dict:
    """The client as the admin API lists it with `status eq "pending"` (every page walked)."""
    query = {"filter": 'status eq "pending"', "limit": 100}
    for _ in range(50):
        doc = assert_json(admin.api("GET", "/oauth-clients?" + urllib.parse.urlencode(query)))
        found = [c for c in doc["data"] if c["client_id"] == cid]
        if found:
            return found[0]
        if not doc.get("next_cursor"):
            break
        query["cursor"] = doc["next_cursor"]
    raise AssertionError(f"{cid} not in the pending listing")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=MODES)
def srv(request, tmp_path_factory):
    """This module's server: JSON log lines, no registration rate limit."""
    s = Server(request.param, {"GATEHOUSE_LOG_FORMAT": "json",
                               "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
                               "GATEHOUSE_PENDING_CLIENT_CAP": "100000"},
               tmp_path_factory.mktemp(f"access-{request.param}"))
    try:
        s.start()
        yield s
    finally:
        s.stop()
    s.assert_no_panic()


@pytest.fixture(scope="module")
def admin(srv) -> Admin:
    return Admin(srv)


@pytest.fixture(scope="module")
def user(srv) -> Browser:
    """The demo user, signed in through an authorization flow."""
    browser, resp = meet(srv, register(srv, client_name=unique("session-starter")))
    assert resp.status == 403, resp
    assert browser.cookie("gh_session"), "the demo user got no session"
    return browser


# --------------------------------------------------------------------------------------------
# Asking an administrator
# --------------------------------------------------------------------------------------------


def test_regular_user_asks_an_administrator_and_the_request_is_recorded(srv, admin, user):
    client = register(srv, client_name=unique("ask"), software_id=unique("sw"))
    cid = client["client_id"]
    asked(srv, admin, client, user)
    me = requester(admin, USER_EMAIL)
    # The admin API: the one client and the pending listing.
    one = admin.client(cid)
    assert one["status"] == "pending", one
    assert without_times(one.get("access_requests", [])) == [me], one
    listed = pending_view(admin, cid)
    assert listed.get("access_requests") == one["access_requests"], listed
    # The event: who asked, about which client, with every request so far.
    events = events_of(srv, "client.access_requested", cid, count=1)
    assert len(events) == 1, events
    event = assert_event(srv, events[0], "client.access_requested",
                         actor=user_actor(admin, USER_EMAIL), client=one, status="pending")
    assert event["client"]["software_id"] == client["software_id"], event
    assert event.get("access_requests") == one["access_requests"], event


def test_asking_twice_records_one_request_and_one_event(srv, admin, user):
    client = register(srv, client_name=unique("ask-twice"))
    cid = client["client_id"]
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    name = admin.settings()["display_name"]
    assert_request_sent(srv, user.submit(form), client, name)
    first = admin.client(cid)["access_requests"]
    # The same form again, then a new authorization request and its form.
    assert_request_sent(srv, user.submit(form), client, name)
    _, again = meet(srv, client, user)
    assert again.status in (200, 403), again
    if again.status == 403:
        assert_request_sent(srv, user.submit(request_access_form(srv, again, client)), client, name)
    assert admin.client(cid)["access_requests"] == first
    time.sleep(0.3)
    assert len(events_of(srv, "client.access_requested", cid)) == 1


def test_each_user_asks_once_and_requests_are_listed_oldest_first(srv, admin, user):
    client = register(srv, client_name=unique("ask-two"))
    cid = client["client_id"]
    other = unique_email("asker")
    admin.add_user(other, PASSWORD)
    asked(srv, admin, client, user)
    time.sleep(1.1)  # requested_at is in seconds: the second request is a second later
    asked(srv, admin, client, email=other, password=PASSWORD)
    both = [requester(admin, USER_EMAIL), requester(admin, other)]
    doc = admin.client(cid)
    assert without_times(doc["access_requests"]) == both, doc
    times = [r["requested_at"] for r in doc["access_requests"]]
    assert times[0] < times[1], doc
    events = events_of(srv, "client.access_requested", cid, count=2)
    assert len(events) == 2, events
    second = [e for e in events if e["actor"].get("email") == other]
    assert len(second) == 1, events
    assert_event(srv, second[0], "client.access_requested", actor=user_actor(admin, other),
                 client=doc, status="pending")
    # Every request so far, the new one included.
    assert without_times(second[0]["access_requests"]) == both, second[0]


def test_approval_names_who_asked_and_the_user_then_connects(srv, admin, user):
    client = register(srv, client_name=unique("ask-approve"))
    cid = client["client_id"]
    asked(srv, admin, client, user)
    approved = assert_json(admin.api("POST", f"/oauth-clients/{cid}/approve"))
    assert approved["status"] == "approved", approved
    assert "access_requests" not in approved, approved
    assert "access_requests" not in admin.client(cid), "requests shown on an approved client"
    events = events_of(srv, "client.approved", cid, count=1)
    assert len(events) == 1, events
    event = assert_event(srv, events[0], "client.approved", actor=user_actor(admin, ADMIN_EMAIL),
                         via="api", client=approved, status="approved")
    assert without_times(event.get("access_requests", [])) == [requester(admin, USER_EMAIL)]
    assert event.get("detail") == {"config_version": approved["config_version"]}, event
    # The user connects: the consent page, then a code and tokens.
    attempt = authorize(srv, user, client)
    form = assert_consent_page(attempt.resp)
    code = code_of(srv, attempt, user.submit(form, "approve"))
    assert_tokens(exchange(srv, client, code))


def test_client_approved_meanwhile_goes_on_to_the_consent_page(srv, admin, user):
    client = register(srv, client_name=unique("ask-late"))
    cid = client["client_id"]
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    assert_json(admin.api("POST", f"/oauth-clients/{cid}/approve"))
    assert_consent_page(user.submit(form))
    assert "access_requests" not in admin.client(cid)
    assert events_of(srv, "client.access_requested", cid) == []


def test_client_gone_meanwhile_is_a_410_page(srv, admin, user):
    client = register(srv, client_name=unique("ask-gone"))
    cid = client["client_id"]
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{cid}"))
    done = user.submit(form)
    assert_page(done, 410)
    assert events_of(srv, "client.access_requested", cid) == []


@pytest.mark.parametrize("csrf", [None, "", "forged-" + "0" * 40], ids=["missing", "empty", "forged"])
def test_forged_form_is_a_403_page_and_records_nothing(srv, admin, user, csrf):
    client = register(srv, client_name=unique("ask-forged"))
    cid = client["client_id"]
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    done = user.submit(form, csrf_token=csrf)
    assert_page(done, 403)
    assert "Request sent" not in done.text, done
    assert "access_requests" not in admin.client(cid)
    assert events_of(srv, "client.access_requested", cid) == []
    # The real form still works afterwards.
    assert_request_sent(srv, user.submit(form), client, admin.settings()["display_name"])


def test_form_from_another_browser_is_refused(srv, admin, user):
    """The form is bound to the browser that started the request (its gh_browser cookie)."""
    client = register(srv, client_name=unique("ask-stolen"))
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    thief, _ = meet(srv, register(srv, client_name=unique("thief-session")))
    done = thief.submit(form)
    assert_page(done, 403)
    assert "access_requests" not in admin.client(client["client_id"])


def test_unknown_request_id_is_an_error_page(srv, admin, user):
    client = register(srv, client_name=unique("ask-unknown"))
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    done = user.submit(form, request_id=secrets.token_urlsafe(32))
    assert_page(done, 400)
    assert "Request sent" not in done.text, done
    assert "access_requests" not in admin.client(client["client_id"])
    assert events_of(srv, "client.access_requested", client["client_id"]) == []


def test_signed_out_user_gets_the_sign_in_page(srv, admin):
    client = register(srv, client_name=unique("ask-signed-out"))
    browser, resp = meet(srv, client)
    form = request_access_form(srv, resp, client)
    # The session is gone (a made-up session cookie is a signed-out browser).
    browser.set_cookie("gh_session", secrets.token_urlsafe(32))
    done = browser.submit(form)
    assert_page(done, 200, "Sign in")
    assert any(f.fields.get("action") == "sign_in" for f in done.forms), done
    assert "access_requests" not in admin.client(client["client_id"])
    assert events_of(srv, "client.access_requested", client["client_id"]) == []


def test_administrator_posting_the_form_gets_the_approval_page(srv, admin):
    client = register(srv, client_name=unique("ask-admin"))
    attempt = authorize(srv, admin.browser, client)
    assert attempt.resp.status == 200 and is_approval_page(attempt.resp), attempt.resp
    decide = [f for f in attempt.resp.forms if f.fields.get("action") == "decide"][0]
    fields = {k: decide.fields[k] for k in ("request_id", "client_id", "csrf_token")}
    done = admin.browser.post(f"{srv.issuer}/oauth/authorize", dict(fields, action="request_access"))
    assert done.status == 200 and is_approval_page(done), done
    assert "access_requests" not in admin.client(client["client_id"])
    assert events_of(srv, "client.access_requested", client["client_id"]) == []


def test_every_event_line_is_one_json_object_with_the_event_as_a_string(srv, admin):
    client = register(srv, client_name=unique("logged"))
    events = events_of(srv, "client.registered", client["client_id"], count=1)
    assert len(events) == 1, events
    assert_event(srv, events[0], "client.registered", actor={"type": "anonymous"},
                 via="registration", client=client, status="pending")
    assert events[0].get("source_ip") == "127.0.0.1", events[0]
    raw = srv.log()
    for secret in (client["client_secret"], client["registration_access_token"]):
        assert secret not in raw, "a registration secret is in the log"
