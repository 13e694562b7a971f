"""The administrator's approval gate, black box: what an unapproved application can make the
server do, what the administrator sees before approving it, and that Approve approves what
was shown.

- Pending clients are not trusted redirect targets (RFC 9700 §4.11.2, RFC 6749 §10.15): a
  self-registered (RFC 7591) client that nobody has approved yet gets its authorization-request
  errors (RFC 6749 §4.1.2.1, RFC 7636 §4.4.1, RFC 8707 §2) shown on an error page at the
  server, never sent to its redirect URI; the same errors of an approved client still go back
  to the client. An administrator's Deny on a pending client's approval page ends on a page
  too.
- Introspection (RFC 7662 §2.2, §4): a confidential client introspecting a token issued to
  another client learns nothing beyond `{"active": false}`.
- HTTP Strict Transport Security (RFC 6797 §6.1, §7.2): a server whose public URL is `https`
  (behind a TLS-terminating proxy) sends the header on every answer, for at least a year; a
  server with an `http` public URL sends none.
- Displayed text (RFC 7591 §2, §5; Unicode TR #36 / UTS #39): client metadata shown to people
  must not carry bidirectional overrides, invisible formatting or control characters, at
  registration and in an RFC 7592 §2.2 update; ordinary non-ASCII names are fine.
  Internationalised host names are shown in their ASCII form (RFC 5890 A-labels), so a
  look-alike host reads as what it is; the approval page loads nothing from a client-supplied
  logo URL (RFC 7591 §5).
- The approval form names the configuration it showed (`config_version`): a client that changed
  its registration (RFC 7592 §2.2) after the page was shown is not approved by that page; the
  administrator gets the new configuration to approve instead.
"""

from __future__ import annotations

import re
import secrets
import sys
import urllib.parse
from html.parser import HTMLParser

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    REDIRECT_URI,
    REFRESHING,
    Admin,
    approved_dcr_client,
    assert_json,
    authorize,
    code_of,
    page_form,
    register,
    unique,
)
from conftest import MODES, json_body, request  # noqa: E402
from test_authorization import (  # noqa: E402
    Browser,
    Form,
    Resp,
    assert_error_redirect,
    assert_page,
    authorize_url,
)
from test_client_configuration import (  # noqa: E402
    assert_error as assert_configuration_error,
    current,
    put,
    update_body,
)
from test_dynamic_registration import (  # noqa: E402
    assert_created,
    assert_error as assert_registration_error,
    minimal,
)
from test_tokens import (  # noqa: E402
    active,
    assert_tokens,
    exchange,
    introspect,
    post_form,
    token_url,
)

ONE_YEAR = 31536000
HTTPS_PUBLIC_URL = "https://gatehouse.example"
LOOKALIKE_HOST = "\u0430pple.com"  # "аpple.com" with a Cyrillic а (U+0430)
LOOKALIKE_ACE = "xn--pple-43d.com"
REMOTE_LOGO = "https://cdn.example/logo.png"


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    return Admin(server)


@pytest.fixture(scope="module")
def approved_client(server, admin) -> dict:
    client, _ = approved_dcr_client(server, admin)
    return client


def approval_form(server, resp: Resp) -> Form:
    """The approval page's decision form: posted to `{issuer}/admin/approve`, with Approve and
    Deny buttons."""
    form = page_form(resp, "decide")
    assert form.method == "post", form
    assert form.action == f"{server.issuer}/admin/approve", form
    decisions = {b["value"] for b in form.buttons if b["name"] == "decision"}
    assert decisions >= {"approve", "deny"}, form.buttons
    return form


def versioned_approval_form(server, resp: Resp) -> Form:
    """The approval form, carrying the configuration version it shows as a hidden field."""
    form = approval_form(server, resp)
    hidden = {i.get("name"): i.get("value", "") for i in form.inputs
              if i.get("type", "").lower() == "hidden"}
    assert hidden.get("config_version"), (
        f"the approval form carries no hidden config_version: {form.inputs}")
    return form


def open_approval_page(server, admin: Admin, client: dict, **params):
    attempt = authorize(server, admin.browser, client, **params)
    assert_page(attempt.resp, 200, "New, unverified application")
    return attempt


# --------------------------------------------------------------------------------------------
# A pending client's redirect URI is not a redirect target (RFC 9700 §4.11.2)
# --------------------------------------------------------------------------------------------

# (id, query overrides, repeated pairs, words of which the page names one, error when the
# client is approved)
REQUEST_ERRORS = [
    ("response_type token", {"response_type": "token"}, [], ("response_type",),
     "unsupported_response_type"),
    ("no code_challenge", {"code_challenge": None}, [], ("pkce", "code_challenge"),
     "invalid_request"),
    ("code_challenge_method plain", {"code_challenge_method": "plain"}, [],
     ("pkce", "code_challenge"), "invalid_request"),
    ("unregistered scope", {"scope": "admin:all"}, [], ("scope",), "invalid_scope"),
    ("foreign resource", {"resource": "https://evil.example/mcp"}, [], ("resource",),
     "invalid_target"),
    ("repeated state", {"state": "one"}, [("state", "two")], ("state",), "invalid_request"),
]
ERROR_IDS = [case[0] for case in REQUEST_ERRORS]


@pytest.mark.parametrize("overrides, extra, words, _error",
                         [case[1:] for case in REQUEST_ERRORS], ids=ERROR_IDS)
def test_request_error_for_a_pending_client_is_an_error_page_not_a_redirect(
        server, overrides, extra, words, _error):
    client = register(server)
    resp = Browser(server).get(authorize_url(server, client, extra=extra, **overrides))
    assert not 300 <= resp.status < 400, f"a pending client's URI was redirected to: {resp!r}"
    assert "location" not in resp.headers, resp.headers
    assert_page(resp, 400)
    text = resp.text.lower()
    assert any(word in text for word in words), (
        f"the error page names none of {words}: {resp.text!r}")


@pytest.mark.parametrize("overrides, extra, _words, error",
                         [case[1:] for case in REQUEST_ERRORS], ids=ERROR_IDS)
def test_request_error_for_an_approved_client_still_goes_back_to_the_client(
        server, approved_client, overrides, extra, _words, error):
    """RFC 6749 §4.1.2.1: once the client is approved, its redirect URI is trusted again."""
    params = {"state": "ctl-" + secrets.token_hex(4)}
    params.update(overrides)
    resp = Browser(server).get(authorize_url(server, approved_client, extra=extra, **params))
    assert resp.status == 302, resp
    state = None if extra else params["state"]
    assert_error_redirect(resp, server, REDIRECT_URI, error, state)


def test_administrator_denying_a_pending_client_gets_a_page_not_a_redirect(server, admin):
    client = register(server)
    attempt = open_approval_page(server, admin, client)
    resp = admin.browser.submit(approval_form(server, attempt.resp), "deny")
    assert "location" not in resp.headers, f"Deny redirected to the pending client: {resp!r}"
    assert_page(resp, 200)
    assert admin.client(client["client_id"])["status"] == "pending"


# --------------------------------------------------------------------------------------------
# RFC 7662 §2.2 / §4: introspection answers a client about its own tokens only
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_clients(server, admin) -> dict:
    """Two approved confidential clients (client_secret_basic, refresh tokens), each with the
    tokens of its first code."""
    out = {}
    for name in ("a", "b"):
        client, code = approved_dcr_client(server, admin, grant_types=REFRESHING)
        assert client["token_endpoint_auth_method"] == "client_secret_basic", client
        out[name] = (client, assert_tokens(exchange(server, client, code), refresh_token=True))
    return out


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_introspecting_another_clients_token_is_inactive(server, two_clients, kind):
    a, a_tokens = two_clients["a"]
    b, _ = two_clients["b"]
    resp = introspect(server, b, a_tokens[kind])
    assert resp[0] == 200, resp
    assert json_body(resp) == {"active": False}, (
        f"client B learned about client A's {kind}: {json_body(resp)}")
    # The token itself is alive: its own client is told so.
    assert active(server, a, a_tokens[kind]).get("active") is True


def test_introspecting_its_own_access_token_is_active(server, two_clients):
    b, b_tokens = two_clients["b"]
    info = active(server, b, b_tokens["access_token"])
    assert info.get("active") is True, info
    assert info.get("client_id") == b["client_id"], info


# --------------------------------------------------------------------------------------------
# RFC 6797: Strict-Transport-Security when the public URL is https
# --------------------------------------------------------------------------------------------


def hsts_max_age(headers: dict) -> int | None:
    value = headers.get("strict-transport-security")
    if value is None:
        return None
    match = re.search(r'(?i)(?:^|;)\s*max-age\s*=\s*"?(\d+)"?', value)
    return int(match.group(1)) if match else -1


@pytest.mark.parametrize("mode", ["embedded"])  # a transport header: the store plays no part
def test_https_public_url_sends_strict_transport_security_on_every_answer(start_server, mode):
    srv = start_server({"GATEHOUSE_PUBLIC_URL": HTTPS_PUBLIC_URL}, mode=mode)
    created = request("POST", srv.register_url, minimal())
    client = assert_created(created)
    answers = {
        "metadata": (200, request(
            "GET", f"{srv.base}/.well-known/oauth-authorization-server/t/demo")),
        "registration": (201, created),
        "registration error": (400, request(
            "POST", srv.register_url, minimal(redirect_uris=["javascript:alert(1)"]))),
        "authorize error page": (400, request(
            "GET", authorize_url(srv, client, client_id="f" * 32))),
        "unknown path": (404, request("GET", f"{srv.base}/no-such-path")),
        "jwks": (200, request("GET", f"{srv.issuer}/jwks.json")),
        "token endpoint 401": (401, post_form(
            token_url(srv), {"grant_type": "authorization_code", "code": "x"})),
    }
    missing = []
    for name, (status, (got, headers, body)) in answers.items():
        assert got == status, f"{name}: expected {status}, got {got}: {body[:300]!r}"
        age = hsts_max_age(headers)
        if age is None or age < ONE_YEAR:
            missing.append(f"{name}: {headers.get('strict-transport-security')!r}")
    assert not missing, (
        f"answers without Strict-Transport-Security max-age >= {ONE_YEAR}: {missing}")


def test_http_public_url_sends_no_strict_transport_security(server):
    client = register(server)
    answers = {
        "metadata": request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/demo"),
        "registration error": request("POST", server.register_url,
                                      minimal(redirect_uris=["javascript:alert(1)"])),
        "authorize error page": request("GET", authorize_url(server, client,
                                                             client_id="f" * 32)),
        "unknown path": request("GET", f"{server.base}/no-such-path"),
        "jwks": request("GET", f"{server.issuer}/jwks.json"),
    }
    sent = {name: h["strict-transport-security"] for name, (_, h, _) in answers.items()
            if "strict-transport-security" in h}
    assert not sent, f"Strict-Transport-Security over an http public URL (RFC 6797 §7.2): {sent}"


# --------------------------------------------------------------------------------------------
# Displayed text that disguises an application is refused
# --------------------------------------------------------------------------------------------

DISGUISING = [
    ("U+202E", "\u202e"),  # right-to-left override
    ("U+202D", "\u202d"),  # left-to-right override
    ("U+2066", "\u2066"),  # left-to-right isolate
    ("U+2067", "\u2067"),  # right-to-left isolate
    ("U+2068", "\u2068"),  # first strong isolate
    ("U+2069", "\u2069"),  # pop directional isolate
    ("U+200B", "\u200b"),  # zero width space
    ("U+200C", "\u200c"),  # zero width non-joiner
    ("U+200D", "\u200d"),  # zero width joiner
    ("U+200E", "\u200e"),  # left-to-right mark
    ("U+200F", "\u200f"),  # right-to-left mark
    ("U+FEFF", "\ufeff"),  # zero width no-break space
    ("U+061C", "\u061c"),  # Arabic letter mark
    ("U+0007", "\u0007"),  # bell, a control character
]


def disguised(field: str, ch: str):
    """A value of `field` with `ch` inside it (never at the ends, so trimming cannot help)."""
    return {
        "client_name": f"Claude{ch}gnp.exe",
        "software_id": f"com.example{ch}.agent",
        "software_version": f"1.0{ch}.1",
        "contacts": [f"ops{ch}x@agent.example.com"],
    }[field]


DISPLAYED_FIELDS = ["client_name", "software_id", "software_version", "contacts"]


@pytest.mark.parametrize("field", DISPLAYED_FIELDS)
@pytest.mark.parametrize("ch", [c for _, c in DISGUISING], ids=[n for n, _ in DISGUISING])
def test_registration_refuses_disguising_characters_in_displayed_text(server, field, ch):
    resp = request("POST", server.register_url, minimal(**{field: disguised(field, ch)}))
    body = assert_registration_error(resp, 400, "invalid_client_metadata")
    assert field in body["error_description"], (
        f"the error does not name {field}: {body}")


@pytest.mark.parametrize("mode", MODES)
def test_refused_disguised_registrations_store_nothing(start_server, mode):
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    marker = unique("disguised")
    for field in DISPLAYED_FIELDS:
        for _, ch in DISGUISING[:3] + DISGUISING[-2:]:
            doc = minimal(client_name=f"{marker} {field}")
            doc[field] = disguised(field, ch)
            if field == "client_name":
                doc[field] = f"{marker}{ch}gnp.exe"
            assert_registration_error(request("POST", srv.register_url, doc), 400,
                                      "invalid_client_metadata")
    control = assert_created(request("POST", srv.register_url,
                                     minimal(client_name=f"{marker} control")))
    admin = Admin(srv)
    names: list[str] = []
    params = {"filter": 'status eq "pending"', "limit": "100"}
    while True:
        page = assert_json(admin.api("GET", "/oauth-clients?" + urllib.parse.urlencode(params)))
        names += [c["client_name"] for c in page["data"]]
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    stored = [n for n in names if marker in n]
    assert stored == [control["client_name"]], f"refused registrations were stored: {stored}"


def test_configuration_update_refuses_a_disguised_client_name(server):
    client = register(server, client_name="Honest Agent")
    before = current(server, client)
    resp = put(server, client, update_body(before, client_name="Claude\u202egnp.exe"))
    body = assert_configuration_error(resp, 400, "invalid_client_metadata")
    assert "client_name" in body["error_description"], body
    after = current(server, client)
    assert after["client_name"] == "Honest Agent", after
    assert after == before


@pytest.mark.parametrize("name", ["\u03a9mega Agent", "\u65e5\u672c\u8a9e\u30af\u30e9\u30a4"
                                  "\u30a2\u30f3\u30c8", "\U0001f916 Bot"],
                         ids=["greek", "japanese", "emoji"])
def test_ordinary_non_ascii_names_are_accepted(server, name):
    body = assert_created(request("POST", server.register_url, minimal(client_name=name)))
    assert body["client_name"] == name, body


# --------------------------------------------------------------------------------------------
# What the approval page shows: ASCII hosts, no remote logo
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("redirect_host", [LOOKALIKE_ACE, LOOKALIKE_HOST],
                         ids=["ascii-redirect", "unicode-redirect"])
def test_approval_page_shows_internationalised_hosts_in_ascii(server, admin, redirect_host):
    """A look-alike host (Cyrillic а in "аpple.com") reads as `xn--pple-43d.com`. A server that
    refuses the Unicode spelling of the redirect URI outright shows nothing and is fine too."""
    resp = request("POST", server.register_url, minimal(
        client_name=unique("Lookalike"), redirect_uris=[f"https://{redirect_host}/cb"],
        client_uri=f"https://{LOOKALIKE_HOST}/"))
    if redirect_host == LOOKALIKE_HOST and resp[0] == 400:
        assert_registration_error(resp, 400, "invalid_redirect_uri")
        return
    client = assert_created(resp)
    page = open_approval_page(server, admin, client).resp
    assert LOOKALIKE_ACE in page.text, f"{LOOKALIKE_ACE} not on the page: {page.text!r}"
    assert LOOKALIKE_HOST not in page.body and LOOKALIKE_HOST not in page.text, (
        "the look-alike host is shown in Unicode on the approval page")


# Attributes through which an element makes the browser fetch a URL (`<a href>` does not).
_LOADING_ATTRIBUTES = {"src", "srcset", "href", "poster", "data", "background", "style",
                       "imagesrcset"}


class _Loads(HTMLParser):
    """Every (tag, attribute, value) that makes the page load something, and style text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in _LOADING_ATTRIBUTES and not (tag == "a" and name == "href"):
                self.loads.append((tag, name, value or ""))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.loads.append(("style", "", data))


def csp_directive(csp: str, name: str) -> str | None:
    for part in csp.split(";"):
        tokens = part.split()
        if tokens and tokens[0].lower() == name:
            return " ".join(tokens[1:])
    return None


def test_approval_page_loads_no_remote_logo(server, admin):
    client = register(server, logo_uri=REMOTE_LOGO)
    page = open_approval_page(server, admin, client).resp
    parser = _Loads()
    parser.feed(page.body)
    parser.close()
    host = urllib.parse.urlsplit(REMOTE_LOGO).hostname
    fetching = [load for load in parser.loads if host in load[2]]
    assert not fetching, f"the approval page loads the client's logo: {fetching}"
    csp = page.headers.get("content-security-policy", "")
    img_src = csp_directive(csp, "img-src")
    effective = img_src if img_src is not None else (csp_directive(csp, "default-src") or "")
    allowed = effective.lower().split()
    assert not {"https:", "*", "http:"} & set(allowed), f"images from anywhere: {csp}"
    assert not [s for s in allowed if host in s], f"the logo's host is allowed: {csp}"


# --------------------------------------------------------------------------------------------
# Approve approves the configuration that was shown
# --------------------------------------------------------------------------------------------


def test_approval_form_carries_the_configuration_version_it_shows(server, admin):
    client = register(server)
    attempt = open_approval_page(server, admin, client)
    form = versioned_approval_form(server, attempt.resp)
    code_of(server, attempt, admin.browser.submit(form, "approve"))


def test_approving_a_page_shown_before_the_client_changed_approves_nothing(server, admin):
    client = register(server, client_name=unique("Original Agent"))
    client_id = client["client_id"]
    attempt = open_approval_page(server, admin, client)
    shown = approval_form(server, attempt.resp)

    added = "https://agent.example.com/added-cb"
    assert_json(put(server, client, update_body(
        current(server, client), client_name="Renamed Agent", redirect_uris=[REDIRECT_URI, added])))

    stale = admin.browser.submit(shown, "approve")
    assert_page(stale, 409, "Renamed Agent", added)
    again = versioned_approval_form(server, stale)
    assert again.fields["config_version"] != shown.fields.get("config_version"), again.fields
    assert admin.client(client_id)["status"] == "pending", "approved what was not shown"

    done = admin.browser.submit(again, "approve")
    assert done.status == 303, done
    code_of(server, attempt, done)
    after = admin.client(client_id)
    assert after["status"] == "approved", after
    assert after["client_name"] == "Renamed Agent", after


@pytest.mark.parametrize("version", [None, "999"], ids=["removed", "tampered"])
def test_approval_without_the_shown_configuration_version_approves_nothing_after_a_change(
        server, admin, version):
    client = register(server)
    attempt = open_approval_page(server, admin, client)
    shown = approval_form(server, attempt.resp)
    assert_json(put(server, client, update_body(current(server, client),
                                                client_name="Renamed Agent")))

    resp = admin.browser.submit(shown, "approve", config_version=version)
    assert_page(resp, 409, "Renamed Agent")
    fresh = versioned_approval_form(server, resp)
    assert admin.client(client["client_id"])["status"] == "pending", "approved what was not shown"
    # The request is still open: the page showing the current configuration approves it.
    code_of(server, attempt, admin.browser.submit(fresh, "approve"))
    assert admin.client(client["client_id"])["status"] == "approved"


def test_update_changing_nothing_shown_keeps_the_client_pending_and_the_page_approves(
        server, admin):
    client = register(server)
    attempt = open_approval_page(server, admin, client)
    form = approval_form(server, attempt.resp)
    assert_json(put(server, client, update_body(current(server, client))))
    assert admin.client(client["client_id"])["status"] == "pending"
    done = admin.browser.submit(form, "approve")
    assert done.status == 303, done
    code_of(server, attempt, done)
    assert admin.client(client["client_id"])["status"] == "approved"
