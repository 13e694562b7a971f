"""The authorization endpoint, black box: `GET|POST {issuer}/oauth/authorize` and the
administrator's `POST {issuer}/admin/approve`, driven like a browser would drive them.

Sections follow the specifications:
- RFC 6749 §3.1.2 / §4.1.2.1 and RFC 8252 §7.3: a bad `client_id` or `redirect_uri` is shown to
  the user on an error page and never redirected; redirect URIs match exactly (loopback: any
  port); the registered URI's own query is kept.
- RFC 6749 §4.1.2.1, RFC 7636 §4.4.1, RFC 8707 §2: every other error goes back to an approved
  client with `error`, `error_description`, `state` and (RFC 9207) `iss`; a pending client's
  redirect URI is only its registrant's claim, so its errors (and an administrator's Deny) are
  pages here.
- RFC 6749 §4.1.1-§4.1.2 and §10.12: the hosted sign-in form, the approval page an
  administrator sees for a new (pending) client, the consent page for an approved client, the
  code, replay and cross-site request forgery defences.
- The hosted pages themselves: anti-framing, no caching, escaping of client-supplied text.
- Pending-client expiry and the sign-in rate limit, each on a server of its own.

Every `Browser` keeps its own cookie jar, never follows redirects (so a test sees each
302/303 and its `Location`), and connects from its own loopback address (127.77.x.y) where the
OS allows it, so the per-IP sign-in limit of the shared server is not spent by unrelated tests.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.client
import http.cookiejar
import itertools
import json
import re
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from conftest import (
    Pkce,
    b64url,
    DEMO_ADMIN_PASSWORD,
    DEMO_USER_PASSWORD,
    HTTP_TIMEOUT_S,
    json_body,
    request,
    request_without_content_type,
)

ADMIN_EMAIL = "admin@demo.test"
USER_EMAIL = "user@demo.test"
REDIRECT_URI = "https://agent.example.com/cb"
CODE = re.compile(r"[A-Za-z0-9_-]{43}")  # 256 bits, base64url without padding
HOSTILE_NAME = "<script>alert(1)</script>"

# --------------------------------------------------------------------------------------------
# Helpers: PKCE, HTML forms, a browser
# --------------------------------------------------------------------------------------------


def test_pkce_helper_computes_the_rfc7636_appendix_b_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert b64url(hashlib.sha256(verifier.encode()).digest()) == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    pkce = Pkce.new()
    assert 43 <= len(pkce.verifier) <= 128 and len(pkce.challenge) == 43


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # inputs, in order
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)  # name, value, type, label


class _PageParser(HTMLParser):
    """Collects forms (inputs and buttons) and the visible text of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.text: list[str] = []
        self._skip = 0
        self._button: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(a)
            # An unticked checkbox is not submitted (HTML "constructing the entry list").
            unticked = a.get("type") in ("checkbox", "radio") and "checked" not in a
            if "name" in a and not unticked:
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = {
                "name": a.get("name", ""),
                "value": a.get("value", ""),
                "type": a.get("type", "submit"),
                "label": "",
            }
            self.forms[-1].buttons.append(self._button)

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        elif tag == "button":
            self._button = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._button is not None:
            self._button["label"] += data.strip()


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lowercase names, repeated headers joined with ", "
    set_cookies: list[str]
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    def _parsed(self) -> _PageParser:
        p = _PageParser()
        p.feed(self.body)
        p.close()
        return p

    @property
    def text(self) -> str:
        """The page's visible text, unescaped, whitespace collapsed."""
        return " ".join(" ".join(self._parsed().text).split())

    @property
    def forms(self) -> list[Form]:
        return self._parsed().forms

    def form(self) -> Form:
        forms = self.forms
        assert len(forms) == 1, f"expected one form on the page, found {len(forms)}:\n{self.body}"
        return forms[0]

    def set_cookie(self, name: str) -> str | None:
        for c in self.set_cookies:
            if c.split("=", 1)[0].strip() == name:
                return c
        return None

    def __repr__(self):
        return f"<{self.status} location={self.location!r} body={self.body[-800:]!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _loopback_aliases_work() -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.77.0.1", 0))
        return True
    except OSError:
        return False


LOOPBACK_ALIASES = _loopback_aliases_work()
_source_numbers = itertools.count()


def _next_source_address() -> str | None:
    if not LOOPBACK_ALIASES:
        return None
    n = next(_source_numbers)
    return f"127.77.{(n // 250) % 250}.{n % 250 + 1}"


class _SourceAddressHandler(urllib.request.HTTPHandler):
    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def http_open(self, req):
        conn = functools.partial(http.client.HTTPConnection, source_address=(self.source, 0))
        return self.do_open(conn, req)


class Browser:
    """A cookie jar and a non-redirecting opener: one user agent on one machine."""

    def __init__(self, server):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.source = _next_source_address()
        handlers = [_NoRedirect, urllib.request.HTTPCookieProcessor(self.jar)]
        if self.source:
            handlers.append(_SourceAddressHandler(self.source))
        self.opener = urllib.request.build_opener(*handlers)

    def _send(self, req: urllib.request.Request) -> Resp:
        try:
            resp = self.opener.open(req, timeout=HTTP_TIMEOUT_S)
        except urllib.error.HTTPError as err:
            resp = err
        try:
            items = resp.headers.items()
            headers: dict[str, str] = {}
            for k, v in items:
                k = k.lower()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            cookies = [v for k, v in items if k.lower() == "set-cookie"]
            return Resp(resp.getcode(), headers, cookies,
                        resp.read().decode("utf-8", errors="replace"))
        finally:
            resp.close()

    def get(self, url: str) -> Resp:
        return self._send(urllib.request.Request(url, method="GET"))

    def post(self, url: str, fields, content_type="application/x-www-form-urlencoded") -> Resp:
        body = fields if isinstance(fields, (bytes, str)) else urllib.parse.urlencode(fields)
        if isinstance(body, str):
            body = body.encode("utf-8")
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type})
        return self._send(req)

    def submit(self, form: Form, button: str | None = None, **overrides) -> Resp:
        """Submit `form` as a browser would: its inputs, plus the named button's value."""
        assert form.method == "post", form
        fields = dict(form.fields)
        if button is not None:
            matches = [b for b in form.buttons if b["value"] == button or b["label"] == button]
            assert len(matches) == 1, f"no single button {button!r} in {form.buttons}"
            if matches[0]["name"]:
                fields[matches[0]["name"]] = matches[0]["value"]
        for k, v in overrides.items():
            if v is None:
                fields.pop(k, None)
            else:
                fields[k] = v
        return self.post(form.action, fields)

    def cookie(self, name: str) -> str | None:
        for c in self.jar:
            if c.name == name:
                return c.value
        return None

    def set_cookie(self, name: str, value: str, path: str = "/t/demo") -> None:
        host = urllib.parse.urlsplit(self.server.base).hostname
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, host, False, False, path, True, False, None, False,
            None, None, {}))

    # -- the flow

    def authorize(self, client: dict, **params) -> Resp:
        return self.get(authorize_url(self.server, client, **params))

    def sign_in(self, page: Resp, email: str, password: str) -> Resp:
        form = page.form()
        assert form.fields.get("action") == "sign_in", form
        return self.submit(form, email=email, password=password)


def authorize_url(server, client: dict | None, extra: list[tuple[str, str]] = (), **params) -> str:
    """`{issuer}/oauth/authorize?...` for `client`, valid by default: the first registered
    redirect URI, `response_type=code`, a fresh S256 challenge and a random `state`. A keyword
    set to None leaves that parameter out; `extra` pairs are appended (repeats allowed)."""
    defaults: dict[str, str | None] = {}
    if client is not None:
        defaults = {
            "client_id": client["client_id"],
            "redirect_uri": client["redirect_uris"][0],
            "response_type": "code",
            "code_challenge": Pkce.new().challenge,
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(12),
        }
    defaults.update(params)
    pairs = [(k, v) for k, v in defaults.items() if v is not None] + list(extra)
    return f"{server.issuer}/oauth/authorize?{urllib.parse.urlencode(pairs)}"


def register(server, **fields) -> dict:
    doc = {"client_name": "Authorization black-box client", "redirect_uris": [REDIRECT_URI]}
    doc.update(fields)
    resp = request("POST", server.register_url, doc)
    assert resp[0] == 201, f"registration failed: {resp[0]} {resp[2][:500]!r}"
    return json_body(resp)


# --------------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------------


def assert_page(resp: Resp, status: int, *phrases: str) -> Resp:
    """One of our own HTML pages: the status, no redirect, anti-framing, not cached, and each
    phrase in its visible text (case-insensitive)."""
    assert resp.status == status, f"expected a {status} page, got {resp!r}"
    assert resp.location is None, f"a page must never redirect: {resp!r}"
    media = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    assert media == "text/html", resp.headers
    csp = resp.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, resp.headers
    assert resp.headers.get("x-frame-options", "").upper() == "DENY", resp.headers
    assert "no-store" in resp.headers.get("cache-control", "").lower(), resp.headers
    text = resp.text.lower()
    for phrase in phrases:
        assert phrase.lower() in text, f"{phrase!r} not on the page: {resp.text!r}"
    return resp


def assert_redirect(resp: Resp, server, redirect_uri: str, statuses=(302, 303)) -> dict[str, str]:
    """A redirect to exactly `redirect_uri` (its own query kept first), carrying each response
    parameter once and `iss` equal to the issuer (RFC 9207 §2). Returns the added parameters."""
    assert resp.status in statuses, f"expected a redirect {statuses} to the client, got {resp!r}"
    assert resp.location, resp
    got = urllib.parse.urlsplit(resp.location)
    want = urllib.parse.urlsplit(redirect_uri)
    assert (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path), (
        f"redirected to {resp.location!r}, not to {redirect_uri!r}")
    assert not got.fragment, resp.location
    own = urllib.parse.parse_qsl(want.query, keep_blank_values=True)
    pairs = urllib.parse.parse_qsl(got.query, keep_blank_values=True)
    assert pairs[: len(own)] == own, f"the redirect URI's own query was not kept: {resp.location}"
    added = pairs[len(own):]
    names = [k for k, _ in added]
    assert len(names) == len(set(names)), f"repeated response parameters: {resp.location}"
    params = dict(added)
    assert params.get("iss") == server.issuer, f"iss must be the issuer (RFC 9207): {params}"
    assert "no-store" in resp.headers.get("cache-control", "").lower(), resp.headers
    return params


def assert_error_redirect(resp: Resp, server, redirect_uri: str, error: str,
                          state: str | None = None) -> dict[str, str]:
    """RFC 6749 §4.1.2.1: `error`, a description, `state` exactly as sent, `iss`; no code."""
    params = assert_redirect(resp, server, redirect_uri)
    assert params.get("error") == error, f"expected error={error}, got {params}"
    assert params.get("error_description"), f"no error_description: {params}"
    assert "code" not in params, params
    if state is not None:
        assert params.get("state") == state, f"state not echoed: {params}"
    return params


def assert_code_redirect(resp: Resp, server, redirect_uri: str, state: str,
                         statuses=(302, 303)) -> str:
    """RFC 6749 §4.1.2: `code` (256-bit, base64url) and `state`, plus `iss`; no error."""
    params = assert_redirect(resp, server, redirect_uri, statuses)
    assert "error" not in params, f"expected a code, got an error: {params}"
    assert CODE.fullmatch(params.get("code", "")), f"code is not 43 base64url chars: {params}"
    assert params.get("state") == state, f"state not echoed: {params}"
    assert set(params) == {"code", "state", "iss"}, params
    return params["code"]


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    attrs = {}
    for part in set_cookie.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        attrs[k.lower()] = v
    return attrs


# --------------------------------------------------------------------------------------------
# Fixtures: signed-in browsers shared by a module's tests on one server
# --------------------------------------------------------------------------------------------


def signed_in_browser(server, email: str, password: str) -> Browser:
    browser = Browser(server)
    page = browser.authorize(register(server, client_name="Session starter"))
    assert_page(page, 200, "Sign in")
    browser.sign_in(page, email, password)
    assert browser.cookie("gh_session"), f"{email} did not get a session"
    return browser


@pytest.fixture(scope="module")
def admin(server) -> Browser:
    """A browser signed in as the demo administrator."""
    return signed_in_browser(server, ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def user(server) -> Browser:
    """A browser signed in as the demo (non-admin) user."""
    return signed_in_browser(server, USER_EMAIL, DEMO_USER_PASSWORD)


def approval_page(server, admin: Browser, client: dict, **params) -> Resp:
    page = admin.authorize(client, **params)
    return assert_page(page, 200, "New, unverified application")


def approve_new_client(server, admin: Browser, **fields) -> dict:
    """Register a client and have the administrator approve it; returns the client."""
    client = register(server, **fields)
    state = "approve-" + secrets.token_hex(4)
    page = approval_page(server, admin, client, state=state)
    assert_code_redirect(admin.submit(page.form(), "approve"), server,
                         client["redirect_uris"][0], state, statuses=(303,))
    return client


@pytest.fixture(scope="module")
def approved(server, admin) -> dict:
    """A client an administrator approved: its redirect URI is trusted, so request errors go
    back to it. An error changes nothing about the client, so the module's tests share it."""
    return approve_new_client(server, admin, client_name="Approved error target")


# --------------------------------------------------------------------------------------------
# RFC 6749 §4.1.2.1, §3.1.2.4: a bad client_id or redirect_uri is never redirected to
# --------------------------------------------------------------------------------------------


def test_missing_client_id_is_an_error_page(server):
    client = register(server)
    resp = Browser(server).authorize(client, client_id=None)
    assert_page(resp, 400)
    assert resp.set_cookie("gh_browser") is None


@pytest.mark.parametrize("client_id", ["0123456789abcdef0123456789abcdef", "not-a-client",
                                       "../../admin"])
def test_unknown_client_id_is_an_error_page(server, client_id):
    client = register(server)
    resp = Browser(server).authorize(client, client_id=client_id)
    assert_page(resp, 400, "Unknown application")


def test_unknown_client_id_is_an_error_page_even_with_other_errors(server):
    """Nothing about the client can be trusted, so not even an error goes to its URI."""
    client = register(server)
    resp = Browser(server).authorize(client, client_id="f" * 32, response_type="token",
                                     code_challenge=None)
    assert_page(resp, 400)


@pytest.mark.parametrize(
    "presented",
    [
        "https://evil.example/cb",
        "https://agent.example.com/cb/",
        "https://agent.example.com/CB",
        "https://agent.example.com/cb?x=1",
        "https://agent.example.com/cb#frag",
        "https://AGENT.example.com/cb",
        "https://agent.example.com:443/cb",
        "https://agent.example.com:8443/cb",
        "http://agent.example.com/cb",
        "https://agent.example.com/cb/../cb",
        "https://agent.example.com.evil.example/cb",
        "https://user@agent.example.com/cb",
    ],
)
def test_redirect_uri_must_match_a_registered_one_exactly(server, presented):
    """RFC 6749 §3.1.2.3 and OAuth 2.1 §2.3.1: simple string comparison; an error with an
    unregistered URI is shown here, never sent there (§4.1.2.1), even for otherwise bad
    requests."""
    client = register(server)
    browser = Browser(server)
    assert_page(browser.authorize(client, redirect_uri=presented), 400, "Invalid redirect URI")
    assert_page(browser.authorize(client, redirect_uri=presented, response_type="token"), 400)


def test_missing_redirect_uri_is_an_error_page_when_several_are_registered(server):
    client = register(server, redirect_uris=[REDIRECT_URI, "https://agent.example.com/cb2"])
    assert_page(Browser(server).authorize(client, redirect_uri=None), 400, "Invalid redirect URI")


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_repeated_client_id_or_redirect_uri_is_an_error_page(server, name):
    """RFC 6749 §3.1: parameters must not repeat; for these two there is no safe place to
    send the error."""
    client = register(server)
    value = client["client_id"] if name == "client_id" else REDIRECT_URI
    resp = Browser(server).get(authorize_url(server, client, extra=[(name, value)]))
    assert_page(resp, 400, "repeated")


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_overlong_client_id_or_redirect_uri_is_an_error_page(server, name):
    client = register(server)
    value = "a" * 2049 if name == "client_id" else REDIRECT_URI + "?" + "a" * 2040
    assert len(value) > 2048
    resp = Browser(server).authorize(client, **{name: value})
    assert_page(resp, 400)


def test_query_over_8_kib_is_an_error_page(server):
    client = register(server)
    url = authorize_url(server, client, extra=[("padding", "p" * 8300)])
    assert_page(Browser(server).get(url), 400)


# --------------------------------------------------------------------------------------------
# RFC 8252 §7.3 / OAuth 2.1 §8.4.2: loopback redirect URIs match on any port
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "registered, presented",
    [
        ("http://127.0.0.1:8976/cb", "http://127.0.0.1:51234/cb"),
        ("http://127.0.0.1:8976/cb", "http://127.0.0.1/cb"),
        ("http://localhost:33418/cb", "http://localhost:40001/cb"),
        ("http://localhost/callback", "http://localhost:8080/callback"),
        ("http://[::1]:9000/cb", "http://[::1]:9999/cb"),
    ],
)
def test_loopback_redirect_uri_matches_on_any_port(server, admin, registered, presented):
    client = approve_new_client(server, admin, redirect_uris=[registered],
                                application_type="native")
    browser = Browser(server)
    assert_page(browser.authorize(client, redirect_uri=presented), 200, "Sign in")
    # Responses go to the port the client is actually listening on.
    resp = browser.authorize(client, redirect_uri=presented, response_type="token", state="lo")
    assert_error_redirect(resp, server, presented, "unsupported_response_type", "lo")


@pytest.mark.parametrize(
    "registered, presented",
    [
        ("http://127.0.0.1:8976/cb", "http://127.0.0.1:51234/other"),
        ("http://127.0.0.1:8976/cb", "http://127.0.0.1:51234/cb?x=1"),
        ("http://127.0.0.1:8976/cb", "http://localhost:8976/cb"),
        ("http://127.0.0.1:8976/cb", "http://127.0.0.2:8976/cb"),
        ("http://127.0.0.1:8976/cb", "https://127.0.0.1:8976/cb"),
        ("http://localhost:33418/cb", "http://localhost.evil.example:33418/cb"),
        ("http://[::1]:9000/cb", "http://127.0.0.1:9000/cb"),
        ("http://127.0.0.1:8976/cb", "http://127.0.0.1:8976@evil.example/cb"),
        ("http://127.0.0.1:8976/cb", "http://evil.example:8976/cb"),
    ],
)
def test_loopback_port_freedom_does_not_extend_to_host_path_query_or_scheme(
        server, registered, presented):
    client = register(server, redirect_uris=[registered], application_type="native")
    assert_page(Browser(server).authorize(client, redirect_uri=presented), 400)


def test_non_loopback_redirect_uri_does_not_match_on_another_port(server):
    client = register(server, redirect_uris=["https://agent.example.com:8443/cb"])
    assert_page(Browser(server).authorize(
        client, redirect_uri="https://agent.example.com:9443/cb"), 400)


def test_registered_redirect_uri_query_is_kept_in_responses(server, admin):
    """RFC 6749 §3.1.2: the redirection endpoint's query component must be retained."""
    uri = "https://agent.example.com/cb?connection=a1"
    client = approve_new_client(server, admin, redirect_uris=[uri])
    resp = Browser(server).authorize(client, response_type="token", state="q")
    assert_error_redirect(resp, server, uri, "unsupported_response_type", "q")


# --------------------------------------------------------------------------------------------
# RFC 6749 §4.1.2.1, RFC 7636 §4.4.1, RFC 8707 §2, RFC 9207: errors go back to an approved
# client; a pending client's are a page
# --------------------------------------------------------------------------------------------

GOOD_CHALLENGE = Pkce.new().challenge

REDIRECTED_ERRORS = [
    # RFC 6749 §4.1.1 / §4.1.2.1: the response type
    ("response_type token", {"response_type": "token"}, [], "unsupported_response_type"),
    ("response_type code id_token", {"response_type": "code id_token"}, [],
     "unsupported_response_type"),
    ("response_type missing", {"response_type": None}, [], "invalid_request"),
    # RFC 7636 §4.4.1 and OAuth 2.1: PKCE is required, S256 only
    ("code_challenge missing", {"code_challenge": None}, [], "invalid_request"),
    ("code_challenge missing (method sent)", {"code_challenge": None,
                                              "code_challenge_method": "S256"}, [],
     "invalid_request"),
    ("code_challenge_method plain", {"code_challenge_method": "plain"}, [], "invalid_request"),
    ("code_challenge_method missing", {"code_challenge_method": None}, [], "invalid_request"),
    ("code_challenge_method s256 (lowercase)", {"code_challenge_method": "s256"}, [],
     "invalid_request"),
    ("code_challenge 42 chars", {"code_challenge": GOOD_CHALLENGE[:42]}, [], "invalid_request"),
    ("code_challenge 44 chars", {"code_challenge": GOOD_CHALLENGE + "A"}, [], "invalid_request"),
    ("code_challenge padded", {"code_challenge": GOOD_CHALLENGE[:42] + "="}, [],
     "invalid_request"),
    ("code_challenge with +", {"code_challenge": "+" + GOOD_CHALLENGE[1:]}, [],
     "invalid_request"),
    ("code_challenge with /", {"code_challenge": "/" + GOOD_CHALLENGE[1:]}, [],
     "invalid_request"),
    ("code_challenge a verifier-length 128 chars", {"code_challenge": "A" * 128}, [],
     "invalid_request"),
    # RFC 6749 §3.3: scopes must be registered
    ("scope unregistered", {"scope": "admin"}, [], "invalid_scope"),
    ("scope partly unregistered", {"scope": "user_default openid"}, [], "invalid_scope"),
    # RFC 6749 §3.1: no parameter twice
    ("scope repeated", {"scope": "user_default"}, [("scope", "user_default")],
     "invalid_request"),
    ("response_type repeated", {}, [("response_type", "code")], "invalid_request"),
    ("code_challenge repeated", {}, [("code_challenge", GOOD_CHALLENGE)], "invalid_request"),
    ("code_challenge_method repeated", {}, [("code_challenge_method", "S256")],
     "invalid_request"),
    # Oversized values (over 2048 characters)
    ("scope overlong", {"scope": "user_default " * 200}, [], "invalid_request"),
    ("code_challenge overlong", {"code_challenge": "A" * 2049}, [], "invalid_request"),
    ("response_type overlong", {"response_type": "c" * 2049}, [], "invalid_request"),
]


@pytest.mark.parametrize("overrides, extra, error",
                         [case[1:] for case in REDIRECTED_ERRORS],
                         ids=[case[0] for case in REDIRECTED_ERRORS])
def test_request_errors_are_redirected_with_state_and_iss(server, approved, overrides, extra,
                                                          error):
    state = "st-" + secrets.token_urlsafe(8)
    resp = Browser(server).get(authorize_url(server, approved, extra=extra, state=state,
                                             **overrides))
    assert resp.status == 302, resp
    assert resp.set_cookie("gh_session") is None
    assert_error_redirect(resp, server, REDIRECT_URI, error, state)


@pytest.mark.parametrize("overrides, extra, error",
                         [case[1:] for case in REDIRECTED_ERRORS],
                         ids=[case[0] for case in REDIRECTED_ERRORS])
def test_request_errors_of_a_pending_client_are_a_page_naming_the_error(server, overrides,
                                                                        extra, error):
    """Before an administrator approves the client, its redirect URI is only what its
    registrant claimed (anyone may register one): the same errors are shown here, never sent
    there."""
    client = register(server)
    resp = Browser(server).get(authorize_url(server, client, extra=extra, state="pending",
                                             **overrides))
    assert_page(resp, 400, "Invalid authorization request", error)
    assert resp.set_cookie("gh_session") is None


@pytest.mark.parametrize(
    "resource",
    [
        "https://evil.example/mcp",
        "{base}/t/demo",
        "{base}/t/demo/mcp/",
        "{base}/t/other/mcp",
        "{base}/t/demo/mcp?x=1",
        "not a uri",
    ],
)
def test_resource_other_than_the_tenant_mcp_endpoint_is_invalid_target(server, approved,
                                                                     resource):
    """RFC 8707 §2: a resource this server does not issue tokens for."""
    resp = Browser(server).authorize(approved, resource=resource.format(base=server.base),
                                     state="rs")
    assert_error_redirect(resp, server, REDIRECT_URI, "invalid_target", "rs")


def test_two_resources_are_invalid_target(server, approved):
    """RFC 8707 §2 allows several resource parameters; this server serves one resource, so a
    request for two is refused as invalid_target rather than narrowed silently."""
    mcp = f"{server.base}/t/demo/mcp"
    url = authorize_url(server, approved, state="rr", resource=mcp,
                        extra=[("resource", "https://evil.example/mcp")])
    assert_error_redirect(Browser(server).get(url), server, REDIRECT_URI, "invalid_target", "rr")


def test_repeated_state_is_invalid_request(server, approved):
    url = authorize_url(server, approved, state="one", extra=[("state", "two")])
    params = assert_error_redirect(Browser(server).get(url), server, REDIRECT_URI,
                                   "invalid_request")
    assert params.get("state") in (None, "one", "two"), params


def test_overlong_state_is_invalid_request(server, approved):
    resp = Browser(server).authorize(approved, state="s" * 2049)
    assert_error_redirect(resp, server, REDIRECT_URI, "invalid_request")


def test_values_of_2048_characters_and_a_query_of_8_kib_are_accepted(server, admin):
    """The limits are inclusive: a 2048-character state is kept and returned intact, and a
    query of exactly 8192 bytes is read."""
    client = register(server)
    state = "s" * 2048
    page = approval_page(server, admin, client, state=state)
    assert_code_redirect(admin.submit(page.form(), "approve"), server, REDIRECT_URI, state,
                         statuses=(303,))
    url = authorize_url(server, client, extra=[("padding", "")])
    query = urllib.parse.urlsplit(url).query
    url += "p" * (8192 - len(query))
    assert len(urllib.parse.urlsplit(url).query) == 8192
    assert Browser(server).get(url).status == 200


def test_state_is_echoed_exactly_including_reserved_characters(server, approved):
    """RFC 6749 §4.1.2.1: `state` is returned exactly as the client sent it."""
    state = "a b+c&d=e/f?g#h%25é☃\r\nSet-Cookie: x=1"
    resp = Browser(server).authorize(approved, response_type="token", state=state)
    assert_error_redirect(resp, server, REDIRECT_URI, "unsupported_response_type", state)


def test_error_without_state_carries_no_state(server, approved):
    resp = Browser(server).authorize(approved, response_type="token", state=None)
    params = assert_error_redirect(resp, server, REDIRECT_URI, "unsupported_response_type")
    assert "state" not in params, params


def test_iss_is_the_issuer_of_the_metadata_document(server, approved):
    """RFC 9207 §2.4: `iss` must be identical to the `issuer` of the server's metadata."""
    status, _, body = request(
        "GET", f"{server.base}/.well-known/oauth-authorization-server/t/demo")
    assert status == 200, body
    issuer = json.loads(body)["issuer"]
    resp = Browser(server).authorize(approved, response_type="token")
    assert query_of(resp.location)["iss"] == issuer, resp.location


class _ThroughTheHttpsProxy(http.cookiejar.DefaultCookiePolicy):
    """The cookies of a browser that reaches the server through its https public URL: Secure
    cookies go back (the tests talk plain http to the server behind the proxy)."""

    def return_ok_secure(self, cookie, request):
        return True


def test_configured_public_url_drives_iss_form_actions_resource_and_secure_cookies(
        start_server):
    """Behind a proxy (GATEHOUSE_PUBLIC_URL): the issuer is the public one everywhere, and
    the cookies of an https site are Secure."""
    public = "https://auth.example.com"
    srv = start_server({"GATEHOUSE_PUBLIC_URL": public})
    client = register(srv)
    browser = Browser(srv)
    page = assert_page(browser.authorize(client), 200, "Sign in")
    assert page.form().action == f"{public}/t/demo/oauth/authorize"
    set_cookie = page.set_cookie("gh_browser")
    assert set_cookie and "secure" in cookie_attributes(set_cookie), page.set_cookies
    assert "strict-transport-security" in page.headers, page.headers
    # The administrator approves the client through the proxy (forms posted behind it).
    admin = Browser(srv)
    admin.jar.set_policy(_ThroughTheHttpsProxy())

    def behind_the_proxy(form: Form) -> Form:
        assert form.action.startswith(f"{public}/t/demo/"), form.action
        return dataclasses.replace(form, action=srv.base + form.action[len(public):])

    sign_in = assert_page(admin.authorize(client), 200, "Sign in")
    approval = admin.submit(behind_the_proxy(sign_in.form()), email=ADMIN_EMAIL,
                            password=DEMO_ADMIN_PASSWORD)
    assert_page(approval, 200, "New, unverified application")
    assert approval.form().action == f"{public}/t/demo/admin/approve"
    set_cookie = approval.set_cookie("gh_session")
    assert set_cookie and "secure" in cookie_attributes(set_cookie), approval.set_cookies
    done = admin.submit(behind_the_proxy(approval.form()), "approve")
    assert done.status == 303 and query_of(done.location).get("code"), done
    assert query_of(done.location)["iss"] == f"{public}/t/demo", done.location
    # Approved: request errors go back to the client, with the public issuer.
    err = browser.authorize(client, response_type="token")
    assert query_of(err.location)["iss"] == f"{public}/t/demo", err.location
    local_mcp = f"{srv.base}/t/demo/mcp"
    wrong = browser.authorize(client, resource=local_mcp, state="r")
    assert query_of(wrong.location).get("error") == "invalid_target", wrong.location
    assert_page(browser.authorize(client, resource=f"{public}/t/demo/mcp"), 200, "Sign in")


# --------------------------------------------------------------------------------------------
# RFC 6749 §4.1.1: a valid request, not signed in: the hosted sign-in form
# --------------------------------------------------------------------------------------------


def test_valid_request_without_a_session_shows_the_sign_in_form(server):
    client = register(server, client_name="Sign-in page client")
    browser = Browser(server)
    resp = assert_page(browser.authorize(client), 200, "Sign in", "Sign-in page client")
    form = resp.form()
    assert form.method == "post"
    assert form.action == f"{server.issuer}/oauth/authorize"
    hidden = {i["name"]: i.get("value", "") for i in form.inputs if i.get("type") == "hidden"}
    assert set(hidden) == {"request_id", "client_id", "csrf_token", "action"}, form.inputs
    assert hidden["action"] == "sign_in"
    assert hidden["client_id"] == client["client_id"]
    assert len(hidden["request_id"]) >= 32 and len(hidden["csrf_token"]) >= 32, hidden
    assert hidden["request_id"] != hidden["csrf_token"]
    types = {i["name"]: i.get("type") for i in form.inputs}
    assert types.get("email") == "email" and types.get("password") == "password", form.inputs
    assert [b["label"] for b in form.buttons] == ["Sign in"], form.buttons
    # The browser binding cookie (RFC 6749 §10.12).
    set_cookie = resp.set_cookie("gh_browser")
    assert set_cookie, resp.set_cookies
    attrs = cookie_attributes(set_cookie)
    assert "httponly" in attrs, set_cookie
    assert attrs.get("samesite", "").lower() == "lax", set_cookie
    assert attrs.get("path") == "/t/demo", set_cookie
    # A second request from the same browser keeps its cookie and gets a fresh request.
    again = assert_page(browser.authorize(client), 200, "Sign in")
    assert again.set_cookie("gh_browser") is None, again.set_cookies
    assert again.form().fields["request_id"] != hidden["request_id"]


@pytest.mark.parametrize("resource", [None, "{base}/t/demo/mcp"])
def test_resource_absent_or_equal_to_the_mcp_endpoint_is_accepted(server, resource):
    """RFC 8707 §2: the tenant's MCP endpoint is the one resource served."""
    client = register(server)
    value = resource.format(base=server.base) if resource else None
    assert_page(Browser(server).authorize(client, resource=value), 200, "Sign in")


def test_unrecognised_parameters_are_ignored(server):
    """RFC 6749 §3.1: the server must ignore unrecognised request parameters."""
    client = register(server)
    url = authorize_url(server, client, extra=[("prompt", "consent"), ("foo", "bar")])
    assert_page(Browser(server).get(url), 200, "Sign in")


def test_offline_access_for_a_client_without_it_is_dropped_not_refused(server, admin):
    client = register(server, token_endpoint_auth_method="none")
    assert "offline_access" not in client["scope"].split(), client
    assert_page(Browser(server).authorize(client, scope="mcp:execute offline_access"), 200,
                "Sign in")
    page = approval_page(server, admin, client, scope="mcp:execute offline_access")
    assert "mcp:execute" in page.text and "offline_access" not in page.text, page.text


def test_made_up_session_cookie_is_treated_as_signed_out(server):
    """A session that this tenant never issued (as from another tenant) signs nobody in."""
    client = register(server)
    browser = Browser(server)
    browser.set_cookie("gh_session", secrets.token_urlsafe(32))
    assert_page(browser.authorize(client), 200, "Sign in")


# --------------------------------------------------------------------------------------------
# Signing in
# --------------------------------------------------------------------------------------------


def test_wrong_password_and_unknown_email_get_the_same_answer(server):
    client = register(server)
    browser = Browser(server)
    page = assert_page(browser.authorize(client), 200, "Sign in")
    wrong = browser.sign_in(page, USER_EMAIL, "not-the-password")
    assert_page(wrong, 401, "Incorrect email or password.")
    assert wrong.set_cookie("gh_session") is None
    unknown = browser.sign_in(page, "nobody@demo.test", DEMO_USER_PASSWORD)
    assert_page(unknown, 401, "Incorrect email or password.")
    assert unknown.set_cookie("gh_session") is None
    assert browser.cookie("gh_session") is None
    # The page offers the same form again, for the same request.
    assert wrong.form().fields["request_id"] == page.form().fields["request_id"]


def test_sign_in_form_is_bound_to_its_request_and_browser(server):
    """RFC 6749 §10.12 (login CSRF): a sign-in form posted with a forged token, or from a
    browser other than the one that started the request, signs nobody in."""
    client = register(server)
    victim = Browser(server)
    page = victim.authorize(client)
    fields = dict(page.form().fields, email=USER_EMAIL, password=DEMO_USER_PASSWORD)
    url = f"{server.issuer}/oauth/authorize"
    forged = victim.post(url, dict(fields, csrf_token=secrets.token_urlsafe(32)))
    assert_page(forged, 403)
    attacker = Browser(server)
    attacker.authorize(client)
    for resp in (attacker.post(url, fields), Browser(server).post(url, fields)):
        assert_page(resp, 403)
        assert resp.set_cookie("gh_session") is None, resp.set_cookies
    assert victim.cookie("gh_session") is None and attacker.cookie("gh_session") is None


def test_hostile_email_is_escaped_when_the_form_is_shown_again(server):
    client = register(server)
    browser = Browser(server)
    page = browser.authorize(client)
    hostile = '"><script>alert(1)</script>'
    resp = assert_page(browser.sign_in(page, hostile, "x"), 401, "Incorrect email or password.")
    assert "<script>alert(1)" not in resp.body, resp.body
    assert resp.form().fields.get("email") == hostile


def test_admin_sign_in_shows_the_approval_page_for_a_new_client(server):
    """A pending (self-registered) client is approved by an administrator on its first
    authorization: the administrator signs in and sees who is asking, and for what."""
    client = register(server, client_name="Approval page client",
                      client_uri="https://agent.example.com", scope="user_default mcp:execute")
    browser = Browser(server)
    state = "adm-" + secrets.token_hex(4)
    page = browser.authorize(client, state=state)
    request_id = page.form().fields["request_id"]
    resp = browser.sign_in(page, ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
    assert_page(resp, 200, "New, unverified application", "Approval page client",
                REDIRECT_URI, "user_default", "mcp:execute", "admin@demo.test")
    set_cookie = resp.set_cookie("gh_session")
    assert set_cookie, resp.set_cookies
    attrs = cookie_attributes(set_cookie)
    assert "httponly" in attrs and attrs.get("samesite", "").lower() == "lax", set_cookie
    assert attrs.get("path") == "/t/demo", set_cookie
    form = resp.form()
    assert form.method == "post"
    assert form.action == f"{server.issuer}/admin/approve"
    assert form.fields.get("action") == "decide"
    assert form.fields.get("request_id") == request_id
    assert form.fields.get("csrf_token") == page.form().fields["csrf_token"]
    assert {(b["name"], b["value"], b["label"]) for b in form.buttons} == {
        ("decision", "approve", "Approve"), ("decision", "deny", "Deny")}, form.buttons
    code = assert_code_redirect(browser.submit(form, "approve"), server, REDIRECT_URI, state,
                                statuses=(303,))
    assert code not in (request_id, form.fields["csrf_token"])


# --------------------------------------------------------------------------------------------
# A pending client: administrator approval (RFC 6749 §4.1.2, §4.1.2.1)
# --------------------------------------------------------------------------------------------


def test_administrator_approval_issues_a_code(server, admin):
    client = register(server)
    state = "ok-" + secrets.token_hex(4)
    page = approval_page(server, admin, client, state=state)
    resp = admin.submit(page.form(), "approve")
    code = assert_code_redirect(resp, server, REDIRECT_URI, state, statuses=(303,))
    # Approved: the next authorization needs no approval and, with the administrator's own
    # consent recorded, no consent page either (straight back to the client with a code).
    again = admin.authorize(client, state="second")
    second = assert_code_redirect(again, server, REDIRECT_URI, "second", statuses=(302,))
    assert second != code


def test_second_open_approval_page_for_an_approved_client_still_completes(server, admin):
    """Two tabs (or two administrators) on the same new client: the first approval approves
    it, the second carries on as consent."""
    client = register(server)
    first = approval_page(server, admin, client, state="t1").form()
    second = approval_page(server, admin, client, state="t2").form()
    third = approval_page(server, admin, client, state="t3").form()
    assert_code_redirect(admin.submit(first, "approve"), server, REDIRECT_URI, "t1",
                         statuses=(303,))
    assert_code_redirect(admin.submit(second, "approve"), server, REDIRECT_URI, "t2",
                         statuses=(303,))
    denied = admin.submit(third, "deny")
    assert_error_redirect(denied, server, REDIRECT_URI, "access_denied", "t3")
    # Denying in the third tab did not undo the approval.
    assert_code_redirect(admin.authorize(client, state="t4"), server, REDIRECT_URI, "t4",
                         statuses=(302,))


def test_administrator_denial_of_a_new_client_is_a_page(server, admin):
    """Deny ends the request on a page here: an unapproved client's redirect URI is not a
    place to send anyone, not even with access_denied."""
    client = register(server)
    page = approval_page(server, admin, client, state="no")
    resp = admin.submit(page.form(), "deny")
    assert_page(resp, 200, "Application not approved")
    # Denied is not approved: the client still needs approval.
    approval_page(server, admin, client)


def test_non_admin_sign_in_for_a_pending_client_is_refused(server, admin):
    client = register(server, client_name="Needs approval")
    browser = Browser(server)
    page = browser.authorize(client, state="u")
    resp = browser.sign_in(page, USER_EMAIL, DEMO_USER_PASSWORD)
    assert_page(resp, 403, "Administrator approval required")
    assert browser.cookie("gh_session"), "the sign-in itself succeeded"
    # Posting a decision for that request, on either route, approves nothing.
    forged = dict(page.form().fields, action="decide", decision="approve")
    assert_page(browser.post(f"{server.issuer}/admin/approve", forged), 403,
                "Administrator approval required")
    assert_page(browser.post(f"{server.issuer}/oauth/authorize", forged), 403,
                "Administrator approval required")
    # Signed in, a new request is refused straight away, and the client is still pending.
    assert_page(browser.authorize(client), 403, "Administrator approval required")
    approval_page(server, admin, client)


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_replayed_form_after_completion_is_an_expired_page(server, admin, decision):
    """The authorization request ends exactly once: the same form again is not a second code
    (or a second error) for the client, but a page telling the user to start again."""
    client = register(server)
    form = approval_page(server, admin, client).form()
    first = admin.submit(form, decision)
    if decision == "approve":
        assert first.status == 303, first
    else:
        assert_page(first, 200, "Application not approved")  # pending: no redirect
    for _ in range(2):
        assert_page(admin.submit(form, decision), 400, "expired", "start")
    # Nor through the consent route.
    replay = admin.post(f"{server.issuer}/oauth/authorize",
                        dict(form.fields, decision=decision))
    assert_page(replay, 400, "expired")


def test_unknown_or_missing_request_id_is_an_expired_page(server, admin):
    client = register(server)
    form = approval_page(server, admin, client).form()
    assert_page(admin.submit(form, "approve", request_id=secrets.token_urlsafe(32)), 400,
                "expired")
    assert_page(admin.submit(form, "approve", request_id=None), 400)
    # The consent route dispatches on `action`; neither route decides without a decision.
    bogus = dict(form.fields, action="bogus", decision="approve")
    assert_page(admin.post(f"{server.issuer}/oauth/authorize", bogus), 400)
    assert_page(admin.submit(form, None), 400)
    assert_page(admin.submit(form, None, decision="maybe"), 400)
    # The genuine request is untouched.
    assert admin.submit(form, "approve").status == 303


def test_forged_forms_are_refused_and_leave_the_request_usable(server, admin):
    """RFC 6749 §10.12: the form carries a token bound to the request, and the request is
    bound to the browser that started it (gh_browser cookie)."""
    client = register(server)
    state = "csrf-" + secrets.token_hex(4)
    form = approval_page(server, admin, client, state=state).form()
    approve = f"{server.issuer}/admin/approve"
    # A forged or missing CSRF token, from the right browser with the admin's session.
    assert_page(admin.submit(form, "approve", csrf_token=secrets.token_urlsafe(32)), 403)
    assert_page(admin.submit(form, "approve", csrf_token=None), 403)
    assert_page(admin.submit(form, "approve", csrf_token=""), 403)
    # The right fields from a browser with no cookies at all.
    fields = dict(form.fields, decision="approve")
    assert_page(Browser(server).post(approve, fields), 403)
    # The right fields from another browser (its own gh_browser cookie).
    other = Browser(server)
    other.authorize(register(server))
    assert other.cookie("gh_browser")
    assert_page(other.post(approve, fields), 403)
    # The admin's session cookie without the browser cookie that started the request.
    stolen = Browser(server)
    stolen.set_cookie("gh_session", admin.cookie("gh_session"))
    assert_page(stolen.post(approve, fields), 403)
    # None of it consumed or approved the request.
    assert_code_redirect(admin.submit(form, "approve"), server, REDIRECT_URI, state,
                         statuses=(303,))


def test_repeated_form_field_is_refused(server, admin):
    client = register(server)
    form = approval_page(server, admin, client, state="dup").form()
    body = urllib.parse.urlencode(list(form.fields.items())
                                  + [("decision", "deny"), ("decision", "approve")])
    assert_page(admin.post(form.action, body), 400)
    assert_page(admin.post(form.action, urllib.parse.urlencode(
        list(form.fields.items()) + [("csrf_token", form.fields["csrf_token"]),
                                     ("decision", "approve")])), 400)
    # Still pending and still usable (a consumed request would be an "expired" page).
    assert_page(admin.submit(form, "deny"), 200, "Application not approved")


@pytest.mark.parametrize(
    "content_type, encode",
    [
        ("application/json", "json"),
        ("text/plain", "form"),
        ("multipart/form-data; boundary=x", "form"),
        ("application/x-www-form-urlencodedx", "form"),
    ],
)
def test_forms_in_other_content_types_are_415(server, admin, content_type, encode):
    client = register(server)
    form = approval_page(server, admin, client).form()
    fields = dict(form.fields, decision="approve")
    body = json.dumps(fields) if encode == "json" else urllib.parse.urlencode(fields)
    for url in (f"{server.issuer}/admin/approve", f"{server.issuer}/oauth/authorize"):
        assert_page(admin.post(url, body, content_type=content_type), 415)
    # And with no Content-Type at all.
    cookies = "; ".join(f"{c.name}={c.value}" for c in admin.jar)
    resp = request_without_content_type(
        "POST", f"{server.issuer}/admin/approve", urllib.parse.urlencode(fields).encode(),
        {"Cookie": cookies})
    assert resp[0] == 415, resp
    assert "location" not in resp[1], resp[1]
    # The request was not consumed.
    assert admin.submit(form, "approve").status == 303


def test_form_content_type_with_charset_is_accepted(server, admin):
    client = register(server)
    form = approval_page(server, admin, client, state="cs").form()
    resp = admin.post(form.action, dict(form.fields, decision="approve"),
                      content_type="application/x-www-form-urlencoded; charset=UTF-8")
    assert_code_redirect(resp, server, REDIRECT_URI, "cs", statuses=(303,))


# --------------------------------------------------------------------------------------------
# An approved client: the user's consent, remembered (RFC 6749 §4.1.1-§4.1.2)
# --------------------------------------------------------------------------------------------


def test_user_consents_to_an_approved_client_once(server, admin):
    client = approve_new_client(server, admin, client_name="Approved client")
    browser = Browser(server)  # a fresh cookie jar: another person's browser
    page = assert_page(browser.authorize(client, state="s1", scope="mcp:execute"), 200,
                       "Sign in")
    consent = browser.sign_in(page, USER_EMAIL, DEMO_USER_PASSWORD)
    assert_page(consent, 200, "Approved client", "mcp:execute", "user@demo.test")
    assert "new, unverified application" not in consent.text.lower(), consent.text
    form = consent.form()
    assert form.action == f"{server.issuer}/oauth/authorize"
    assert form.fields.get("action") == "decide"
    assert {b["value"] for b in form.buttons if b["name"] == "decision"} == {"approve", "deny"}
    assert_code_redirect(browser.submit(form, "approve"), server, REDIRECT_URI, "s1",
                         statuses=(303,))
    assert_page(browser.submit(form, "approve"), 400, "expired")  # the form, replayed
    # Consent remembered: straight back with a code, no page.
    assert_code_redirect(browser.authorize(client, state="s2", scope="mcp:execute"), server,
                         REDIRECT_URI, "s2", statuses=(302,))
    # A narrower request is covered by the consent given...
    assert_code_redirect(browser.authorize(client, state="s3", scope="mcp:execute"), server,
                         REDIRECT_URI, "s3", statuses=(302,))
    # ...a broader one is asked again.
    wider = browser.authorize(client, state="s4", scope="user_default mcp:execute")
    assert_page(wider, 200, "user_default", "mcp:execute")
    assert wider.form().action == f"{server.issuer}/oauth/authorize"
    # Consent is the user's, not the browser's: signing in elsewhere goes straight back with
    # a code (RFC 9700 §4.12: never 307 after a form carrying the password).
    elsewhere = Browser(server)
    page = assert_page(elsewhere.authorize(client, state="s5", scope="mcp:execute"), 200,
                       "Sign in")
    resp = elsewhere.sign_in(page, USER_EMAIL, DEMO_USER_PASSWORD)
    assert resp.set_cookie("gh_session"), resp.set_cookies
    assert_code_redirect(resp, server, REDIRECT_URI, "s5", statuses=(302, 303))


def test_user_denies_consent_to_an_approved_client(server, admin, user):
    client = approve_new_client(server, admin)
    page = assert_page(user.authorize(client, state="nope"), 200, "Approve", "Deny")
    resp = user.submit(page.form(), "deny")
    assert resp.status == 303, resp
    assert_error_redirect(resp, server, REDIRECT_URI, "access_denied", "nope")
    # Denial is not remembered as consent.
    assert_page(user.authorize(client), 200, "Approve")


def test_user_cannot_use_the_admin_route_to_consent(server, admin, user):
    """The approve route is the administrator's, also for an already approved client."""
    client = approve_new_client(server, admin)
    form = assert_page(user.authorize(client), 200, "Approve").form()
    resp = user.post(f"{server.issuer}/admin/approve", dict(form.fields, decision="approve"))
    assert_page(resp, 403)
    assert user.submit(form, "approve").status == 303


# --------------------------------------------------------------------------------------------
# The pages themselves: client-supplied text is escaped
# --------------------------------------------------------------------------------------------


def test_hostile_client_name_is_escaped_on_every_page(server, admin, user):
    client = register(server, client_name=HOSTILE_NAME)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    pages = {
        "sign-in": assert_page(Browser(server).authorize(client), 200),
        "approval": approval_page(server, admin, client),
        "approval required": assert_page(user.authorize(client), 403),
    }
    for name, page in pages.items():
        assert "<script>" not in page.body.lower(), f"unescaped client name on the {name} page"
        assert HOSTILE_NAME in page.text, f"client name missing from the {name} page"
        assert escaped in page.body or "&#60;script&#62;" in page.body or "&#x3c;" in page.body


def test_hostile_redirect_uri_and_client_uri_are_escaped(server, admin):
    uri = 'https://agent.example.com/cb?q=<b>x</b>"y&r=1'
    client = register(server, redirect_uris=[uri],
                      client_uri='https://agent.example.com/<script>"x')
    page = approval_page(server, admin, client, state="h")
    assert "<b>x</b>" not in page.body and "<script>" not in page.body.lower(), page.body
    # URLs are shown as parsed (hosts in ASCII), so what HTML would read is percent-encoded;
    # the rest is escaped text.
    assert "https://agent.example.com/cb?q=%3Cb%3Ex%3C/b%3E%22y&r=1" in page.text, page.text
    assert "https://agent.example.com/%3Cscript%3E%22x" in page.text, page.text
    assert "%22y&r=1" not in page.body, "an & reached the page unescaped"
    # The code still goes to the registered URI, its query intact.
    assert_code_redirect(admin.submit(page.form(), "approve"), server, uri, "h",
                         statuses=(303,))


def test_javascript_logo_uri_is_refused_at_registration(server):
    doc = {"client_name": "Logo", "redirect_uris": [REDIRECT_URI],
           "logo_uri": "javascript:alert(1)"}
    status, _, body = request("POST", server.register_url, doc)
    assert status == 400, body


def test_logo_is_shown_as_an_address_and_never_loaded(server, admin, user):
    """The approval page names the logo's address as text and loads nothing from it (a remote
    picture tells its host who looks, and can change after approval); the pages' CSP allows no
    images at all. An approved client's consent page does not show it."""
    client = register(server, logo_uri='https://agent.example.com/logo.png?a=1&b="2"')
    page = approval_page(server, admin, client, state="logo")
    assert "<img" not in page.body.lower(), page.body
    assert "https://agent.example.com/logo.png?a=1&b=%222%22" in page.text, page.text
    assert 'b="2"' not in page.body
    csp = page.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp and "img-src" not in csp, csp
    assert_code_redirect(admin.submit(page.form(), "approve"), server, REDIRECT_URI, "logo",
                         statuses=(303,))
    consent = assert_page(user.authorize(client), 200, "Approve")
    assert "<img" not in consent.body.lower() and "logo.png" not in consent.body, consent.body


# --------------------------------------------------------------------------------------------
# Pending-client expiry (a server with a 3-second pending lifetime)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["embedded", "dynamodb"])
def test_expired_pending_client_can_neither_start_nor_finish_an_authorization(
        start_server, mode):
    ttl = 3
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_TTL": str(ttl),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    browser = Browser(srv)
    # The administrator signs in (argon2: slow in debug builds) before the clock starts, through
    # a client of its own; the session then serves the authorizations below.
    warm_up = register(srv)
    assert_page(browser.sign_in(browser.authorize(warm_up), ADMIN_EMAIL, DEMO_ADMIN_PASSWORD),
                200, "New, unverified application")
    # The clock starts. The server keeps whole seconds: a client registered at t expires at
    # floor(t) + ttl, so it is surely pending until t + ttl - 1 and surely gone from t + ttl on.
    started = time.monotonic()
    unused = register(srv)
    client = register(srv)
    registered = time.monotonic()
    approval = browser.authorize(client, state="late")
    form = assert_page(approval, 200, "New, unverified application").form()
    # Just before: both clients are known, to a new visitor and to the administrator.
    assert_page(Browser(srv).authorize(unused), 200, "Sign in")
    assert_page(browser.authorize(unused), 200, "New, unverified application")
    elapsed = time.monotonic() - started
    assert elapsed < ttl - 1, (
        f"the checks while pending took {elapsed:.2f} s, past the {ttl - 1} s the clients are "
        "surely pending: the machine is too slow for this test")
    time.sleep(max(0.0, registered + ttl + 0.5 - time.monotonic()))
    # After: a new authorization with the expired client: unknown, and never a redirect.
    assert_page(Browser(srv).authorize(unused), 400, "Unknown application")
    assert_page(browser.authorize(unused), 400, "Unknown application")
    # Approving it now is too late.
    late = browser.submit(form, "approve")
    assert late.status == 410, late
    assert_page(late, 410)
    assert "no longer" in late.text.lower(), late.text
    assert_page(browser.authorize(client), 400, "Unknown application")


# --------------------------------------------------------------------------------------------
# Sign-in rate limits (a server of their own)
# --------------------------------------------------------------------------------------------


def test_eleventh_sign_in_attempt_for_one_account_in_a_minute_is_429(start_server):
    srv = start_server()
    client = register(srv)
    browser = Browser(srv)
    page = browser.authorize(client)
    # Ten attempts, spelt differently: the account is the same.
    spellings = [USER_EMAIL, USER_EMAIL.upper(), f"  {USER_EMAIL} ", "User@Demo.Test"]
    for i in range(10):
        resp = browser.sign_in(page, spellings[i % len(spellings)], f"wrong-{i}")
        assert_page(resp, 401, "Incorrect email or password.")
    limited = browser.sign_in(page, USER_EMAIL, "wrong-10")
    assert_page(limited, 429, "Too many sign-in attempts")
    # The right password does not get through the limit either.
    limited = browser.sign_in(page, USER_EMAIL, DEMO_USER_PASSWORD)
    assert_page(limited, 429, "Too many sign-in attempts")
    assert browser.cookie("gh_session") is None
    # Another account is not locked out (from another machine).
    other = Browser(srv)
    other_page = other.authorize(client)
    assert_page(other.sign_in(other_page, ADMIN_EMAIL, DEMO_ADMIN_PASSWORD), 200,
                "New, unverified application")


@pytest.mark.skipif(not LOOPBACK_ALIASES, reason="needs 127.0.0.0/8 source addresses")
def test_twenty_first_sign_in_attempt_from_one_address_in_a_minute_is_429(start_server):
    srv = start_server()
    browser = Browser(srv)
    page = browser.authorize(register(srv))
    for i in range(20):
        resp = browser.sign_in(page, f"nobody{i}@demo.test", "wrong")
        assert_page(resp, 401, "Incorrect email or password.")
    assert_page(browser.sign_in(page, ADMIN_EMAIL, DEMO_ADMIN_PASSWORD), 429,
                "Too many sign-in attempts")


def test_a_form_naming_another_client_is_refused(server):
    """The form names its client (so one read fetches request, client and session); a form
    whose client_id is not the parked request's is a forged form and consumes nothing."""
    client = register(server, client_name="Form client")
    other = register(server, client_name="Other client")
    browser = Browser(server)
    resp = assert_page(browser.authorize(client), 200, "Sign in")
    fields = {i["name"]: i.get("value", "") for i in resp.form().inputs if i.get("name")}
    forged = {**fields, "client_id": other["client_id"], "email": ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
    refused = browser.post(f"{server.issuer}/oauth/authorize", forged)
    assert refused.status == 403 and refused.location is None
    good = {**fields, "email": ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
    accepted = browser.post(f"{server.issuer}/oauth/authorize", good)
    assert accepted.status == 200 and "New, unverified application" in accepted.body
