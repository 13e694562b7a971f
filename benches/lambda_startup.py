#!/usr/bin/env python3
"""Lambda start-up of the function binaries, measured against a minimal Lambda Runtime API
emulator (the HTTP protocol a `provided.al2023` runtime speaks: `GET .../invocation/next`,
`POST .../invocation/{id}/response`), with DynamoDB served by moto on loopback.

For each function binary (release build for this machine's architecture):
- init: process start → its first `GET /invocation/next` (configuration, SDK client, the
  DynamoDB warm-up read, logging — everything Lambda bills as the init phase);
- first: the first invocation, event handed out → response received;
- warm: the median of the following invocations.

    python3 benches/lambda_startup.py              (builds, starts moto from the test venv)
    RUNS=20 python3 benches/lambda_startup.py

Needs the test venv (`./tests/run` creates .venv with moto) and cargo. Reports only; asserts
nothing about time.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
VENV = Path(os.environ.get("GATEHOUSE_VENV", REPO / ".venv"))
RUNS = int(os.environ.get("RUNS", "10"))
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


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


def event(method: str, route_key: str, path: str, body: dict | None = None) -> dict:
    ev = {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": "",
        "headers": {"host": HOST, "x-forwarded-proto": "https", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": HOST,
            "domainPrefix": "abc123", "requestId": str(uuid.uuid4()), "routeKey": route_key,
            "stage": "$default", "time": "23/Nov/2026:18:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "startup-bench"},
        },
        "pathParameters": {"tenant": "demo"}, "isBase64Encoded": False,
    }
    if body is not None:
        ev["body"] = json.dumps(body)
    return ev


class Emulator:
    """Hands out events one at a time and records when each step happened."""

    def __init__(self, events: list[dict]):
        self.events = list(events)
        self.first_next: float | None = None
        self.handed: dict[str, float] = {}
        self.done: dict[str, tuple[float, int]] = {}
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
                with emulator.cv:
                    emulator.done[request_id] = (time.monotonic(), int(payload.get("statusCode", 0)))
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


def main() -> None:
    functions = {
        "gatehouse-discovery": event("GET", "GET /.well-known/oauth-authorization-server/t/{tenant}",
                                     "/.well-known/oauth-authorization-server/t/demo"),
        "gatehouse-register": event("POST", "POST /t/{tenant}/oauth/register", "/t/demo/oauth/register",
                                    {"client_name": "startup", "redirect_uris": ["https://a.example/cb"]}),
    }
    subprocess.run(["cargo", "build", "--release", "-p", "gatehouse",
                    *[a for f in functions for a in ("-p", f)]], cwd=REPO, check=True)
    moto_port = free_port()
    moto = subprocess.Popen([str(VENV / "bin" / "python"), str(REPO / "tests" / "moto_serial.py"),
                             "127.0.0.1", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [moto]
    try:
        wait_port(moto_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   GATEHOUSE_TABLE="gatehouse-startup",
                   GATEHOUSE_DYNAMODB_ENDPOINT=f"http://127.0.0.1:{moto_port}",
                   GATEHOUSE_PENDING_CLIENT_CAP="0")
        # Create and seed the table with the local runner, then stop it.
        serve_port = free_port()
        serve = subprocess.Popen([str(TARGET / "release" / "gatehouse"), "serve"],
                                 env={**env, "GATEHOUSE_ADDR": f"127.0.0.1:{serve_port}"},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(serve_port)
        # The port opens before the table is created and seeded: wait for the demo tenant.
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{serve_port}/.well-known/"
                                            "oauth-authorization-server/t/demo", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the local runner did not seed the table")
            time.sleep(0.2)
        serve.terminate()
        serve.wait()

        print(f"{'function':<22}{'size':>10}{'init ms':>10}{'first ms':>10}{'warm ms (median)':>18}")
        for name, ev in functions.items():
            binary = TARGET / "release" / name
            emu = Emulator([ev] * RUNS)
            lambda_env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{emu.port}",
                          "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                          "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                          "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                          "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "GATEHOUSE_LOG": "warn"}
            started = time.monotonic()
            proc = subprocess.Popen([str(binary)], env=lambda_env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(proc)
            emu.wait_all(RUNS)
            proc.terminate()
            proc.wait()
            emu.server.shutdown()
            order = sorted(emu.handed, key=emu.handed.get)
            spans = [(emu.done[r][0] - emu.handed[r]) * 1000 for r in order]
            statuses = {emu.done[r][1] for r in order}
            if not statuses <= {200, 201}:
                raise SystemExit(f"{name}: unexpected statuses {statuses}")
            init = ((emu.first_next or started) - started) * 1000
            size = binary.stat().st_size / (1024 * 1024)
            print(f"{name:<22}{size:>8.1f}Mi{init:>10.1f}{spans[0]:>10.2f}"
                  f"{statistics.median(spans[1:]):>18.3f}")
        print(f"({RUNS} invocations each; DynamoDB = moto on loopback, so database time is moto's, "
              "not DynamoDB's; host binaries, not the arm64 bootstraps)")
    finally:
        for p in procs:
            p.terminate()


if __name__ == "__main__":
    sys.exit(main())
