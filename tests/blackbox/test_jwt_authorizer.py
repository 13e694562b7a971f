"""Gatehouse access tokens in front of an API gateway's JWT authorizer, black box.

`JwtAuthorizer` does what Amazon API Gateway's JWT authorizer for HTTP APIs is documented to do
with a token, configured as its operator would configure it for Gatehouse: the issuer is the
tenant's issuer URL and the audience list holds the MCP resource (`{issuer}/mcp`).

1. Discovery: `GET {issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0
   §4), its `jwks_uri`, then the JWK Set (RFC 7517 §5); a token signed by a key it has not
   seen makes it fetch the set again.
2. The token: the identity source may carry it bare or after `Bearer `. Its JOSE header must
   name a `kid` found in the set, and an `alg` the authorizer knows that fits that key (RSA
   for RS*, the matching curve for ES*); the signature must verify (RFC 7515 §5.2). The JWT
   authorizer of HTTP APIs knows only the RSA algorithms (RS256, RS384, RS512); the newer one
   of REST APIs also ES256, ES384, ES512. A tenant whose MCP server sits behind an HTTP API
   therefore signs its access tokens with RS256 (the `access_token_signing_alg` setting),
   which this module turns on for its tests.
3. The claims: `iss` string-equal to the configured issuer; `aud` (or `client_id` when there
   is no `aud`) one of the configured audiences; `exp` after now; `nbf` and `iat`, when
   present, not after now; the scopes are `scope` (space-separated) or `scp`, and a route that
   names scopes needs at least one of them.

Nothing here signs a token: every token checked is one Gatehouse issued (whole, or with a part
changed to show the change is caught). Expired and not-yet-valid tokens come from servers whose
clock (`GATEHOUSE_DEV_CLOCK_FILE`, see test_lifetimes.py) runs two hours behind or ahead.
"""

from __future__ import annotations

import base64
import os
import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jwt  # PyJWT[crypto], pinned in tests/requirements.txt
import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import Admin, assert_api_error, assert_json  # noqa: E402
from conftest import MODES, request  # noqa: E402
from test_openid_discovery import openid_on  # noqa: E402
from test_tokens import (  # noqa: E402
    Flow,
    assert_tokens,
    exchange,
    refreshing_client,
)

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
HTTP_API_ALGORITHMS = ("RS256", "RS384", "RS512")
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
HOURS_2 = 2 * 3600


# --------------------------------------------------------------------------------------------
# The authorizer
# --------------------------------------------------------------------------------------------


class Refused(Exception):
    """The gateway's `401 Unauthorized`; the message says which check failed."""


@dataclass
class Authorized:
    claims: dict
    scopes: list[str]


class JwtAuthorizer:
    """An API gateway JWT authorizer: `issuer` and `audience` as configured on the gateway;
    `clock` gives the current time (seconds since the epoch)."""

    def __init__(self, issuer: str, audience: list[str], clock=time.time,
                 algorithms: tuple[str, ...] = HTTP_API_ALGORITHMS):
        self.algorithms = algorithms
        self.issuer = issuer
        self.audience = list(audience)
        self.clock = clock
        self.jwks_uri: str | None = None
        self.keys: dict[str, dict] = {}
        self.jwks_fetches = 0

    # -- discovery and keys

    def discover(self) -> None:
        url = f"{self.issuer}/.well-known/openid-configuration"
        status, _, raw = request("GET", url)
        if status != 200:
            raise Refused(f"discovery: {url} answered {status}")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise Refused(f"discovery: {url} is not JSON") from None
        jwks_uri = doc.get("jwks_uri") if isinstance(doc, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise Refused(f"discovery: no jwks_uri in {doc!r}")
        self.jwks_uri = jwks_uri
        self.load_keys()

    def load_keys(self) -> None:
        assert self.jwks_uri is not None
        self.jwks_fetches += 1
        status, _, raw = request("GET", self.jwks_uri)
        if status != 200:
            raise Refused(f"jwks: {self.jwks_uri} answered {status}")
        try:
            keys = json.loads(raw).get("keys")
        except (ValueError, AttributeError):
            raise Refused(f"jwks: {self.jwks_uri} is not a JWK Set") from None
        if not isinstance(keys, list):
            raise Refused(f"jwks: no keys array at {self.jwks_uri}")
        self.keys = {k["kid"]: k for k in keys
                     if isinstance(k, dict) and isinstance(k.get("kid"), str)}

    def key_for(self, kid: str) -> dict:
        if self.jwks_uri is None:
            self.discover()
        if kid not in self.keys:
            self.load_keys()  # a key it has not seen: the set may have been rotated
        if kid not in self.keys:
            raise Refused(f"kid {kid!r} is not in the JWKS at {self.jwks_uri}")
        return self.keys[kid]

    # -- a request

    def authorize(self, identity: str, route_scopes: tuple[str, ...] = ()) -> Authorized:
        token = identity[len("Bearer "):] if identity.startswith("Bearer ") else identity
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise Refused(f"not a JWT: {err}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise Refused(f"alg {alg!r} is not one of {self.algorithms}")
        if not isinstance(kid, str) or not kid:
            raise Refused(f"no kid in the header {header}")
        jwk = self.key_for(kid)
        fits = (jwk.get("kty") == "RSA" if alg.startswith("RS")
                else jwk.get("kty") == "EC" and jwk.get("crv") == CURVES[alg])
        if not fits or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
            raise Refused(f"alg {alg} does not fit the key {kid}: {jwk}")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims = jwt.decode(token, key.key, algorithms=[alg], options={
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise Refused("signature does not verify") from None
        except jwt.PyJWTError as err:
            raise Refused(f"token refused: {err!r}") from None
        self.check_claims(claims)
        scopes = scopes_of(claims)
        if route_scopes and not set(route_scopes) & set(scopes):
            raise Refused(f"none of the route's scopes {route_scopes} in {scopes}")
        return Authorized(claims, scopes)

    def check_claims(self, claims: dict) -> None:
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise Refused(f"iss {claims.get('iss')!r} is not {self.issuer!r}")
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a in self.audience for a in audiences):
            raise Refused(f"aud {audience!r} is none of {self.audience}")
        exp = claims.get("exp")
        if not is_number(exp) or not exp > now:
            raise Refused(f"exp {exp!r} is not after now ({now:.0f})")
        for name in ("nbf", "iat"):
            if name in claims and (not is_number(claims[name]) or claims[name] > now):
                raise Refused(f"{name} {claims[name]!r} is after now ({now:.0f})")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scopes_of(claims: dict) -> list[str]:
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
    return []


def refused(authorizer: JwtAuthorizer, token: str, **kwargs) -> str:
    """The reason `authorizer` refuses `token` (the test fails if it is accepted)."""
    with pytest.raises(Refused) as caught:
        authorizer.authorize(token, **kwargs)
    return str(caught.value)


# --------------------------------------------------------------------------------------------
# Tokens, configurations
# --------------------------------------------------------------------------------------------


def mcp_audience(issuer: str) -> list[str]:
    return [f"{issuer}/mcp"]


def access_token(srv, flow: Flow | None = None, scope: str | None = None) -> dict:
    """A token response from the full flow on `srv` (the demo administrator signs in,
    approves a new client, and the client redeems a code)."""
    flow = flow or Flow(srv)
    client = refreshing_client(flow)
    body = assert_tokens(exchange(srv, client, flow.code(client, scope=scope)))
    body["client"] = client
    return body


def segments(token: str) -> list[str]:
    parts = token.split(".")
    assert len(parts) == 3, token
    return parts


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64(value: dict) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_access_tokens_with(srv, alg: str) -> None:
    admin = Admin(srv)
    body = assert_json(admin.patch_settings({"access_token_signing_alg": alg}))
    assert body["access_token_signing_alg"] == alg, body


@pytest.fixture(scope="module", autouse=True)
def rsa_access_tokens(server):
    """The shared server's tenant signs access tokens with RS256 for this module (what its
    administrator does for an MCP server behind an HTTP API), and with ES256 again after."""
    sign_access_tokens_with(server, "RS256")
    yield
    sign_access_tokens_with(server, "ES256")


@pytest.fixture(scope="module")
def flow(server) -> Flow:
    return Flow(server)


# --------------------------------------------------------------------------------------------
# Accepted
# --------------------------------------------------------------------------------------------


def test_gatehouse_access_token_is_accepted_with_its_scopes(server, flow):
    tokens = access_token(server, flow, scope="user_default mcp:execute")
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    for identity in (tokens["access_token"], f"Bearer {tokens['access_token']}"):
        ok = authorizer.authorize(identity)
        assert sorted(ok.scopes) == sorted(tokens["scope"].split()) == [
            "mcp:execute", "user_default"], (ok.scopes, tokens)
        assert ok.claims["iss"] == server.issuer
        assert ok.claims["client_id"] == tokens["client"]["client_id"]
    # A route that names scopes: one of them is enough, none of them is a refusal.
    authorizer.authorize(tokens["access_token"], route_scopes=("mcp:execute", "admin"))
    assert "scopes" in refused(authorizer, tokens["access_token"], route_scopes=("admin",))


def test_authorizer_finds_the_keys_through_discovery(server, flow):
    tokens = access_token(server, flow)
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    authorizer.authorize(tokens["access_token"])
    assert authorizer.jwks_uri == f"{server.issuer}/jwks.json"
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256" and header["kid"] in authorizer.keys, header
    # Keys are cached: a second token signed by the same key needs no new fetch.
    fetches = authorizer.jwks_fetches
    authorizer.authorize(access_token(server, flow)["access_token"])
    assert authorizer.jwks_fetches == fetches


# --------------------------------------------------------------------------------------------
# Refused: another tenant, another audience
# --------------------------------------------------------------------------------------------


def other_tenant_on_the_same_table(server) -> str:
    """A second tenant in the DynamoDB table `server` uses, made with the operator CLI."""
    from test_operator_cli import cli, ok  # the CLI needs moto's endpoint, set in dynamodb mode

    tenant = f"jwt-{secrets.token_hex(4)}"
    ok(cli(server, "tenant", "create", tenant, "--name", "Another tenant"))
    return tenant


def test_token_is_refused_by_an_authorizer_configured_for_another_tenant(server, flow,
                                                                          start_server):
    """Embedded mode holds one tenant per process, so the other tenant is another server's;
    in DynamoDB mode it is a second tenant of the same table (same store, perhaps the same
    keys: then only `iss` tells them apart)."""
    tokens = access_token(server, flow)
    if server.mode == "dynamodb":
        tenant = other_tenant_on_the_same_table(server)
        other_issuer = f"{server.base}/t/{tenant}"
    else:
        other_issuer = start_server(mode="embedded").issuer
    assert other_issuer != server.issuer
    # Even an audience list naming both resources does not let the token through.
    authorizer = JwtAuthorizer(other_issuer, mcp_audience(other_issuer) + mcp_audience(
        server.issuer))
    reason = refused(authorizer, tokens["access_token"])
    assert "iss" in reason or "kid" in reason, reason
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    if kid in authorizer.keys:
        assert reason.startswith("iss"), reason
    # The same token goes through the authorizer of its own tenant.
    JwtAuthorizer(server.issuer, mcp_audience(server.issuer)).authorize(tokens["access_token"])


@pytest.mark.parametrize("audience", [
    "https://api.example.com/mcp",
    "{issuer}/mcp/",
    "{issuer}",
    "{issuer}/MCP",
])
def test_token_is_refused_by_an_authorizer_configured_for_another_audience(server, flow,
                                                                            audience):
    tokens = access_token(server, flow)
    authorizer = JwtAuthorizer(server.issuer, [audience.format(issuer=server.issuer)])
    assert refused(authorizer, tokens["access_token"]).startswith("aud"), audience


def test_client_id_is_no_audience_when_the_token_has_an_aud(server, flow):
    """The authorizer looks at `client_id` only when there is no `aud`; Gatehouse access tokens
    always have an `aud`, so listing the client as an audience does not admit its tokens."""
    tokens = access_token(server, flow)
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False}).get("aud")
    authorizer = JwtAuthorizer(server.issuer, [tokens["client"]["client_id"]])
    assert refused(authorizer, tokens["access_token"]).startswith("aud")


def test_id_token_is_not_an_access_token_for_the_mcp_resource(server, flow):
    """An ID token (OpenID Connect Core §2) is for the client (`aud` = client_id): the MCP
    resource's authorizer refuses it. An authorizer whose audience is the client accepts it,
    which shows the ID token is found through the same discovery and JWKS."""
    admin = Admin(server)
    with openid_on(admin):
        client = refreshing_client(flow)
        body = assert_tokens(exchange(server, client, flow.code(client, scope="openid")))
    assert "id_token" in body, f"no id_token with the openid scope: {body}"
    mcp = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    assert refused(mcp, body["id_token"]).startswith("aud")
    mcp.authorize(body["access_token"])
    JwtAuthorizer(server.issuer, [client["client_id"]]).authorize(body["id_token"])


# --------------------------------------------------------------------------------------------
# Refused: changed tokens
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"scope": "user_default mcp:execute offline_access admin"},
    {"sub": "someone-else"},
    {"exp": 4102444800},
    {"aud": "https://api.example.com/mcp"},
])
def test_token_with_a_changed_payload_is_refused(server, flow, change):
    tokens = access_token(server, flow)
    header, payload, signature = segments(tokens["access_token"])
    claims = {**b64json(payload), **change}
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer) + [
        "https://api.example.com/mcp"])
    forged = f"{header}.{b64(claims)}.{signature}"
    assert refused(authorizer, forged) == "signature does not verify"
    authorizer.authorize(tokens["access_token"])


def test_token_with_a_changed_signature_is_refused(server, flow):
    tokens = access_token(server, flow)
    header, payload, signature = segments(tokens["access_token"])
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    assert refused(authorizer, f"{header}.{payload}.{changed}") == "signature does not verify"


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "RS512"])
def test_token_with_a_changed_algorithm_is_refused(server, flow, alg):
    """The header's `alg` changed (to no signature, to a MAC keyed with the public key, to
    another key type or curve): refused whatever the signature."""
    tokens = access_token(server, flow)
    header, payload, signature = segments(tokens["access_token"])
    changed = b64({**b64json(header), "alg": alg})
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    for sig in (signature, ""):
        reason = refused(authorizer, f"{changed}.{payload}.{sig}")
        assert "alg" in reason or "signature" in reason, reason


def test_token_with_an_unknown_kid_is_refused_after_a_second_look_at_the_jwks(server, flow):
    tokens = access_token(server, flow)
    header, payload, signature = segments(tokens["access_token"])
    changed = b64({**b64json(header), "kid": "not-a-gatehouse-key"})
    authorizer = JwtAuthorizer(server.issuer, mcp_audience(server.issuer))
    authorizer.authorize(tokens["access_token"])
    fetches = authorizer.jwks_fetches
    assert refused(authorizer, f"{changed}.{payload}.{signature}").startswith("kid")
    assert authorizer.jwks_fetches == fetches + 1


# --------------------------------------------------------------------------------------------
# Refused: outside its lifetime (the server's clock moved, the authorizer's is the real one)
# --------------------------------------------------------------------------------------------


def token_from_a_server_whose_clock_is_off(start_server, tmp_path, mode: str, offset: int):
    clock = tmp_path / f"clock-{mode}-{offset}"
    clock.write_text(f"{offset}\n")
    srv = start_server({"GATEHOUSE_DEV_CLOCK_FILE": str(clock)}, mode=mode)
    sign_access_tokens_with(srv, "RS256")
    return srv, access_token(srv)


@pytest.mark.parametrize("mode", MODES)
def test_expired_token_is_refused(start_server, tmp_path, mode):
    """A server two hours behind issues a token that (with the one-hour lifetime) expired an
    hour ago in real time."""
    srv, tokens = token_from_a_server_whose_clock_is_off(start_server, tmp_path, mode, -HOURS_2)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] < time.time(), claims
    authorizer = JwtAuthorizer(srv.issuer, mcp_audience(srv.issuer))
    assert refused(authorizer, tokens["access_token"]).startswith("exp")
    # Only its age stands in the way: an hour earlier it was accepted.
    earlier = JwtAuthorizer(srv.issuer, mcp_audience(srv.issuer),
                            clock=lambda: claims["exp"] - 60)
    assert earlier.authorize(tokens["access_token"]).claims["sub"] == claims["sub"]


@pytest.mark.parametrize("mode", MODES)
def test_token_issued_in_the_future_is_refused(start_server, tmp_path, mode):
    """A server two hours ahead issues a token whose `iat` is after now."""
    srv, tokens = token_from_a_server_whose_clock_is_off(start_server, tmp_path, mode, HOURS_2)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["iat"] > time.time(), claims
    authorizer = JwtAuthorizer(srv.issuer, mcp_audience(srv.issuer))
    reason = refused(authorizer, tokens["access_token"])
    assert reason.startswith(("iat", "nbf")), reason


# --------------------------------------------------------------------------------------------
# The tenant's access-token algorithm
# --------------------------------------------------------------------------------------------


def test_es256_access_tokens_need_an_authorizer_that_knows_ec_keys(start_server):
    """By default access tokens are ES256: the HTTP API authorizer (RSA only) refuses them and
    the REST API one (which also knows ES256) accepts them; once the tenant signs with RS256
    both accept, and the tokens signed before keep verifying with their own key."""
    srv = start_server(mode="embedded")
    es = access_token(srv)["access_token"]
    assert jwt.get_unverified_header(es)["alg"] == "ES256"
    http_api = JwtAuthorizer(srv.issuer, mcp_audience(srv.issuer))
    rest_api = JwtAuthorizer(srv.issuer, mcp_audience(srv.issuer), algorithms=ALGORITHMS)
    assert refused(http_api, es).startswith("alg 'ES256'")
    rest_api.authorize(es)

    sign_access_tokens_with(srv, "RS256")
    rs = access_token(srv)["access_token"]
    assert jwt.get_unverified_header(rs)["alg"] == "RS256"
    http_api.authorize(rs)
    rest_api.authorize(rs)
    rest_api.authorize(es)


@pytest.mark.parametrize("bad", ["HS256", "none", "rs256", "PS256", "", 256, None, ["RS256"]])
def test_access_token_signing_alg_accepts_es256_and_rs256_only(start_server, bad):
    srv = start_server(mode="embedded")
    admin = Admin(srv)
    assert admin.settings()["access_token_signing_alg"] == "ES256"
    assert_api_error(admin.patch_settings({"access_token_signing_alg": bad}), 400,
                     "invalid_request", "access_token_signing_alg")
    assert admin.settings()["access_token_signing_alg"] == "ES256", "a refused change applies nothing"



# --------------------------------------------------------------------------------------------
# The documented SAM example (infra/examples/mcp-server-jwt-authorizer.yaml)
# --------------------------------------------------------------------------------------------


def example_template() -> dict:
    """The example, read with CloudFormation's short-form tags as their long forms."""
    import yaml  # PyYAML, installed with cfn-lint (tests/requirements-infra.txt)

    class Loader(yaml.SafeLoader):
        pass

    def tag(name):
        def construct(loader, node):
            if isinstance(node, yaml.ScalarNode):
                return {name: loader.construct_scalar(node)}
            return {name: loader.construct_sequence(node)}
        return construct

    for short, long in (("!Ref", "Ref"), ("!Sub", "Fn::Sub"), ("!GetAtt", "Fn::GetAtt")):
        Loader.add_constructor(short, tag(long))
    path = Path(__file__).resolve().parents[2] / "infra" / "examples" / "mcp-server-jwt-authorizer.yaml"
    return yaml.load(path.read_text(), Loader=Loader)


def run_inline(code: str, event: dict, env: dict) -> dict:
    """Runs a function's InlineCode handler as Lambda would (module `index`, `handler`)."""
    module: dict = {}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        exec(compile(code, "index.py", "exec"), module)  # noqa: S102 - the repository's own example
        return module["handler"](event, None)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_sam_example_configures_the_authorizer_that_accepts_gatehouse_tokens(server, flow):
    """The documented template's authorizer, route scope and metadata function, given the
    tenant's issuer and MCP URL as their parameters: the protected resource metadata names the
    issuer, the authorizer configured exactly so accepts a real RS256 access token for the
    route's scope, and the MCP function reads the verified claims."""
    doc = example_template()
    res = doc["Resources"]
    auth = res["McpApi"]["Properties"]["Auth"]
    gatehouse = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert gatehouse["IdentitySource"] == "$request.header.Authorization"
    jwt_config = gatehouse["JwtConfiguration"]
    assert jwt_config == {"issuer": {"Ref": "GatehouseIssuer"},
                          "audience": [{"Ref": "McpResourceUrl"}]}, jwt_config
    mcp_route = res["McpFunction"]["Properties"]["Events"]["Mcp"]["Properties"]
    route_scopes = tuple(mcp_route["Auth"]["AuthorizationScopes"])
    metadata_route = res["ResourceMetadataFunction"]["Properties"]["Events"]["Metadata"]["Properties"]
    assert metadata_route["Auth"] == {"Authorizer": "NONE"}
    assert metadata_route["Path"] == "/.well-known/oauth-protected-resource" + mcp_route["Path"]

    parameters = {"GatehouseIssuer": server.issuer, "McpResourceUrl": f"{server.issuer}/mcp"}
    env = {k: parameters[v["Ref"]] for k, v in
           res["ResourceMetadataFunction"]["Properties"]["Environment"]["Variables"].items()}
    prm = json.loads(run_inline(res["ResourceMetadataFunction"]["Properties"]["InlineCode"],
                                {}, env)["body"])
    assert prm["authorization_servers"] == [server.issuer], prm
    assert prm["resource"] == parameters["McpResourceUrl"], prm

    authorizer = JwtAuthorizer(parameters["GatehouseIssuer"], [parameters["McpResourceUrl"]])
    tokens = access_token(server, flow, scope="mcp:execute")
    ok = authorizer.authorize(f"Bearer {tokens['access_token']}", route_scopes=route_scopes)
    answer = run_inline(res["McpFunction"]["Properties"]["InlineCode"],
                        {"requestContext": {"authorizer": {"jwt": {"claims": ok.claims}}}}, {})
    assert json.loads(answer["body"])["result"] == {
        "user": ok.claims["sub"], "client": tokens["client"]["client_id"]}
    # A token without the route's scope stops at the gateway.
    other = access_token(server, flow, scope="user_default")
    assert "scopes" in refused(authorizer, other["access_token"], route_scopes=route_scopes)
