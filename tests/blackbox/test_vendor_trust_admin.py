"""Vendor trust, the administrators' side, black box (issue 17): approvals that cannot found a
trust (`400 invalid_request`, nothing approved), bad approval bodies, the authentication rules of
`{issuer}/api/v1/vendor-trusts`, trusted registrations against the pending cap, the console
(the queue's and the client page's checkbox, `GET|POST {issuer}/admin/trusts`, the trust on a
client's page, `a#trusts-link`) and the hosted approval page's checkbox.

Helpers and the `admin` fixture come from `test_vendor_trust.py`.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    USER_EMAIL,
    Admin,
    api,
    assert_api_error,
    assert_json,
    assert_no_content,
    assert_unauthenticated,
    authorize,
    code_of,
    console_sign_in,
    is_approval_page,
    page_form,
    register,
    unique,
)
from conftest import (  # noqa: E402
    DEMO_USER_PASSWORD,
    MODES,
    json_body,
    request,
    request_without_content_type,
)
from test_access_requests import Node, assert_event, dom, user_actor  # noqa: E402
from test_access_requests_admin import (  # noqa: E402
    assert_back_to_queue,
    other_tenant_token,
    queue_row,
)
from test_audit_trail import audit_page, client_trail, only  # noqa: E402
from test_authorization import Browser, assert_page  # noqa: E402
from test_client_configuration import current, put, update_body  # noqa: E402
from test_tokens import assert_tokens, exchange  # noqa: E402
from test_vendor_trust import (  # noqa: E402,F401 - the admin fixture
    admin,
    approve,
    assert_created_event,
    assert_pending,
    assert_trusted,
    client_doc,
    new_app,
    trust_app,
    trust_events,
    trust_of,
    trusts,
    user_connects,
    variant,
)

JSON = "application/json"
HTTPS = "https://app.example.org/cb"
INELIGIBLE = {
    "loopback-ip": ["http://127.0.0.1/cb"],
    "localhost-port": ["http://localhost:3000/cb"],
    "https-and-loopback": [HTTPS, "http://127.0.0.1:8080/cb"],
    "private-scheme": ["com.example.app:/cb"],
    "https-and-private-scheme": [HTTPS, "com.example.app:/cb"],
    "https-localhost": ["https://localhost/cb"],
    "https-sub-localhost": ["https://app.localhost/cb"],
    "https-ipv4": ["https://10.0.0.1/cb"],
    "https-ipv6": ["https://[::1]/cb"],
}


def ineligible(kind: str = "loopback-ip") -> dict:
    """A registration of an application that cannot be trusted."""
    return variant(new_app(), redirect_uris=INELIGIBLE[kind], client_name=unique(kind))


def trusts_of_client(admin: Admin, cid: str) -> list[dict]:
    return [t for t in trusts(admin) if t["client_id"] == cid]


def assert_untouched(admin: Admin, client: dict, before: dict) -> None:
    """Nothing approved, nothing trusted, no approval in the trail."""
    cid = client["client_id"]
    assert client_doc(admin, cid) == before
    assert trusts_of_client(admin, cid) == [], "a trust was created"
    types = [e["type"] for e in client_trail(admin, cid)]
    assert "client.approved" not in types and "vendor_trust.created" not in types, types


# --------------------------------------------------------------------------------------------
# The admin API: approvals that cannot trust, bad bodies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(INELIGIBLE))
def test_trust_on_an_ineligible_client_is_400_and_approves_nothing(server, admin, kind):
    client = register(server, **ineligible(kind))
    before = client_doc(admin, client["client_id"])
    assert before["status"] == "pending", before
    resp = approve(admin, client["client_id"], {"trust_vendor": True})
    body = assert_api_error(resp, 400, "invalid_request")
    assert "redirect uri" in body["error_description"].lower(), body
    assert_untouched(admin, client, before)
    # Approving without the trust still works.
    doc = assert_json(approve(admin, client["client_id"], {"trust_vendor": False}))
    assert doc["status"] == "approved" and "vendor_trust_created" not in doc, doc


def test_trust_on_approving_an_approved_clients_changes_is_400(server, admin):
    client = register(server, **new_app())
    cid = client["client_id"]
    assert assert_json(approve(admin, cid))["status"] == "approved"
    # Without changes awaiting approval: refused as well, nothing trusted.
    resp = approve(admin, cid, {"trust_vendor": True})
    assert resp[0] in (400, 409), resp
    renamed = unique("renamed")
    assert put(server, client, update_body(current(server, client), client_name=renamed))[0] == 200
    before = client_doc(admin, cid)
    assert before.get("pending_changes", {}).get("client_name") == renamed, before
    assert_api_error(approve(admin, cid, {"trust_vendor": True}), 400, "invalid_request")
    assert client_doc(admin, cid) == before
    assert trusts_of_client(admin, cid) == []
    assert [e["type"] for e in client_trail(admin, cid)] == ["client.approved",
                                                              "client.registered"]


def test_trust_on_a_client_created_by_an_administrator_is_400(server, admin):
    created = admin.create_client(client_name=unique("manual-trust"),
                                  redirect_uris=new_app()["redirect_uris"])
    cid = created["client_id"]
    before = client_doc(admin, cid)
    assert before["createdByType"] == "user", before
    assert_api_error(approve(admin, cid, {"trust_vendor": True}), 400, "invalid_request")
    assert client_doc(admin, cid) == before
    assert trusts_of_client(admin, cid) == []


BAD_BODIES = {
    "string": (b'{"trust_vendor": "yes"}', JSON, 400),
    "number": (b'{"trust_vendor": 1}', JSON, 400),
    "null": (b'{"trust_vendor": null}', JSON, 400),
    "string-true": (b'{"trust_vendor": "true"}', JSON, 400),
    "other-field": (b'{"other": true}', JSON, 400),
    "extra-field": (b'{"trust_vendor": true, "other": 1}', JSON, 400),
    "array": (b"[true]", JSON, 400),
    "json-string": (b'"trust_vendor"', JSON, 400),
    "not-json": (b"trust_vendor=true", JSON, 400),
    "truncated": (b'{"trust_vendor": tr', JSON, 400),
    "form": (b"trust_vendor=true", "application/x-www-form-urlencoded", 415),
    "text": (b'{"trust_vendor": true}', "text/plain", 415),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_approval_body_is_refused_and_approves_nothing(server, admin, name):
    raw, content_type, status = BAD_BODIES[name]
    client = register(server, **new_app())
    before = client_doc(admin, client["client_id"])
    resp = approve(admin, client["client_id"], raw, {"Content-Type": content_type})
    # docs/admin-api.md: a write that is not JSON is 415; a JSON body that is wrong, 400.
    assert resp[0] in ((400,) if status == 400 else (400, 415)), resp
    assert_api_error(resp, resp[0], "invalid_request")
    assert_untouched(admin, client, before)


def test_approval_body_without_content_type_approves_nothing(server, admin):
    client = register(server, **new_app())
    before = client_doc(admin, client["client_id"])
    url = f"{server.issuer}/api/v1/oauth-clients/{client['client_id']}/approve"
    resp = request_without_content_type("POST", url, b'{"trust_vendor": true}',
                                        {"Authorization": f"Bearer {admin.token}"})
    assert resp[0] in (400, 415), resp
    assert json_body(resp).get("error") == "invalid_request", resp
    assert_untouched(admin, client, before)


@pytest.mark.parametrize("body", [None, {}, {"trust_vendor": False}],
                         ids=["none", "empty", "false"])
def test_approval_without_trust_creates_none(server, admin, body):
    app = new_app()
    client = register(server, **app)
    doc = assert_json(approve(admin, client["client_id"], body))
    assert doc["status"] == "approved" and "vendor_trust_created" not in doc, doc
    assert trusts_of_client(admin, client["client_id"]) == []
    assert_pending(admin, register(server, **app))


# --------------------------------------------------------------------------------------------
# Authentication of …/vendor-trusts and of a trusting approval
# --------------------------------------------------------------------------------------------


def regular_user_cookie_and_csrf(server) -> tuple[str, str]:
    browser = console_sign_in(server, USER_EMAIL, DEMO_USER_PASSWORD)
    cookie = browser.cookie("gh_session")
    session = api(server, "GET", "/session", cookie=cookie)
    # Best effort at the user's real CSRF token, so a write fails for the role, not for CSRF.
    csrf = json_body(session).get("csrf_token") if session[0] == 200 else None
    return cookie, csrf or hashlib.sha256(f"gatehouse-csrf:{cookie}".encode()).hexdigest()


def test_no_credential_is_401_and_a_regular_user_403(server, admin):
    _, tid = trust_app(server, admin, new_app())
    for token in (None, "gha_demo_" + "A" * 43):
        assert_unauthenticated(api(server, "GET", "/vendor-trusts", token=token))
        assert_unauthenticated(api(server, "DELETE", f"/vendor-trusts/{tid}", token=token))
    cookie, csrf = regular_user_cookie_and_csrf(server)
    resp = api(server, "GET", "/vendor-trusts", cookie=cookie)
    assert_api_error(resp, 403, "access_denied")
    assert tid.encode() not in resp[2]
    resp = api(server, "DELETE", f"/vendor-trusts/{tid}", cookie=cookie, csrf=csrf)
    assert_api_error(resp, 403, "access_denied")
    client = register(server, **new_app())
    resp = api(server, "POST", f"/oauth-clients/{client['client_id']}/approve",
               {"trust_vendor": True}, cookie=cookie, csrf=csrf)
    assert_api_error(resp, 403, "access_denied")
    assert client_doc(admin, client["client_id"])["status"] == "pending"
    assert "revoked_at" not in trust_of(admin, tid)


def test_session_cookie_writes_need_the_csrf_token(server, admin):
    _, tid = trust_app(server, admin, new_app())
    s = admin.session
    listed = assert_json(s.call("GET", "/vendor-trusts", csrf=None))["data"]
    assert tid in [t["id"] for t in listed]
    client = register(server, **new_app())
    before = client_doc(admin, client["client_id"])
    for csrf in (None, "0" * 64):
        assert_api_error(s.call("DELETE", f"/vendor-trusts/{tid}", csrf=csrf), 403, "access_denied")
        resp = s.call("POST", f"/oauth-clients/{client['client_id']}/approve",
                      {"trust_vendor": True}, csrf=csrf)
        assert_api_error(resp, 403, "access_denied")
    assert "revoked_at" not in trust_of(admin, tid)
    assert_untouched(admin, client, before)
    assert_no_content(s.call("DELETE", f"/vendor-trusts/{tid}"))
    assert "revoked_at" in trust_of(admin, tid)
    doc = assert_json(s.call("POST", f"/oauth-clients/{client['client_id']}/approve",
                             {"trust_vendor": True}))
    assert trust_of(admin, doc["vendor_trust_created"])["client_id"] == client["client_id"]


def test_another_tenants_token_is_404(server, admin):
    tenant, token = other_tenant_token(server)
    _, tid = trust_app(server, admin, new_app())
    for method, path in (("GET", "/vendor-trusts"), ("DELETE", f"/vendor-trusts/{tid}")):
        resp = api(server, method, path, token=token)
        assert_api_error(resp, 404, "not_found")
        assert tid.encode() not in resp[2]
    # At home the other tenant has no trusts, and cannot revoke demo's.
    home = assert_json(api(server, "GET", "/vendor-trusts", token=token, tenant=tenant))
    assert home == {"data": []}, home
    resp = api(server, "DELETE", f"/vendor-trusts/{tid}", token=token, tenant=tenant)
    assert_api_error(resp, 404, "not_found")
    assert "revoked_at" not in trust_of(admin, tid)


# --------------------------------------------------------------------------------------------
# The pending cap
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_trusted_registrations_count_against_the_pending_cap(start_server, mode):
    s = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "2",
                      "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    boss = Admin(s)
    app = new_app()
    _, tid = trust_app(s, boss, app)  # the first registration
    assert_trusted(boss, register(s, **app), tid)  # the second: the cap is reached
    for doc in (app, new_app()):
        resp = request("POST", s.register_url, variant(doc, client_name=unique("capped")))
        assert resp[0] == 429, f"expected 429 at the cap: {resp[0]} {resp[2][:300]!r}"
        assert json_body(resp).get("error"), resp
        assert resp[1].get("retry-after", "").isdigit(), resp[1]
    registered = audit_page(boss, type="client.registered")[0]
    assert len(registered) == 2, [e.get("client_id") for e in registered]


# --------------------------------------------------------------------------------------------
# The console
# --------------------------------------------------------------------------------------------


def client_url(server, cid: str) -> str:
    return f"{server.issuer}/admin/clients/{urllib.parse.quote(cid, safe='')}"


def trust_box(form: Node) -> Node:
    box = form.one("input", name="trust_vendor")
    assert box.attrs.get("type") == "checkbox" and box.attrs.get("value") == "on", box.attrs
    assert "checked" not in box.attrs, "trusting must be opted into"
    return box


def queue_approve_form(server, admin: Admin, cid: str) -> Node:
    row = queue_row(server, admin.browser, cid)
    assert row is not None, f"{cid} is not in the pending queue"
    return row.one("form", cls="approve")


def test_queue_offers_trust_only_for_an_eligible_client(server, admin):
    eligible = register(server, **new_app())
    trust_box(queue_approve_form(server, admin, eligible["client_id"]))
    for kind in ("loopback-ip", "private-scheme", "https-localhost"):
        other = register(server, **ineligible(kind))
        form = queue_approve_form(server, admin, other["client_id"])
        assert not form.all("input", name="trust_vendor"), f"{kind}: a trust checkbox"


def test_queue_approve_with_trust_creates_the_trust(server, admin):
    app = new_app()
    client = register(server, **app)
    cid = client["client_id"]
    form = queue_approve_form(server, admin, cid)
    trust_box(form)
    assert_back_to_queue(server, form.post(admin.browser, server.issuer, trust_vendor="on"))
    doc = client_doc(admin, cid)
    assert doc["status"] == "approved" and doc["approved_by"] == admin.user(ADMIN_EMAIL)["id"]
    found = trusts_of_client(admin, cid)
    assert len(found) == 1, found
    assert_created_event(server, admin, found[0]["id"], app, "console")
    event = only(client_trail(admin, cid), "client.approved")
    assert event.get("via") == "console", event
    assert_trusted(admin, register(server, **app), found[0]["id"])


def test_console_approve_with_trust_of_an_ineligible_client_is_400(server, admin):
    client = register(server, **ineligible())
    cid = client["client_id"]
    before = client_doc(admin, cid)
    form = queue_approve_form(server, admin, cid)
    assert_page(form.post(admin.browser, server.issuer, trust_vendor="on"), 400)
    assert_untouched(admin, client, before)
    page = admin.browser.get(client_url(server, cid))
    assert_page(page, 200)
    form = dom(page).one("form", id="approve")
    assert not form.all("input", name="trust_vendor"), "a trust checkbox on the client page"
    assert_page(form.post(admin.browser, client_url(server, cid), trust_vendor="on"), 400)
    assert_untouched(admin, client, before)


def test_client_page_approve_with_trust_creates_the_trust(server, admin):
    app = new_app()
    client = register(server, **app)
    cid = client["client_id"]
    url = client_url(server, cid)
    page = admin.browser.get(url)
    assert_page(page, 200)
    form = dom(page).one("form", id="approve")
    trust_box(form)
    done = form.post(admin.browser, url, trust_vendor="on")
    assert done.status == 303, done
    found = trusts_of_client(admin, cid)
    assert len(found) == 1, found
    assert_created_event(server, admin, found[0]["id"], app, "console")
    assert client_doc(admin, cid)["status"] == "approved"


def trusts_row(server, admin: Admin, tid: str) -> Node:
    resp = admin.browser.get(f"{server.issuer}/admin/trusts")
    assert_page(resp, 200)
    return dom(resp).one("table", id="trusts").one("tr", data_trust_id=tid)


def test_trusts_page_lists_a_trust_and_revokes_it(server, admin):
    app = new_app()
    _, tid = trust_app(server, admin, app)
    row = trusts_row(server, admin, tid)
    shown = row.one("td", cls="redirect-uris").text()
    assert all(u in shown for u in app["redirect_uris"]), shown
    assert row.one("td", cls="auth-method").text() == app["token_endpoint_auth_method"]
    assert row.one("td", cls="software-id").text() == app["software_id"]
    assert row.one("td", cls="status").text() == "active"
    form = row.one("form", cls="revoke")
    assert form.attrs.get("method", "").lower() == "post", form.attrs
    assert form.attrs.get("action") == f"{server.issuer}/admin/trusts", form.attrs
    hidden = form.hidden()
    assert hidden.get("action") == "revoke" and hidden.get("trust_id") == tid, hidden
    assert hidden.get("csrf"), hidden
    # Without the CSRF field: a 403 page, nothing revoked.
    assert_page(form.post(admin.browser, server.issuer, csrf=""), 403)
    assert "revoked_at" not in trust_of(admin, tid)
    done = form.post(admin.browser, server.issuer)
    assert done.status == 303, done
    back = urllib.parse.urljoin(server.issuer, done.location or "")
    assert back == f"{server.issuer}/admin/trusts", done.location
    row = trusts_row(server, admin, tid)
    assert row.one("td", cls="status").text() == "revoked"
    assert not row.all("form", cls="revoke"), "a revoked trust offers Revoke"
    assert isinstance(trust_of(admin, tid).get("revoked_at"), int)
    events = trust_events(admin, "vendor_trust.revoked", tid)
    assert len(events) == 1, events
    assert_event(server, events[0], "vendor_trust.revoked", actor=user_actor(admin, ADMIN_EMAIL),
                 via="console")
    assert_pending(admin, register(server, **app))


def test_console_revoke_of_an_unknown_trust_changes_nothing(server, admin):
    _, tid = trust_app(server, admin, new_app())
    form = trusts_row(server, admin, tid).one("form", cls="revoke")
    resp = form.post(admin.browser, server.issuer, trust_id=secrets.token_hex(32))
    assert resp.status in (400, 404), resp
    assert_page(resp, resp.status)
    assert "revoked_at" not in trust_of(admin, tid)


def test_trust_approved_client_page_names_its_trust(server, admin):
    app = new_app()
    founding, tid = trust_app(server, admin, app)
    client = register(server, **app)
    page = admin.browser.get(client_url(server, client["client_id"]))
    assert_page(page, 200)
    field = dom(page).one(data_field="vendor_trust")
    assert tid in field.text(), field.text()
    links = [urllib.parse.urljoin(server.issuer, a.attrs.get("href", "")) for a in field.all("a")]
    assert any(link.startswith(f"{server.issuer}/admin/trusts") for link in links), links
    page = admin.browser.get(client_url(server, founding["client_id"]))
    assert_page(page, 200)
    assert not dom(page).all(data_field="vendor_trust"), "the founding client names a trust"


def test_every_console_page_links_the_trusts_page(server, admin):
    cid = register(server, **new_app())["client_id"]
    for path in ("/admin", "/admin?view=pending", "/admin/settings", "/admin/users",
                 "/admin/audit", "/admin/trusts", f"/admin/clients/{cid}"):
        url = f"{server.issuer}{path}"
        resp = admin.browser.get(url)
        assert_page(resp, 200)
        link = dom(resp).one("a", id="trusts-link")
        href = urllib.parse.urljoin(url, link.attrs.get("href", ""))
        assert href == f"{server.issuer}/admin/trusts", (path, href)


def test_trusts_page_is_for_administrators(server, admin):
    _, tid = trust_app(server, admin, new_app())
    url = f"{server.issuer}/admin/trusts"
    resp = Browser(server).get(url)
    assert resp.status == 303, resp
    assert urllib.parse.urljoin(url, resp.location) == f"{server.issuer}/admin/signin"
    user = console_sign_in(server, USER_EMAIL, DEMO_USER_PASSWORD)
    refused = user.get(url)
    assert_page(refused, 403)
    assert tid not in refused.body
    resp = user.post(url, {"action": "revoke", "trust_id": tid, "csrf": "0" * 64})
    assert_page(resp, 403)
    assert "revoked_at" not in trust_of(admin, tid)


# --------------------------------------------------------------------------------------------
# The hosted approval page (an administrator meets a pending client)
# --------------------------------------------------------------------------------------------


def approval_form(resp) -> Node:
    assert resp.status == 200 and is_approval_page(resp), f"expected the approval page: {resp!r}"
    forms = [f for f in dom(resp).all("form") if f.hidden().get("action") == "decide"]
    assert len(forms) == 1, forms
    return forms[0]


def test_approval_page_with_trust_creates_the_trust(server, admin):
    app = new_app()
    client = register(server, **app)
    cid = client["client_id"]
    attempt = authorize(server, admin.browser, client)
    trust_box(approval_form(attempt.resp))
    done = admin.browser.submit(page_form(attempt.resp, "decide"), "approve", trust_vendor="on")
    assert_tokens(exchange(server, client, code_of(server, attempt, done)))
    found = trusts_of_client(admin, cid)
    assert len(found) == 1, found
    assert_created_event(server, admin, found[0]["id"], app, "consent_page")
    event = only(client_trail(admin, cid), "client.approved")
    assert event.get("via") == "consent_page", event
    second = register(server, **app)
    assert_trusted(admin, second, found[0]["id"])
    user_connects(server, second)


@pytest.mark.parametrize("kind", ["loopback-ip", "https-localhost", "private-scheme"])
def test_approval_page_of_an_ineligible_client_cannot_trust(server, admin, kind):
    client = register(server, **ineligible(kind))
    before = client_doc(admin, client["client_id"])
    attempt = authorize(server, admin.browser, client)
    assert not approval_form(attempt.resp).all("input", name="trust_vendor"), "a trust checkbox"
    done = admin.browser.submit(page_form(attempt.resp, "decide"), "approve", trust_vendor="on")
    assert_page(done, 400)
    assert_untouched(admin, client, before)
