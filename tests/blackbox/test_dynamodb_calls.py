"""DynamoDB round trips per request, counted by the server itself (an SDK interceptor puts
`dynamodb_calls=N` on every request's `handled` log line), through the whole MCP flow on a
DynamoDB-mode server with warm caches: discovery, registration, the hosted sign-in and approval,
code exchange, refresh, the MCP call, introspection, revocation.

These are call counts, not timings: each one is a round trip to the database (milliseconds on
Lambda), so a change that adds one shows up here. The table is printed (`pytest -s`) and is the
source of the README's figures."""

from __future__ import annotations

import json
import re
import urllib.parse

from conftest import Pkce, json_body, request
from test_tokens import (
    ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    REFRESHING,
    Browser,
    Code,
    exchange,
    introspect,
    only_form,
    refresh,
    revoke,
)

HANDLED = re.compile(r"handled\b.*?\bstatus=(\d+).*?\bdynamodb_calls=(\d+).*?\broute=\"?([a-z_]+)")
REDIRECT = "https://agent.example.com/cb"

# Upper bounds per step (steady state: tenant, signing keys cached). Lower is fine; higher is a
# regression to explain in shared/storage-schema.md.
BOUNDS = {
    "metadata (tenant cached)": 0,
    "protected resource metadata": 0,
    "register": 3,
    "authorize GET, signed out": 2,
    "sign-in POST (approval page)": 6,
    "approve POST (code)": 5,
    "token: authorization_code": 4,
    "token: refresh_token": 4,
    "MCP tools/list": 1,
    "introspect": 3,
    "revoke": 3,
    "authorize GET, signed in, approved, consented": 4,
}


class CallLog:
    """Reads the `handled` lines a server logged since the last step."""

    def __init__(self, server):
        self.server = server
        self.offset = len(server.log())
        self.rows: list[tuple[str, str, int]] = []

    def step(self, name: str) -> int:
        assert name in BOUNDS, f"step {name!r} has no budget in BOUNDS"
        assert name not in {n for n, _, _ in self.rows}, f"step {name!r} measured twice"
        text = self.server.log()
        new, self.offset = text[self.offset:], len(text)
        lines = [m for m in HANDLED.finditer(new)]
        assert len(lines) == 1, f"{name}: expected one handled request, got {len(lines)}:\n{new}"
        status, calls, route = lines[0].groups()
        self.rows.append((name, route, int(calls)))
        return int(calls)


def authorize_url(server, client: dict, pkce: Pkce) -> str:
    return f"{server.issuer}/oauth/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
        "code_challenge": pkce.challenge, "code_challenge_method": "S256", "state": "s",
    })


def code_from(location: str) -> str:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]


def test_dynamodb_calls_per_request_through_the_mcp_flow(start_server, capsys):
    server = start_server({"GATEHOUSE_PENDING_CLIENT_CAP": "0"}, mode="dynamodb")
    meta = f"{server.base}/.well-known/oauth-authorization-server/t/demo"
    prm = f"{server.base}/.well-known/oauth-protected-resource/t/demo/mcp"

    def register():
        resp = request("POST", server.register_url, {
            "client_name": "Counted", "redirect_uris": [REDIRECT], "grant_types": REFRESHING,
            "token_endpoint_auth_method": "client_secret_basic"})
        assert resp[0] == 201, resp
        return json_body(resp)

    def first_connection(browser: Browser, client: dict, log: CallLog | None):
        pkce = Pkce.new()
        status, _, page = browser.send(authorize_url(server, client, pkce))
        if log:
            log.step("authorize GET, signed out")
        assert status == 200, page
        fields = only_form(page)["fields"]
        # A fresh browser is always signed out: the sign-in step is never skipped.
        assert fields.get("action") == "sign_in", f"expected the sign-in page: {page[-1500:]}"
        status, _, page = browser.send(f"{server.issuer}/oauth/authorize", {
            **fields, "email": ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD})
        assert status == 200, page
        if log:
            log.step("sign-in POST (approval page)")
        form = only_form(page)
        assert form["fields"].get("action") == "decide", f"expected the approval page: {page[-1500:]}"
        status, headers, _ = browser.send(
            urllib.parse.urljoin(server.issuer + "/", form["action"]),
            {**form["fields"], "decision": "approve"})
        assert status == 303, headers
        if log:
            log.step("approve POST (code)")
        return Code(code_from(headers["location"]), pkce.verifier, REDIRECT)

    def mcp_call(token: str):
        return request("POST", f"{server.base}/t/demo/mcp",
                       {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                       {"Authorization": f"Bearer {token}",
                        "Accept": "application/json, text/event-stream"})

    # Warm-up: the first request of a process loads the tenant and the signing keys.
    assert request("GET", meta)[0] == 200
    warm = register()
    tokens = json.loads(exchange(server, warm, first_connection(Browser(), warm, None))[2])
    assert "access_token" in tokens
    assert mcp_call(tokens["access_token"])[0] == 200  # the verifying key set, cached

    log = CallLog(server)
    assert request("GET", meta)[0] == 200
    log.step("metadata (tenant cached)")
    assert request("GET", prm)[0] == 200
    log.step("protected resource metadata")
    client = register()
    log.step("register")
    browser = Browser()
    code = first_connection(browser, client, log)
    resp = exchange(server, client, code)
    assert resp[0] == 200, resp
    log.step("token: authorization_code")
    issued = json.loads(resp[2])
    resp = refresh(server, client, issued["refresh_token"])
    assert resp[0] == 200, resp
    log.step("token: refresh_token")
    refreshed = json.loads(resp[2])
    mcp = mcp_call(refreshed["access_token"])
    assert mcp[0] == 200, mcp
    log.step("MCP tools/list")
    assert introspect(server, client, refreshed["access_token"])[0] == 200
    log.step("introspect")
    # A second connection by the same signed-in administrator: approved and consented, so the
    # authorization request ends at once with a code.
    pkce = Pkce.new()
    status, headers, _ = browser.send(authorize_url(server, client, pkce))
    assert status in (302, 303), headers
    log.step("authorize GET, signed in, approved, consented")
    assert revoke(server, client, refreshed["refresh_token"])[0] == 200
    log.step("revoke")

    with capsys.disabled():
        print("\nDynamoDB calls per request (steady state):")
        for name, route, calls in log.rows:
            print(f"  {name:<48} {route:<14} {calls}")
    measured = [n for n, _, _ in log.rows]
    assert sorted(measured) == sorted(BOUNDS), (
        "every budgeted step must be measured exactly once: "
        f"not measured {sorted(set(BOUNDS) - set(measured))}, "
        f"not budgeted {sorted(set(measured) - set(BOUNDS))}, measured {measured}")
    over = [(n, c, BOUNDS[n]) for n, _, c in log.rows if c > BOUNDS[n]]
    assert not over, f"more DynamoDB calls than budgeted: {over}"
