"""OpenID Connect, black box: the tenant switch, client registration, the authorization request
parameters, the ID token and the UserInfo endpoint, driven over HTTP like a browser and a
client would.

- The tenant setting `openid_enabled` (`GET|PATCH {issuer}/api/v1/settings`): a JSON boolean,
  off by default; on, the tenant allows `openid profile email` besides its own scopes.
- OpenID Connect Dynamic Client Registration 1.0 §2: `id_token_signed_response_alg` RS256 or
  ES256, anything else `invalid_client_metadata` (RFC 7591 §3.2.2).
- Core §3.1.2.1 / §3.1.2.6 / §6: `nonce`, `prompt`, `max_age`, `login_hint`, `response_mode`,
  `request`, `request_uri` at `{issuer}/oauth/authorize`; errors go back to an approved client
  with `error`, `state` and `iss` (RFC 9207), and are pages for a pending one. `prompt=none`
  never shows a page to the user: `login_required`, `consent_required`, or a code at once.
- Core §2, §3.1.3.3, §3.1.3.6, §3.1.3.7: the ID token of the code grant (with `openid`),
  checked here with PyJWT against the published JWKS; none without `openid`, none on a
  refresh (§12.2 allows it, Gatehouse does not).
- Core §5.3 and RFC 6750 §3.1: UserInfo at `{issuer}/oauth/userinfo`, GET and POST.

The demo tenant starts with `openid_enabled` off and the `server` fixture is shared by the whole
session: every test that needs it on takes the `oidc` fixture, which turns it off again whatever
happens (`openid_on`, try/finally).
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
import urllib.parse

import jwt  # PyJWT[crypto], pinned in tests/requirements.txt
import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    REFRESHING,
    Admin,
    Attempt,
    approve_as_admin,
    assert_api_error,
    assert_consent_page,
    assert_json,
    authorize,
    code_of,
    consent_code,
    page_form,
    register,
    unique,
    unique_email,
)
from conftest import DEMO_USER_PASSWORD, b64url, find_nulls, json_body, request  # noqa: E402
from test_authorization import (  # noqa: E402
    USER_EMAIL,
    Browser,
    Resp,
    assert_code_redirect,
    assert_error_redirect,
    assert_page,
    authorize_url,
    signed_in_browser,
)
from test_openid_discovery import openid_configuration, openid_on, set_openid  # noqa: E402
from test_dynamic_registration import assert_error as assert_registration_error  # noqa: E402
from test_tokens import (  # noqa: E402
    FORM,
    assert_tokens,
    exchange,
    jwks,
    refresh,
    revoke,
    verify,
)

ADMIN_EMAIL = "admin@demo.test"
OPENID_SCOPES = {"openid", "profile", "email"}
ID_TOKEN_CLAIMS = {"iss", "sub", "aud", "iat", "exp", "auth_time", "at_hash", "amr"}
# A nonce with characters that survive only if it is copied exactly (spaces, '+', '/', '=',
# non-ASCII), and one of exactly the longest accepted length.
ODD_NONCE = "n-0S6_WzA2Mj +/= \u00e9\u00df \U0001f511 'quoted' \"double\""
LONGEST_NONCE = "n" * 512


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    """The demo administrator: console session (its browser approves clients) and API token."""
    return Admin(server)


@pytest.fixture
def oidc(admin):
    """OpenID Connect on for the test, off again afterwards whatever happens."""
    with openid_on(admin):
        yield admin


@pytest.fixture(scope="module")
def user_browser(server) -> Browser:
    """A browser signed in as the demo (non-admin) user."""
    return signed_in_browser(server, USER_EMAIL, DEMO_USER_PASSWORD)


def approved_client(server, admin: Admin, **fields) -> dict:
    """A newly registered client the administrator approved (its first code unused)."""
    client = register(server, client_name=unique("oidc"), **fields)
    approve_as_admin(server, admin.browser, client)
    return client


def admin_tokens(server, admin: Admin, client: dict | None = None, how: str | None = None,
                 **params) -> tuple[dict, dict]:
    """(client, token response) for a code the administrator's browser gets with `params`
    (scope, nonce, ...); a new approved client unless one is given."""
    client = client or approved_client(server, admin, grant_types=REFRESHING)
    code = consent_code(server, admin.browser, client, **params)
    return client, assert_tokens(exchange(server, client, code, how))


def at_hash(access_token: str) -> str:
    """Core §3.1.3.6: base64url of the left half of the SHA-256 of the token's ASCII octets."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16])


def id_token_claims(server, client: dict, id_token: str, alg: str = "RS256") -> dict:
    """Core §3.1.3.7, done here: `typ` JWT, `alg` as registered, `kid` in the JWKS, the
    signature, `iss`, `aud`, `exp`, `iat`."""
    header = jwt.get_unverified_header(id_token)
    assert header.get("alg") == alg, header
    assert header.get("typ") == "JWT", header
    keys = [k for k in jwks(server)["keys"] if k.get("kid") == header.get("kid")]
    assert len(keys) == 1, f"kid {header.get('kid')!r} is not (once) in the JWKS"
    assert keys[0].get("kty") == ("RSA" if alg == "RS256" else "EC"), keys[0]
    key = jwt.PyJWK(keys[0], algorithm=alg)
    claims = jwt.decode(id_token, key.key, algorithms=[alg], audience=client["client_id"],
                        issuer=server.issuer,
                        options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    assert claims["aud"] in (client["client_id"], [client["client_id"]]), claims
    assert find_nulls(claims) == [], claims
    return claims


def assert_id_token(server, client: dict, body: dict, *, alg: str = "RS256",
                    nonce: str | None = None, email: str | None = None) -> dict:
    """The ID token of a token response: every claim Gatehouse promises, exactly."""
    assert isinstance(body.get("id_token"), str), f"no id_token: {body}"
    claims = id_token_claims(server, client, body["id_token"], alg)
    missing = ID_TOKEN_CLAIMS - set(claims)
    assert not missing, f"claims missing from the ID token: {sorted(missing)}: {claims}"
    assert claims["iss"] == server.issuer
    assert claims["sub"] == verify(server, body["access_token"])["sub"], claims
    for name in ("iat", "exp", "auth_time"):
        assert isinstance(claims[name], int) and not isinstance(claims[name], bool), claims
    assert abs(claims["iat"] - time.time()) < 60, claims
    assert claims["exp"] > claims["iat"], claims
    assert claims["auth_time"] <= claims["iat"], claims
    assert claims["at_hash"] == at_hash(body["access_token"]), claims
    assert claims["amr"] == ["pwd"], claims
    if nonce is None:
        assert "nonce" not in claims, claims
    else:
        assert claims["nonce"] == nonce, claims
    if email is None:
        assert "email" not in claims and "email_verified" not in claims, claims
    else:
        assert claims["email"] == email, claims
        assert isinstance(claims["email_verified"], bool), claims
    return claims


def userinfo_url(server) -> str:
    return f"{server.issuer}/oauth/userinfo"


def userinfo(server, token: str | None, method: str = "GET", scheme: str = "Bearer"):
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    if method == "POST":
        return request("POST", userinfo_url(server), b"", {**headers, "Content-Type": FORM})
    return request(method, userinfo_url(server), None, headers)


def assert_userinfo(resp) -> dict:
    status, headers, raw = resp
    assert status == 200, f"expected the UserInfo claims, got {status}: {raw[:800]!r} {headers}"
    assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    assert "no-store" in headers.get("cache-control", "").lower(), headers
    body = json_body(resp)
    assert isinstance(body, dict) and isinstance(body.get("sub"), str) and body["sub"], body
    assert find_nulls(body) == [], body
    return body


def assert_bearer_error(resp, status: int, error: str) -> None:
    """RFC 6750 §3 / §3.1: the status and a `Bearer` challenge naming the error."""
    code, headers, raw = resp
    assert code == status, f"expected {status} {error}, got {code}: {raw[:800]!r}"
    challenge = headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer"), headers
    assert f'error="{error}"' in challenge, f"{error} not in the challenge: {challenge!r}"


def is_sign_in_page(resp: Resp) -> bool:
    return resp.status == 200 and any(f.fields.get("action") == "sign_in" for f in resp.forms)


def sign_in_then_code(server, browser: Browser, attempt: Attempt, email: str,
                      password: str):
    """Sign in on the sign-in page of `attempt`, consent if asked; the code."""
    assert is_sign_in_page(attempt.resp), f"expected the sign-in page: {attempt.resp!r}"
    resp = browser.submit(page_form(attempt.resp, "sign_in"), email=email, password=password)
    if resp.status == 200:
        resp = browser.submit(assert_consent_page(resp), "approve")
    return code_of(server, attempt, resp)


def new_user(admin: Admin) -> tuple[str, str]:
    email = unique_email("oidc")
    password = "pw-" + secrets.token_urlsafe(12)
    admin.add_user(email, password)
    return email, password


# --------------------------------------------------------------------------------------------
# The tenant setting
# --------------------------------------------------------------------------------------------


def test_openid_enabled_is_a_setting_that_starts_off(server, admin):
    settings = admin.settings()
    assert settings.get("openid_enabled") is False, settings


@pytest.mark.parametrize("value", ["true", "on", 1, 0, None, [], {}, [True]],
                         ids=lambda v: repr(v))
def test_openid_enabled_must_be_a_boolean(server, admin, value):
    before = admin.settings()
    try:
        assert_api_error(admin.patch_settings({"openid_enabled": value}), 400, "invalid_request",
                         "openid_enabled")
        assert admin.settings() == before, "a refused PATCH changed the settings"
    finally:
        set_openid(admin, False)


def test_turning_it_on_and_off_shows_in_the_settings(server, admin):
    with openid_on(admin):
        assert admin.settings()["openid_enabled"] is True
    assert admin.settings()["openid_enabled"] is False


def test_with_openid_on_a_registration_without_scope_gets_the_openid_scopes(server, oidc):
    allowed = set(oidc.settings()["allowed_scopes"].split())
    client = register(server, client_name=unique("oidc-default-scope"))
    assert set(client["scope"].split()) == allowed | OPENID_SCOPES, client
    named = register(server, client_name=unique("oidc-named"), scope="openid email")
    assert set(named["scope"].split()) == {"openid", "email"}, named


def test_with_openid_off_the_openid_scope_is_unknown(server, admin):
    assert admin.settings()["openid_enabled"] is False
    client = register(server, client_name=unique("oidc-off"))
    assert not OPENID_SCOPES & set(client["scope"].split()), client
    resp = request("POST", server.register_url, {
        "client_name": unique("oidc-off"), "redirect_uris": ["https://agent.example.com/cb"],
        "scope": "openid"})
    assert_registration_error(resp, 400, "invalid_client_metadata")


# --------------------------------------------------------------------------------------------
# Registration: id_token_signed_response_alg
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_id_token_signing_alg_is_accepted_and_echoed(server, alg):
    client = register(server, client_name=unique("oidc-alg"), id_token_signed_response_alg=alg)
    assert client.get("id_token_signed_response_alg") == alg, client


def test_id_token_signing_alg_is_part_of_the_client_configuration(server):
    """RFC 7592 §2.1: reading the client's configuration returns what it registered."""
    client = register(server, client_name=unique("oidc-alg"), id_token_signed_response_alg="ES256")
    resp = request("GET", client["registration_client_uri"], None,
                   {"Authorization": f"Bearer {client['registration_access_token']}"})
    assert resp[0] == 200, resp
    assert json_body(resp).get("id_token_signed_response_alg") == "ES256", resp


@pytest.mark.parametrize("alg", ["none", "HS256", "RS384", "ES512", "PS256", "rs256", "", 5,
                                 ["RS256"], True], ids=lambda v: repr(v))
def test_other_id_token_signing_algs_are_invalid_client_metadata(server, alg):
    resp = request("POST", server.register_url, {
        "client_name": unique("oidc-bad-alg"), "redirect_uris": ["https://agent.example.com/cb"],
        "id_token_signed_response_alg": alg})
    body = assert_registration_error(resp, 400, "invalid_client_metadata")
    assert "id_token_signed_response_alg" in body["error_description"], body


# --------------------------------------------------------------------------------------------
# The authorization request: bad parameters
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def approved(server, admin) -> dict:
    """An approved client registered while OpenID Connect was on (so its scopes include
    `openid`): request errors go back to it. Errors change nothing about it, so the module's
    tests share it."""
    with openid_on(admin):
        return approved_client(server, admin)


BAD_PARAMETERS = [
    ("nonce of 513 characters", {"nonce": "n" * 513}, [], "invalid_request"),
    ("prompt none with login", {"prompt": "none login"}, [], "invalid_request"),
    ("prompt login with none", {"prompt": "login none"}, [], "invalid_request"),
    ("prompt none with consent", {"prompt": "none consent"}, [], "invalid_request"),
    ("prompt none with select_account", {"prompt": "select_account none"}, [],
     "invalid_request"),
    ("prompt unknown", {"prompt": "bogus"}, [], "invalid_request"),
    ("prompt unknown among known", {"prompt": "login bogus"}, [], "invalid_request"),
    ("prompt in capitals", {"prompt": "NONE"}, [], "invalid_request"),
    ("max_age negative", {"max_age": "-1"}, [], "invalid_request"),
    ("max_age a word", {"max_age": "ten"}, [], "invalid_request"),
    ("max_age a fraction", {"max_age": "1.5"}, [], "invalid_request"),
    ("max_age an exponent", {"max_age": "1e3"}, [], "invalid_request"),
    ("response_mode fragment", {"response_mode": "fragment"}, [], "invalid_request"),
    ("response_mode form_post", {"response_mode": "form_post"}, [], "invalid_request"),
    ("response_mode query.jwt", {"response_mode": "query.jwt"}, [], "invalid_request"),
    ("request object", {"request": "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."}, [],
     "request_not_supported"),
    ("request_uri https", {"request_uri": "https://client.example.com/request/1"}, [],
     "request_uri_not_supported"),
    ("request_uri urn", {"request_uri": "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc"},
     [], "request_uri_not_supported"),
    # RFC 6749 §3.1: no parameter twice
    ("nonce repeated", {"nonce": "a"}, [("nonce", "b")], "invalid_request"),
    ("prompt repeated", {"prompt": "login"}, [("prompt", "login")], "invalid_request"),
    ("max_age repeated", {"max_age": "60"}, [("max_age", "60")], "invalid_request"),
]


@pytest.mark.parametrize("overrides, extra, error", [case[1:] for case in BAD_PARAMETERS],
                         ids=[case[0] for case in BAD_PARAMETERS])
def test_bad_openid_parameters_are_redirected_with_state_and_iss(server, oidc, approved,
                                                                  overrides, extra, error):
    state = "st-" + secrets.token_urlsafe(8)
    url = authorize_url(server, approved, extra=extra, state=state, scope="mcp:execute",
                        **overrides)
    resp = Browser(server).get(url)
    assert resp.status == 302, resp
    assert_error_redirect(resp, server, approved["redirect_uris"][0], error, state)


@pytest.mark.parametrize("overrides, extra, error", [case[1:] for case in BAD_PARAMETERS],
                         ids=[case[0] for case in BAD_PARAMETERS])
def test_bad_openid_parameters_of_a_pending_client_are_a_page(server, oidc, overrides, extra,
                                                              error):
    """A pending client's redirect URI is only what its registrant claimed: the error is
    shown here, never sent there."""
    client = register(server, client_name=unique("oidc-pending"))
    resp = Browser(server).get(authorize_url(server, client, extra=extra, state="pending",
                                             **overrides))
    assert_page(resp, 400, error)


@pytest.mark.parametrize("params", [
    {"nonce": LONGEST_NONCE},
    {"nonce": ODD_NONCE},
    {"prompt": "login"},
    {"prompt": "consent"},
    {"prompt": "login consent"},
    {"prompt": "select_account"},
    {"max_age": "0"},
    {"max_age": "3600"},
    {"response_mode": "query"},
    {"login_hint": "someone@demo.test"},
], ids=lambda p: "&".join(f"{k}={v[:20]}" for k, v in p.items()))
def test_well_formed_openid_parameters_lead_to_the_sign_in_page(server, oidc, approved, params):
    resp = Browser(server).get(authorize_url(server, approved, scope="openid", **params))
    assert_page(resp, 200, "Sign in")
    assert is_sign_in_page(resp), resp


# --------------------------------------------------------------------------------------------
# login_hint
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hint", ["someone@demo.test", '"><script>alert(1)</script>',
                                  "a&b <i>@demo.test"])
def test_login_hint_prefills_the_email_field(server, oidc, approved, hint):
    resp = Browser(server).get(authorize_url(server, approved, login_hint=hint))
    assert_page(resp, 200, "Sign in")
    form = page_form(resp, "sign_in")
    assert form.fields.get("email") == hint, form.fields
    assert "<script>alert(1)</script>" not in resp.body and "<i>" not in resp.body, (
        "the hint reached the page unescaped")


# --------------------------------------------------------------------------------------------
# prompt=none (Core §3.1.2.6): never a page for the user
# --------------------------------------------------------------------------------------------


def test_prompt_none_without_a_session_is_login_required(server, oidc, approved):
    state = "st-" + secrets.token_urlsafe(6)
    resp = Browser(server).get(authorize_url(server, approved, prompt="none", state=state))
    assert_error_redirect(resp, server, approved["redirect_uris"][0], "login_required", state)


def test_prompt_none_without_consent_is_consent_required(server, oidc, admin, user_browser):
    client = approved_client(server, admin)
    state = "st-" + secrets.token_urlsafe(6)
    resp = user_browser.get(authorize_url(server, client, prompt="none", state=state))
    assert_error_redirect(resp, server, client["redirect_uris"][0], "consent_required", state)
    # Without prompt=none the user is asked.
    assert_consent_page(user_browser.authorize(client))


def test_prompt_none_signed_in_and_consented_is_a_code_at_once(server, oidc, admin,
                                                               user_browser):
    client = approved_client(server, admin)
    consent_code(server, user_browser, client)
    state = "st-" + secrets.token_urlsafe(6)
    resp = user_browser.get(authorize_url(server, client, prompt="none", state=state))
    assert resp.status == 302, resp
    assert_code_redirect(resp, server, client["redirect_uris"][0], state, statuses=(302,))


@pytest.mark.parametrize("who", ["nobody", "administrator"])
def test_prompt_none_for_a_pending_client_is_a_page_never_a_redirect(server, oidc, admin, who):
    client = register(server, client_name=unique("oidc-pending"))
    browser = Browser(server) if who == "nobody" else admin.browser
    resp = browser.get(authorize_url(server, client, prompt="none", state="pending"))
    assert 400 <= resp.status < 500, f"expected an error page, got {resp!r}"
    assert resp.location is None, f"a pending client's redirect URI was used: {resp!r}"
    assert resp.headers.get("content-type", "").split(";")[0].strip().lower() == "text/html"
    # Nothing was decided: the administrator still sees the approval page.
    approve_as_admin(server, admin.browser, client)


# --------------------------------------------------------------------------------------------
# prompt=login, max_age, prompt=consent
# --------------------------------------------------------------------------------------------


def fresh_user_session(server, admin: Admin, client: dict, scope: str = "openid"):
    """A new account signed in right now through the hosted flow of `client` (consenting).
    Returns (browser, email, password, the time just before signing in)."""
    email, password = new_user(admin)
    browser = Browser(server)
    before = int(time.time())
    attempt = authorize(server, browser, client, scope=scope)
    sign_in_then_code(server, browser, attempt, email, password)
    return browser, email, password, before


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "0"}],
                         ids=["prompt=login", "max_age=0"])
def test_a_fresh_sign_in_is_asked_for_even_right_after_signing_in(server, oidc, admin, params):
    """Core §3.1.2.1: `prompt=login` makes the user sign in again, and `max_age=0` is the same
    thing. The session a moment old does not answer it; a new sign-in does, and `auth_time`
    says when it happened."""
    client = approved_client(server, admin)
    browser, email, password, _ = fresh_user_session(server, admin, client)
    attempt = authorize(server, browser, client, scope="openid", **params)
    assert is_sign_in_page(attempt.resp), f"{params}: no sign-in page: {attempt.resp!r}"
    before = int(time.time())
    code = sign_in_then_code(server, browser, attempt, email, password)
    claims = assert_id_token(server, client, assert_tokens(exchange(server, client, code)))
    assert claims["auth_time"] >= before, claims


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "0"}],
                         ids=["prompt=login", "max_age=0"])
def test_the_refused_session_cannot_answer_the_requests_forms(server, oidc, admin, params):
    """The sign-in page of a `prompt=login` request carries the request's form fields; posting
    them as a consent decision with the session the request refused must not issue a code:
    only a sign-in on this page does."""
    client = approved_client(server, admin)
    browser, email, password, _ = fresh_user_session(server, admin, client)
    attempt = authorize(server, browser, client, scope="openid", **params)
    form = page_form(attempt.resp, "sign_in")
    skipped = browser.submit(form, action="decide", decision="approve", email=None,
                             password=None)
    assert skipped.status == 200 and is_sign_in_page(skipped), (
        f"the refused session answered the request: {skipped!r}")
    assert "code=" not in (skipped.location or "")
    # Signing in on the page still works, and the code is for the fresh sign-in.
    before = int(time.time())
    resp = browser.submit(page_form(skipped, "sign_in"), email=email, password=password)
    if resp.status == 200:
        resp = browser.submit(assert_consent_page(resp), "approve")
    claims = assert_id_token(server, client, assert_tokens(exchange(
        server, client, code_of(server, attempt, resp))))
    assert claims["auth_time"] >= before, claims


def test_an_older_session_than_max_age_signs_in_again_and_a_younger_one_does_not(
        server, oidc, admin):
    client = approved_client(server, admin)
    browser, email, password, before = fresh_user_session(server, admin, client)
    # A session younger than max_age: a code at once, auth_time the session's sign-in.
    attempt = authorize(server, browser, client, scope="openid", max_age="3600")
    claims = assert_id_token(server, client, assert_tokens(exchange(
        server, client, code_of(server, attempt))))
    assert before <= claims["auth_time"] <= int(time.time()), claims
    time.sleep(2.1)
    # Too old, and prompt=none forbids asking: login_required (Core §3.1.2.6).
    state = "st-" + secrets.token_urlsafe(6)
    resp = browser.get(authorize_url(server, client, scope="openid", max_age="1", prompt="none",
                                     state=state))
    assert_error_redirect(resp, server, client["redirect_uris"][0], "login_required", state)
    attempt = authorize(server, browser, client, scope="openid", max_age="1")
    assert is_sign_in_page(attempt.resp), f"session older than max_age: {attempt.resp!r}"
    code = sign_in_then_code(server, browser, attempt, email, password)
    later = assert_id_token(server, client, assert_tokens(exchange(server, client, code)))
    assert later["auth_time"] > claims["auth_time"], (claims, later)


def test_prompt_login_asks_an_older_session_to_sign_in_again(server, oidc, admin, user_browser):
    client = approved_client(server, admin)
    consent_code(server, user_browser, client)
    time.sleep(1.1)  # the session is surely from an earlier second than the request
    attempt = authorize(server, user_browser, client, prompt="login")
    assert is_sign_in_page(attempt.resp), f"prompt=login: no sign-in page: {attempt.resp!r}"
    sign_in_then_code(server, user_browser, attempt, USER_EMAIL, DEMO_USER_PASSWORD)


def test_prompt_consent_asks_for_consent_the_user_already_gave(server, oidc, admin,
                                                               user_browser):
    client = approved_client(server, admin)
    consent_code(server, user_browser, client)
    code_of(server, authorize(server, user_browser, client))  # consent on record: a code
    attempt = authorize(server, user_browser, client, prompt="consent")
    form = assert_consent_page(attempt.resp)
    code_of(server, attempt, user_browser.submit(form, "approve"))


# --------------------------------------------------------------------------------------------
# The ID token (Core §2, §3.1.3.3)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", [ODD_NONCE, LONGEST_NONCE], ids=["odd", "longest"])
def test_code_with_openid_yields_a_verifiable_rs256_id_token(server, oidc, nonce):
    client, body = admin_tokens(server, oidc, scope="openid email mcp:execute", nonce=nonce)
    assert set(body["scope"].split()) == {"openid", "email", "mcp:execute"}, body
    claims = assert_id_token(server, client, body, nonce=nonce, email=ADMIN_EMAIL)
    assert claims["aud"] in (client["client_id"], [client["client_id"]])


def test_client_registered_for_es256_gets_an_es256_id_token(server, oidc):
    client = approved_client(server, oidc, id_token_signed_response_alg="ES256")
    _, body = admin_tokens(server, oidc, client, scope="openid", nonce="es")
    assert_id_token(server, client, body, alg="ES256", nonce="es")


def test_public_client_gets_an_id_token_too(server, oidc):
    client = approved_client(server, oidc, token_endpoint_auth_method="none")
    _, body = admin_tokens(server, oidc, client, how="none", scope="openid email")
    assert_id_token(server, client, body, email=ADMIN_EMAIL)


def test_no_nonce_sent_no_nonce_claim_and_no_email_without_the_email_scope(server, oidc):
    client, body = admin_tokens(server, oidc, scope="openid profile")
    assert_id_token(server, client, body, nonce=None, email=None)


def test_jwks_publishes_an_rsa_key_for_id_tokens(server, oidc):
    keys = [k for k in jwks(server)["keys"] if k.get("kty") == "RSA"]
    assert keys, "no RSA key in the JWKS"
    for key in keys:
        assert key.get("kid") and key.get("n") and key.get("e"), key
        assert key.get("use", "sig") == "sig" and key.get("alg", "RS256") == "RS256", key
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), f"private parameters: {key}"


@pytest.mark.parametrize("scope", ["mcp:execute", "email mcp:execute", "user_default"])
def test_no_id_token_without_the_openid_scope(server, oidc, scope):
    _, body = admin_tokens(server, oidc, scope=scope, nonce="unused")
    assert "id_token" not in body, body


def test_no_id_token_on_a_refresh(server, oidc):
    client, body = admin_tokens(server, oidc, scope="openid email offline_access")
    assert "id_token" in body and "refresh_token" in body, body
    refreshed = assert_tokens(refresh(server, client, body["refresh_token"]), refresh_token=True)
    assert "id_token" not in refreshed, refreshed


def test_sub_is_the_same_for_every_client(server, oidc):
    """`subject_types_supported` says `public` (test_openid_discovery.py): one `sub` per user,
    whatever the client."""
    one_client, one = admin_tokens(server, oidc, scope="openid")
    two_client, two = admin_tokens(server, oidc, scope="openid")
    assert (id_token_claims(server, one_client, one["id_token"])["sub"]
            == id_token_claims(server, two_client, two["id_token"])["sub"])


def test_id_token_of_a_signed_in_user_names_that_user(server, oidc):
    client = approved_client(server, oidc)
    email, password = new_user(oidc)
    browser = Browser(server)
    before = int(time.time())
    attempt = authorize(server, browser, client, scope="openid email", nonce="user")
    code = sign_in_then_code(server, browser, attempt, email, password)
    body = assert_tokens(exchange(server, client, code))
    claims = assert_id_token(server, client, body, nonce="user", email=email)
    assert before <= claims["auth_time"] <= claims["iat"], claims
    assert claims["sub"] == assert_userinfo(userinfo(server, body["access_token"]))["sub"]


# --------------------------------------------------------------------------------------------
# UserInfo (Core §5.3, RFC 6750)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_returns_the_users_claims(server, oidc, method):
    client, body = admin_tokens(server, oidc, scope="openid email")
    info = assert_userinfo(userinfo(server, body["access_token"], method))
    assert info["sub"] == id_token_claims(server, client, body["id_token"])["sub"]
    assert info.get("email") == ADMIN_EMAIL, info
    assert isinstance(info.get("email_verified"), bool), info
    supported = set(openid_configuration(server)["claims_supported"])
    assert set(info) <= supported, f"claims not in claims_supported: {set(info) - supported}"


def test_userinfo_is_readable_cross_origin(server, oidc):
    """Core §5.3: UserInfo SHOULD support CORS, for JavaScript clients: a preflight for a GET
    with `Authorization`, and the answer readable by any origin."""
    _, body = admin_tokens(server, oidc, scope="openid")
    origin = {"Origin": "https://app.example.com"}
    pre = request("OPTIONS", userinfo_url(server), None, {
        **origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre[0] in (200, 204), pre
    assert pre[1].get("access-control-allow-origin") == "*", pre[1]
    allowed = [h.strip().lower() for h in pre[1].get("access-control-allow-headers", "").split(",")]
    assert "authorization" in allowed, pre[1]
    resp = request("GET", userinfo_url(server), None,
                   {**origin, "Authorization": f"Bearer {body['access_token']}"})
    assert_userinfo(resp)
    assert resp[1].get("access-control-allow-origin") == "*", resp[1]


def test_userinfo_without_the_email_scope_has_no_email(server, oidc):
    _, body = admin_tokens(server, oidc, scope="openid")
    info = assert_userinfo(userinfo(server, body["access_token"]))
    assert "email" not in info and "email_verified" not in info, info


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_without_a_token_is_a_401_bearer_challenge(server, oidc, method):
    """RFC 6750 §3.1: a request without credentials gets the challenge, with no error code
    or with `invalid_token`."""
    resp = userinfo(server, None, method)
    assert resp[0] == 401, resp
    challenge = resp[1].get("www-authenticate", "")
    assert challenge.startswith("Bearer"), resp[1]
    if "error=" in challenge:
        assert 'error="invalid_token"' in challenge, challenge


@pytest.mark.parametrize("what", ["garbage", "tampered", "id_token", "refresh_token",
                                  "basic_scheme"])
def test_userinfo_with_an_invalid_token_is_401_invalid_token(server, oidc, what):
    _, body = admin_tokens(server, oidc, scope="openid email offline_access")
    header, payload, signature = body["access_token"].split(".")
    token = {
        "garbage": "not-a-token",
        "tampered": f"{header}.{payload}.{signature[:-4]}AAAA",
        "id_token": body["id_token"],
        "refresh_token": body["refresh_token"],
        "basic_scheme": body["access_token"],
    }[what]
    scheme = "Basic" if what == "basic_scheme" else "Bearer"
    resp = userinfo(server, token, scheme=scheme)
    if what == "basic_scheme":
        assert resp[0] == 401 and resp[1].get("www-authenticate", "").startswith("Bearer"), resp
    else:
        assert_bearer_error(resp, 401, "invalid_token")
    # The genuine token still works.
    assert_userinfo(userinfo(server, body["access_token"]))


def test_userinfo_without_the_openid_scope_is_403_insufficient_scope(server, oidc):
    _, body = admin_tokens(server, oidc, scope="email mcp:execute")
    assert_bearer_error(userinfo(server, body["access_token"]), 403, "insufficient_scope")


@pytest.mark.parametrize("revoked", ["refresh_token", "access_token"])
def test_userinfo_after_revocation_is_401_invalid_token(server, oidc, revoked):
    client, body = admin_tokens(server, oidc, scope="openid email offline_access")
    assert_userinfo(userinfo(server, body["access_token"]))
    resp = revoke(server, client, body[revoked])
    assert resp[0] == 200, resp
    assert_bearer_error(userinfo(server, body["access_token"]), 401, "invalid_token")


def test_userinfo_for_a_disabled_user_is_401_invalid_token(server, oidc):
    client = approved_client(server, oidc)
    email, password = new_user(oidc)
    browser = Browser(server)
    attempt = authorize(server, browser, client, scope="openid email")
    body = assert_tokens(exchange(server, client, sign_in_then_code(
        server, browser, attempt, email, password)))
    assert assert_userinfo(userinfo(server, body["access_token"])).get("email") == email
    assert_json(oidc.patch_user(email, {"disabled": True}))
    assert_bearer_error(userinfo(server, body["access_token"]), 401, "invalid_token")
    assert_json(oidc.patch_user(email, {"disabled": False}))
    # Re-enabling does not revive tokens issued before (the grants were revoked).
    assert_bearer_error(userinfo(server, body["access_token"]), 401, "invalid_token")


def test_userinfo_of_another_tenant_refuses_the_token(server, oidc, start_server):
    """A token is good at its own issuer only. In DynamoDB mode the other tenant shares the
    table (and perhaps the signing keys); in embedded mode it is another server's tenant.
    Either way it has OpenID Connect on, so only the issuer can tell."""
    _, body = admin_tokens(server, oidc, scope="openid email")
    if server.mode == "dynamodb":
        from test_operator_cli import cli, ok

        tenant = f"oidc-{secrets.token_hex(4)}"
        ok(cli(server, "tenant", "create", tenant, "--name", "Another tenant"))
        ok(cli(server, "tenant", "set", tenant, "openid_enabled=true"))
        other = f"{server.base}/t/{tenant}/oauth/userinfo"
    else:
        srv = start_server()
        set_openid(Admin(srv), True)
        other = userinfo_url(srv)
    resp = request("GET", other, None, {"Authorization": f"Bearer {body['access_token']}"})
    assert_bearer_error(resp, 401, "invalid_token")
    assert_userinfo(userinfo(server, body["access_token"]))


def test_userinfo_url_is_the_one_discovery_advertises(server, oidc):
    assert openid_configuration(server)["userinfo_endpoint"] == userinfo_url(server)
    parts = urllib.parse.urlsplit(userinfo_url(server))
    assert parts.path == "/t/demo/oauth/userinfo"


# --------------------------------------------------------------------------------------------
# The name claim: stored by an administrator on the user record, released by `profile`
# --------------------------------------------------------------------------------------------


def test_profile_releases_the_name_an_administrator_stored(server, oidc):
    client = approved_client(server, oidc)
    email, password = unique_email("named"), "pw-" + secrets.token_urlsafe(12)
    added = assert_json(oidc.api("POST", "/users", {
        "email": email, "password": password, "role": "user", "name": "  Ada Lovelace "}), 201)
    assert added["name"] == "Ada Lovelace", added
    browser = Browser(server)
    attempt = authorize(server, browser, client, scope="openid profile")
    body = assert_tokens(exchange(server, client, sign_in_then_code(
        server, browser, attempt, email, password)))
    claims = assert_id_token(server, client, body)
    assert claims["name"] == "Ada Lovelace", claims
    assert assert_userinfo(userinfo(server, body["access_token"]))["name"] == "Ada Lovelace"
    # Read at each call: a rename shows in UserInfo at once; clearing it removes the claim.
    assert assert_json(oidc.patch_user(email, {"name": "Augusta Ada King"}))["name"] == (
        "Augusta Ada King")
    assert assert_userinfo(userinfo(server, body["access_token"]))["name"] == "Augusta Ada King"
    assert "name" not in assert_json(oidc.patch_user(email, {"name": None}))
    assert "name" not in assert_userinfo(userinfo(server, body["access_token"]))
    # Without `profile` the name is not released.
    assert assert_json(oidc.patch_user(email, {"name": "Ada"}))["name"] == "Ada"
    attempt = authorize(server, browser, client, scope="openid email")
    other = assert_tokens(exchange(server, client, consent_code_of(server, browser, attempt)))
    assert "name" not in assert_id_token(server, client, other, email=email)
    assert "name" not in assert_userinfo(userinfo(server, other["access_token"]))


@pytest.mark.parametrize("bad", [5, True, ["Ada"], {"first": "Ada"}, "x" * 101, "Ada\u202eecalevol",
                                 "Ada\nLovelace"])
def test_a_bad_user_name_is_refused_and_changes_nothing(server, admin, bad):
    email = unique_email("badname")
    assert_api_error(admin.api("POST", "/users", {
        "email": email, "password": "pw-" + secrets.token_urlsafe(12), "role": "user",
        "name": bad}), 400, "invalid_request", "name")
    assert admin.user(email) is None, "a refused user is not created"
    email, _ = new_user(admin)
    assert_api_error(admin.patch_user(email, {"name": bad}), 400, "invalid_request", "name")
    assert "name" not in admin.user(email), "a refused edit applies nothing"


def consent_code_of(server, browser: Browser, attempt: Attempt):
    """The code of `attempt` in a signed-in browser, consenting when asked."""
    if attempt.resp.status == 200:
        return code_of(server, attempt, browser.submit(assert_consent_page(attempt.resp),
                                                         "approve"))
    return code_of(server, attempt)


# --------------------------------------------------------------------------------------------
# id_token_hint (Core §3.1.2.1): silent renewal for the user the client knows
# --------------------------------------------------------------------------------------------


def test_id_token_hint_of_the_signed_in_user_renews_silently(server, oidc):
    client, body = admin_tokens(server, oidc, scope="openid")
    state = "st-" + secrets.token_urlsafe(6)
    resp = oidc.browser.get(authorize_url(server, client, scope="openid", prompt="none",
                                          id_token_hint=body["id_token"], state=state))
    assert_code_redirect(resp, server, client["redirect_uris"][0], state, statuses=(302,))


def test_id_token_hint_of_another_user_is_not_answered_by_this_session(server, oidc):
    """The browser's session is the administrator's; the hint names another user of the same
    client: `prompt=none` gets `login_required`, and without it the sign-in page is shown and
    the administrator's session cannot answer its forms."""
    client = approved_client(server, oidc)
    _, email, password, _ = fresh_user_session(server, oidc, client)
    browser = Browser(server)
    attempt = authorize(server, browser, client, scope="openid")
    other = assert_tokens(exchange(server, client, sign_in_then_code(
        server, browser, attempt, email, password)))
    consent_code(server, oidc.browser, client, scope="openid")
    state = "st-" + secrets.token_urlsafe(6)
    resp = oidc.browser.get(authorize_url(server, client, scope="openid", prompt="none",
                                          id_token_hint=other["id_token"], state=state))
    assert_error_redirect(resp, server, client["redirect_uris"][0], "login_required", state)
    attempt = authorize(server, oidc.browser, client, scope="openid",
                        id_token_hint=other["id_token"])
    assert is_sign_in_page(attempt.resp), attempt.resp
    skipped = oidc.browser.submit(page_form(attempt.resp, "sign_in"), action="decide",
                                  decision="approve", email=None, password=None)
    assert is_sign_in_page(skipped), skipped


@pytest.mark.parametrize("what", ["garbage", "access token", "another client's ID token",
                                  "tampered"])
def test_a_bad_id_token_hint_is_invalid_request(server, oidc, what):
    client, body = admin_tokens(server, oidc, scope="openid")
    _, other_body = admin_tokens(server, oidc, scope="openid")
    header, _, signature = body["id_token"].split(".")
    claims = b64url(b'{"sub":"someone-else"}')
    hint = {
        "garbage": "not-a-jwt",
        "access token": body["access_token"],
        "another client's ID token": other_body["id_token"],
        "tampered": f"{header}.{claims}.{signature}",
    }[what]
    state = "st-" + secrets.token_urlsafe(6)
    resp = oidc.browser.get(authorize_url(server, client, scope="openid", prompt="none",
                                          id_token_hint=hint, state=state))
    params = assert_error_redirect(resp, server, client["redirect_uris"][0], "invalid_request",
                                   state)
    assert "id_token_hint" in params["error_description"], params
