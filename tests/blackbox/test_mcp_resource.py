"""RFC 9728 protected resource metadata and the demo MCP endpoint as a resource server: it
answers 401 with a `resource_metadata` challenge without a valid token (RFC 9728 §5.1,
RFC 6750 §3), and serves MCP JSON-RPC to a token whose `aud` is this resource."""

import json

import pytest

from conftest import json_body, request
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
    # means another resource and issuer).
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
