"""The token endpoint and its companions, black box: `POST {issuer}/oauth/token`,
`POST {issuer}/oauth/revoke`, `POST {issuer}/oauth/introspect` and `GET {issuer}/jwks.json`.

Sections follow the specifications:
- RFC 6749 §3.2 / §5.1 / §5.2: form-encoded requests, `no-store` JSON answers, error codes.
- RFC 6749 §2.3.1 / §3.2.1: client authentication (`client_secret_basic`, `client_secret_post`,
  `none`), `401 invalid_client` with a `Basic` challenge when Basic was tried.
- RFC 6749 §4.1.3 / RFC 7636 §4.6 / RFC 8707 §2.2: the code exchange (PKCE, redirect URI,
  resource), one-time codes, replay revoking what the code produced (RFC 9700 §4.5).
- RFC 6749 §6 / RFC 9700 §4.14: refresh with rotation, a grace window for concurrent refreshes,
  reuse after it revoking the grant, scope narrowing.
- RFC 9068 / RFC 7517: access tokens are ES256 JWTs (`typ: at+jwt`) verified here, independently
  of the server, with PyJWT against the published JWKS.
- RFC 8414 (endpoints advertised), RFC 7009 (revocation), RFC 7662 (introspection).

Codes are obtained like a browser would: the demo administrator signs in once per server
(module-scoped), approves each new client on its first authorization, and later
authorizations of that client come straight back (302) with a code.
"""

from __future__ import annotations

import base64
import http.cookiejar
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser

import jwt  # PyJWT[crypto], pinned in tests/requirements.txt
import pytest

from conftest import (
    Pkce,
    b64url,
    DEMO_ADMIN_PASSWORD,
    HTTP_TIMEOUT_S,
    MODES,
    json_body,
    request,
)

ADMIN_EMAIL = "admin@demo.test"
REDIRECT_URI = "https://agent.example.com/cb"
FORM = "application/x-www-form-urlencoded"
REFRESHING = ["authorization_code", "refresh_token"]

# --------------------------------------------------------------------------------------------
# Helpers: PKCE, a minimal browser, the authorization flow
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """An authorization code and what the client must present with it."""

    code: str
    verifier: str
    redirect_uri: str


class _Forms(HTMLParser):
    """Each form's action, inputs (name → value) and named buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and a.get("name"):
            # An unticked checkbox is not submitted (HTML "constructing the entry list").
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def only_form(html: str) -> dict:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    assert len(parser.forms) == 1, f"expected one form on the page:\n{html[-2000:]}"
    return parser.forms[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie jar and an opener that never follows redirects."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPCookieProcessor(self.jar))

    def send(self, url: str, fields: dict | None = None) -> tuple[int, dict, str]:
        data = None if fields is None else urllib.parse.urlencode(fields).encode("utf-8")
        req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={} if data is None else {"Content-Type": FORM})
        try:
            resp = self.opener.open(req, timeout=HTTP_TIMEOUT_S)
        except urllib.error.HTTPError as err:
            resp = err
        try:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, headers, resp.read().decode("utf-8", errors="replace")
        finally:
            resp.close()


class Flow:
    """The demo administrator's browser on one server: signs in on first use, approves new
    clients, and turns authorization requests into codes."""

    def __init__(self, server):
        self.server = server
        self.browser = Browser()

    def authorize(self, client: dict, pkce: Pkce, **params) -> tuple[int, dict, str]:
        query = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": client["redirect_uris"][0],
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        }
        query.update({k: v for k, v in params.items() if v is not None})
        return self.browser.send(
            f"{self.server.issuer}/oauth/authorize?{urllib.parse.urlencode(query)}")

    def _submit(self, html: str, **extra) -> tuple[int, dict, str]:
        form = only_form(html)
        action = urllib.parse.urljoin(f"{self.server.issuer}/oauth/authorize", form["action"])
        return self.browser.send(action, {**form["fields"], **extra})

    def code(self, client: dict, **params) -> Code:
        """A fresh code for `client` (approving it if it is new). `params` go to the
        authorization request (scope, resource...)."""
        pkce = Pkce.new()
        state = secrets.token_urlsafe(9)
        status, headers, body = self.authorize(client, pkce, state=state, **params)
        for _ in range(2):
            if status != 200:
                break
            fields = only_form(body)["fields"]
            if fields.get("action") == "sign_in":
                status, headers, body = self._submit(
                    body, email=ADMIN_EMAIL, password=DEMO_ADMIN_PASSWORD)
            elif fields.get("action") == "decide":
                status, headers, body = self._submit(body, decision="approve")
            else:
                pytest.fail(f"unexpected page during authorization:\n{body[-2000:]}")
        assert status in (302, 303), (
            f"authorization of {client['client_id']} did not end in a redirect: {status} "
            f"{headers} {body[-1500:]}")
        location = headers["location"]
        params_back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert location.startswith(client["redirect_uris"][0] + "?"), location
        assert params_back.get("state") == state, location
        assert params_back.get("iss") == self.server.issuer, location
        assert params_back.get("code"), location
        return Code(params_back["code"], pkce.verifier, client["redirect_uris"][0])


@pytest.fixture(scope="module")
def flow(server) -> Flow:
    return Flow(server)


# --------------------------------------------------------------------------------------------
# Helpers: clients and the token-side endpoints
# --------------------------------------------------------------------------------------------


def register(server, **fields) -> dict:
    doc = {"client_name": "Token black-box client", "redirect_uris": [REDIRECT_URI]}
    doc.update(fields)
    resp = request("POST", server.register_url, doc)
    assert resp[0] == 201, f"registration failed: {resp[0]} {resp[2][:500]!r}"
    return json_body(resp)


def approved(flow: Flow, **fields) -> dict:
    """A newly registered client, approved by the administrator (its first code unused)."""
    client = register(flow.server, **fields)
    flow.code(client)
    return client


def refreshing_client(flow: Flow, **fields) -> dict:
    """An approved confidential client registered for refresh tokens (its scope defaults to
    every tenant scope, offline_access included)."""
    return approved(flow, grant_types=REFRESHING, **fields)


def public_client(flow: Flow, **fields) -> dict:
    return approved(flow, token_endpoint_auth_method="none", **fields)


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: each part form-urlencoded, then base64."""
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def credentials(client: dict, how: str | None = None) -> tuple[dict, list]:
    """(headers, form pairs) authenticating `client` by `how` (its registered method when
    None): basic, post or none."""
    if how is None:
        how = {"client_secret_basic": "basic", "client_secret_post": "post",
               "none": "none"}[client["token_endpoint_auth_method"]]
    if how == "basic":
        return {"Authorization": basic(client["client_id"], client["client_secret"])}, []
    if how == "post":
        return {}, [("client_id", client["client_id"]),
                    ("client_secret", client["client_secret"])]
    assert how == "none", how
    return {}, [("client_id", client["client_id"])]


def post_form(url: str, pairs, headers: dict | None = None):
    body = urllib.parse.urlencode(list(pairs.items()) if isinstance(pairs, dict) else pairs)
    return request("POST", url, body, {"Content-Type": FORM, **(headers or {})})


def token_url(server) -> str:
    return f"{server.issuer}/oauth/token"


def call(server, endpoint: str, client: dict | None, pairs, how: str | None = None):
    """POST `pairs` to `{issuer}/oauth/{endpoint}`, authenticated as `client` (none if None)."""
    headers, auth = credentials(client, how) if client is not None else ({}, [])
    return post_form(f"{server.issuer}/oauth/{endpoint}", list(pairs) + auth, headers)


def exchange(server, client: dict, code: Code, how: str | None = None, **overrides):
    """The authorization_code request for `code`; an override of None drops that parameter."""
    fields = {"grant_type": "authorization_code", "code": code.code,
              "redirect_uri": code.redirect_uri, "code_verifier": code.verifier}
    fields.update(overrides)
    return call(server, "token", client, [(k, v) for k, v in fields.items() if v is not None],
                how)


def refresh(server, client: dict, token: str, how: str | None = None, **extra):
    return call(server, "token", client,
                [("grant_type", "refresh_token"), ("refresh_token", token), *extra.items()], how)


def introspect(server, caller: dict, token: str, how: str | None = None):
    return call(server, "introspect", caller, [("token", token)], how)


def revoke(server, client: dict | None, token: str, how: str | None = None):
    return call(server, "revoke", client, [("token", token)], how)


def assert_tokens(resp, refresh_token: bool | None = None) -> dict:
    """RFC 6749 §5.1: 200, JSON, `no-store`/`no-cache`, CORS, Bearer token and lifetime."""
    status, headers, raw = resp
    assert status == 200, f"expected tokens, got {status}: {raw[:1000]!r}"
    assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    assert "no-store" in headers.get("cache-control", "").lower(), headers
    assert headers.get("pragma", "").lower() == "no-cache", headers
    assert headers.get("access-control-allow-origin") == "*", headers
    body = json_body(resp)
    assert isinstance(body.get("access_token"), str) and body["access_token"], body
    assert body.get("token_type") == "Bearer", body
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, body
    assert isinstance(body.get("scope"), str), body
    if refresh_token is True:
        assert isinstance(body.get("refresh_token"), str) and body["refresh_token"], body
    elif refresh_token is False:
        assert "refresh_token" not in body, body
    return body


def assert_error(resp, status: int, error: str) -> dict:
    """RFC 6749 §5.2: the status, a JSON `error` (and description), CORS on every answer."""
    code, headers, raw = resp
    assert code == status, f"expected {status} {error}, got {code}: {raw[:1000]!r}"
    assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json", (
        headers)
    body = json_body(resp)
    assert body.get("error") == error, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    assert headers.get("access-control-allow-origin") == "*", headers
    return body


def assert_basic_challenge(resp) -> None:
    challenge = resp[1].get("www-authenticate", "")
    assert challenge.lower().startswith("basic realm="), (
        f"401 after Basic must carry a Basic challenge (RFC 6749 §5.2): {resp[1]}")


def active(server, caller: dict, token: str) -> dict:
    resp = introspect(server, caller, token)
    assert resp[0] == 200, resp
    assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
    return json_body(resp)


def jwks(server) -> dict:
    resp = request("GET", f"{server.issuer}/jwks.json")
    assert resp[0] == 200, resp
    assert resp[1].get("content-type", "").split(";")[0].strip().lower() == "application/json"
    return json_body(resp)


def mcp_tools_list(server, token: str):
    """`tools/list` at the demo MCP resource, which checks the token's grant on every call."""
    return request("POST", f"{server.issuer}/mcp",
                   {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   {"Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-06-18", "Authorization": f"Bearer {token}"})


def verify(server, token: str, audience: str | None = None) -> dict:
    """RFC 9068 §4, done here with PyJWT: `typ`, ES256 by a JWKS key, `iss`, `aud`, `exp`."""
    header = jwt.get_unverified_header(token)
    assert header.get("typ") == "at+jwt", header
    assert header.get("alg") == "ES256", header
    keys = [k for k in jwks(server)["keys"] if k.get("kid") == header.get("kid")]
    assert len(keys) == 1, f"kid {header.get('kid')!r} is not (once) in the JWKS"
    key = jwt.PyJWK(keys[0])
    return jwt.decode(
        token, key.key, algorithms=["ES256"],
        audience=audience or f"{server.issuer}/mcp", issuer=server.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]})


# --------------------------------------------------------------------------------------------
# RFC 6749 §4.1.3 / §5.1: a successful exchange
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["basic", "post"])
def test_confidential_client_exchanges_a_code(server, flow, how):
    method = {"basic": "client_secret_basic", "post": "client_secret_post"}[how]
    client = refreshing_client(flow, token_endpoint_auth_method=method)
    body = assert_tokens(exchange(server, client, flow.code(client), how), refresh_token=True)
    assert set(body) <= {
        "access_token", "token_type", "expires_in", "scope", "refresh_token"}, body
    assert set(body["scope"].split()) == {"user_default", "mcp:execute", "offline_access"}, body
    assert body["refresh_token"] != body["access_token"]


def test_basic_with_a_matching_bare_client_id_in_the_body_is_accepted(server, flow):
    """Some MCP clients send `client_id` in the body next to Basic; it identifies,
    it does not authenticate twice."""
    client = refreshing_client(flow)
    code = flow.code(client)
    headers, _ = credentials(client, "basic")
    resp = post_form(token_url(server), [
        ("grant_type", "authorization_code"), ("code", code.code),
        ("redirect_uri", code.redirect_uri), ("code_verifier", code.verifier),
        ("client_id", client["client_id"])], headers)
    assert_tokens(resp, refresh_token=True)


def test_public_client_exchanges_a_code_and_never_gets_a_refresh_token(server, flow):
    client = public_client(flow, grant_types=REFRESHING)
    assert "client_secret" not in client
    code = flow.code(client, scope="mcp:execute offline_access")
    body = assert_tokens(exchange(server, client, code, "none"), refresh_token=False)
    assert "offline_access" not in body["scope"].split(), body


def test_client_without_the_refresh_grant_gets_no_refresh_token(server, flow):
    client = approved(flow)  # grant_types defaults to authorization_code only
    assert_tokens(exchange(server, client, flow.code(client)), refresh_token=False)


def test_narrower_authorized_scope_is_what_the_token_carries(server, flow):
    client = refreshing_client(flow)
    body = assert_tokens(exchange(server, client, flow.code(client, scope="mcp:execute")))
    assert body["scope"] == "mcp:execute", body
    assert verify(server, body["access_token"])["scope"] == "mcp:execute"


def test_token_endpoint_is_post_only(server):
    resp = request("GET", token_url(server))
    assert resp[0] == 405, resp


def test_token_endpoint_answers_a_cors_preflight(server):
    resp = request("OPTIONS", token_url(server), headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert resp[0] in (200, 204), resp
    assert resp[1].get("access-control-allow-origin") == "*", resp[1]
    assert "POST" in resp[1].get("access-control-allow-methods", ""), resp[1]


def test_form_content_type_with_a_charset_is_accepted(server, flow):
    client = refreshing_client(flow)
    code = flow.code(client)
    headers, _ = credentials(client, "basic")
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code.code,
                                   "redirect_uri": code.redirect_uri,
                                   "code_verifier": code.verifier})
    resp = request("POST", token_url(server), body,
                   {**headers, "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert_tokens(resp, refresh_token=True)


def test_basic_credentials_are_form_urldecoded(server, flow):
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before base64; a client that
    percent-encodes every character must still be recognised."""
    client = refreshing_client(flow)
    code = flow.code(client)
    encode_all = lambda s: "".join(f"%{b:02X}" for b in s.encode("utf-8"))  # noqa: E731
    raw = f"{encode_all(client['client_id'])}:{encode_all(client['client_secret'])}"
    header = "Basic " + base64.b64encode(raw.encode("ascii")).decode("ascii")
    resp = post_form(token_url(server), [
        ("grant_type", "authorization_code"), ("code", code.code),
        ("redirect_uri", code.redirect_uri), ("code_verifier", code.verifier)],
        {"Authorization": header})
    assert_tokens(resp, refresh_token=True)


# --------------------------------------------------------------------------------------------
# RFC 9068 / RFC 7517: the access token, verified independently against the JWKS
# --------------------------------------------------------------------------------------------


def test_jwks_publishes_p256_and_rsa_signing_keys(server):
    """ES256 (P-256) keys sign access tokens; RS256 (2048-bit RSA) keys sign ID tokens."""
    keys = jwks(server).get("keys")
    assert isinstance(keys, list) and keys, keys
    b64 = lambda v: base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))  # noqa: E731
    for k in keys:
        assert k.get("use") == "sig", k
        assert isinstance(k.get("kid"), str) and k["kid"], k
        if k.get("kty") == "EC":
            assert k.get("crv") == "P-256" and k.get("alg") == "ES256", k
            for coord in ("x", "y"):
                assert len(b64(k[coord])) == 32, (coord, k)
        else:
            assert k.get("kty") == "RSA" and k.get("alg") == "RS256", k
            assert len(b64(k["n"])) == 256 and k["e"] == "AQAB", k
        for private in ("d", "p", "q", "dp", "dq", "qi"):
            assert private not in k, "the JWKS must not publish private keys"
    assert {k["alg"] for k in keys} == {"ES256", "RS256"}, keys
    assert len({k["kid"] for k in keys}) == len(keys), keys


def test_access_token_is_an_rfc9068_jwt_verifiable_with_the_jwks(server, flow):
    client = refreshing_client(flow)
    before = int(time.time())
    body = assert_tokens(exchange(server, client, flow.code(client)))
    after = int(time.time())
    claims = verify(server, body["access_token"])
    assert claims["iss"] == server.issuer
    assert claims["aud"] == f"{server.issuer}/mcp"
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == body["scope"]
    assert isinstance(claims["sub"], str) and claims["sub"], claims
    assert isinstance(claims["jti"], str) and claims["jti"], claims
    assert before - 5 <= claims["iat"] <= after + 5, claims
    assert claims["exp"] - claims["iat"] == body["expires_in"], (claims, body)
    # Another token for the same user and client: same subject, a new jti.
    other = assert_tokens(exchange(server, client, flow.code(client)))
    other_claims = verify(server, other["access_token"])
    assert other_claims["sub"] == claims["sub"]
    assert other_claims["jti"] != claims["jti"]


def test_access_token_does_not_verify_for_another_audience_or_issuer(server, flow):
    client = refreshing_client(flow)
    token = assert_tokens(exchange(server, client, flow.code(client)))["access_token"]
    with pytest.raises(jwt.InvalidAudienceError):
        verify(server, token, audience="https://elsewhere.example/mcp")
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(next(k for k in jwks(server)["keys"] if k["kid"] == header["kid"]))
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(token, key.key, algorithms=["ES256"], audience=f"{server.issuer}/mcp",
                   issuer=f"{server.base}/t/other")


def test_resource_equal_to_the_authorized_one_is_accepted_and_is_the_audience(server, flow):
    client = refreshing_client(flow)
    resource = f"{server.issuer}/mcp"
    code = flow.code(client, resource=resource)
    body = assert_tokens(exchange(server, client, code, resource=resource))
    assert verify(server, body["access_token"], audience=resource)["aud"] == resource


# --------------------------------------------------------------------------------------------
# RFC 6749 §2.3.1 / §5.2: client authentication
# --------------------------------------------------------------------------------------------


def test_secret_in_both_basic_and_body_is_invalid_request(server, flow):
    client = refreshing_client(flow)
    code = flow.code(client)
    headers, _ = credentials(client, "basic")
    resp = post_form(token_url(server), [
        ("grant_type", "authorization_code"), ("code", code.code),
        ("redirect_uri", code.redirect_uri), ("code_verifier", code.verifier),
        ("client_id", client["client_id"]), ("client_secret", client["client_secret"])],
        headers)
    assert_error(resp, 400, "invalid_request")


@pytest.mark.parametrize("how", ["basic", "post"])
def test_wrong_secret_is_invalid_client(server, flow, how):
    client = refreshing_client(flow)
    wrong = dict(client, client_secret=client["client_secret"][:-2] + "xx")
    resp = exchange(server, wrong, flow.code(client), how)
    assert_error(resp, 401, "invalid_client")
    if how == "basic":
        assert_basic_challenge(resp)


@pytest.mark.parametrize("how", ["basic", "post"])
def test_unknown_client_is_invalid_client(server, how):
    ghost = {"client_id": secrets.token_hex(16), "client_secret": secrets.token_urlsafe(32)}
    resp = exchange(server, ghost, Code("x" * 43, "v" * 43, REDIRECT_URI), how)
    assert_error(resp, 401, "invalid_client")
    if how == "basic":
        assert_basic_challenge(resp)


def test_confidential_client_without_its_secret_is_invalid_client(server, flow):
    client = refreshing_client(flow)
    assert_error(exchange(server, client, flow.code(client), "none"), 401, "invalid_client")


def test_no_client_at_all_is_invalid_client(server):
    resp = post_form(token_url(server), [("grant_type", "authorization_code"),
                                         ("code", "x" * 43), ("code_verifier", "v" * 43)])
    assert_error(resp, 401, "invalid_client")


@pytest.mark.parametrize("how", ["basic", "post"])
def test_pending_client_is_invalid_client(server, how):
    """A registered but not yet approved client cannot use the token endpoint."""
    pending = register(server, grant_types=REFRESHING)
    resp = refresh(server, pending, "x" * 43, how)
    assert_error(resp, 401, "invalid_client")
    if how == "basic":
        assert_basic_challenge(resp)


@pytest.mark.parametrize("how", ["basic", "post"])
def test_public_client_sending_a_secret_is_invalid_client(server, flow, how):
    client = public_client(flow)
    with_secret = dict(client, client_secret="not-a-secret-" + secrets.token_hex(8))
    resp = exchange(server, with_secret, flow.code(client), how)
    assert_error(resp, 401, "invalid_client")
    if how == "basic":
        assert_basic_challenge(resp)


@pytest.mark.parametrize("mode", MODES)
def test_expired_pending_client_is_invalid_client(start_server, mode):
    ttl = 2
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_TTL": str(ttl),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    started = time.monotonic()
    pending = register(srv, grant_types=REFRESHING)
    registered = time.monotonic()
    configuration = (pending["registration_client_uri"], None,
                     {"Authorization": f"Bearer {pending['registration_access_token']}"})
    # Just before (surely pending until registration + ttl - 1 s, whole seconds): it exists.
    assert request("GET", *configuration)[0] == 200
    elapsed = time.monotonic() - started
    assert elapsed < ttl - 1, f"the pending check took {elapsed:.2f} s: the machine is too slow"
    time.sleep(max(0.0, registered + ttl + 0.5 - time.monotonic()))
    # After: gone, there and at the token endpoint.
    assert request("GET", *configuration)[0] == 401
    for how in ("basic", "post"):
        resp = refresh(srv, pending, "x" * 43, how)
        assert_error(resp, 401, "invalid_client")
        if how == "basic":
            assert_basic_challenge(resp)


# --------------------------------------------------------------------------------------------
# RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2: what the exchange checks
# --------------------------------------------------------------------------------------------


def test_wrong_code_verifier_is_invalid_grant(server, flow):
    client = refreshing_client(flow)
    assert_error(exchange(server, client, flow.code(client), code_verifier=Pkce.new().verifier),
                 400, "invalid_grant")


def test_missing_code_verifier_is_invalid_request(server, flow):
    client = refreshing_client(flow)
    assert_error(exchange(server, client, flow.code(client), code_verifier=None),
                 400, "invalid_request")


def test_wrong_redirect_uri_is_invalid_grant(server, flow):
    client = refreshing_client(flow, redirect_uris=[REDIRECT_URI, "https://agent.example.com/cb2"])
    code = flow.code(client)
    assert_error(exchange(server, client, code, redirect_uri="https://agent.example.com/cb2"),
                 400, "invalid_grant")


def test_code_of_another_client_is_invalid_grant(server, flow):
    owner = refreshing_client(flow)
    thief = refreshing_client(flow)
    assert_error(exchange(server, thief, flow.code(owner)), 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(server, flow):
    client = refreshing_client(flow)
    made_up = Code(b64url(secrets.token_bytes(32)), Pkce.new().verifier, REDIRECT_URI)
    assert_error(exchange(server, client, made_up), 400, "invalid_grant")


@pytest.mark.parametrize("resource", ["https://elsewhere.example/mcp", "{base}/t/other/mcp",
                                      "{issuer}/mcp/"])
def test_resource_other_than_the_authorized_one_is_invalid_target(server, flow, resource):
    client = refreshing_client(flow)
    resource = resource.format(base=server.base, issuer=server.issuer)
    assert_error(exchange(server, client, flow.code(client), resource=resource),
                 400, "invalid_target")


def test_two_resources_are_invalid_target(server, flow):
    client = refreshing_client(flow)
    resource = f"{server.issuer}/mcp"
    resp = call(server, "token", client, [
        ("grant_type", "authorization_code"), ("code", (code := flow.code(client)).code),
        ("redirect_uri", code.redirect_uri), ("code_verifier", code.verifier),
        ("resource", resource), ("resource", "https://elsewhere.example/mcp")])
    assert_error(resp, 400, "invalid_target")


def test_replayed_code_is_refused_and_revokes_what_it_issued(server, flow):
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: the second use fails, and the tokens the first use
    issued stop working."""
    client = refreshing_client(flow)
    code = flow.code(client)
    first = assert_tokens(exchange(server, client, code), refresh_token=True)
    assert active(server, client, first["access_token"]).get("active") is True
    assert_error(exchange(server, client, code), 400, "invalid_grant")
    assert_error(refresh(server, client, first["refresh_token"]), 400, "invalid_grant")
    assert active(server, client, first["access_token"]) == {"active": False}
    assert active(server, client, first["refresh_token"]) == {"active": False}


def test_concurrent_redemptions_of_one_code_issue_tokens_once(server, flow):
    client = refreshing_client(flow)
    code = flow.code(client)
    results: list = [None] * 10
    barrier = threading.Barrier(len(results))

    def redeem(i):
        barrier.wait()
        results[i] = exchange(server, client, code)

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] + [400] * 9, [(r[0], r[2][:200]) for r in results]
    for r in results:
        if r[0] == 400:
            assert_error(r, 400, "invalid_grant")
        else:
            assert_tokens(r, refresh_token=True)


# --------------------------------------------------------------------------------------------
# RFC 6749 §3.2 / §5.2: malformed requests
# --------------------------------------------------------------------------------------------


def test_json_body_is_invalid_request(server, flow):
    client = refreshing_client(flow)
    code = flow.code(client)
    headers, _ = credentials(client, "basic")
    resp = request("POST", token_url(server), {
        "grant_type": "authorization_code", "code": code.code,
        "redirect_uri": code.redirect_uri, "code_verifier": code.verifier}, headers)
    assert_error(resp, 400, "invalid_request")


def test_missing_grant_type_is_invalid_request(server, flow):
    client = refreshing_client(flow)
    assert_error(exchange(server, client, flow.code(client), grant_type=None),
                 400, "invalid_request")


@pytest.mark.parametrize("pairs", [
    [("grant_type", "password"), ("username", ADMIN_EMAIL), ("password", DEMO_ADMIN_PASSWORD)],
    [("grant_type", "client_credentials")],
    [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", "x")],
], ids=["password", "client_credentials", "device_code"])
def test_other_grant_types_are_unsupported(server, flow, pairs):
    client = refreshing_client(flow)
    assert_error(call(server, "token", client, pairs), 400, "unsupported_grant_type")


def test_repeated_parameter_is_invalid_request(server, flow):
    client = refreshing_client(flow)
    code = flow.code(client)
    other = flow.code(client)
    resp = call(server, "token", client, [
        ("grant_type", "authorization_code"), ("code", code.code), ("code", other.code),
        ("redirect_uri", code.redirect_uri), ("code_verifier", code.verifier)])
    assert_error(resp, 400, "invalid_request")


# --------------------------------------------------------------------------------------------
# RFC 6749 §6, RFC 9700 §4.14: refresh tokens
# --------------------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_token_works_within_the_grace_window(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    second = assert_tokens(refresh(server, client, first["refresh_token"]), refresh_token=True)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    claims = verify(server, second["access_token"])
    assert claims["client_id"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == second["expires_in"]
    # Default grace window (30 s): a client that lost the answer may retry with the old one.
    again = assert_tokens(refresh(server, client, first["refresh_token"]), refresh_token=True)
    assert again["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    # And the rotated-to tokens are good.
    assert_tokens(refresh(server, client, second["refresh_token"]), refresh_token=True)
    assert_tokens(refresh(server, client, again["refresh_token"]), refresh_token=True)


@pytest.mark.parametrize("how", ["basic", "post"])
def test_refresh_works_with_either_secret_method(server, flow, how):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    assert_tokens(refresh(server, client, first["refresh_token"], how), refresh_token=True)


def test_concurrent_refreshes_with_one_token_all_succeed(server, flow):
    """A client refreshing from several tabs or threads at once is not logged out."""
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    results: list = [None] * 5
    barrier = threading.Barrier(len(results))

    def go(i):
        barrier.wait()
        results[i] = refresh(server, client, first["refresh_token"])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r[0] for r in results] == [200] * 5, [(r[0], r[2][:300]) for r in results]
    bodies = [assert_tokens(r, refresh_token=True) for r in results]
    assert len({b["refresh_token"] for b in bodies}) == 5
    # The session survived: every new refresh token still works.
    for b in bodies:
        assert_tokens(refresh(server, client, b["refresh_token"]), refresh_token=True)


def test_refresh_token_of_another_client_is_invalid_grant(server, flow):
    owner = refreshing_client(flow)
    thief = refreshing_client(flow)
    first = assert_tokens(exchange(server, owner, flow.code(owner)), refresh_token=True)
    assert_error(refresh(server, thief, first["refresh_token"]), 400, "invalid_grant")


def test_unknown_refresh_token_is_invalid_grant(server, flow):
    client = refreshing_client(flow)
    assert_error(refresh(server, client, secrets.token_urlsafe(32)), 400, "invalid_grant")


def test_access_token_is_not_a_refresh_token(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    assert_error(refresh(server, client, first["access_token"]), 400, "invalid_grant")


def test_refresh_with_a_narrower_scope_is_echoed(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    narrower = assert_tokens(refresh(server, client, first["refresh_token"],
                                     scope="mcp:execute"))
    assert narrower["scope"] == "mcp:execute", narrower
    assert verify(server, narrower["access_token"])["scope"] == "mcp:execute"


@pytest.mark.parametrize("scope", ["mcp:execute user_default", "admin", "mcp:execute admin"])
def test_refresh_with_a_wider_scope_is_invalid_scope(server, flow, scope):
    client = refreshing_client(flow)
    code = flow.code(client, scope="mcp:execute offline_access")
    first = assert_tokens(exchange(server, client, code), refresh_token=True)
    assert set(first["scope"].split()) == {"mcp:execute", "offline_access"}, first
    assert_error(refresh(server, client, first["refresh_token"], scope=scope),
                 400, "invalid_scope")


def test_refresh_with_the_authorized_resource_only(server, flow):
    """RFC 8707 §2.2: a refresh may name the resource; only the authorized one is possible."""
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    assert_error(refresh(server, client, first["refresh_token"],
                         resource="https://elsewhere.example/mcp"), 400, "invalid_target")
    same = assert_tokens(refresh(server, client, first["refresh_token"],
                                 resource=f"{server.issuer}/mcp"), refresh_token=True)
    assert verify(server, same["access_token"])["aud"] == f"{server.issuer}/mcp"


@pytest.mark.parametrize("mode", MODES)
def test_reuse_after_the_grace_window_revokes_the_grant(start_server, mode):
    """RFC 9700 §4.14.2: a rotated refresh token used after the grace window means it leaked;
    the whole grant goes, the latest refresh token included."""
    grace = 3
    srv = start_server({"GATEHOUSE_REFRESH_GRACE": str(grace),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    flow = Flow(srv)
    client = refreshing_client(flow)  # the sign-in (argon2) happens here, before the clock
    first = assert_tokens(exchange(srv, client, flow.code(client)), refresh_token=True)
    started = time.monotonic()
    second = assert_tokens(refresh(srv, client, first["refresh_token"]), refresh_token=True)
    rotated = time.monotonic()
    # Whole seconds: a token rotated at t is accepted again until at least t + grace - 1.
    # Just before: within the grace window the rotated token still refreshes (a concurrent
    # refresh), and the session keeps working.
    sibling = assert_tokens(refresh(srv, client, first["refresh_token"]), refresh_token=True)
    assert active(srv, client, second["refresh_token"]).get("active") is True
    elapsed = time.monotonic() - started
    assert elapsed < grace - 1, f"the in-grace checks took {elapsed:.2f} s: the machine is too slow"
    time.sleep(max(0.0, rotated + grace + 0.5 - time.monotonic()))
    # After: the reuse revokes the whole grant, what the in-grace reuse got included.
    assert_error(refresh(srv, client, first["refresh_token"]), 400, "invalid_grant")
    assert_error(refresh(srv, client, second["refresh_token"]), 400, "invalid_grant")
    assert active(srv, client, second["refresh_token"]) == {"active": False}
    assert_error(refresh(srv, client, sibling["refresh_token"]), 400, "invalid_grant")
    assert active(srv, client, sibling["access_token"]) == {"active": False}


# --------------------------------------------------------------------------------------------
# RFC 8414: the endpoints are advertised, and answer
# --------------------------------------------------------------------------------------------


def test_metadata_advertises_the_token_side_endpoints_and_each_answers(server):
    resp = request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/demo")
    assert resp[0] == 200, resp
    doc = json_body(resp)
    expected = {
        "authorization_endpoint": f"{server.issuer}/oauth/authorize",
        "token_endpoint": f"{server.issuer}/oauth/token",
        "revocation_endpoint": f"{server.issuer}/oauth/revoke",
        "introspection_endpoint": f"{server.issuer}/oauth/introspect",
        "jwks_uri": f"{server.issuer}/jwks.json",
    }
    for name, url in expected.items():
        assert doc.get(name) == url, (name, doc)
    assert doc.get("authorization_response_iss_parameter_supported") is True, doc
    for name in expected:
        got = request("GET", doc[name])
        assert got[0] != 404, f"{name} {doc[name]} answers GET with 404"
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        got = post_form(doc[name], [("token", "x")])
        assert got[0] != 404, f"{name} {doc[name]} answers POST with 404"
        assert isinstance(json_body(got).get("error"), str), got


# --------------------------------------------------------------------------------------------
# RFC 7009: revocation
# --------------------------------------------------------------------------------------------


def test_revoked_refresh_token_no_longer_refreshes(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    resp = call(server, "revoke", client, [("token", first["refresh_token"]),
                                           ("token_type_hint", "refresh_token")])
    assert resp[0] == 200, resp
    assert resp[1].get("access-control-allow-origin") == "*", resp[1]
    assert_error(refresh(server, client, first["refresh_token"]), 400, "invalid_grant")
    assert active(server, client, first["refresh_token"]) == {"active": False}


@pytest.mark.parametrize("how", ["basic", "post"])
def test_revoking_an_unknown_token_is_200(server, flow, how):
    client = refreshing_client(flow)
    assert revoke(server, client, secrets.token_urlsafe(32), how)[0] == 200
    assert revoke(server, client, "not.a.jwt", how)[0] == 200


def test_revoked_access_token_is_inactive(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    assert active(server, client, first["access_token"]).get("active") is True
    assert revoke(server, client, first["access_token"])[0] == 200
    assert active(server, client, first["access_token"]) == {"active": False}


def test_public_client_can_revoke_its_token(server, flow):
    """A public client cannot introspect (and introspection tells no other client about its
    token): the demo MCP resource, which checks the grant, shows the revocation."""
    client = public_client(flow)
    body = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=False)
    assert mcp_tools_list(server, body["access_token"])[0] == 200
    assert revoke(server, client, body["access_token"], "none")[0] == 200
    status, headers, _ = mcp_tools_list(server, body["access_token"])
    assert status == 401 and 'error="invalid_token"' in headers.get("www-authenticate", ""), (
        status, headers)


def test_unauthenticated_revocation_is_401(server, flow):
    client = refreshing_client(flow)
    first = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    assert_error(revoke(server, None, first["refresh_token"]), 401, "invalid_client")
    wrong = dict(client, client_secret="wrong-" + secrets.token_hex(8))
    resp = revoke(server, wrong, first["refresh_token"], "basic")
    assert_error(resp, 401, "invalid_client")
    assert_basic_challenge(resp)
    # Nothing was revoked.
    assert_tokens(refresh(server, client, first["refresh_token"]), refresh_token=True)


def test_another_client_cannot_revoke_a_token(server, flow):
    """RFC 7009 §2.1: the server checks the token was issued to the requesting client."""
    owner = refreshing_client(flow)
    other = refreshing_client(flow)
    first = assert_tokens(exchange(server, owner, flow.code(owner)), refresh_token=True)
    assert revoke(server, other, first["refresh_token"])[0] == 200
    assert_tokens(refresh(server, owner, first["refresh_token"]), refresh_token=True)


# --------------------------------------------------------------------------------------------
# RFC 7662: introspection
# --------------------------------------------------------------------------------------------


def test_introspection_of_an_active_access_token(server, flow):
    """RFC 7662 §2: the token's own client asks, authenticated either way."""
    for method, how in (("client_secret_basic", "basic"), ("client_secret_post", "post")):
        client = refreshing_client(flow, token_endpoint_auth_method=method)
        body = assert_tokens(exchange(server, client, flow.code(client, scope="mcp:execute")))
        resp = introspect(server, client, body["access_token"], how)
        assert resp[0] == 200, resp
        assert resp[1].get("content-type", "").split(";")[0].strip() == "application/json"
        info = json_body(resp)
        claims = verify(server, body["access_token"])
        assert info.get("active") is True, info
        assert info.get("token_type") == "Bearer", info
        assert info.get("scope") == "mcp:execute", info
        assert info.get("client_id") == client["client_id"], info
        assert info.get("sub") == claims["sub"], info
        assert info.get("aud") == f"{server.issuer}/mcp", info
        assert info.get("iss") == server.issuer, info
        assert info.get("exp") == claims["exp"], info


def test_introspection_answers_a_client_about_its_own_tokens_only(server, flow):
    """RFC 7662 §4: another client (a would-be resource server) learns nothing about a live
    token that is not its own."""
    owner = refreshing_client(flow)
    other = refreshing_client(flow, token_endpoint_auth_method="client_secret_post")
    body = assert_tokens(exchange(server, owner, flow.code(owner)), refresh_token=True)
    for token in (body["access_token"], body["refresh_token"]):
        assert active(server, other, token) == {"active": False}
        assert active(server, owner, token).get("active") is True


def test_introspection_of_a_refresh_token(server, flow):
    client = refreshing_client(flow)
    body = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    info = active(server, client, body["refresh_token"])
    assert info.get("active") is True, info
    assert info.get("token_type") == "refresh_token", info
    assert info.get("client_id") == client["client_id"], info
    assert set(info.get("scope", "").split()) == set(body["scope"].split()), info


@pytest.mark.parametrize("token", [
    "garbage",
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im5vcGUifQ.e30.AAAA",
    "q7Zx0Vb3Hn9-Jm2Kp4Rs6Tu8Wv1Xy3Za5Bc7De9Fg0H",
], ids=["word", "jwt_shaped", "refresh_shaped"])
def test_introspection_of_garbage_is_inactive(server, flow, token):
    client = refreshing_client(flow)
    resp = introspect(server, client, token)
    assert resp[0] == 200, resp
    assert json_body(resp) == {"active": False}


def test_introspection_requires_a_confidential_client(server, flow):
    client = refreshing_client(flow)
    body = assert_tokens(exchange(server, client, flow.code(client)))
    public = public_client(flow)
    assert_error(introspect(server, public, body["access_token"], "none"), 401, "invalid_client")
    assert_error(introspect(server, None, body["access_token"]), 401, "invalid_client")
    wrong = dict(client, client_secret="wrong-" + secrets.token_hex(8))
    resp = introspect(server, wrong, body["access_token"], "basic")
    assert_error(resp, 401, "invalid_client")
    assert_basic_challenge(resp)


@pytest.mark.parametrize("mode", MODES)
def test_expired_access_token_is_inactive(start_server, mode):
    """RFC 7662 §2.2: `active` is false once the token is past its expiration time (the
    server is its own issuer: no clock-skew leeway applies). The grant lives on."""
    ttl = 3
    srv = start_server({"GATEHOUSE_ACCESS_TOKEN_TTL": str(ttl),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    flow = Flow(srv)
    client = refreshing_client(flow)  # the sign-in (argon2) happens here, before the clock
    code = flow.code(client)
    started = time.monotonic()
    body = assert_tokens(exchange(srv, client, code), refresh_token=True)
    assert body["expires_in"] == ttl, body
    claims = verify(srv, body["access_token"])  # just before: valid (PyJWT checks exp too)
    assert claims["exp"] - claims["iat"] == ttl, claims
    assert active(srv, client, body["access_token"]).get("active") is True
    # Whole seconds: the token is surely valid until issuance + ttl - 1.
    elapsed = time.monotonic() - started
    assert elapsed < ttl - 1, f"the checks while valid took {elapsed:.2f} s: the machine is too slow"
    time.sleep(max(0.0, claims["exp"] + 0.5 - time.time()))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(srv, body["access_token"])
    info = active(srv, client, body["access_token"])
    assert info == {"active": False}, (
        f"introspected at {int(time.time())}, token exp {info.get('exp')}: {info}")
    assert active(srv, client, body["refresh_token"]).get("active") is True
    assert_tokens(refresh(srv, client, body["refresh_token"]), refresh_token=True)


def test_no_secret_reaches_the_log(server, flow):
    """Secrets (client secret, code, access and refresh tokens, passwords) never appear in the
    server's log, whatever it logs about the requests that carried them."""
    client = refreshing_client(flow, token_endpoint_auth_method="client_secret_post")
    code = flow.code(client)
    tokens = assert_tokens(exchange(server, client, code, "post"), refresh_token=True)
    rotated = assert_tokens(refresh(server, client, tokens["refresh_token"], "post"), refresh_token=True)
    introspect(server, client, rotated["access_token"], "post")
    revoke(server, client, rotated["refresh_token"], "post")
    log = server.log()
    assert "handled" in log, "the server logs each request"
    assert client["client_id"] in log, "identifiers (not secrets) are logged, so this is the right log"
    secrets_seen = {
        "client_secret": client["client_secret"],
        "code": code.code,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "rotated refresh_token": rotated["refresh_token"],
        "admin password": DEMO_ADMIN_PASSWORD,
    }
    leaked = [name for name, value in secrets_seen.items() if value in log]
    assert not leaked, f"secrets in the server log: {leaked}"
