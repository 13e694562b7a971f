"""The tenant administration API, black box: `{issuer}/api/v1/...` (docs/admin-api.md).

Sections follow the document:
- Authentication: the console session cookie (with `X-CSRF-Token` on writes) and admin API
  bearer tokens (`gha_{tenant}_{secret}`); `401 invalid_token` with a Bearer challenge, `403` for
  regular users and missing CSRF, `404` for another tenant's token.
- Clients (`/oauth-clients`): filter syntax, pagination, get, PATCH, DELETE, manual creation, and
  the effect of each change on the real flows (consent page, refresh, introspection, MCP).
- Tenant settings (`/settings`): validation and immediate effect on registration.
- Users (`/users`), API tokens (`/tokens`) and the session document (`/session`).

The demo administrator signs in once per module and server (console sign-in page), mints an
admin API token with that session, and approves DCR clients with the same browser session.
Tests that could leave the shared server in a bad state (settings, users) restore what they
change, or run on a server of their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sys
import time
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    ALL_SCOPES,
    CLIENT_FIELDS,
    CLIENT_REQUIRED_FIELDS,
    REDIRECT_URI,
    REFRESHING,
    SETTINGS_FIELDS,
    USER_EMAIL,
    USER_FIELDS,
    Admin,
    api,
    approved_dcr_client,
    assert_api_error,
    assert_consent_page,
    assert_json,
    assert_no_content,
    assert_no_secrets,
    assert_sign_in_refused,
    assert_unauthenticated,
    authorize,
    code_of,
    console_sign_in,
    console_sign_in_attempt,
    mcp,
    open_session,
    page_form,
    register,
    unique,
    unique_email,
)
from conftest import (  # noqa: E402
    DEMO_USER_PASSWORD,
    MODES,
    json_body,
    request,
    request_without_content_type,
)
from test_authorization import Browser  # noqa: E402
from test_operator_cli import cli  # noqa: E402
from test_tokens import assert_tokens, exchange, introspect, refresh  # noqa: E402

TEN_MINUTES = 600
DAY = 86400


# --------------------------------------------------------------------------------------------
# Fixtures: one administrator and one regular user per module and server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    """The demo administrator: console session, CSRF token and an admin API bearer token."""
    return Admin(server)


@pytest.fixture(scope="module")
def user(server) -> Browser:
    """user@demo.test signed in at the console (a regular user's session)."""
    return console_sign_in(server, USER_EMAIL, DEMO_USER_PASSWORD)


@pytest.fixture(scope="module")
def catalog(server, admin) -> dict[str, str]:
    """One client of each kind: pending DCR, approved DCR, manual (required), manual trusted."""
    pending = register(server, client_name=unique("catalog-pending"))
    approved, _ = approved_dcr_client(server, admin, client_name=unique("catalog-approved"))
    manual = admin.create_client(client_name=unique("catalog-manual"))
    trusted = admin.create_client(client_name=unique("catalog-trusted"), consentMethod="trusted")
    return {
        "pending": pending["client_id"],
        "approved": approved["client_id"],
        "manual": manual["client_id"],
        "trusted": trusted["client_id"],
    }


def derived_csrf(session_id: str) -> str:
    """docs/admin-api.md: `SHA-256("gatehouse-csrf:" || session id)`, hex."""
    return hashlib.sha256(f"gatehouse-csrf:{session_id}".encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Listing helpers
# --------------------------------------------------------------------------------------------


def list_clients(admin: Admin, **params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None},
                                   quote_via=urllib.parse.quote)
    return admin.api("GET", "/oauth-clients" + (f"?{query}" if query else ""))


def page_of(resp, limit: int | None = None, full: bool = False) -> tuple[list[dict], str | None]:
    """One listing page, checked. `limit`: at most that many items; with `full`, exactly that
    many and a next_cursor (the caller made sure more match than one page holds)."""
    doc = assert_json(resp)
    assert isinstance(doc.get("data"), list), doc
    if limit is not None:
        assert len(doc["data"]) <= limit, f"{len(doc['data'])} items on a page of {limit}"
    if full:
        assert limit is not None
        assert len(doc["data"]) == limit, (
            f"{len(doc['data'])} items on a page of {limit}, though more than {limit} match")
        assert doc.get("next_cursor"), f"a full page with more to come has no next_cursor: {doc}"
    for client in doc["data"]:
        assert_no_secrets(client)
    if "next_cursor" in doc:
        assert isinstance(doc["next_cursor"], str) and doc["next_cursor"], (
            f"next_cursor must be absent on the last page, else a non-empty string: {doc}")
    return doc["data"], doc.get("next_cursor")


def walk(admin: Admin, filter: str | None = None, limit: int | None = 100) -> list[dict]:
    """Every page of a listing, following next_cursor; each cursor is new. Every page but the
    last is exactly full (the server fills a page before it hands out a cursor), and the last
    one is empty only when the whole listing is."""
    size = limit if limit is not None else 50
    items: list[dict] = []
    cursor = None
    seen: set[str] = set()
    for _ in range(2000):
        data, cursor = page_of(list_clients(admin, filter=filter, limit=limit, cursor=cursor),
                               size)
        if cursor is not None:
            assert len(data) == size, (
                f"a page with a next_cursor holds {len(data)} items, not {size} (filter {filter!r})")
        elif seen:
            assert data, f"a next_cursor led to an empty last page (filter {filter!r})"
        items.extend(data)
        if cursor is None:
            return items
        assert cursor not in seen, f"cursor {cursor!r} handed out twice"
        seen.add(cursor)
    pytest.fail("the listing never ended")


def ids(clients: list[dict]) -> list[str]:
    return [c["client_id"] for c in clients]


def assert_oldest_first(clients: list[dict]) -> None:
    created = [c["created_at"] for c in clients]
    assert created == sorted(created), f"not oldest first: {created}"


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/oauth-clients", None),
    ("POST", "/oauth-clients", {"client_name": "x", "redirect_uris": [REDIRECT_URI]}),
    ("GET", "/oauth-clients/0123456789abcdef0123456789abcdef", None),
    ("PATCH", "/oauth-clients/0123456789abcdef0123456789abcdef", {"consentMethod": "trusted"}),
    ("DELETE", "/oauth-clients/0123456789abcdef0123456789abcdef", None),
    ("GET", "/settings", None),
    ("PATCH", "/settings", {"display_name": "hijacked"}),
    ("GET", "/users", None),
    ("POST", "/users", {"email": "x@demo.test", "password": "x" * 16, "role": "admin"}),
    ("PATCH", "/users/user@demo.test", {"role": "admin"}),
    ("DELETE", "/tokens/current", None),
    ("GET", "/session", None),
]
ENDPOINT_IDS = [f"{m} {p}" for m, p, _ in ENDPOINTS]


@pytest.mark.parametrize("method, path, body", ENDPOINTS, ids=ENDPOINT_IDS)
def test_no_credential_is_401_invalid_token_with_a_bearer_challenge(server, method, path, body):
    assert_unauthenticated(api(server, method, path, body))


@pytest.mark.parametrize("authorization", [
    "Bearer garbage",
    "Bearer gha_demo_" + "A" * 43,
    "Bearer gha_demo_",
    "Bearer gha_",
    # spec: a made-up token naming another (or no) tenant is not a *valid* token of another
    # tenant, so it is unknown: 401 (404 is only for valid tokens of another tenant).
    "Bearer gha_othertenant_" + "B" * 43,
    "Bearer ",
    "Basic YWRtaW5AZGVtby50ZXN0OmFkbWluLXBhc3MtMTIz",  # admin@demo.test:admin-pass-123
    "gha_demo_" + "C" * 43,
], ids=["word", "demo-shaped", "empty-secret", "prefix-only", "other-tenant-shaped",
        "empty-bearer", "basic-with-the-password", "no-scheme"])
def test_unknown_or_malformed_credentials_are_401(server, authorization):
    for method, path, body in (("GET", "/oauth-clients", None),
                               ("PATCH", "/settings", {"display_name": "hijacked"})):
        assert_unauthenticated(api(server, method, path, body,
                                   headers={"Authorization": authorization}))


def test_unknown_session_cookie_is_401(server, admin):
    made_up = secrets.token_urlsafe(32)
    assert_unauthenticated(api(server, "GET", "/oauth-clients", cookie=made_up))
    assert_unauthenticated(api(server, "GET", "/session", cookie=made_up))
    before = admin.settings()
    assert_unauthenticated(api(server, "PATCH", "/settings", {"display_name": "hijacked"},
                               cookie=made_up, csrf=derived_csrf(made_up)))
    assert admin.settings() == before


def test_session_names_the_administrator_and_its_csrf_token(server, admin):
    doc = assert_json(api(server, "GET", "/session", cookie=admin.session.cookie))
    assert doc.get("email") == ADMIN_EMAIL, doc
    assert doc.get("role") == "admin", doc
    assert doc.get("csrf_token") == admin.session.csrf, "one CSRF token per session"


def test_cookie_reads_need_no_csrf_token(server, admin, catalog):
    s = admin.session
    page_of(s.call("GET", "/oauth-clients", csrf=None))
    assert assert_json(s.call("GET", f"/oauth-clients/{catalog['manual']}", csrf=None))[
        "client_id"] == catalog["manual"]
    assert set(assert_json(s.call("GET", "/settings", csrf=None))) == SETTINGS_FIELDS


def test_cookie_authenticated_writes_need_the_session_csrf_token(server, admin):
    s = admin.session
    client = admin.create_client(client_name=unique("csrf"))
    cid = client["client_id"]
    before = admin.client(cid)
    settings_before = admin.settings()
    users_before = admin.users()
    flipped = s.csrf[:-1] + ("0" if s.csrf[-1] != "0" else "1")
    for bad in (None, "", flipped, derived_csrf(secrets.token_urlsafe(32)), "x" * 64):
        label = f"X-CSRF-Token {bad!r}"
        for method, path, body in (
            ("PATCH", f"/oauth-clients/{cid}", {"consentMethod": "trusted"}),
            ("DELETE", f"/oauth-clients/{cid}", None),
            ("POST", "/oauth-clients", {"client_name": "csrf-forged", "redirect_uris": [REDIRECT_URI]}),
            ("PATCH", "/settings", {"display_name": "csrf-forged"}),
            ("POST", "/users", {"email": unique_email("csrf"), "password": "p" * 16, "role": "admin"}),
            ("PATCH", f"/users/{USER_EMAIL}", {"role": "admin"}),
            ("POST", "/tokens", {"name": "csrf-forged"}),
        ):
            resp = s.call(method, path, body, csrf=bad)
            assert resp[0] == 403, f"{method} {path} with {label}: {resp[0]} {resp[2][:300]!r}"
            assert_api_error(resp, 403, "access_denied")
            assert b"gha_" not in resp[2], "no token minted without the CSRF token"
    assert admin.client(cid) == before, "a forged write changed the client"
    assert admin.settings() == settings_before, "a forged write changed the settings"
    assert admin.users() == users_before, "a forged write changed the users"
    # The right token (positive control): the same write goes through.
    done = assert_json(s.call("PATCH", f"/oauth-clients/{cid}", {"consentMethod": "trusted"}))
    assert done["consentMethod"] == "trusted", done
    assert_no_content(s.call("DELETE", f"/oauth-clients/{cid}"))


def test_bearer_writes_need_no_csrf_token(server, admin):
    cid = admin.create_client(client_name=unique("bearer"))["client_id"]
    done = assert_json(admin.patch_client(cid, {"consentMethod": "trusted"}))
    assert done["consentMethod"] == "trusted"


def test_regular_user_session_is_403_access_denied(server, admin, user):
    cookie = user.cookie("gh_session")
    assert cookie
    # Best effort at the user's real CSRF token, so the writes below fail for the role, not
    # for CSRF (both are 403 access_denied).
    csrf = derived_csrf(cookie)
    session = api(server, "GET", "/session", cookie=cookie)
    if session[0] == 200:
        csrf = json_body(session).get("csrf_token", csrf)
    settings_before = admin.settings()
    users_before = admin.users()
    for method, path, body in (
        ("GET", "/oauth-clients", None),
        ("GET", "/settings", None),
        ("GET", "/users", None),
        ("PATCH", "/settings", {"display_name": "by a user"}),
        ("POST", "/users", {"email": unique_email("by-user"), "password": "p" * 16, "role": "admin"}),
        ("PATCH", f"/users/{USER_EMAIL}", {"role": "admin"}),
        ("POST", "/oauth-clients", {"client_name": "by a user", "redirect_uris": [REDIRECT_URI]}),
        ("POST", "/tokens", {"name": "by a user"}),
    ):
        resp = api(server, method, path, body, cookie=cookie, csrf=csrf)
        assert resp[0] == 403, f"{method} {path} as a regular user: {resp[0]} {resp[2][:300]!r}"
        assert_api_error(resp, 403, "access_denied")
        assert b"gha_" not in resp[2]
    assert admin.settings() == settings_before
    assert admin.users() == users_before
    assert admin.user(USER_EMAIL)["role"] == "user"


def test_api_tokens_are_minted_by_an_admin_session_with_an_expiry(server, admin):
    now = time.time()
    default = admin.session.mint(name=unique("default-expiry"))
    assert isinstance(default.get("expires_at"), int), default
    assert abs(default["expires_at"] - (now + 30 * DAY)) <= TEN_MINUTES, default
    short = admin.session.mint(name=unique("short"), expires_in=3600)
    assert abs(short["expires_at"] - (now + 3600)) <= TEN_MINUTES, short
    longest = admin.session.mint(name=unique("longest"), expires_in=90 * DAY)
    assert abs(longest["expires_at"] - (now + 90 * DAY)) <= TEN_MINUTES, longest
    assert len({default["token"], short["token"], longest["token"]}) == 3
    for token in (default["token"], short["token"], longest["token"]):
        page_of(api(server, "GET", "/oauth-clients", token=token))
    for expires_in in (90 * DAY + 1, 0, -60, "3600", 3600.5):
        resp = admin.session.call("POST", "/tokens", {"name": unique("bad"), "expires_in": expires_in})
        assert_api_error(resp, 400, "invalid_request")
        assert b"gha_" not in resp[2]
    resp = admin.session.call("POST", "/tokens", {"name": unique("extra"), "colour": "blue"})
    assert_api_error(resp, 400, "invalid_request", "colour")


def test_a_bearer_token_cannot_mint_tokens(server, admin):
    resp = admin.api("POST", "/tokens", {"name": unique("from-bearer")})
    # spec: tokens come from an admin session ("cookie + CSRF only"); the status for a bearer
    # caller is not stated: 401 (no session) or 403 (not allowed).
    assert resp[0] in (401, 403), resp
    assert b"gha_" not in resp[2], resp


def test_delete_current_revokes_the_presented_token(server, admin):
    token = admin.session.mint(name=unique("revoke-me"))["token"]
    page_of(api(server, "GET", "/oauth-clients", token=token))
    assert_no_content(api(server, "DELETE", "/tokens/current", token=token))
    assert_unauthenticated(api(server, "GET", "/oauth-clients", token=token))
    assert_unauthenticated(api(server, "DELETE", "/tokens/current", token=token))
    # Only that token: the module's own token and the session still work.
    page_of(admin.api("GET", "/oauth-clients"))
    page_of(admin.session.call("GET", "/oauth-clients", csrf=None))


def _token_from(stdout: str, tenant: str) -> str:
    found = re.findall(rf"gha_{re.escape(tenant)}_[A-Za-z0-9_-]+", stdout)
    assert len(found) == 1, f"expected one gha_{tenant}_… token in the CLI output: {stdout!r}"
    return found[0]


def test_tokens_of_another_tenant_are_404_here(start_server):
    """Two tenants on one table (the operator CLI needs DynamoDB): a valid admin token of
    `acme2` sees nothing of `demo` (404, whether or not the resource exists), and the other
    way round."""
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")

    def run(*args, password=None) -> str:
        done = cli(srv, *args, password=password)
        assert done.returncode == 0, f"gatehouse {' '.join(args)}: {done.stderr}"
        return done.stdout

    run("tenant", "create", "acme2")
    run("user", "add", "acme2", "boss@acme2.test", "admin", password="a long enough password")
    acme = _token_from(run("token", "create", "acme2", "boss@acme2.test"), "acme2")
    demo = _token_from(run("token", "create", "demo", ADMIN_EMAIL), "demo")

    def call(method, path, body=None, *, token, tenant):
        return api(srv, method, path, body, token=token, tenant=tenant)

    # Each token works at home.
    demo_client = assert_json(call("POST", "/oauth-clients",
                                   {"client_name": "Demo's", "redirect_uris": [REDIRECT_URI]},
                                   token=demo, tenant="demo"), 201)
    acme_clients = [assert_json(call("POST", "/oauth-clients",
                                     {"client_name": f"Acme's {i}", "redirect_uris": [REDIRECT_URI]},
                                     token=acme, tenant="acme2"), 201) for i in range(3)]
    did = demo_client["client_id"]
    aid = acme_clients[0]["client_id"]
    assert assert_json(call("GET", f"/oauth-clients/{aid}", token=acme, tenant="acme2"))["client_id"] == aid
    demo_settings = assert_json(call("GET", "/settings", token=demo, tenant="demo"))
    demo_users = assert_json(call("GET", "/users", token=demo, tenant="demo"))
    demo_before = assert_json(call("GET", f"/oauth-clients/{did}", token=demo, tenant="demo"))

    # acme2's token under /t/demo: 404 for everything, existing or not.
    for method, path, body in (
        ("GET", "/oauth-clients", None),
        ("GET", f"/oauth-clients/{did}", None),
        ("GET", "/oauth-clients/0123456789abcdef0123456789abcdef", None),
        ("PATCH", f"/oauth-clients/{did}", {"consentMethod": "trusted", "scope": "mcp:execute"}),
        ("DELETE", f"/oauth-clients/{did}", None),
        ("POST", "/oauth-clients", {"client_name": "intruder", "redirect_uris": [REDIRECT_URI]}),
        ("GET", "/settings", None),
        ("PATCH", "/settings", {"dcr_enabled": False}),
        ("GET", "/users", None),
        ("POST", "/users", {"email": "intruder@demo.test", "password": "p" * 16, "role": "admin"}),
        ("PATCH", f"/users/{ADMIN_EMAIL}", {"disabled": True}),
        ("DELETE", "/tokens/current", None),
    ):
        resp = call(method, path, body, token=acme, tenant="demo")
        assert resp[0] == 404, f"{method} /t/demo/api/v1{path} with acme2's token: {resp!r}"
        assert_api_error(resp, 404, "not_found")
    assert assert_json(call("GET", f"/oauth-clients/{did}", token=demo, tenant="demo")) == demo_before
    assert assert_json(call("GET", "/settings", token=demo, tenant="demo")) == demo_settings
    assert assert_json(call("GET", "/users", token=demo, tenant="demo")) == demo_users
    # acme2's token survived its DELETE /tokens/current under the wrong tenant.
    assert_json(call("GET", "/oauth-clients", token=acme, tenant="acme2"))

    # demo's clients looked up under acme2 with acme2's own token: not there.
    assert_api_error(call("GET", f"/oauth-clients/{did}", token=acme, tenant="acme2"), 404, "not_found")
    assert_api_error(call("PATCH", f"/oauth-clients/{did}", {"consentMethod": "trusted"},
                          token=acme, tenant="acme2"), 404, "not_found")
    assert_api_error(call("DELETE", f"/oauth-clients/{did}", token=acme, tenant="acme2"), 404, "not_found")
    listed = assert_json(call("GET", "/oauth-clients?limit=100", token=acme, tenant="acme2"))
    assert did not in ids(listed["data"]), listed
    assert set(ids(acme_clients)) <= set(ids(listed["data"])), listed
    # demo's token under /t/acme2: 404 too.
    assert_api_error(call("GET", "/oauth-clients", token=demo, tenant="acme2"), 404, "not_found")
    assert_api_error(call("GET", f"/oauth-clients/{aid}", token=demo, tenant="acme2"), 404, "not_found")
    # The secret of acme2's token under demo's prefix is an unknown demo token.
    assert_unauthenticated(call("GET", "/oauth-clients", token="gha_demo_" + acme[len("gha_acme2_"):],
                                tenant="demo"))
    # A cursor of acme2's listing never shows acme2's clients through demo's listing.
    first = assert_json(call("GET", "/oauth-clients?limit=1", token=acme, tenant="acme2"))
    cursor = first.get("next_cursor")
    assert cursor, first
    query = urllib.parse.urlencode({"limit": 100, "cursor": cursor})
    resp = call("GET", f"/oauth-clients?{query}", token=demo, tenant="demo")
    assert resp[0] in (200, 400), resp
    for acme_client in acme_clients:
        assert acme_client["client_id"].encode() not in resp[2], "acme2's client listed under demo"
    # Still the demo client, untouched.
    assert assert_json(call("GET", f"/oauth-clients/{did}", token=demo, tenant="demo")) == demo_before


# --------------------------------------------------------------------------------------------
# Clients: manual creation
# --------------------------------------------------------------------------------------------


def test_manual_client_is_approved_at_once_and_its_secret_is_shown_once(server, admin):
    name = unique("manual-create")
    resp = admin.api("POST", "/oauth-clients", {"client_name": name, "redirect_uris": [REDIRECT_URI]})
    created = assert_json(resp, 201)
    assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
    secret = created.get("client_secret")
    assert isinstance(secret, str) and len(secret) >= 32, created
    # spec: the creation answer is the representation plus the secret (client_secret_expires_at
    # tolerated as RFC 7591 companion); nothing else secret-like.
    rest = {k: v for k, v in created.items() if k not in ("client_secret", "client_secret_expires_at")}
    assert_no_secrets(rest)
    assert created["client_name"] == name
    assert created["createdByType"] == "user", created
    assert created["status"] == "approved", created
    assert created["consentMethod"] == "required", created
    assert created["token_endpoint_auth_method"] == "client_secret_basic", created
    assert set(created["scope"].split()) == set(ALL_SCOPES.split()), created
    assert created["redirect_uris"] == [REDIRECT_URI], created
    assert "expires_at" not in created, created
    assert isinstance(created.get("approved_at"), int), created
    assert isinstance(created.get("config_version"), int), created
    cid = created["client_id"]
    # Never again: not in the client, not in any listing.
    got = admin.api("GET", f"/oauth-clients/{cid}")
    assert secret.encode() not in got[2]
    assert_no_secrets(assert_json(got))
    for flt in (None, 'createdByType eq "user"'):
        resp = list_clients(admin, filter=flt, limit=100)
        assert secret.encode() not in resp[2]
    listed = [c for c in walk(admin, 'createdByType eq "user"') if c["client_id"] == cid]
    assert len(listed) == 1 and listed[0] == assert_json(got), listed
    # The secret is real: the client authenticates at the introspection endpoint.
    resp = introspect(server, created, "not-a-token")
    assert resp[0] == 200 and json_body(resp) == {"active": False}, resp


def test_manual_client_takes_its_optional_fields(server, admin):
    created = admin.create_client(
        client_name=unique("manual-full"),
        redirect_uris=["http://127.0.0.1:8976/cb", REDIRECT_URI],
        token_endpoint_auth_method="none",
        scope="mcp:execute",
        consentMethod="trusted",
        grant_types=["authorization_code"],
        client_uri="https://agent.example.com",
        logo_uri="https://agent.example.com/logo.png",
        tos_uri="https://agent.example.com/tos",
        policy_uri="https://agent.example.com/privacy",
        contacts=["ops@agent.example.com"],
        application_type="native",
    )
    assert "client_secret" not in created, "a public client has no secret"
    assert_no_secrets(created)
    got = admin.client(created["client_id"])
    for key, value in {
        "token_endpoint_auth_method": "none", "scope": "mcp:execute", "consentMethod": "trusted",
        "grant_types": ["authorization_code"], "client_uri": "https://agent.example.com",
        "logo_uri": "https://agent.example.com/logo.png",
        "tos_uri": "https://agent.example.com/tos",
        "policy_uri": "https://agent.example.com/privacy",
        "contacts": ["ops@agent.example.com"], "application_type": "native",
        "redirect_uris": ["http://127.0.0.1:8976/cb", REDIRECT_URI],
        "createdByType": "user", "status": "approved",
    }.items():
        assert got.get(key) == value, f"{key}: {got.get(key)!r} != {value!r}"


_DROP = object()


@pytest.mark.parametrize("change, status, error, named", [
    ({"redirect_uris": ["javascript:alert(1)"]}, 400, "invalid_redirect_uri", None),
    ({"redirect_uris": ["https://a.example/cb#frag"]}, 400, "invalid_redirect_uri", None),
    ({"redirect_uris": []}, 400, "invalid_redirect_uri", None),
    ({"redirect_uris": _DROP}, 400, "invalid_redirect_uri", None),
    ({"client_name": _DROP}, 400, "invalid_client_metadata", None),
    ({"client_name": "x" * 201}, 400, "invalid_client_metadata", None),
    ({"scope": "admin"}, 400, "invalid_client_metadata", "admin"),
    ({"scope": "mcp:execute admin"}, 400, "invalid_client_metadata", "admin"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, 400, "invalid_client_metadata", None),
    ({"grant_types": ["client_credentials"]}, 400, "invalid_client_metadata", None),
    ({"logo_uri": "javascript:alert(1)"}, 400, "invalid_client_metadata", None),
    ({"consentMethod": "sometimes"}, 400, "invalid_request", None),
    ({"colour": "blue"}, 400, "invalid_request", "colour"),
    ({"client_id": "0123456789abcdef0123456789abcdef"}, 400, "invalid_request", "client_id"),
    ({"status": "pending"}, 400, "invalid_request", "status"),
], ids=["javascript-redirect", "fragment-redirect", "no-redirect-uris", "missing-redirect-uris",
        "missing-name", "long-name", "unknown-scope", "unknown-scope-among-known",
        "private-key-jwt", "client-credentials", "javascript-logo", "consent-sometimes",
        "unknown-field", "client-id-field", "status-field"])
def test_manual_client_is_validated_like_a_registration(server, admin, change, status, error, named):
    name = unique("refused")
    doc = {"client_name": name, "redirect_uris": [REDIRECT_URI]}
    for key, value in change.items():
        if value is _DROP:
            doc.pop(key)
        else:
            doc[key] = value
    resp = admin.api("POST", "/oauth-clients", doc)
    assert_api_error(resp, status, error, *([named] if named else []))
    assert b'"client_secret":' not in resp[2]
    assert name not in [c["client_name"] for c in walk(admin, 'createdByType eq "user"')], (
        "a refused client was stored")


# --------------------------------------------------------------------------------------------
# Clients: representation, get, listing, filters, pagination
# --------------------------------------------------------------------------------------------


def test_client_representation_has_the_documented_fields_only(server, admin, catalog):
    admin_id = admin.user(ADMIN_EMAIL)["id"]
    for kind, cid in catalog.items():
        doc = admin.client(cid)
        assert set(doc) <= CLIENT_FIELDS, f"{kind}: undocumented fields {set(doc) - CLIENT_FIELDS}"
        assert CLIENT_REQUIRED_FIELDS <= set(doc), f"{kind}: missing {CLIENT_REQUIRED_FIELDS - set(doc)}"
        assert doc["client_id"] == cid
        assert doc["createdByType"] == ("dcr" if kind in ("pending", "approved") else "user"), doc
        assert doc["consentMethod"] == ("trusted" if kind == "trusted" else "required"), doc
        assert isinstance(doc["created_at"], int) and abs(doc["created_at"] - time.time()) < 3600
        assert isinstance(doc["config_version"], int) and doc["config_version"] >= 1, doc
        if kind == "pending":
            assert doc["status"] == "pending", doc
            assert isinstance(doc.get("expires_at"), int) and doc["expires_at"] > time.time(), doc
            assert "approved_at" not in doc and "approved_by" not in doc, doc
        else:
            assert doc["status"] == "approved", doc
            assert "expires_at" not in doc, f"expires_at only while pending: {doc}"
            assert isinstance(doc.get("approved_at"), int), doc
            assert doc.get("approved_by") == admin_id, doc


@pytest.mark.parametrize("client_id", ["0123456789abcdef0123456789abcdef", "nope"])
def test_unknown_client_is_404(server, admin, client_id):
    assert_api_error(admin.api("GET", f"/oauth-clients/{client_id}"), 404, "not_found")
    assert_api_error(admin.patch_client(client_id, {"consentMethod": "trusted"}), 404, "not_found")
    assert_api_error(admin.api("DELETE", f"/oauth-clients/{client_id}"), 404, "not_found")


def test_listing_hides_pending_clients_and_is_oldest_first(server, admin, catalog):
    everything = walk(admin)
    assert everything, "the listing is empty"
    assert all(c["status"] == "approved" for c in everything), [
        c["client_id"] for c in everything if c["status"] != "approved"]
    listed = ids(everything)
    assert len(listed) == len(set(listed)), "a client listed twice"
    assert {catalog["approved"], catalog["manual"], catalog["trusted"]} <= set(listed)
    assert catalog["pending"] not in listed
    assert_oldest_first(everything)
    # A pending client is still readable one by one.
    assert admin.client(catalog["pending"])["status"] == "pending"


FILTERS = [
    ('createdByType eq "dcr"', {"createdByType": "dcr", "status": "approved"},
     {"approved"}, {"pending", "manual", "trusted"}),
    ('createdByType eq "user"', {"createdByType": "user", "status": "approved"},
     {"manual", "trusted"}, {"pending", "approved"}),
    ('status eq "pending"', {"status": "pending"}, {"pending"}, {"approved", "manual", "trusted"}),
    ('status eq "approved"', {"status": "approved"}, {"approved", "manual", "trusted"}, {"pending"}),
    ('createdByType eq "dcr" and status eq "pending"', {"createdByType": "dcr", "status": "pending"},
     {"pending"}, {"approved", "manual", "trusted"}),
    ('consentMethod eq "trusted"', {"consentMethod": "trusted", "status": "approved"},
     {"trusted"}, {"pending", "approved", "manual"}),
    ('consentMethod eq "required" and createdByType eq "user"',
     {"consentMethod": "required", "createdByType": "user", "status": "approved"},
     {"manual"}, {"pending", "approved", "trusted"}),
    ('status eq "pending" and consentMethod eq "required"',
     {"status": "pending", "consentMethod": "required"}, {"pending"}, {"approved", "manual", "trusted"}),
    ('createdByType eq "user" and status eq "pending"', {"createdByType": "user", "status": "pending"},
     set(), {"pending", "approved", "manual", "trusted"}),
    # Keywords are case-insensitive.
    ('createdByType EQ "user" AND consentMethod Eq "trusted"',
     {"createdByType": "user", "consentMethod": "trusted", "status": "approved"},
     {"trusted"}, {"pending", "approved", "manual"}),
]


@pytest.mark.parametrize("filter_, expect, included, excluded", FILTERS,
                         ids=[f[0] for f in FILTERS])
def test_filter_selects_matching_clients(server, admin, catalog, filter_, expect, included, excluded):
    found = walk(admin, filter_)
    for client in found:
        for key, value in expect.items():
            assert client[key] == value, f"{filter_!r} returned {client['client_id']} with {key}={client[key]!r}"
    listed = set(ids(found))
    for kind in included:
        assert catalog[kind] in listed, f"{filter_!r} missed the {kind} client"
    for kind in excluded:
        assert catalog[kind] not in listed, f"{filter_!r} returned the {kind} client"
    assert_oldest_first(found)


MALFORMED_FILTERS = [
    # (filter, substring at which parsing breaks, or None when the position is debatable)
    ('colour eq "red"', "colour"),
    ('createdByType ne "dcr"', "ne "),
    ('createdByType eq "dcr', None),
    ('createdByType eq dcr', "dcr"),
    ('createdByType eq "robot"', None),
    ('consentMethod eq "sometimes"', None),
    ('status eq ""', None),
    ('createdByType eq "dcr" or status eq "pending"', "or "),
    ('createdByType eq "dcr" garbage', "garbage"),
    ('createdByType eq "dcr" or 1 eq 1', "or "),
    ('createdByType eq "dcr\\" or \\"x"', None),
    ('createdByType eq "dcr" and', None),
    ('createdByType eq "dcr" and and status eq "pending"', None),
    ('createdByType', None),
    ('status eq "approved"; DROP TABLE clients', None),
    ("createdByType eq 'dcr'", None),
]


@pytest.mark.parametrize("filter_, breaks_at", MALFORMED_FILTERS, ids=[f[0] for f in MALFORMED_FILTERS])
def test_malformed_filter_is_400_naming_the_position(server, admin, filter_, breaks_at):
    body = assert_api_error(list_clients(admin, filter=filter_), 400, "invalid_request")
    description = body["error_description"]
    numbers = {int(n) for n in re.findall(r"\d+", description)}
    if breaks_at is None:
        assert numbers, f"no position in {description!r}"
    else:
        at = filter_.index(breaks_at)
        # spec: 0- or 1-based is not stated; either is accepted (and the space before).
        assert numbers & {at - 1, at, at + 1}, (
            f"expected the position of {breaks_at!r} ({at}) in {description!r}")


def ensure_clients(admin: Admin, flt: str | None, at_least: int) -> list[str]:
    """Creates manual clients (createdByType "user", so every listing below counts them) until
    at least `at_least` clients match `flt`; returns the ids of the whole listing."""
    have = ids(walk(admin, flt))
    for i in range(max(0, at_least - len(have))):
        admin.create_client(client_name=unique(f"bulk-{i}"))
    everything = ids(walk(admin, flt, limit=100))
    assert len(everything) >= at_least, (flt, len(everything))
    return everything


def test_pagination_walks_every_client_exactly_once(server, admin, catalog):
    extra = [admin.create_client(client_name=unique(f"page-{i}"))["client_id"] for i in range(3)]
    flt = 'createdByType eq "user"'
    whole = walk(admin, flt, limit=100)
    one_by_one = walk(admin, flt, limit=1)
    # At least catalog's two and the three above: limit=1 really paged (walk checks each page
    # but the last holds exactly one client).
    assert len(one_by_one) >= 5, ids(one_by_one)
    listed = ids(one_by_one)
    assert len(listed) == len(set(listed)), "a client came back on two pages"
    assert listed == ids(whole), "limit=1 and limit=100 disagree"
    assert {catalog["manual"], catalog["trusted"], *extra} <= set(listed)
    assert_oldest_first(one_by_one)
    # Unfiltered, two at a time: the same set as one page of 100 at a time.
    by_two = walk(admin, None, limit=2)
    assert len(by_two) >= 5, ids(by_two)
    assert ids(by_two) == ids(walk(admin, None, limit=100))


def test_default_page_size_is_50(server, admin):
    flt = 'createdByType eq "user"'
    everything = ensure_clients(admin, flt, 51)
    data, cursor = page_of(list_clients(admin, filter=flt), 50, full=True)
    assert cursor, "more than 50 clients match, so the first default page is not the last"
    assert ids(data) == everything[:50], "the first default page is not the oldest 50"
    assert ids(walk(admin, flt, limit=None)) == everything


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "101"}, {"limit": "abc"}, {"limit": "-1"}, {"limit": "1.5"},
    {"cursor": "not-a-cursor"}, {"cursor": "eyJwayI6IngifQ"}, {"cursor": "%%%"},
], ids=["limit-0", "limit-101", "limit-abc", "limit-negative", "limit-fraction",
        "cursor-word", "cursor-forged-json", "cursor-percent"])
def test_bad_limit_or_cursor_is_400(server, admin, params):
    assert_api_error(list_clients(admin, **params), 400, "invalid_request")


def test_limits_1_and_100_are_accepted(server, admin, catalog):
    # More than 100 clients, so both pages must come back exactly full, with a cursor.
    everything = ensure_clients(admin, None, 101)
    data, _ = page_of(list_clients(admin, limit=1), 1, full=True)
    assert ids(data) == everything[:1]
    data, _ = page_of(list_clients(admin, limit=100), 100, full=True)
    assert ids(data) == everything[:100]


# --------------------------------------------------------------------------------------------
# Clients: PATCH
# --------------------------------------------------------------------------------------------


def test_patch_consent_method(server, admin):
    cid = admin.create_client(client_name=unique("consent-method"))["client_id"]
    before = admin.client(cid)
    done = assert_json(admin.patch_client(cid, {"consentMethod": "trusted"}))
    assert done["consentMethod"] == "trusted", done
    assert_no_secrets(done)
    assert admin.client(cid)["consentMethod"] == "trusted"
    done = assert_json(admin.patch_client(cid, {"consentMethod": "required"}))
    assert done["consentMethod"] == "required", done
    after = admin.client(cid)
    assert {k: v for k, v in after.items() if k != "config_version"} == {
        k: v for k, v in before.items() if k != "config_version"}


def test_patch_scope_bumps_config_version_and_stays_within_the_tenant_scopes(server, admin):
    cid = admin.create_client(client_name=unique("scope"))["client_id"]
    before = admin.client(cid)
    done = assert_json(admin.patch_client(cid, {"scope": "mcp:execute"}))
    assert done["scope"] == "mcp:execute", done
    assert done["config_version"] == before["config_version"] + 1, (before, done)
    stored = admin.client(cid)
    assert stored == done
    for bad in ("mcp:execute admin", "admin", "MCP:EXECUTE"):
        assert_api_error(admin.patch_client(cid, {"scope": bad}), 400, "invalid_client_metadata")
        assert admin.client(cid) == stored, f"scope {bad!r} changed the client"
    for empty in ("", "   "):
        resp = admin.patch_client(cid, {"scope": empty})
        # spec: "not empty"; the error code for an empty scope is not stated.
        assert resp[0] == 400, resp
        assert json_body(resp)["error"] in ("invalid_client_metadata", "invalid_request"), resp
        assert admin.client(cid) == stored
    resp = admin.patch_client(cid, {"scope": ["mcp:execute"]})
    assert resp[0] == 400, resp
    assert admin.client(cid) == stored


def test_patch_client_name(server, admin):
    cid = admin.create_client(client_name=unique("name"))["client_id"]
    done = assert_json(admin.patch_client(cid, {"client_name": "n" * 200}))
    assert done["client_name"] == "n" * 200
    stored = admin.client(cid)
    for bad in ("", "n" * 201, 5, None):
        resp = admin.patch_client(cid, {"client_name": bad})
        assert resp[0] == 400, f"client_name {bad!r}: {resp!r}"
        assert admin.client(cid) == stored


@pytest.mark.parametrize("field, value", [
    ("client_id", "0123456789abcdef0123456789abcdef"),
    ("createdByType", "dcr"),
    ("status", "pending"),
    ("created_at", 1),
    ("client_secret", "a-secret-of-my-own-choosing-000000000000"),
    ("token_endpoint_auth_method", "none"),
    ("config_version", 99),
    ("redirect_uris", ["https://evil.example/cb"]),
    ("approved_by", "someone-else"),
    ("grant_types", ["authorization_code", "refresh_token"]),
])
def test_patch_of_an_immutable_field_is_400_and_changes_nothing(server, admin, field, value):
    created = admin.create_client(client_name=unique(f"immutable-{field}"))
    cid = created["client_id"]
    before = admin.client(cid)
    assert_api_error(admin.patch_client(cid, {field: value}), 400, "invalid_request")
    # Mixed with a valid change: all or nothing.
    assert_api_error(admin.patch_client(cid, {"client_name": "changed", field: value}), 400,
                     "invalid_request")
    assert admin.client(cid) == before
    if field == "client_secret":
        resp = introspect(server, created, "not-a-token")
        assert resp[0] == 200, f"the original secret no longer works: {resp!r}"


def test_patch_with_another_consent_method_is_400(server, admin):
    cid = admin.create_client(client_name=unique("sometimes"))["client_id"]
    before = admin.client(cid)
    for bad in ("sometimes", "Trusted", "", None, True):
        assert_api_error(admin.patch_client(cid, {"consentMethod": bad}), 400, "invalid_request")
    assert admin.client(cid) == before


def test_patch_with_an_unknown_field_is_400_naming_it(server, admin):
    cid = admin.create_client(client_name=unique("unknown-field"))["client_id"]
    before = admin.client(cid)
    assert_api_error(admin.patch_client(cid, {"colour": "blue"}), 400, "invalid_request", "colour")
    assert_api_error(admin.patch_client(cid, {"consentMethod": "trusted", "colour": "blue"}), 400,
                     "invalid_request", "colour")
    assert admin.client(cid) == before


def test_writes_must_be_json(server, admin):
    cid = admin.create_client(client_name=unique("json-only"))["client_id"]
    before = admin.client(cid)
    settings_before = admin.settings()
    body = json.dumps({"consentMethod": "trusted"})
    for method, path in (("PATCH", f"/oauth-clients/{cid}"), ("POST", "/oauth-clients"),
                         ("PATCH", "/settings"), ("POST", "/users"),
                         ("PATCH", f"/users/{USER_EMAIL}")):
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "application/jsonx"):
            resp = admin.api(method, path, body, headers={"Content-Type": content_type})
            assert_api_error(resp, 415, "invalid_request")
        url = f"{server.issuer}/api/v1{path}"
        resp = request_without_content_type(method, url, body.encode(),
                                            {"Authorization": f"Bearer {admin.token}"})
        assert_api_error(resp, 415, "invalid_request")
        for raw in (b"{", b"not json", b"[]", b'"x"'):
            resp = admin.api(method, path, raw, headers={"Content-Type": "application/json"})
            assert_api_error(resp, 400, "invalid_request")
    # A charset parameter is still JSON.
    done = assert_json(admin.api("PATCH", f"/oauth-clients/{cid}", body,
                                 headers={"Content-Type": "application/json; charset=utf-8"}))
    assert done["consentMethod"] == "trusted"
    unchanged = ("consentMethod", "config_version")
    assert {k: v for k, v in admin.client(cid).items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged}
    assert admin.settings() == settings_before


def test_body_over_64_kib_is_refused(server, admin):
    cid = admin.create_client(client_name=unique("big"))["client_id"]
    before = admin.client(cid)
    resp = admin.patch_client(cid, {"client_name": "n", "padding": "x" * 70000})
    # spec: "at most 64 KiB" without a status; 413 as for registration (README).
    assert resp[0] == 413, resp
    assert admin.client(cid) == before


# --------------------------------------------------------------------------------------------
# Clients: DELETE
# --------------------------------------------------------------------------------------------


def test_delete_client(server, admin, catalog):
    cid = admin.create_client(client_name=unique("delete-me"))["client_id"]
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{cid}"))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    assert_api_error(admin.api("DELETE", f"/oauth-clients/{cid}"), 404, "not_found")
    assert_api_error(admin.patch_client(cid, {"consentMethod": "trusted"}), 404, "not_found")
    assert cid not in ids(walk(admin, 'createdByType eq "user"'))
    # Nothing else went with it.
    admin.client(catalog["manual"])


def test_delete_pending_client(server, admin):
    client = register(server, client_name=unique("pending-delete"))
    cid = client["client_id"]
    assert admin.client(cid)["status"] == "pending"
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{cid}"))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    assert cid not in ids(walk(admin, 'status eq "pending"'))
    page = authorize(server, Browser(server), client).resp
    assert page.status == 400 and "unknown application" in page.text.lower(), page


# --------------------------------------------------------------------------------------------
# Clients: what a change does to the real flows
# --------------------------------------------------------------------------------------------


def test_trusted_client_skips_the_consent_page_and_required_brings_it_back(server, admin, user):
    client, _ = approved_dcr_client(server, admin, client_name=unique("trusted-switch"))
    cid = client["client_id"]
    assert admin.client(cid)["consentMethod"] == "required", "the DCR default"
    assert_consent_page(authorize(server, user, client).resp)

    assert assert_json(admin.patch_client(cid, {"consentMethod": "trusted"}))["consentMethod"] == "trusted"
    attempt = authorize(server, user, client)  # a trusted client: no consent page
    assert_tokens(exchange(server, client, code_of(server, attempt)))
    # Signing in afresh lands straight on the redirect too.
    fresh = Browser(server)
    attempt = authorize(server, fresh, client)
    signed_in = fresh.submit(page_form(attempt.resp, "sign_in"), email=USER_EMAIL,
                             password=DEMO_USER_PASSWORD)
    assert_tokens(exchange(server, client, code_of(server, attempt, signed_in)))

    assert assert_json(admin.patch_client(cid, {"consentMethod": "required"}))["consentMethod"] == "required"
    # spec: skipping the page under `trusted` records no consent, so `required` asks again.
    assert_consent_page(authorize(server, user, client).resp)
    assert_consent_page(authorize(server, fresh, client).resp)


def test_scope_change_asks_for_consent_again_but_existing_grants_keep_working(server, admin, user):
    client, _ = approved_dcr_client(server, admin, client_name=unique("scope-switch"),
                                    grant_types=REFRESHING)
    cid = client["client_id"]
    version = admin.client(cid)["config_version"]
    attempt = authorize(server, user, client)
    consented = user.submit(assert_consent_page(attempt.resp), "approve")
    tokens = assert_tokens(exchange(server, client, code_of(server, attempt, consented)),
                           refresh_token=True)
    granted = set(tokens["scope"].split())
    assert granted == set(ALL_SCOPES.split()), tokens
    code_of(server, authorize(server, user, client))  # consent remembered: no page

    done = assert_json(admin.patch_client(cid, {"scope": "mcp:execute offline_access"}))
    assert set(done["scope"].split()) == {"mcp:execute", "offline_access"}, done
    assert done["config_version"] == version + 1, done
    assert admin.client(cid)["config_version"] == version + 1

    assert_consent_page(authorize(server, user, client).resp)
    assert_consent_page(authorize(server, user, client, scope="mcp:execute").resp)
    # The grant given before the change lives on, with the scope it was given: a scope edit
    # cuts off no active connection.
    refreshed = assert_tokens(refresh(server, client, tokens["refresh_token"]), refresh_token=True)
    assert set(refreshed["scope"].split()) == granted, refreshed


def test_deleting_a_client_revokes_its_tokens_everywhere(server, admin):
    client, code = approved_dcr_client(server, admin, client_name=unique("doomed"),
                                       grant_types=REFRESHING)
    tokens = assert_tokens(exchange(server, client, code), refresh_token=True)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        resp = introspect(server, client, token)
        assert resp[0] == 200 and json_body(resp).get("active") is True, resp
    assert mcp(server, tokens["access_token"])[0] == 200

    assert_no_content(admin.api("DELETE", f"/oauth-clients/{client['client_id']}"))

    resp = refresh(server, client, tokens["refresh_token"])
    assert (resp[0], json_body(resp).get("error")) in {(401, "invalid_client"), (400, "invalid_grant")}, resp
    # Introspection answers a client about its own tokens only, and this client is gone.
    for token in (tokens["access_token"], tokens["refresh_token"]):
        resp = introspect(server, client, token)
        assert (resp[0], json_body(resp).get("error")) == (401, "invalid_client"), resp
    status, headers, body = mcp(server, tokens["access_token"])
    assert status == 401, (status, body)
    assert 'error="invalid_token"' in headers.get("www-authenticate", ""), headers
    assert_api_error(admin.api("GET", f"/oauth-clients/{client['client_id']}"), 404, "not_found")


# --------------------------------------------------------------------------------------------
# Tenant settings
# --------------------------------------------------------------------------------------------


def same_setting(field: str, got, want) -> bool:
    if field == "allowed_auth_methods":
        return isinstance(got, list) and sorted(got) == sorted(want)
    if field == "allowed_scopes":
        return isinstance(got, str) and set(got.split()) == set(want.split())
    return got == want


def restore_settings(admin: Admin, original: dict) -> None:
    if admin.settings() != original:
        resp = admin.patch_settings(original)
        assert resp[0] == 200, f"could not restore the settings: {resp!r}"
        assert admin.settings() == original, "settings not restored"


def test_settings_document(server, admin):
    doc = admin.settings()
    assert set(doc) == SETTINGS_FIELDS, doc
    assert isinstance(doc["display_name"], str) and 1 <= len(doc["display_name"]) <= 100, doc
    assert doc["dcr_enabled"] is True, doc
    assert sorted(doc["allowed_auth_methods"]) == sorted(
        ["client_secret_basic", "client_secret_post", "none"]), doc
    assert doc["require_client_uri"] is False, doc
    assert doc["allowed_scopes"] == ALL_SCOPES, doc
    assert doc["pending_client_ttl_secs"] == 3600, doc
    assert doc["pending_client_cap"] == 100000, "the shared server's GATEHOUSE_PENDING_CLIENT_CAP"
    assert doc["default_resource"] is None, doc


GOOD_SETTINGS = [
    ("display_name", "Demo (renamed by the admin API tests)"),
    ("display_name", "d" * 100),
    ("dcr_enabled", False),
    ("allowed_auth_methods", ["client_secret_basic"]),
    ("allowed_auth_methods", []),
    ("require_client_uri", True),
    ("allowed_scopes", "user_default mcp:execute"),
    ("pending_client_ttl_secs", 60),
    ("pending_client_ttl_secs", 86400),
    ("pending_client_cap", 0),
    ("pending_client_cap", 99999),
    ("default_resource", "https://mcp.example.com/mcp"),
    ("default_resource", "http://127.0.0.1:9000/mcp"),
]


@pytest.mark.parametrize("field, value", GOOD_SETTINGS,
                         ids=[f"{f}={str(v)[:20]}" for f, v in GOOD_SETTINGS])
def test_settings_patch_round_trips(server, admin, field, value):
    original = admin.settings()
    try:
        done = assert_json(admin.patch_settings({field: value}))
        assert same_setting(field, done.get(field), value), done
        assert {k: v for k, v in done.items() if k != field} == {
            k: v for k, v in original.items() if k != field}, "other settings changed"
        assert admin.settings() == done
    finally:
        restore_settings(admin, original)


def test_default_resource_null_clears_it(server, admin):
    original = admin.settings()
    try:
        assert_json(admin.patch_settings({"default_resource": "https://mcp.example.com/mcp"}))
        done = assert_json(admin.patch_settings({"default_resource": None}))
        assert done["default_resource"] is None, done
        assert admin.settings()["default_resource"] is None
    finally:
        restore_settings(admin, original)


BAD_SETTINGS = [
    ("pending_client_ttl_secs", 10), ("pending_client_ttl_secs", 999999),
    ("pending_client_ttl_secs", 59), ("pending_client_ttl_secs", 86401),
    ("pending_client_ttl_secs", "3600"), ("pending_client_ttl_secs", 3600.5),
    ("pending_client_ttl_secs", None),
    ("pending_client_cap", -1), ("pending_client_cap", 100001), ("pending_client_cap", "5"),
    ("pending_client_cap", True),
    ("allowed_auth_methods", ["private_key_jwt"]),
    ("allowed_auth_methods", ["client_secret_basic", "bogus"]),
    ("allowed_auth_methods", "none"), ("allowed_auth_methods", None),
    ("allowed_scopes", ""), ("allowed_scopes", "   "), ("allowed_scopes", 5),
    ("allowed_scopes", ["mcp:execute"]), ("allowed_scopes", 'mcp:execute bad"scope'),
    ("display_name", ""), ("display_name", "d" * 101), ("display_name", 5),
    ("dcr_enabled", "yes"), ("dcr_enabled", 1), ("dcr_enabled", None),
    ("require_client_uri", "true"),
    ("default_resource", "ftp://x"), ("default_resource", "https://x/#frag"),
    ("default_resource", "http://example.com/mcp"), ("default_resource", "not a url"),
    ("default_resource", "/relative"), ("default_resource", 5),
]


@pytest.mark.parametrize("field, value", BAD_SETTINGS,
                         ids=[f"{f}={str(v)[:20]!s}" for f, v in BAD_SETTINGS])
def test_bad_settings_are_400_naming_the_field(server, admin, field, value):
    original = admin.settings()
    try:
        assert_api_error(admin.patch_settings({field: value}), 400, "invalid_request", field)
        # All or nothing: a good change next to the bad one is not applied either.
        assert_api_error(admin.patch_settings({"display_name": "half-applied", field: value}), 400,
                         "invalid_request", field)
        assert admin.settings() == original, "a refused PATCH changed the settings"
    finally:
        restore_settings(admin, original)


def test_settings_unknown_field_or_non_json_is_refused(server, admin):
    original = admin.settings()
    try:
        assert_api_error(admin.patch_settings({"colour": "blue"}), 400, "invalid_request", "colour")
        assert_api_error(admin.patch_settings({"display_name": "half", "colour": "blue"}), 400,
                         "invalid_request", "colour")
        assert_api_error(admin.api("PATCH", "/settings", json.dumps({"display_name": "x"}),
                                   headers={"Content-Type": "text/plain"}), 415, "invalid_request")
        assert admin.settings() == original
    finally:
        restore_settings(admin, original)


def _register_raw(srv, **fields):
    doc = {"client_name": unique("policy"), "redirect_uris": [REDIRECT_URI]}
    doc.update(fields)
    return request("POST", srv.register_url, doc)


@pytest.mark.parametrize("mode", MODES)
def test_settings_changes_apply_at_once(start_server, mode):
    """Every settings change is visible to the very next request on the same server (the
    tenant cache is invalidated), and the DCR policy binds anonymous registrants only."""
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    admin = Admin(srv)

    def patch(body: dict) -> dict:
        done = assert_json(admin.patch_settings(body))
        for key, value in body.items():
            assert same_setting(key, done.get(key), value), (key, done)
        return done

    # DCR off: anonymous registration refused, the administrator may still create clients.
    patch({"dcr_enabled": False})
    assert_api_error(_register_raw(srv), 403, "access_denied")
    admin.create_client()
    patch({"dcr_enabled": True})
    assert _register_raw(srv)[0] == 201

    # Auth methods: registrants limited to the allowed ones, the administrator is not.
    patch({"allowed_auth_methods": ["client_secret_basic"]})
    assert_api_error(_register_raw(srv, token_endpoint_auth_method="none"), 400, "invalid_client_metadata")
    assert_api_error(_register_raw(srv, token_endpoint_auth_method="client_secret_post"), 400,
                     "invalid_client_metadata")
    assert _register_raw(srv)[0] == 201
    assert admin.create_client(token_endpoint_auth_method="none")["token_endpoint_auth_method"] == "none"
    patch({"allowed_auth_methods": []})
    assert_api_error(_register_raw(srv), 400, "invalid_client_metadata")
    patch({"allowed_auth_methods": ["client_secret_basic", "client_secret_post", "none"]})
    assert _register_raw(srv, token_endpoint_auth_method="none")[0] == 201

    # client_uri required for registrants only.
    patch({"require_client_uri": True})
    assert_api_error(_register_raw(srv), 400, "invalid_client_metadata")
    assert _register_raw(srv, client_uri="https://agent.example.com")[0] == 201
    admin.create_client()
    patch({"require_client_uri": False})
    assert _register_raw(srv)[0] == 201

    # Allowed scopes bind registrants, manual clients and scope PATCHes alike.
    patch({"allowed_scopes": "user_default mcp:execute"})
    assert_api_error(_register_raw(srv, scope="offline_access"), 400, "invalid_client_metadata")
    registered = json_body(_register_raw(srv))
    assert set(registered["scope"].split()) == {"user_default", "mcp:execute"}, registered
    manual = admin.create_client()
    assert set(manual["scope"].split()) == {"user_default", "mcp:execute"}, manual
    assert_api_error(admin.patch_client(manual["client_id"], {"scope": "offline_access"}), 400,
                     "invalid_client_metadata")
    assert_api_error(admin.api("POST", "/oauth-clients", {
        "client_name": "wide", "redirect_uris": [REDIRECT_URI], "scope": "mcp:execute offline_access"}),
        400, "invalid_client_metadata")
    patch({"allowed_scopes": ALL_SCOPES})
    assert _register_raw(srv, scope="offline_access")[0] == 201

    # Pending lifetime: the next registration expires that long after its creation.
    patch({"pending_client_ttl_secs": 120})
    pending = admin.client(json_body(_register_raw(srv))["client_id"])
    assert 118 <= pending["expires_at"] - pending["created_at"] <= 122, pending

    # Pending cap: several pending clients exist by now, so a cap of 1 refuses the next one...
    patch({"pending_client_cap": 1})
    resp = _register_raw(srv)
    assert_api_error(resp, 429, "too_many_requests")
    # ...and 0 lifts the cap.
    patch({"pending_client_cap": 0})
    assert _register_raw(srv)[0] == 201


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------


def test_users_list(server, admin):
    users = admin.users()
    for u in users:
        # `name` only where an administrator stored one (never null).
        assert set(u) - {"name"} == USER_FIELDS, u
        assert isinstance(u.get("name", ""), str) and u.get("name") != "", u
        assert_no_secrets(u)
        assert isinstance(u["disabled"], bool) and isinstance(u["created_at"], int), u
    by_email = {u["email"]: u for u in users}
    assert by_email[ADMIN_EMAIL]["role"] == "admin" and by_email[ADMIN_EMAIL]["disabled"] is False
    assert by_email[USER_EMAIL]["role"] == "user" and by_email[USER_EMAIL]["disabled"] is False
    assert len({u["id"] for u in users}) == len(users)
    resp = admin.api("GET", "/users")
    for secret in (b"argon2", b"$argon", b"pass-123"):
        assert secret not in resp[2], f"{secret!r} in the user listing"


def test_add_user_and_duplicates_are_409(server, admin):
    email = unique_email("added")
    created = admin.add_user(email, "twelve-chars", "user")  # exactly 12 characters
    assert set(created) == USER_FIELDS, created
    assert created["email"] == email and created["role"] == "user" and created["disabled"] is False
    assert admin.user(email) == created
    # spec: emails compare case-insensitively, as at sign-in.
    for again in (email, email.upper()):
        resp = admin.api("POST", "/users", {"email": again, "password": "another-password", "role": "admin"})
        assert_api_error(resp, 409, "invalid_request")
    assert admin.user(email) == created, "a duplicate changed the user"
    assert len([u for u in admin.users() if u["email"].lower() == email.lower()]) == 1
    admin_email = unique_email("added-admin")
    assert admin.add_user(admin_email, "p" * 16, "admin")["role"] == "admin"


@pytest.mark.parametrize("body, named", [
    ({"password": "eleven-char"}, None),
    ({"password": ""}, None),
    ({"password": 123456789012345}, None),
    ({"role": "root"}, None),
    ({"role": "Admin"}, None),
    ({"role": None}, None),
    ({"email": None}, None),
    ({"email": 5}, None),
    ({"password": None}, None),
    ({"is_admin": True}, "is_admin"),
], ids=["password-11", "password-empty", "password-number", "role-root", "role-capitalised",
        "role-missing", "email-missing", "email-number", "password-missing", "unknown-field"])
def test_add_user_validation(server, admin, body, named):
    email = unique_email("refused")
    doc = {"email": email, "password": "a long enough password", "role": "user"}
    doc.update(body)
    doc = {k: v for k, v in doc.items() if v is not None}
    resp = admin.api("POST", "/users", doc)
    # spec: the password/role rules are stated with their status; a missing or mistyped field
    # is taken as the same 400 invalid_request.
    assert_api_error(resp, 400, "invalid_request", *([named] if named else []))
    assert admin.user(email) is None, "a refused user was stored"


def test_patch_user_role_disabled_and_password(server, admin):
    email = unique_email("patched")
    first, second = "first password 123", "second password 456"
    admin.add_user(email, first, "user")

    # Disabled: cannot sign in.
    done = assert_json(admin.patch_user(email, {"disabled": True}))
    assert done["disabled"] is True and set(done) == USER_FIELDS, done
    assert admin.user(email)["disabled"] is True
    # spec: a disabled account gets the generic wrong-credentials answer.
    assert_sign_in_refused(console_sign_in_attempt(server, email, first)[1])
    done = assert_json(admin.patch_user(email, {"disabled": False}))
    assert done["disabled"] is False, done

    # Password: the old one stops working, the new one works; never echoed.
    resp = admin.patch_user(email, {"password": second})
    done = assert_json(resp)
    assert_no_secrets(done)
    assert second.encode() not in resp[2]
    assert_api_error(admin.patch_user(email, {"password": "short"}), 400, "invalid_request")
    assert_sign_in_refused(console_sign_in_attempt(server, email, first)[1])
    later = console_sign_in(server, email, second)
    cookie = later.cookie("gh_session")
    assert_api_error(api(server, "GET", "/oauth-clients", cookie=cookie), 403, "access_denied")

    # Role: the same session gains administrator access at once (the user is re-read).
    done = assert_json(admin.patch_user(email, {"role": "admin"}))
    assert done["role"] == "admin", done
    page_of(api(server, "GET", "/oauth-clients", cookie=cookie))
    done = assert_json(admin.patch_user(email, {"role": "user"}))
    assert done["role"] == "user", done
    assert_api_error(api(server, "GET", "/oauth-clients", cookie=cookie), 403, "access_denied")

    # Bad values change nothing.
    before = admin.user(email)
    for body, named in (({"role": "root"}, None), ({"disabled": "yes"}, None),
                        ({"email": "other@demo.test"}, None), ({"colour": "blue"}, "colour")):
        assert_api_error(admin.patch_user(email, body), 400, "invalid_request",
                         *([named] if named else []))
    assert admin.user(email) == before


def test_a_demoted_or_disabled_administrator_loses_access_at_once(server, admin):
    email = unique_email("second-admin")
    admin.add_user(email, "second admin password", "admin")
    other = open_session(server, email, "second admin password")
    assert other.role == "admin"
    token = other.mint(name=unique("second-admin"))["token"]
    page_of(api(server, "GET", "/oauth-clients", token=token))

    assert assert_json(admin.patch_user(email, {"role": "user"}))["role"] == "user"
    assert_unauthenticated(api(server, "GET", "/oauth-clients", token=token))
    assert_api_error(other.call("GET", "/oauth-clients", csrf=None), 403, "access_denied")

    assert assert_json(admin.patch_user(email, {"role": "admin"}))["role"] == "admin"
    page_of(other.call("GET", "/oauth-clients", csrf=None))
    assert assert_json(admin.patch_user(email, {"disabled": True}))["disabled"] is True
    assert_unauthenticated(api(server, "GET", "/oauth-clients", token=token))
    resp = other.call("GET", "/oauth-clients", csrf=None)
    assert resp[0] in (401, 403), resp


def test_an_administrator_cannot_demote_or_disable_themselves(server, admin):
    # A fresh administrator plays "themselves", so a wrong answer cannot lock out the demo
    # administrator the rest of the suite relies on.
    email = unique_email("self")
    admin.add_user(email, "self admin password", "admin")
    me = open_session(server, email, "self admin password")
    token = me.mint(name=unique("self"))["token"]
    path = f"/users/{urllib.parse.quote(email, safe='@')}"
    for body in ({"role": "user"}, {"disabled": True}, {"role": "user", "disabled": True}):
        assert_api_error(api(server, "PATCH", path, body, token=token), 400, "invalid_request")
        assert_api_error(me.call("PATCH", path, body), 400, "invalid_request")
    after = admin.user(email)
    assert after["role"] == "admin" and after["disabled"] is False, after
    page_of(api(server, "GET", "/oauth-clients", token=token))
    # The same administrator may still manage others.
    target = unique_email("managed")
    admin.add_user(target, "managed user password", "user")
    done = assert_json(api(server, "PATCH", f"/users/{target}", {"role": "admin"}, token=token))
    assert done["role"] == "admin"


def test_patch_unknown_user_is_404(server, admin):
    assert_api_error(admin.patch_user(unique_email("nobody"), {"role": "admin"}), 404, "not_found")
    assert_api_error(admin.patch_user(unique_email("nobody"), {"disabled": True}), 404, "not_found")


def test_console_sign_in_with_a_wrong_password_is_refused(server):
    _, resp = console_sign_in_attempt(server, ADMIN_EMAIL, "not-the-password")
    assert_sign_in_refused(resp)
