"""RFC 9728 protected resource metadata and the demo MCP endpoint as a resource server: it
answers 401 with a `resource_metadata` challenge without a valid token (RFC 9728 §5.1,
RFC 6750 §3), and serves MCP JSON-RPC to a token whose `aud` is this resource.

The audience check is proven on a DynamoDB-mode server: its signing keys live in the (moto)
table, so the test reads the active private key (PKCS#8) and mints tokens itself that differ
from a genuine one only in `aud`."""

import base64
import json
import os

import jwt  # PyJWT[crypto], pinned in tests/requirements.txt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import DYNAMODB_ENDPOINT_MISSING, json_body, request, unseal_local
from test_tokens import Flow, assert_tokens, exchange, register


@pytest.fixture(scope="module")
def flow(server) -> Flow:
    return Flow(server)


def mcp(server, token: str | None, message: dict):
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request("POST", f"{server.issuer}/mcp", message, headers)


def access_token(server, flow, **params) -> str:
    client = register(server, token_endpoint_auth_method="none")
    tokens = assert_tokens(exchange(server, client, flow.code(client, **params)))
    return tokens["access_token"]


@pytest.mark.parametrize("path", [
    "/.well-known/oauth-protected-resource/t/demo/mcp",
    "/t/demo/mcp/.well-known/oauth-protected-resource",
])
def test_protected_resource_metadata_names_the_issuer(server, path):
    status, headers, body = request("GET", server.base + path)
    assert status == 200
    doc = json.loads(body)
    assert doc["resource"] == f"{server.issuer}/mcp"
    assert doc["authorization_servers"] == [server.issuer]
    assert doc["scopes_supported"] == ["user_default", "mcp:execute"]
    assert doc["bearer_methods_supported"] == ["header"]
    assert headers["access-control-allow-origin"] == "*"


def test_without_a_token_the_challenge_points_at_the_resource_metadata(server):
    status, headers, body = mcp(server, None, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert status == 401
    challenge = headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/t/demo/mcp"' in challenge
    assert 'scope="user_default mcp:execute"' in challenge
    assert "error=" not in challenge


def test_a_forged_token_is_invalid_token(server):
    status, headers, _ = mcp(server, "eyJhbGciOiJub25lIn0.e30.", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]


def test_a_valid_token_initializes_lists_and_calls_tools(server, flow):
    token = access_token(server, flow)
    status, _, body = mcp(server, token, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    })
    assert status == 200, body
    result = json.loads(body)["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert "tools" in result["capabilities"]
    status, _, body = mcp(server, token, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert status == 202 and body == b""
    status, _, body = mcp(server, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert [t["name"] for t in json.loads(body)["result"]["tools"]] == ["whoami"]
    status, _, body = mcp(server, token, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
    assert status == 200
    assert "mcp:execute" in json.loads(body)["result"]["content"][0]["text"]


def test_a_token_without_mcp_execute_cannot_call_tools(server, flow):
    token = access_token(server, flow, scope="user_default")
    status, headers, body = mcp(server, token, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami"}})
    assert status == 403
    assert json_body((status, headers, body))["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in headers["www-authenticate"]


def test_a_token_for_another_resource_is_refused(server, flow, start_server):
    # A token whose aud is this server's MCP URL is refused by another server (another base URL
    # means another resource and issuer; its keys differ too, so this alone does not prove the
    # audience check: see test_a_token_of_this_issuer_for_another_audience_is_refused).
    token = access_token(server, flow)
    other = start_server({})
    status, headers, _ = mcp(other, token, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]


def test_unknown_tenants_have_no_resource(server):
    status, _, body = request("GET", f"{server.base}/.well-known/oauth-protected-resource/t/nope/mcp")
    assert status == 404 and json.loads(body)["error"] == "not_found"
    status, _, _ = request("POST", f"{server.base}/t/nope/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 404


# --------------------------------------------------------------------------------------------
# The audience check itself: right signature and issuer, wrong `aud`
# --------------------------------------------------------------------------------------------


def private_signing_key(srv, kid: str) -> ec.EllipticCurvePrivateKey:
    """The private half of the demo tenant's signing key `kid`, read from the server's DynamoDB
    table in moto (item `pk = SIGNKEY#demo#{kid}`, `sk = SIGNKEY`, sealed with the test
    session's local wrapping key: `conftest.unseal_local`). Checked against the key the server
    publishes for `kid`."""
    import boto3  # moto's own dependency, in the test venv

    endpoint = os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip()
    if not endpoint:
        pytest.fail(DYNAMODB_ENDPOINT_MISSING, pytrace=False)
    db = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    items, kwargs = [], {"TableName": srv.table, "ConsistentRead": True,
                         "FilterExpression": "begins_with(pk, :p)",
                         "ExpressionAttributeValues": {":p": {"S": "SIGNKEY#"}}}
    while True:
        page = db.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    mine = [i for i in items if i["pk"]["S"] == f"SIGNKEY#demo#{kid}"]
    assert len(mine) == 1, (
        f"no single private key item for the active kid {kid!r} in table {srv.table}: "
        f"{[i['pk']['S'] for i in items]}")
    key = serialization.load_der_private_key(unseal_local(mine[0], "demo", kid), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1", key
    status, _, body = request("GET", f"{srv.issuer}/jwks.json")
    assert status == 200, body
    published = [k for k in json.loads(body)["keys"] if k["kid"] == kid]
    assert len(published) == 1, f"kid {kid!r} is not (once) in the JWKS"
    numbers = jwt.PyJWK(published[0]).key.public_numbers()
    assert key.public_key().public_numbers() == numbers, (
        "the private key in the table is not the published key of that kid")
    return key


def test_a_token_of_this_issuer_for_another_audience_is_refused(start_server):
    """RFC 9068 §4 / RFC 8707: the demo resource accepts only tokens whose `aud` is its own URL.
    A genuine token is re-signed with the server's own active key twice: unchanged (the control,
    accepted: the minting is right) and with only `aud` changed (refused, 401 invalid_token)."""
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    genuine = access_token(srv, Flow(srv))
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    resource = f"{srv.issuer}/mcp"
    assert claims["aud"] == resource and claims["iss"] == srv.issuer, claims
    assert header.get("typ") == "at+jwt" and header.get("alg") == "ES256", header
    key = private_signing_key(srv, header["kid"])

    def mint(**changes) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="ES256",
                          headers={"kid": header["kid"], "typ": "at+jwt"})

    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    status, _, body = mcp(srv, genuine, tools_list)
    assert status == 200, body
    # Control: the same claims signed by us are accepted, so a refusal below is the audience's.
    control = mint()
    assert jwt.get_unverified_header(control) == {**header, "alg": "ES256"}, (
        jwt.get_unverified_header(control), header)
    status, headers, body = mcp(srv, control, tools_list)
    assert status == 200, f"the re-signed control token was refused: {status} {headers} {body!r}"
    assert [t["name"] for t in json.loads(body)["result"]["tools"]] == ["whoami"], body

    for aud in (f"{srv.base}/t/other/mcp", "https://elsewhere.example/mcp", srv.issuer,
                f"{resource}/", f"{srv.issuer}/api"):
        token = mint(aud=aud)
        # Signature and issuer are right (checked here with the published key): only aud differs.
        published = jwt.decode(token, key.public_key(), algorithms=["ES256"], audience=aud,
                               issuer=srv.issuer)
        assert {k: v for k, v in published.items() if k != "aud"} == {
            k: v for k, v in claims.items() if k != "aud"}
        status, headers, body = mcp(srv, token, tools_list)
        assert status == 401, f"a token for aud {aud!r} was accepted: {status} {body!r}"
        challenge = headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer "), headers
        assert 'error="invalid_token"' in challenge, challenge
        assert b"whoami" not in body, body

    # The refusals revoked nothing: the control token still works.
    status, _, body = mcp(srv, control, tools_list)
    assert status == 200, body
