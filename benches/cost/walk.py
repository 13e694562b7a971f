"""One MCP connection walked on a DynamoDB-mode `gatehouse serve`, with a recording proxy
between the server and moto.

The walk is the one of `tests/blackbox/test_dynamodb_calls.py` (warm-up, then every request of
a first connection and of later use, one step per request), with the client an MCP client such
as Claude registers and the pending-client cap at its default unless told otherwise. For every
DynamoDB call the proxy records the request, the response and the size of every item a write
touches, read straight from moto before and after the write. The server logs JSON lines, as on
Lambda, and each step's lines are kept to estimate CloudWatch ingestion.

The black-box harness is reused (its `Server` starts the binary with the environment the tests
give it), so the measured server is configured exactly as the tested one.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from itemsize import item_size

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "blackbox"))
import conftest  # noqa: E402
from conftest import Pkce, Server, json_body, request  # noqa: E402
from test_tokens import (  # noqa: E402
    ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, REFRESHING, Browser, Code, exchange, introspect, only_form,
    refresh, revoke)

REDIRECT = "https://claude.ai/api/mcp/auth_callback"
SCOPE = "user_default mcp:execute offline_access"
# Steps whose calls are not per-request costs: table creation and seeding, cache warm-up.
UNCOUNTED = ("startup", "warm-up")


# --------------------------------------------------------------------------------------------
# Recording proxy
# --------------------------------------------------------------------------------------------


def written_keys(target: str, body: dict) -> list[tuple[str, str, dict]]:
    """(part kind, table, key) of every item a write request touches; [] for reads."""
    op = target.split(".")[-1]
    if op == "PutItem":
        item = body["Item"]
        return [("Put", body["TableName"], {"pk": item["pk"], "sk": item["sk"]})]
    if op in ("UpdateItem", "DeleteItem"):
        return [(op.removesuffix("Item"), body["TableName"], body["Key"])]
    if op == "TransactWriteItems":
        parts = []
        for part in body["TransactItems"]:
            (kind, spec), = part.items()
            key = spec["Item"] if kind == "Put" else spec["Key"]
            parts.append((kind, spec["TableName"], {"pk": key["pk"], "sk": key["sk"]}))
        return parts
    return []


def describe_part(kind: str, key: dict, before: dict | None, after: dict | None) -> dict:
    return {"kind": kind, "pk": key["pk"]["S"], "sk": key["sk"]["S"],
            "before": item_size(before) if before else 0,
            "after": item_size(after) if after else 0,
            "gsi_before": bool(before and "gsi1pk" in before),
            "gsi_after": bool(after and "gsi1pk" in after),
            "changed": before != after}


@dataclass
class Recorder:
    """Forwards DynamoDB calls to moto one at a time and records them under the current step.

    One at a time so that the before/after snapshots of a write see no other write in between
    (the server sends a request's calls in sequence anyway; moto itself is serial)."""

    moto: str
    step: str = "startup"
    calls: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.ddb = boto3.client("dynamodb", endpoint_url=self.moto, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")

    def snapshot(self, table: str, key: dict) -> dict | None:
        return self.ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def forward(self, path: str, headers, raw: bytes) -> tuple[int, list, bytes]:
        # `headers` is the request's header message: case-insensitive, as the SDK may send
        # any case.
        target = headers.get("X-Amz-Target", "")
        body = json.loads(raw or b"{}")
        with self.lock:
            parts = written_keys(target, body)
            before = [self.snapshot(table, key) for _, table, key in parts]
            status, resp_headers, payload = self._send(path, headers, raw)
            after = [self.snapshot(table, key) for _, table, key in parts]
            try:
                response = json.loads(payload or b"{}")
            except ValueError:
                response = {}
            self.calls.append({
                "label": self.step, "op": target.split(".")[-1], "status": status,
                "request": body, "response": response,
                "parts": [describe_part(kind, key, b, a)
                          for (kind, _, key), b, a in zip(parts, before, after)]})
        return status, resp_headers, payload

    def _send(self, path: str, headers, raw: bytes) -> tuple[int, list, bytes]:
        parts = urllib.parse.urlsplit(self.moto)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request("POST", path, body=raw,
                         headers={k: v for k, v in headers.items() if k.lower() != "host"})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the SDK keeps its connection open
    # Hop-by-hop or recomputed: the rest of moto's answer goes back unchanged.
    DROPPED = {"content-length", "connection", "transfer-encoding", "date", "server"}

    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, payload = self.server.recorder.forward(self.path, self.headers, raw)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in self.DROPPED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def start_proxy(recorder: Recorder) -> http.server.ThreadingHTTPServer:
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    proxy.recorder = recorder
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------


class Steps:
    """Names the request about to be sent, so its DynamoDB calls and its log lines are filed
    under it. Each counted step must be exactly one request: the log slice between two steps is
    attributed whole."""

    def __init__(self, recorder: Recorder, server: Server):
        self.recorder, self.server = recorder, server
        self.offset = 0
        self.logs: dict[str, dict] = {}

    def __call__(self, name: str) -> None:
        text = self.server.log()
        self._file(self.recorder.step, text[self.offset:])
        self.offset = len(text)
        self.recorder.step = name

    def _file(self, name: str, text: str) -> None:
        if name in UNCOUNTED:
            return
        assert name not in self.logs, f"step {name!r} walked twice"
        # Lines outside a request span (start-up, plain-text banners) are not per-request cost.
        spanned = {}
        for line in text.splitlines(keepends=True):
            if line.startswith("{"):
                request_id = json.loads(line).get("span", {}).get("request_id")
                if request_id:
                    spanned.setdefault(request_id, []).append(line)
        assert len(spanned) == 1, f"{name}: expected one request, logged {list(spanned)}"
        (lines,) = spanned.values()
        self.logs[name] = {"bytes": sum(len(line.encode()) for line in lines),
                           "events": len(lines)}


class Connection:
    """The requests an MCP client and its user send, against one server."""

    def __init__(self, server: Server):
        self.server = server
        self.meta = f"{server.base}/.well-known/oauth-authorization-server/t/demo"
        self.prm = f"{server.base}/.well-known/oauth-protected-resource/t/demo/mcp"

    def register(self) -> dict:
        # What an MCP client such as Claude sends (RFC 7591): a confidential client.
        resp = request("POST", self.server.register_url, {
            "client_name": "Claude", "redirect_uris": [REDIRECT], "grant_types": REFRESHING,
            "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic",
            "scope": SCOPE})
        assert resp[0] == 201, resp
        return json_body(resp)

    def authorize_url(self, client: dict, pkce: Pkce) -> str:
        return f"{self.server.issuer}/oauth/authorize?" + urllib.parse.urlencode({
            "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
            "code_challenge": pkce.challenge, "code_challenge_method": "S256",
            "state": "Zm9vYmFyYmF6cXV4", "scope": SCOPE,
            "resource": f"{self.server.base}/t/demo/mcp"})

    def sign_in_and_approve(self, browser: Browser, client: dict, step) -> Code:
        """A signed-out administrator connects a new client and approves it on the spot."""
        pkce = Pkce.new()
        step("authorize GET, signed out")
        status, _, page = browser.send(self.authorize_url(client, pkce))
        assert status == 200, page
        fields = only_form(page)["fields"]
        assert fields.get("action") == "sign_in", page[-1500:]
        step("sign-in POST (approval page)")
        status, _, page = browser.send(f"{self.server.issuer}/oauth/authorize", {
            **fields, "email": ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD})
        assert status == 200, page
        form = only_form(page)
        assert form["fields"].get("action") == "decide", page[-1500:]
        step("approve POST (code)")
        status, headers, _ = browser.send(
            urllib.parse.urljoin(self.server.issuer + "/", form["action"]),
            {**form["fields"], "decision": "approve"})
        assert status == 303, headers
        query = urllib.parse.urlsplit(headers["location"]).query
        return Code(dict(urllib.parse.parse_qsl(query))["code"], pkce.verifier, REDIRECT)

    def mcp(self, token: str | None, method: str = "tools/list"):
        headers = {"Accept": "application/json, text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return request("POST", f"{self.server.base}/t/demo/mcp",
                       {"jsonrpc": "2.0", "id": 1, "method": method}, headers)

    def tokens(self, resp) -> dict:
        assert resp[0] == 200, resp
        return json.loads(resp[2])


def warm_up(conn: Connection) -> None:
    """As in test_dynamodb_calls.py: afterwards the tenant and the signing keys are cached, as
    in a warm Lambda container."""
    assert request("GET", conn.meta)[0] == 200
    client = conn.register()
    code = conn.sign_in_and_approve(Browser(), client, lambda _name: None)
    issued = conn.tokens(exchange(conn.server, client, code))
    assert conn.mcp(issued["access_token"])[0] == 200


def walk_connection(conn: Connection, step) -> None:
    server = conn.server
    step("MCP probe, no token (401)")
    assert conn.mcp(None, "initialize")[0] == 401
    step("metadata (tenant cached)")
    assert request("GET", conn.meta)[0] == 200
    step("protected resource metadata")
    assert request("GET", conn.prm)[0] == 200
    step("register")
    client = conn.register()
    browser = Browser()
    code = conn.sign_in_and_approve(browser, client, step)
    step("token: authorization_code")
    issued = conn.tokens(exchange(server, client, code))
    step("MCP call")
    assert conn.mcp(issued["access_token"])[0] == 200
    step("token: refresh_token")
    refreshed = conn.tokens(refresh(server, client, issued["refresh_token"]))
    # A second refresh and MCP call: the first of each could differ from later ones.
    step("token: refresh_token (2nd)")
    refreshed = conn.tokens(refresh(server, client, refreshed["refresh_token"]))
    step("MCP call (2nd)")
    assert conn.mcp(refreshed["access_token"])[0] == 200
    step("introspect")
    assert introspect(server, client, refreshed["access_token"])[0] == 200
    # The same signed-in administrator connects again: approved and consented, so the
    # authorization request ends at once with a code.
    step("authorize GET, signed in, approved, consented")
    status, headers, _ = browser.send(conn.authorize_url(client, Pkce.new()))
    assert status in (302, 303), headers
    step("revoke")
    assert revoke(server, client, refreshed["refresh_token"])[0] == 200
    step("done")


def scan(ddb, table: str) -> list[dict]:
    items, start = [], None
    while True:
        page = ddb.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def server_env(out: Path, pending_cap: int | None) -> dict:
    env = {
        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",  # one client address registers twice
        "GATEHOUSE_LOG_FORMAT": "json",  # as on Lambda: what CloudWatch ingests
        # The harness points every server at one session-wide file; keep ours with the rest.
        "GATEHOUSE_DYNAMODB_ACCESS_LOG": str(out / "dynamodb-access.jsonl"),
    }
    if pending_cap is not None:
        env["GATEHOUSE_PENDING_CLIENT_CAP"] = str(pending_cap)
    return env


def run(binary: Path, moto: str, out: Path, pending_cap: int | None = None) -> dict:
    """Walks the flow; writes calls.json, items.json, items_raw.json, logs.json and server.log
    into `out` and returns {"calls", "items", "logs"}."""
    # Importing the harness made an empty directory for its session-wide access log; ours
    # goes to `out` instead.
    shutil.rmtree(conftest.DYNAMODB_ACCESS_LOG.parent, ignore_errors=True)
    recorder = Recorder(moto)
    proxy = start_proxy(recorder)
    os.environ["GATEHOUSE_TEST_DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{proxy.server_port}"
    os.environ["GATEHOUSE_BIN"] = str(binary)
    server_dir = out / "server"
    server_dir.mkdir(exist_ok=True)
    server = Server("dynamodb", server_env(out, pending_cap), server_dir)
    try:
        server.start()
        conn = Connection(server)
        steps = Steps(recorder, server)
        steps("warm-up")
        warm_up(conn)
        walk_connection(conn, steps)
        items = scan(recorder.ddb, server.table)
    finally:
        server.stop()
        proxy.shutdown()
        proxy.server_close()
        (out / "server.log").write_text(server.log())
    server.assert_no_panic()
    summary = [{"pk": i["pk"]["S"], "sk": i["sk"]["S"], "size": item_size(i),
                "gsi": "gsi1pk" in i, "attrs": sorted(i)} for i in items]
    for name, data in (("calls", recorder.calls), ("items", summary), ("items_raw", items),
                       ("logs", steps.logs)):
        (out / f"{name}.json").write_text(json.dumps(data, indent=1))
    return {"calls": recorder.calls, "items": summary, "logs": steps.logs}
