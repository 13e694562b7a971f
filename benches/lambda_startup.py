#!/usr/bin/env python3
"""Lambda start-up of every function binary, measured against a minimal Lambda Runtime API
emulator (the HTTP protocol a `provided.al2023` runtime speaks: `GET .../invocation/next`,
`POST .../invocation/{id}/response`), with DynamoDB served by moto on loopback.

For each function, with a request its template route answers with a 2xx:
- init: process start → its first `GET /invocation/next` (configuration, SDK client, the
  DynamoDB warm-up read, logging — everything Lambda bills as the init phase);
- first: the first invocation, event handed out → response received;
- warm: the median of the following invocations.

The binaries are the host-architecture release build (`cargo build --release`), whose profile
is the one the arm64 Lambda build uses (opt-level "s", fat LTO): the figures are for that host
build, not for the arm64 bootstraps on Lambda's hardware.

Set-up runs `gatehouse serve` on the same table: it creates and seeds it, registers a public
and a confidential client (approved with `gatehouse clients approve`), signs the demo user in
and consents once, then mints one authorization code per token invocation, so that the token
function answers real `authorization_code` grants (one code each: codes are single-use).

The whole measurement is repeated REPEATS times, each with a fresh process per function, and
the medians across repeats are reported (one cold start is noisy).

    python3 benches/lambda_startup.py              (builds, starts moto from the test venv)
    RUNS=20 REPEATS=5 python3 benches/lambda_startup.py

Needs the test venv (`./tests/run` creates .venv with moto; GATEHOUSE_VENV points elsewhere)
and cargo. Reports only; asserts nothing about time.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

REPO = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
VENV = Path(os.environ.get("GATEHOUSE_VENV", REPO / ".venv"))
RUNS = int(os.environ.get("RUNS", "10"))
REPEATS = int(os.environ.get("REPEATS", "3"))
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
REDIRECT_URI = "http://localhost:8976/callback"
USER, USER_PASSWORD = "user@demo.test", "startup-bench-password"
FORM = "application/x-www-form-urlencoded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def event(method: str, route_key: str, path: str, *, params: dict | None = None, query: str = "",
          json_body: dict | None = None, form: dict | None = None,
          headers: dict | None = None) -> dict:
    """A payload 2.0 event as API Gateway's HTTP API sends it: the template's route key and
    path parameters, and form bodies base64-encoded."""
    ev = {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query,
        "headers": {"host": HOST, "x-forwarded-proto": "https", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": HOST,
            "domainPrefix": "abc123", "requestId": str(uuid.uuid4()), "routeKey": route_key,
            "stage": "$default", "time": "23/Nov/2026:18:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "startup-bench"},
        },
        "pathParameters": {"tenant": "demo", **(params or {})}, "isBase64Encoded": False,
    }
    if json_body is not None:
        ev["headers"]["content-type"] = "application/json"
        ev["body"] = json.dumps(json_body)
    if form is not None:
        ev["headers"]["content-type"] = FORM
        ev["body"] = base64.b64encode(urlencode(form).encode()).decode()
        ev["isBase64Encoded"] = True
    return ev


class Emulator:
    """Hands out events one at a time and records when each step happened."""

    def __init__(self, events: list[dict]):
        self.events = list(events)
        self.first_next: float | None = None
        self.handed: dict[str, float] = {}
        self.done: dict[str, tuple[float, int, str]] = {}  # when, status, body
        self.cv = threading.Condition()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if not self.path.endswith("/invocation/next"):
                    self.send_error(404)
                    return
                with emulator.cv:
                    if emulator.first_next is None:
                        emulator.first_next = time.monotonic()
                    while not emulator.events:
                        emulator.cv.wait()
                    ev = emulator.events.pop(0)
                request_id = str(uuid.uuid4())
                body = json.dumps(ev).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:eu-west-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                emulator.handed[request_id] = time.monotonic()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                parts = self.path.split("/")
                request_id = parts[-2] if len(parts) > 2 else ""
                body = payload.get("body") or ""
                if payload.get("isBase64Encoded"):
                    body = base64.b64decode(body).decode("utf-8", "replace")
                with emulator.cv:
                    emulator.done[request_id] = (time.monotonic(), int(payload.get("statusCode", 0)), body)
                    emulator.cv.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_all(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cv:
            while len(self.done) < n and time.monotonic() < deadline:
                self.cv.wait(0.5)
        if len(self.done) < n:
            raise SystemExit(f"only {len(self.done)} of {n} invocations answered")


class Browser:
    """Just enough of a browser for the set-up: requests to the local runner, no redirects
    followed, cookies kept by name (the hosted pages scope them all to `/t/demo`)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for header in resp.headers.get_all("set-cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        return resp.status, resp.headers, text

    def post_json(self, path: str, doc: dict) -> tuple[int, dict]:
        status, _, text = self.request("POST", path, body=json.dumps(doc).encode(),
                                       headers={"content-type": "application/json"})
        return status, json.loads(text or "{}")

    def post_form(self, path: str, form: dict) -> tuple[int, http.client.HTTPMessage, str]:
        return self.request("POST", path, body=urlencode(form).encode(),
                            headers={"content-type": FORM})


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def authorize_query(client_id: str, challenge: str) -> str:
    return urlencode({"response_type": "code", "client_id": client_id,
                      "redirect_uri": REDIRECT_URI, "code_challenge": challenge,
                      "code_challenge_method": "S256", "state": secrets.token_urlsafe(12)})


def code_from(status: int, headers: http.client.HTTPMessage, step: str) -> str:
    location = headers.get("location", "") if status in (302, 303) else ""
    code = parse_qs(urlsplit(location).query).get("code", [""])[0]
    if not code:
        raise SystemExit(f"set-up: {step} answered {status} {location!r}, not a code")
    return code


@dataclass
class Seeded:
    public_client: str
    confidential_client: str
    confidential_secret: str
    codes: list[tuple[str, str]]  # (code, its PKCE verifier), one per token invocation


def set_up(env: dict, n_codes: int) -> Seeded:
    """Create and seed the table with the local runner, register and approve the clients,
    mint the authorization codes; then stop the runner."""
    port = free_port()
    # The runner's issuer is the one the Lambda functions derive from the events' host: the
    # codes it issues carry a resource derived from it, as codes issued on Lambda would.
    serve = subprocess.Popen([str(TARGET / "release" / "gatehouse"), "serve"],
                             env={**env, "GATEHOUSE_ADDR": f"127.0.0.1:{port}",
                                  "GATEHOUSE_PUBLIC_URL": f"https://{HOST}",
                                  "GATEHOUSE_DEMO_USER_PASSWORD": USER_PASSWORD},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        web = Browser(port)
        # The port opens before the table is created and seeded: wait for the demo tenant.
        deadline = time.monotonic() + 30
        while True:
            try:
                if web.request("GET", "/.well-known/oauth-authorization-server/t/demo")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the local runner did not seed the table")
            time.sleep(0.2)

        clients = {}
        for method in ("none", "client_secret_basic"):
            status, doc = web.post_json("/t/demo/oauth/register", {
                "client_name": f"startup bench ({method})", "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": method})
            if status != 201:
                raise SystemExit(f"set-up: registration answered {status} {doc}")
            clients[method] = doc
            # What an administrator's first connection would do; the table is the runner's.
            subprocess.run([str(TARGET / "release" / "gatehouse"), "clients", "approve", "demo",
                            doc["client_id"]], env=env, check=True, stdout=subprocess.DEVNULL)

        # The demo user signs in and consents once; after that the session cookie gets a code
        # straight from each authorization request.
        confidential = clients["client_secret_basic"]["client_id"]
        codes = []
        verifier, challenge = pkce()
        status, _, page = web.request("GET", "/t/demo/oauth/authorize?"
                                      + authorize_query(confidential, challenge))
        if status != 200 or 'name="password"' not in page:
            raise SystemExit(f"set-up: authorize answered {status}, not the sign-in page")
        status, headers, page = web.post_form("/t/demo/oauth/authorize", {
            **hidden_fields(page), "email": USER, "password": USER_PASSWORD})
        if status == 200 and 'value="decide"' in page:
            status, headers, page = web.post_form("/t/demo/oauth/authorize", {
                **hidden_fields(page), "decision": "approve"})
        codes.append((code_from(status, headers, "sign-in and consent"), verifier))
        while len(codes) < n_codes:
            verifier, challenge = pkce()
            status, headers, _ = web.request("GET", "/t/demo/oauth/authorize?"
                                             + authorize_query(confidential, challenge))
            codes.append((code_from(status, headers, "authorize with a session"), verifier))
        return Seeded(clients["none"]["client_id"], confidential,
                      clients["client_secret_basic"]["client_secret"], codes)
    finally:
        serve.terminate()
        serve.wait()


@dataclass
class Case:
    function: str
    request: str  # what is measured, for the legend
    status: int  # what it must answer
    marker: str  # and what its body must contain: a 2xx alone could be the wrong page
    events: list[dict]  # one run's events, in order


def cases(seeded: Seeded) -> list[Case]:
    """One run's events per function, on the routes (route keys, path parameters) of
    infra/template.yaml. The token function's events each redeem a fresh code."""
    _, challenge = pkce()
    basic = base64.b64encode(f"{quote(seeded.confidential_client, safe='')}:"
                             f"{quote(seeded.confidential_secret, safe='')}".encode()).decode()
    token_events = []
    for _ in range(RUNS):
        code, verifier = seeded.codes.pop()
        token_events.append(event(
            "POST", "POST /t/{tenant}/oauth/token", "/t/demo/oauth/token",
            headers={"authorization": f"Basic {basic}", "accept": "application/json"},
            form={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": REDIRECT_URI, "code_verifier": verifier}))
    return [
        Case("gatehouse-discovery", "GET AS metadata (RFC 8414)", 200, '"token_endpoint"', [event(
            "GET", "GET /.well-known/oauth-authorization-server/t/{tenant}",
            "/.well-known/oauth-authorization-server/t/demo")] * RUNS),
        Case("gatehouse-register", "POST registration (RFC 7591) → 201", 201, '"client_id"', [event(
            "POST", "POST /t/{tenant}/oauth/register", "/t/demo/oauth/register",
            json_body={"client_name": "startup", "redirect_uris": ["https://a.example/cb"]})] * RUNS),
        Case("gatehouse-authorize", "GET authorize, public client + PKCE → sign-in page", 200,
             'name="password"', [event(
            "GET", "GET /t/{tenant}/oauth/authorize", "/t/demo/oauth/authorize",
            query=authorize_query(seeded.public_client, challenge),
            headers={"accept": "text/html"})] * RUNS),
        Case("gatehouse-token", "POST token, authorization_code grant (client_secret_basic, "
             "PKCE; one fresh code each) → tokens", 200, '"access_token"', token_events),
        Case("gatehouse-admin", "GET console sign-in page", 200, 'name="password"', [event(
            "GET", "GET /t/{tenant}/admin/{proxy+}", "/t/demo/admin/signin",
            params={"proxy": "signin"}, headers={"accept": "text/html"})] * RUNS),
    ]


@dataclass
class Measured:
    init: float
    first: float
    warm: float


def measure(case: Case, env: dict) -> Measured:
    """One cold start of the function and RUNS invocations."""
    emu = Emulator(case.events)
    lambda_env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{emu.port}",
                  "AWS_LAMBDA_FUNCTION_NAME": case.function, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                  "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                  "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{case.function}",
                  "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "GATEHOUSE_LOG": "warn"}
    # Stderr to a file, not a pipe nobody reads: a chatty function must not block on it.
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        proc = subprocess.Popen([str(TARGET / "release" / case.function)], env=lambda_env,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            emu.wait_all(len(case.events))
        finally:
            proc.terminate()
            proc.wait()
            emu.server.shutdown()
        order = sorted(emu.handed, key=emu.handed.get)
        wrong = [emu.done[r] for r in order
                 if emu.done[r][1] != case.status or case.marker not in emu.done[r][2]]
        if wrong:
            log.seek(0)
            raise SystemExit(f"{case.function}: {len(wrong)} answer(s) not {case.status} with "
                             f"{case.marker} in the body; first: {wrong[0][1]} {wrong[0][2][:300]}\n"
                             + log.read().decode("utf-8", "replace")[-2000:])
    spans = [(emu.done[r][0] - emu.handed[r]) * 1000 for r in order]
    init = ((emu.first_next or started) - started) * 1000
    return Measured(init, spans[0], statistics.median(spans[1:]))


def row(name: str, size: float, m: Measured) -> str:
    return f"{name:<22}{size:>8.1f}Mi{m.init:>10.1f}{m.first:>10.2f}{m.warm:>18.3f}"


def main() -> None:
    if RUNS < 2 or REPEATS < 1:
        raise SystemExit("RUNS must be at least 2 (a first and a warm invocation), REPEATS at least 1")
    functions = ["gatehouse-discovery", "gatehouse-register", "gatehouse-authorize",
                 "gatehouse-token", "gatehouse-admin"]
    subprocess.run(["cargo", "build", "--release", "-p", "gatehouse",
                    *[a for f in functions for a in ("-p", f)]], cwd=REPO, check=True)
    moto_port = free_port()
    moto = subprocess.Popen([str(VENV / "bin" / "python"), str(REPO / "tests" / "moto_serial.py"),
                             "127.0.0.1", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(moto_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   GATEHOUSE_TABLE="gatehouse-startup",
                   GATEHOUSE_DYNAMODB_ENDPOINT=f"http://127.0.0.1:{moto_port}",
                   GATEHOUSE_PENDING_CLIENT_CAP="0")
        # Codes live 300 s: the measurement that redeems the last of them is well within that.
        seeded = set_up(env, RUNS * REPEATS)
        per_repeat = [cases(seeded) for _ in range(REPEATS)]
        sizes = {f: (TARGET / "release" / f).stat().st_size / (1024 * 1024) for f in functions}

        results: dict[str, list[Measured]] = {f: [] for f in functions}
        header = f"{'function':<22}{'size':>10}{'init ms':>10}{'first ms':>10}{'warm ms (median)':>18}"
        # Repeats outermost, so that whatever else the machine does spreads over every function.
        for i, run_cases in enumerate(per_repeat, 1):
            print(f"\nrepeat {i} of {REPEATS}\n{header}")
            for case in run_cases:
                m = measure(case, env)
                results[case.function].append(m)
                print(row(case.function, sizes[case.function], m), flush=True)

        print(f"\nmedian of {REPEATS} repeat(s), each a fresh process\n{header}")
        for f in functions:
            ms = results[f]
            print(row(f, sizes[f], Measured(statistics.median(m.init for m in ms),
                                            statistics.median(m.first for m in ms),
                                            statistics.median(m.warm for m in ms))))
        print("\nrequests:")
        for case in per_repeat[0]:
            print(f"  {case.function:<20} {case.request}")
        print(f"({RUNS} invocations per process; DynamoDB = moto on loopback, so database time is "
              "moto's, not DynamoDB's; host-architecture binaries of the Lambda release profile, "
              "not the arm64 bootstraps)")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    sys.exit(main())
