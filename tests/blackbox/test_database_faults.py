"""Database faults, black box (dynamodb mode only): a stalled, frozen, throttling or failing
DynamoDB must turn into `503 temporarily_unavailable` (JSON, `Retry-After`) within seconds,
never a hang and never a `500`; SDK retries must absorb short throttling; a failed transaction
must leave nothing half-written; and once the database is back, everything works again.

Each test runs its own moto (`tests/moto_serial.py`, one request at a time) on a free port, the
fault-injecting proxy of `faultproxy.py` in front of it, and a `gatehouse serve` whose
`GATEHOUSE_DYNAMODB_ENDPOINT` is the proxy, on a table of its own. The checks that inspect the
table talk to moto directly (boto3), behind the server's back.

The DynamoDB client bounds (shared/src/defaults.rs): 1 s connect, 1.5 s per attempt, 4 s per
operation, 3 attempts. The only timing assertions are hang guards (`HANG_GUARD_S`), far above
those bounds.

1. Stalled database (the proxy accepts and never answers; or moto is frozen with SIGSTOP):
   registration, token exchange, metadata for an uncached tenant and an admin API call each
   answer 503 within the guard; after the database resumes the same requests succeed (the
   stalled code included).
2. Throttling (`ProvisionedThroughputExceededException`) of the first one or two attempts of a
   registration's and a token exchange's `TransactWriteItems` (and of a `GetItem`): the request
   still succeeds, and the proxy saw the retries; throttling of every attempt: 503.
3. No half-written state: a code exchange whose transaction fails on every attempt leaves the
   code redeemable exactly once (no grant, code not marked); a registration whose transaction
   fails stores no client and uses no pending-cap slot; an approval whose transaction fails
   neither consumes the authorization request nor approves the client.
4. Every DynamoDB call failing (`500 InternalServerError`): every endpoint that needs the
   database answers 503 (JSON on the API endpoints, a 503 page on the hosted pages).
5. Every write failing, reads working: each writing request answers 503 and changes nothing.
6. A client deletion whose grant revocations fail after the client's `DeleteItem` succeeded:
   once the database is back, the deleted client's tokens must not keep working.
7. Every 5xx a server logged is a 503 (checked on every server's log at the end of each test),
   and no server panicked (conftest).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

for _name in ("admin_support", "faultproxy"):
    if _name not in sys.modules:
        pytest.register_assert_rewrite(_name)

from admin_support import (  # noqa: E402
    Admin,
    Browser,
    approve_as_admin,
    assert_json,
    authorize,
    code_of,
    consent_code,
    is_approval_page,
    page_form,
)
from conftest import (  # noqa: E402
    DEMO_ADMIN_PASSWORD,
    REPO_ROOT,
    _free_port,
    _port_open,
    gatehouse_binary,
    json_body,
    request,
)
from faultproxy import ANY, INTERNAL_ERROR, LOSE_ANSWER, THROTTLE, FaultProxy  # noqa: E402
from test_tokens import Flow, exchange, introspect, refresh, revoke  # noqa: E402

HANG_GUARD_S = 10.0  # a hang guard, not a performance bound (the operation timeout is 4 s)
MAX_ATTEMPTS = 3  # DYNAMODB_MAX_ATTEMPTS
MOTO_STARTUP_S = 30.0
REDIRECT_URI = "https://agent.example.com/cb"
TWI = "TransactWriteItems"

# --------------------------------------------------------------------------------------------
# The rig: moto, the proxy, a server
# --------------------------------------------------------------------------------------------


@dataclass
class Rig:
    moto_url: str
    moto: subprocess.Popen
    proxy: FaultProxy
    table: str
    server: object = None
    frozen: bool = False

    # ---- moto itself -----------------------------------------------------------------

    def freeze(self) -> None:
        """SIGSTOP moto: connections are still accepted by the kernel, never answered."""
        os.kill(self.moto.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.moto.pid, signal.SIGCONT)
        self.frozen = False

    def dynamodb(self):
        """A boto3 client straight to moto (not through the proxy), to inspect the table."""
        import boto3  # moto's own dependency, in the test venv

        return boto3.client(
            "dynamodb", endpoint_url=self.moto_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")

    def items(self, pk_prefix: str) -> list[dict]:
        """Every item whose partition key starts with `pk_prefix` (a consistent scan)."""
        db = self.dynamodb()
        out: list[dict] = []
        kwargs = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": pk_prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = db.scan(**kwargs)
            out.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def cli(self, *args: str) -> str:
        """The operator CLI against moto directly."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GATEHOUSE_") and not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")
        done = subprocess.run(
            [str(gatehouse_binary()), "--table", self.table, "--endpoint", self.moto_url,
             "--region", "us-east-1", *args],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"gatehouse {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout


def _start_moto(log_dir: Path) -> tuple[subprocess.Popen, str]:
    for _ in range(3):
        port = _free_port()
        log = open(log_dir / f"moto-{port}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "moto_serial.py"), "127.0.0.1", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + MOTO_STARTUP_S
        while time.monotonic() < deadline and proc.poll() is None:
            if _port_open(port):
                return proc, f"http://127.0.0.1:{port}"
            time.sleep(0.1)
        _stop_process(proc)
    pytest.fail(f"moto did not start; see {log_dir}", pytrace=False)


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except OSError:
        pass
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


HANDLED_5XX = re.compile(r"\bstatus=(5\d\d)\b")


def assert_only_503s_logged(server) -> None:
    """Every 5xx this server answered (its `handled` lines) was a 503."""
    bad = [line for line in server.log().splitlines()
           if "handled" in line and (m := HANDLED_5XX.search(line)) and m.group(1) != "503"]
    assert not bad, f"{server} answered 5xx other than 503:\n" + "\n".join(bad)


@pytest.fixture
def rig(start_server, tmp_path, monkeypatch):
    """`rig(extra_env)` → a Rig with moto, the proxy in front of it and a dynamodb-mode server
    talking to the proxy. Everything is stopped at the end of the test."""
    rigs: list[Rig] = []

    def make(extra_env: dict | None = None) -> Rig:
        moto, moto_url = _start_moto(tmp_path)
        proxy = FaultProxy(moto_url).start()
        r = Rig(moto_url, moto, proxy, f"gatehouse-faults-{secrets.token_hex(5)}")
        rigs.append(r)
        # conftest insists on the variable for dynamodb mode; our own endpoint overrides it.
        if not os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip():
            monkeypatch.setenv("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", moto_url)
        env = {
            "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
            **(extra_env or {}),
            "GATEHOUSE_DYNAMODB_ENDPOINT": proxy.url,
            "GATEHOUSE_TABLE": r.table,
        }
        r.server = start_server(env, mode="dynamodb")
        r.server.table = r.table
        return r

    yield make
    try:
        for r in rigs:
            if r.frozen:
                r.thaw()
            r.proxy.passthrough()
        for r in rigs:
            if r.server is not None:
                assert_only_503s_logged(r.server)
    finally:
        for r in rigs:
            if r.server is not None:
                r.server.stop()
            r.proxy.stop()
            _stop_process(r.moto)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - started


def assert_unavailable(resp, elapsed: float | None = None, what: str = "") -> dict:
    """`503` JSON `temporarily_unavailable` with `Retry-After`, within the hang guard."""
    status, headers, raw = resp
    if elapsed is not None:
        assert elapsed < HANG_GUARD_S, f"{what}: answered after {elapsed:.1f} s"
    assert status == 503, f"{what}: expected 503 temporarily_unavailable, got {status}: {raw[:800]!r}"
    assert headers.get("content-type", "").split(";")[0].strip() == "application/json", (what, headers)
    body = json_body(resp)
    assert isinstance(body, dict) and body.get("error") == "temporarily_unavailable", (what, body)
    retry_after = headers.get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) > 0, (what, headers)
    return body


def assert_no_500(resp, what: str = "") -> None:
    """A 5xx must be a JSON 503 with `error`, never a 500."""
    status, headers, raw = resp
    if status >= 500:
        assert status == 503, f"{what}: {status} {raw[:800]!r}"
        body = json_body(resp)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (what, body)


def register(server, **fields):
    doc = {"client_name": f"faults-{secrets.token_hex(4)}", "redirect_uris": [REDIRECT_URI]}
    doc.update(fields)
    return request("POST", server.register_url, doc)


def registered(server, **fields) -> dict:
    resp = register(server, **fields)
    assert resp[0] == 201, f"registration failed: {resp[0]} {resp[2][:800]!r}"
    return json_body(resp)


def metadata(server, tenant: str):
    return request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/{tenant}")


def pending_ids(admin: Admin) -> set[str]:
    """Every pending client, through the admin API's filter."""
    found: set[str] = set()
    cursor = None
    for _ in range(100):
        query = {"filter": 'status eq "pending"', "limit": 100}
        if cursor:
            query["cursor"] = cursor
        doc = assert_json(admin.api(
            "GET", "/oauth-clients?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)))
        found |= {c["client_id"] for c in doc["data"]}
        cursor = doc.get("next_cursor")
        if not cursor:
            return found
    pytest.fail("the pending listing never ended")


def grants_of(rig: Rig, client_id: str) -> list[dict]:
    return [i for i in rig.items("GRANT#demo#")
            if i.get("gsi1pk", {}).get("S") == f"GRANTS#demo#{client_id}"]


def code_item(rig: Rig, code: str) -> dict:
    digest = hashlib.sha256(code.encode("ascii")).hexdigest()
    found = rig.items(f"CODE#demo#{digest}")
    assert len(found) == 1, f"the code's item is not in the table: {found}"
    return found[0]


def in_parallel(calls: dict) -> dict:
    """Runs each `name: (fn, args...)` at once; returns `name: (result, elapsed)`. A call that
    raises (e.g. the client's own 10 s timeout: a hang) fails the test."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(timed, fn, *args) for name, (fn, *args) in calls.items()}
        return {name: f.result() for name, f in futures.items()}


# --------------------------------------------------------------------------------------------
# 1. Stalled database
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["proxy-stall", "sigstop"])
def test_stalled_database_answers_503_quickly_then_recovers(rig, how):
    # A long tenant cache keeps the demo tenant cached, so each request below fails on its own
    # DynamoDB calls; the "spare" tenant is never read before the stall (uncached).
    r = rig({"GATEHOUSE_TENANT_CACHE_TTL": "600", "GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "100"})
    srv = r.server
    r.cli("tenant", "create", "spare")
    assert metadata(srv, "demo")[0] == 200
    admin = Admin(srv)
    client = registered(srv)
    warm = approve_as_admin(srv, admin.browser, client)
    assert exchange(srv, client, warm)[0] == 200  # signing keys now cached
    code = consent_code(srv, admin.browser, client)

    if how == "proxy-stall":
        r.proxy.stall()
    else:
        r.freeze()
    try:
        results = in_parallel({
            "registration": (register, srv),
            "token exchange": (exchange, srv, client, code),
            "metadata of an uncached tenant": (metadata, srv, "spare"),
            "admin API": (admin.api, "GET", "/oauth-clients?limit=5"),
        })
    finally:
        stalled = sum(r.proxy.stalled().values())
        if how == "proxy-stall":
            r.proxy.release()
        else:
            r.thaw()
    for name, (resp, elapsed) in results.items():
        assert_unavailable(resp, elapsed, f"{how}: {name}")
    if how == "proxy-stall":
        # Every request reached the database and was held there (retries included).
        assert stalled >= len(results), r.proxy.stalled()

    # Full recovery: the same requests succeed.
    registered(srv)
    resp = metadata(srv, "spare")
    assert resp[0] == 200, resp
    assert json_body(resp)["issuer"] == f"{srv.base}/t/spare"
    doc = assert_json(admin.api("GET", "/oauth-clients?limit=5"))
    assert client["client_id"] in {c["client_id"] for c in doc["data"]}, doc
    # Each stalled request gave up on its first DynamoDB call (a read), so none of them reached
    # its write, not even late (a frozen moto works off its backlog when it resumes): the
    # stalled code is untouched and redeems now.
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"the stalled code no longer redeems: {resp[0]} {resp[2][:800]!r}"
    assert "access_token" in json_body(resp)


# --------------------------------------------------------------------------------------------
# 2. Throttling
# --------------------------------------------------------------------------------------------


def test_throttling_is_retried_and_persistent_throttling_is_503(rig):
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "100"})  # a cap: registration is a transaction
    srv, proxy = r.server, r.proxy
    flow = Flow(srv)
    registered(srv)  # warm: tenant cached, connection pool open

    # Registration: the first 1, then 2 attempts of its transaction throttled → still 201.
    for throttled in (1, 2):
        before = proxy.count(TWI)
        proxy.fail(TWI, THROTTLE, count=throttled)
        resp = register(srv)
        assert resp[0] == 201, f"{throttled} throttled attempt(s): {resp[0]} {resp[2][:800]!r}"
        assert proxy.count(TWI) - before == throttled + 1, proxy.counts()
    # Every attempt throttled → 503, after the SDK's retries.
    before = proxy.count(TWI)
    proxy.fail(TWI, THROTTLE, count=None)
    resp, elapsed = timed(register, srv)
    proxy.clear()
    assert_unavailable(resp, elapsed, "registration, throttled on every attempt")
    assert 2 <= proxy.count(TWI) - before <= MAX_ATTEMPTS, proxy.counts()

    # Token exchange: the same for its redemption transaction.
    client = registered(srv)
    assert exchange(srv, client, flow.code(client))[0] == 200  # approval; signing keys cached
    for throttled in (1, 2):
        code = flow.code(client)
        before = proxy.count(TWI)
        proxy.fail(TWI, THROTTLE, count=throttled)
        resp = exchange(srv, client, code)
        assert resp[0] == 200, f"{throttled} throttled attempt(s): {resp[0]} {resp[2][:800]!r}"
        assert "access_token" in json_body(resp)
        assert proxy.count(TWI) - before == throttled + 1, proxy.counts()
    code = flow.code(client)
    before = proxy.count(TWI)
    proxy.fail(TWI, THROTTLE, count=None)
    resp, elapsed = timed(exchange, srv, client, code)
    proxy.clear()
    assert_unavailable(resp, elapsed, "token exchange, throttled on every attempt")
    assert 2 <= proxy.count(TWI) - before <= MAX_ATTEMPTS, proxy.counts()
    # Nothing was written: the code still redeems.
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"{resp[0]} {resp[2][:800]!r}"

    # A throttled read (the client's GetItem, first of the exchange) is retried too.
    code = flow.code(client)
    before = proxy.count("GetItem")
    proxy.fail("GetItem", THROTTLE, count=2)
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"{resp[0]} {resp[2][:800]!r}"
    assert proxy.count("GetItem") - before >= 2 + 2, proxy.counts()  # 2 throttled + 2 reads


# --------------------------------------------------------------------------------------------
# 3. No half-written state
# --------------------------------------------------------------------------------------------


def test_failed_transactions_leave_nothing_half_written(rig):
    cap = 3
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": str(cap)})
    srv, proxy = r.server, r.proxy
    admin = Admin(srv)
    before = pending_ids(admin)
    assert before == set(), before

    # A registration whose transaction fails on every attempt: 503, no client, no cap slot.
    clients_before = len(r.items("CLIENT#demo#"))
    proxy.fail(TWI, INTERNAL_ERROR, count=None)
    resp, elapsed = timed(register, srv)
    proxy.clear()
    assert_unavailable(resp, elapsed, "registration, transaction failing")
    assert proxy.faulted().get(TWI, 0) >= 2, proxy.faulted()
    assert pending_ids(admin) == before, "a failed registration left a pending client behind"
    assert len(r.items("CLIENT#demo#")) == clients_before
    counters = r.items("PENDING#demo")
    assert all(int(i.get("n", {}).get("N", "0")) == 0 for i in counters), counters
    # ...and used no slot: `cap` registrations still succeed, the next one is refused.
    clients = [registered(srv) for _ in range(cap)]
    assert pending_ids(admin) == {c["client_id"] for c in clients}
    resp = register(srv)
    assert resp[0] == 429, f"past the cap: {resp[0]} {resp[2][:800]!r}"

    # An approval whose transaction (consume request, code, consent, approval) fails: an
    # error page, the client still pending, and the same form then works.
    client = clients[0]
    attempt = authorize(srv, admin.browser, client)
    assert attempt.resp.status == 200 and is_approval_page(attempt.resp), attempt.resp
    form = page_form(attempt.resp, "decide")
    proxy.fail(TWI, INTERNAL_ERROR, count=None)
    page, elapsed = timed(admin.browser.submit, form, "approve")
    proxy.clear()
    assert elapsed < HANG_GUARD_S, elapsed
    assert page.status == 503, f"approval with a failing transaction: {page!r}"
    assert client["client_id"] in pending_ids(admin), "half an approval: no longer pending"
    done = admin.browser.submit(form, "approve")
    code = code_of(srv, attempt, done)
    assert client["client_id"] not in pending_ids(admin)

    # A code exchange whose transaction fails on every attempt: 503, then the same code
    # redeems exactly once.
    proxy.fail(TWI, INTERNAL_ERROR, count=None)
    resp, elapsed = timed(exchange, srv, client, code)
    proxy.clear()
    assert_unavailable(resp, elapsed, "token exchange, transaction failing")
    assert grants_of(r, client["client_id"]) == [], "a grant without the code marked redeemed"
    assert "redeemed_grant" not in code_item(r, code.code), "code marked without its grant"
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"the code no longer redeems: {resp[0]} {resp[2][:800]!r}"
    grants = grants_of(r, client["client_id"])
    assert len(grants) == 1, grants
    assert code_item(r, code.code)["redeemed_grant"]["S"] == grants[0]["pk"]["S"].rsplit("#", 1)[1]
    replay = exchange(srv, client, code)
    assert replay[0] == 400 and json_body(replay).get("error") == "invalid_grant", replay


def test_an_unreadable_signing_key_leaves_the_code_unspent(rig):
    """The token endpoint reads its signing keys (a `Query` of the published keys, on a fresh
    process) before it redeems the code: when that read fails the answer is 503 and the same
    code still redeems, for the access-token key and then for the ID-token key (RS256, read
    only when a code grants `openid`)."""
    r = rig()
    srv, proxy = r.server, r.proxy
    admin = Admin(srv)
    assert_json(admin.patch_settings({"openid_enabled": True}))
    client = registered(srv, scope="openid mcp:execute")
    code = approve_as_admin(srv, admin.browser, client, scope="mcp:execute")
    for what, scope in (("access-token key", None), ("ID-token key", "openid")):
        if scope:
            code = consent_code(srv, admin.browser, client, scope=scope)
        proxy.fail("Query", INTERNAL_ERROR, count=None)
        resp, elapsed = timed(exchange, srv, client, code)
        proxy.clear()
        assert_unavailable(resp, elapsed, f"token exchange, {what} unreadable")
        assert "redeemed_grant" not in code_item(r, code.code), f"{what}: the code was spent"
        resp = exchange(srv, client, code)
        assert resp[0] == 200, f"{what}: the code no longer redeems: {resp[0]} {resp[2][:800]!r}"
        assert ("id_token" in json_body(resp)) == bool(scope), json_body(resp)


# --------------------------------------------------------------------------------------------
# 4. Internal errors from the database on every kind of call: 503, never 500
# --------------------------------------------------------------------------------------------


def test_every_endpoint_answers_503_when_every_database_call_fails(rig):
    """Every DynamoDB call answering `500 InternalServerError` on every attempt: each endpoint
    that needs the database answers 503 (JSON `temporarily_unavailable` on the API endpoints,
    a 503 page on the hosted pages) within the hang guard, never a 500, and everything works
    again afterwards."""
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "100", "GATEHOUSE_TENANT_CACHE_TTL": "600"})
    srv, proxy = r.server, r.proxy
    r.cli("tenant", "create", "spare")
    admin = Admin(srv)
    client = registered(srv, grant_types=["authorization_code", "refresh_token"])
    issued = json_body(exchange(srv, client, approve_as_admin(srv, admin.browser, client)))
    code = consent_code(srv, admin.browser, client)
    bearer = {"Authorization": f"Bearer {issued['access_token']}",
              "Accept": "application/json, text/event-stream"}
    mcp_call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    config_auth = {"Authorization": f"Bearer {client['registration_access_token']}"}
    authorize_query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "s"})
    json_calls = {
        "register": (register, srv),
        "token: authorization_code": (exchange, srv, client, code),
        "token: refresh_token": (refresh, srv, client, issued["refresh_token"]),
        "introspect": (introspect, srv, client, issued["access_token"]),
        "revoke": (revoke, srv, client, issued["refresh_token"]),
        "MCP call": (request, "POST", f"{srv.issuer}/mcp", mcp_call, bearer),
        "RFC 7592 read": (request, "GET", client["registration_client_uri"], None, config_auth),
        "metadata of an uncached tenant": (metadata, srv, "spare"),
        "admin API: clients": (admin.api, "GET", "/oauth-clients?limit=5"),
        "admin API: users": (admin.api, "GET", "/users"),
        "admin API: settings": (admin.api, "GET", "/settings"),
    }
    page_calls = {
        "authorize GET (signed in)": (admin.browser.get,
                                      f"{srv.issuer}/oauth/authorize?{authorize_query}"),
        "console": (admin.browser.get, f"{srv.issuer}/admin"),
    }
    proxy.fail(ANY, INTERNAL_ERROR, count=None)
    try:
        results = in_parallel({**json_calls, **page_calls})
    finally:
        proxy.clear()
    failures = []
    for name, (resp, elapsed) in results.items():
        try:
            if name in page_calls:
                assert elapsed < HANG_GUARD_S, f"{name}: answered after {elapsed:.1f} s"
                assert resp.status == 503, f"{name}: expected a 503 page, got {resp!r}"
            else:
                assert_unavailable(resp, elapsed, name)
        except AssertionError as err:
            failures.append(str(err))
    assert not failures, "\n".join(failures)
    assert proxy.faulted(), "the database was never called"

    # Recovery: the same requests work.
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"{resp[0]} {resp[2][:800]!r}"
    fresh = json_body(refresh(srv, client, issued["refresh_token"]))
    assert "access_token" in fresh, fresh
    assert request("POST", f"{srv.issuer}/mcp", mcp_call,
                   {**bearer, "Authorization": f"Bearer {fresh['access_token']}"})[0] == 200
    assert metadata(srv, "spare")[0] == 200
    assert request("GET", client["registration_client_uri"], None, config_auth)[0] == 200
    for path in ("/oauth-clients?limit=5", "/users", "/settings"):
        assert_json(admin.api("GET", path))
    registered(srv)


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def test_every_write_failing_answers_503_and_changes_nothing(rig):
    """Reads work, every write fails (`500` on every attempt): each request that writes
    answers 503 within the hang guard, never 500, and none of them changed anything."""
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "100"})
    srv, proxy = r.server, r.proxy
    admin = Admin(srv)
    client = registered(srv, grant_types=["authorization_code", "refresh_token"])
    issued = json_body(exchange(srv, client, approve_as_admin(srv, admin.browser, client)))
    code = consent_code(srv, admin.browser, client)
    renamed, deleted, self_deleted = registered(srv), registered(srv), registered(srv)
    settings_before = admin.settings()
    new_user = f"faults-{secrets.token_hex(4)}@demo.test"
    authorize_url = f"{srv.issuer}/oauth/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "s"})
    self_auth = {"Authorization": f"Bearer {self_deleted['registration_access_token']}"}

    json_calls = {
        "register": (register, srv),
        "token: authorization_code": (exchange, srv, client, code),
        "token: refresh_token (rotation)": (refresh, srv, client, issued["refresh_token"]),
        "revoke": (revoke, srv, client, issued["refresh_token"]),
        "admin API: PATCH client": (admin.patch_client, renamed["client_id"],
                                    {"client_name": "renamed during the outage"}),
        "admin API: DELETE client": (admin.api, "DELETE", f"/oauth-clients/{deleted['client_id']}"),
        "admin API: add user": (admin.api, "POST", "/users",
                                {"email": new_user, "password": "a-long-password-1", "role": "user"}),
        "admin API: PATCH settings": (admin.patch_settings, {"display_name": "Changed in outage"}),
        "admin API: mint token (session)": (admin.session.call, "POST", "/tokens",
                                            {"name": "minted during the outage"}),
        "RFC 7592 DELETE": (request, "DELETE", self_deleted["registration_client_uri"], None,
                            self_auth),
    }
    page_calls = {
        "authorize GET, signed out (parks the request)": (Browser(srv).get, authorize_url),
    }
    for op in WRITES:
        proxy.fail(op, INTERNAL_ERROR, count=None)
    try:
        results = in_parallel({**json_calls, **page_calls})
    finally:
        proxy.clear()
    failures = []
    for name, (resp, elapsed) in results.items():
        try:
            if name in page_calls:
                assert elapsed < HANG_GUARD_S, f"{name}: answered after {elapsed:.1f} s"
                assert resp.status == 503, f"{name}: expected a 503 page, got {resp!r}"
            else:
                assert_unavailable(resp, elapsed, name)
        except AssertionError as err:
            failures.append(str(err))
    assert not failures, "\n".join(failures)
    assert set(proxy.faulted()) <= set(WRITES), proxy.faulted()

    # Nothing changed: the refresh token was neither rotated nor revoked, the code is unused,
    # the clients, users and settings are as they were.
    assert admin.client(renamed["client_id"])["client_name"] == renamed["client_name"]
    assert admin.api("GET", f"/oauth-clients/{deleted['client_id']}")[0] == 200
    assert request("GET", self_deleted["registration_client_uri"], None, self_auth)[0] == 200
    assert admin.user(new_user) is None
    assert admin.settings() == settings_before
    resp = refresh(srv, client, issued["refresh_token"])
    assert resp[0] == 200, f"{resp[0]} {resp[2][:800]!r}"
    resp = exchange(srv, client, code)
    assert resp[0] == 200, f"{resp[0]} {resp[2][:800]!r}"
    # And every write works again.
    assert admin.patch_client(renamed["client_id"], {"client_name": "renamed"})[0] == 200
    assert admin.api("DELETE", f"/oauth-clients/{deleted['client_id']}")[0] == 204
    assert admin.api("POST", "/users", {"email": new_user, "password": "a-long-password-1",
                                        "role": "user"})[0] == 201
    assert request("DELETE", self_deleted["registration_client_uri"], None, self_auth)[0] == 204
    assert Browser(srv).get(authorize_url).status == 200
    registered(srv)


def test_client_deletion_whose_grant_revocation_fails_still_ends_its_tokens(rig):
    """Deleting a client is a `DeleteItem` of the client, then one `UpdateItem` per live grant
    (storage-schema.md). If the revocations fail after the client is gone, the administrator
    gets a 503; once the database is back, retrying the deletion (or anything else) must not
    leave the deleted client's access tokens working at the demo MCP endpoint or its grants
    unrevoked (docs/admin-api.md: DELETE "revokes every grant of the client"); introspection,
    which answers a client about its own tokens only, no longer knows the client."""
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "100"})
    srv, proxy = r.server, r.proxy
    admin = Admin(srv)
    victim = registered(srv)
    tokens = json_body(exchange(srv, victim, approve_as_admin(srv, admin.browser, victim)))
    bearer = {"Authorization": f"Bearer {tokens['access_token']}",
              "Accept": "application/json, text/event-stream"}
    mcp_call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert request("POST", f"{srv.issuer}/mcp", mcp_call, bearer)[0] == 200
    assert json_body(introspect(srv, victim, tokens["access_token"]))["active"] is True

    proxy.fail("UpdateItem", INTERNAL_ERROR, count=None)
    try:
        resp, elapsed = timed(admin.api, "DELETE", f"/oauth-clients/{victim['client_id']}")
    finally:
        proxy.clear()
    assert elapsed < HANG_GUARD_S, elapsed
    assert_no_500(resp, "DELETE client, grant revocation failing")
    assert resp[0] in (204, 503), f"{resp[0]} {resp[2][:800]!r}"

    # The database is back; the administrator retries the deletion after a 503.
    retry = admin.api("DELETE", f"/oauth-clients/{victim['client_id']}")
    assert retry[0] in (204, 404), f"{retry[0]} {retry[2][:800]!r}"
    assert admin.api("GET", f"/oauth-clients/{victim['client_id']}")[0] == 404
    grants = grants_of(r, victim["client_id"])
    live = [g["pk"]["S"] for g in grants if "revoked_at" not in g]
    mcp = request("POST", f"{srv.issuer}/mcp", mcp_call, bearer)
    introspection = introspect(srv, victim, tokens["access_token"])
    assert (mcp[0], introspection[0], live) == (401, 401, []), (
        f"client deleted (first DELETE {resp[0]}, retry {retry[0]}) but its grant was never "
        f"revoked: MCP call {mcp[0]}, introspection by the deleted client "
        f"{introspection[0]} {introspection[2][:200]!r}, unrevoked grants {live}")


# --------------------------------------------------------------------------------------------
# 8. A write that committed but whose answer was lost: the SDK retries it; the retry must be
#    recognised as the same write, not as a duplicate (registration) or a replay.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cap, operation", [("5", TWI), ("0", "PutItem")],
                         ids=["capped-transaction", "uncapped-putitem"])
def test_a_registration_whose_answer_is_lost_still_succeeds_once(rig, cap, operation):
    r = rig({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": cap})
    srv, proxy = r.server, r.proxy
    admin = Admin(srv)
    clients_before = len(r.items("CLIENT#demo#"))
    proxy.fail(operation, LOSE_ANSWER, count=1)
    resp, elapsed = timed(register, srv)
    assert elapsed < HANG_GUARD_S, elapsed
    assert proxy.faulted().get(operation, 0) == 1, proxy.faulted()
    assert resp[0] == 201, f"registration with a lost answer: {resp[0]} {resp[2][:800]!r}"
    client = json_body(resp)
    assert len(r.items("CLIENT#demo#")) == clients_before + 1
    assert client["client_id"] in pending_ids(admin)
    if cap != "0":
        counters = r.items("PENDING#demo")
        assert sum(int(i.get("n", {}).get("N", "0")) for i in counters) == 1, counters


def test_a_parked_request_and_a_session_whose_answers_are_lost_still_work(rig):
    r = rig({})
    srv, proxy = r.server, r.proxy
    client = registered(srv)
    browser = Browser(srv)
    proxy.fail("PutItem", LOSE_ANSWER, count=1)  # parking the authorization request
    attempt, elapsed = timed(authorize, srv, browser, client)
    assert elapsed < HANG_GUARD_S, elapsed
    assert proxy.faulted().get("PutItem", 0) == 1, proxy.faulted()
    assert attempt.resp.status == 200, f"authorization with a lost answer: {attempt.resp!r}"
    proxy.fail("PutItem", LOSE_ANSWER, count=1)  # the session of the sign-in
    page = browser.sign_in(attempt.resp, "admin@demo.test", DEMO_ADMIN_PASSWORD)
    assert proxy.faulted().get("PutItem", 0) == 2, proxy.faulted()
    assert page.status == 200 and is_approval_page(page), f"sign-in with a lost answer: {page!r}"
