"""Shared helpers for the administration black-box tests (`test_admin_api.py`,
`test_client_configuration.py`), written from docs/admin-api.md.

- `console_sign_in`: the console sign-in page (`GET|POST {issuer}/admin/signin`), like a browser.
- `open_session`: a console sign-in plus `GET {issuer}/api/v1/session` (the CSRF token).
- `Admin`: an administrator with a console session and an admin API bearer token.
- `register`, `approve_as_admin`, `consent_code`, `authorize`: RFC 7591 registration and the hosted
  authorization flow (approval page for pending clients, consent page for approved ones).
- `assert_api_error`, `assert_no_secrets`: the shape of admin API answers.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from dataclasses import dataclass

from conftest import DEMO_ADMIN_PASSWORD, Pkce, json_body, request
from test_authorization import Browser, Form, Resp
from test_tokens import Code

ADMIN_EMAIL = "admin@demo.test"
USER_EMAIL = "user@demo.test"
REDIRECT_URI = "https://agent.example.com/cb"
REFRESHING = ["authorization_code", "refresh_token"]
ALL_SCOPES = "user_default mcp:execute offline_access"
INVALID_CREDENTIALS_TEXT = "Incorrect email or password."

# docs/admin-api.md "Clients": every field a client representation may carry.
CLIENT_FIELDS = {
    "client_id", "client_name", "createdByType", "status", "consentMethod", "redirect_uris",
    "grant_types", "response_types", "token_endpoint_auth_method", "scope", "application_type",
    "client_uri", "logo_uri", "tos_uri", "policy_uri", "contacts", "software_id",
    "software_version", "created_at", "expires_at", "approved_at", "approved_by",
    "config_version", "vendor_trust",
    # Client ID Metadata Document clients only
    "metadata_document", "pending_changes",
    # Pending clients that users asked an administrator to approve
    "access_requests",
}
CLIENT_REQUIRED_FIELDS = {
    "client_id", "client_name", "createdByType", "status", "consentMethod", "redirect_uris",
    "grant_types", "response_types", "token_endpoint_auth_method", "scope", "application_type",
    "created_at", "config_version",
}
SETTINGS_FIELDS = {
    "display_name", "dcr_enabled", "allowed_auth_methods", "require_client_uri",
    "allowed_scopes", "pending_client_ttl_secs", "pending_client_cap",
    "pending_client_source_share_percent", "default_resource",
    "cimd_enabled", "openid_enabled", "access_token_signing_alg", "audit_retention_days",
}
USER_FIELDS = {"id", "email", "role", "disabled", "created_at"}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def unique_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}@demo.test"


# --------------------------------------------------------------------------------------------
# Admin API calls and their answers
# --------------------------------------------------------------------------------------------


def api_url(server, path: str, tenant: str = "demo") -> str:
    return f"{server.base}/t/{tenant}/api/v1{path}"


def api(server, method: str, path: str, body=None, *, token: str | None = None,
        cookie: str | None = None, csrf: str | None = None, headers: dict | None = None,
        tenant: str = "demo"):
    """One admin API request: `token` as `Authorization: Bearer`, `cookie` as the `gh_session`
    cookie, `csrf` as `X-CSRF-Token`. A dict/list body travels as JSON."""
    h: dict[str, str] = {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        h["Cookie"] = f"gh_session={cookie}"
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    h.update(headers or {})
    return request(method, api_url(server, path, tenant), body, h)


def media_type(headers: dict) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def assert_json(resp, status: int = 200):
    code, headers, raw = resp
    assert code == status, f"expected {status}, got {code}: {raw[:1500]!r}"
    assert media_type(headers) == "application/json", headers
    return json_body(resp)


def assert_no_content(resp) -> None:
    code, _, raw = resp
    assert code == 204, f"expected 204, got {code}: {raw[:1500]!r}"
    assert raw == b"", raw


def assert_api_error(resp, status: int, error: str, *named: str) -> dict:
    """docs/admin-api.md: errors are JSON `{"error", "error_description"}` with
    `Cache-Control: no-store`; `named` strings must appear in the description."""
    code, headers, raw = resp
    assert code == status, f"expected {status} {error}, got {code}: {raw[:1500]!r}"
    assert media_type(headers) == "application/json", headers
    assert "no-store" in headers.get("cache-control", "").lower(), headers
    body = json_body(resp)
    assert isinstance(body, dict), body
    assert body.get("error") == error, body
    description = body.get("error_description")
    assert isinstance(description, str) and description.strip(), body
    for name in named:
        assert name in description, f"{name!r} not named in the error description: {body}"
    return body


def assert_unauthenticated(resp) -> dict:
    """`401 invalid_token` with `WWW-Authenticate: Bearer realm="gatehouse-admin"`."""
    body = assert_api_error(resp, 401, "invalid_token")
    challenge = resp[1].get("www-authenticate", "")
    assert challenge.startswith("Bearer"), resp[1]
    assert 'realm="gatehouse-admin"' in challenge, resp[1]
    return body


def secret_keys(value, path: str = "$") -> list[str]:
    """JSON paths of every key that looks like a secret, a hash or a registration token."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            low = k.lower()
            if "secret" in low or "hash" in low or "password" in low or low == "registration_access_token":
                found.append(f"{path}.{k}")
            found.extend(secret_keys(v, f"{path}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(secret_keys(v, f"{path}[{i}]"))
    return found


def assert_no_secrets(value) -> None:
    leaked = secret_keys(value)
    assert not leaked, f"secret-looking fields in an admin API answer: {leaked}: {value}"


# --------------------------------------------------------------------------------------------
# Pages: the console sign-in and the hosted authorization pages
# --------------------------------------------------------------------------------------------


def forms_with(resp: Resp, *fields: str) -> list[Form]:
    return [f for f in resp.forms if all(name in f.fields for name in fields)]


def page_form(resp: Resp, action: str) -> Form:
    """The one form of the page whose hidden `action` field is `action` (sign_in, decide)."""
    forms = [f for f in resp.forms if f.fields.get("action") == action]
    assert len(forms) == 1, f"expected one {action!r} form, got {len(forms)}: {resp!r}"
    return forms[0]


def console_sign_in_attempt(server, email: str, password: str,
                            browser: Browser | None = None, tenant: str = "demo"
                            ) -> tuple[Browser, Resp]:
    """GET the console sign-in page (form#signin: email, password, hidden csrf bound to the
    gh_browser cookie the page sets) and POST it with the credentials."""
    browser = browser or Browser(server)
    url = f"{server.base}/t/{tenant}/admin/signin"
    page = browser.get(url)
    assert page.status == 200, f"console sign-in page: {page!r}"
    assert media_type(page.headers) == "text/html", page.headers
    forms = forms_with(page, "email", "password", "csrf")
    assert len(forms) == 1, f"expected one sign-in form (email, password, csrf): {page!r}"
    form = forms[0]
    assert form.method == "post", form
    assert form.fields["csrf"], f"empty csrf field: {form}"
    assert browser.cookie("gh_browser"), "the sign-in page must set the gh_browser cookie"
    action = urllib.parse.urljoin(url, form.action) if form.action else url
    fields = dict(form.fields, email=email, password=password)
    return browser, browser.post(action, fields)


def console_sign_in(server, email: str, password: str, tenant: str = "demo") -> Browser:
    """A successful console sign-in: `303` to `{issuer}/admin` with the `gh_session` cookie."""
    browser, resp = console_sign_in_attempt(server, email, password, tenant=tenant)
    assert resp.status == 303, f"console sign-in of {email} did not succeed: {resp!r}"
    issuer = f"{server.base}/t/{tenant}"
    assert urllib.parse.urljoin(f"{issuer}/admin/signin", resp.location or "") == f"{issuer}/admin", (
        resp.location)
    assert resp.set_cookie("gh_session"), resp.set_cookies
    assert browser.cookie("gh_session"), f"{email} got no gh_session cookie"
    return browser


def assert_sign_in_refused(resp: Resp) -> None:
    """Wrong credentials: `401` page with the form again and the generic text."""
    assert resp.status == 401, f"expected the 401 sign-in page, got {resp!r}"
    assert resp.location is None, resp
    assert resp.set_cookie("gh_session") is None, resp.set_cookies
    assert INVALID_CREDENTIALS_TEXT.lower() in resp.text.lower(), resp.text
    assert forms_with(resp, "email", "password", "csrf"), "the form is shown again"


@dataclass
class Session:
    """A signed-in console browser and its CSRF token (from `GET {issuer}/api/v1/session`)."""

    server: object
    browser: Browser
    email: str
    role: str
    csrf: str

    @property
    def cookie(self) -> str:
        value = self.browser.cookie("gh_session")
        assert value, "no gh_session cookie"
        return value

    def call(self, method: str, path: str, body=None, *, csrf: str | bool | None = True,
             headers: dict | None = None):
        """An API request authenticated by the session cookie; `csrf=True` sends the session's
        own CSRF token, a string sends that value, None/False sends no header."""
        token = self.csrf if csrf is True else (csrf if isinstance(csrf, str) else None)
        return api(self.server, method, path, body, cookie=self.cookie, csrf=token,
                   headers=headers)

    def mint(self, **body) -> dict:
        """`POST {issuer}/api/v1/tokens` → `201 {"token", "expires_at"}`."""
        body.setdefault("name", unique("black-box"))
        resp = self.call("POST", "/tokens", body)
        doc = assert_json(resp, 201)
        assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
        assert re.fullmatch(r"gha_demo_[A-Za-z0-9_-]{43,}", doc.get("token", "")), doc
        return doc


def open_session(server, email: str, password: str) -> Session:
    browser = console_sign_in(server, email, password)
    resp = api(server, "GET", "/session", cookie=browser.cookie("gh_session"))
    doc = assert_json(resp)
    assert doc.get("email") == email, doc
    assert re.fullmatch(r"[0-9a-f]{64}", doc.get("csrf_token", "")), doc
    return Session(server, browser, email, doc.get("role"), doc["csrf_token"])


class Admin:
    """An administrator: a console session (its browser also drives approvals) and an admin
    API bearer token."""

    def __init__(self, server, email: str = ADMIN_EMAIL, password: str | None = None):
        self.server = server
        self.session = open_session(server, email, password or DEMO_ADMIN_PASSWORD)
        assert self.session.role == "admin", self.session
        self.token = self.session.mint(name=unique("admin-tests"))["token"]

    @property
    def browser(self) -> Browser:
        return self.session.browser

    def api(self, method: str, path: str, body=None, headers: dict | None = None,
            tenant: str = "demo"):
        return api(self.server, method, path, body, token=self.token, headers=headers,
                   tenant=tenant)

    def client(self, client_id: str) -> dict:
        doc = assert_json(self.api("GET", f"/oauth-clients/{client_id}"))
        assert_no_secrets(doc)
        return doc

    def patch_client(self, client_id: str, body, headers: dict | None = None):
        return self.api("PATCH", f"/oauth-clients/{client_id}", body, headers)

    def create_client(self, **fields) -> dict:
        doc = {"client_name": unique("manual"), "redirect_uris": [REDIRECT_URI]}
        doc.update(fields)
        resp = self.api("POST", "/oauth-clients", doc)
        created = assert_json(resp, 201)
        assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
        return created

    def settings(self) -> dict:
        return assert_json(self.api("GET", "/settings"))

    def patch_settings(self, body):
        return self.api("PATCH", "/settings", body)

    def users(self) -> list[dict]:
        doc = assert_json(self.api("GET", "/users"))
        return doc["data"]

    def user(self, email: str) -> dict | None:
        matches = [u for u in self.users() if u.get("email") == email]
        assert len(matches) <= 1, matches
        return matches[0] if matches else None

    def add_user(self, email: str, password: str, role: str = "user") -> dict:
        return assert_json(self.api("POST", "/users",
                                    {"email": email, "password": password, "role": role}), 201)

    def patch_user(self, email: str, body):
        return self.api("PATCH", f"/users/{urllib.parse.quote(email, safe='@')}", body)


# --------------------------------------------------------------------------------------------
# Registration and the authorization flow
# --------------------------------------------------------------------------------------------


def register(server, **fields) -> dict:
    """RFC 7591 registration at `{issuer}/oauth/register`; the 201 body."""
    doc = {"client_name": unique("admin-bb"), "redirect_uris": [REDIRECT_URI]}
    doc.update(fields)
    resp = request("POST", server.register_url, doc)
    assert resp[0] == 201, f"registration failed: {resp[0]} {resp[2][:800]!r}"
    return json_body(resp)


@dataclass
class Attempt:
    resp: Resp
    pkce: Pkce
    state: str
    redirect_uri: str


def authorize(server, browser: Browser, client: dict, **params) -> Attempt:
    """`GET {issuer}/oauth/authorize` for `client` in `browser` (fresh PKCE and state)."""
    pkce = Pkce.new()
    state = secrets.token_urlsafe(9)
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": client["redirect_uris"][0],
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    query.update({k: v for k, v in params.items() if v is not None})
    url = f"{server.issuer}/oauth/authorize?{urllib.parse.urlencode(query)}"
    return Attempt(browser.get(url), pkce, state, query["redirect_uri"])


def code_of(server, attempt: Attempt, resp: Resp | None = None) -> Code:
    """The code in a redirect back to the client (RFC 6749 §4.1.2, RFC 9207 `iss`)."""
    resp = resp or attempt.resp
    assert resp.status in (302, 303), f"expected a redirect with a code, got {resp!r}"
    location = resp.location or ""
    assert location.startswith(attempt.redirect_uri + "?"), location
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert "error" not in params, params
    assert params.get("code"), params
    assert params.get("state") == attempt.state, params
    assert params.get("iss") == server.issuer, params
    return Code(params["code"], attempt.pkce.verifier, attempt.redirect_uri)


def is_approval_page(resp: Resp) -> bool:
    return "new, unverified application" in resp.text.lower()


def assert_consent_page(resp: Resp) -> Form:
    """An approved client's consent page: 200, a decide form, no approval wording."""
    assert resp.status == 200, f"expected the consent page, got {resp!r}"
    assert not is_approval_page(resp), "an approved client must not show the approval page"
    form = page_form(resp, "decide")
    assert {b["value"] for b in form.buttons if b["name"] == "decision"} >= {"approve", "deny"}
    return form


def approve_as_admin(server, admin_browser: Browser, client: dict, **params) -> Code:
    """A pending client's first authorization by a signed-in administrator: the approval page,
    Approve, and the code it issues."""
    attempt = authorize(server, admin_browser, client, **params)
    assert attempt.resp.status == 200 and is_approval_page(attempt.resp), (
        f"expected the approval page for {client['client_id']}: {attempt.resp!r}")
    done = admin_browser.submit(page_form(attempt.resp, "decide"), "approve")
    return code_of(server, attempt, done)


def consent_code(server, browser: Browser, client: dict, **params) -> Code:
    """A code for an approved client in a signed-in browser, consenting when asked."""
    attempt = authorize(server, browser, client, **params)
    if attempt.resp.status == 200:
        done = browser.submit(assert_consent_page(attempt.resp), "approve")
        return code_of(server, attempt, done)
    return code_of(server, attempt)


def approved_dcr_client(server, admin: Admin, **fields) -> tuple[dict, Code]:
    """A registered client approved by the administrator, and the (unused) approval code."""
    client = register(server, **fields)
    return client, approve_as_admin(server, admin.browser, client)


def mcp(server, token: str):
    headers = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18",
               "Authorization": f"Bearer {token}"}
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "admin-bb", "version": "1"}}}
    return request("POST", f"{server.issuer}/mcp", message, headers)
