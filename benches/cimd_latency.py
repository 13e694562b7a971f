#!/usr/bin/env python3
"""Latency of the authorization endpoint for Client ID Metadata Document clients, against a
release `gatehouse serve` (embedded store) on loopback:

- first request for an unknown document URL: resolve, connect, TLS, GET, validate, record the
  pending client, render the sign-in page;
- a request whose document is cached in the client record (no fetch);
- a registered (DCR) client, for comparison.

Documents come from `tests/blackbox/docserver.py` (Python's HTTPS server with the test CA of
`tests/devca.py`), so the first-request figure includes that server's own time; it is an upper
bound on Gatehouse's side. Needs the test venv (`.venv/bin/python benches/cimd_latency.py`) and
`cargo build --release -p gatehouse`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "blackbox"))
import devca  # noqa: E402
from docserver import DocServer  # noqa: E402

REDIRECT = "http://127.0.0.1:9999/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, (time.perf_counter() - started) * 1000


def authorize_url(issuer: str, client_id: str) -> str:
    q = urllib.parse.urlencode({
        "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "s",
    })
    return f"{issuer}/oauth/authorize?{q}"


def summary(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"  {name:<46} n={len(samples):<4} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


def main() -> None:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "release" / "gatehouse"
    if not binary.exists():
        sys.exit(f"{binary} missing: cargo build --release -p gatehouse")
    ca = devca.write(tempfile.mkdtemp(prefix="gatehouse-bench-ca-"))
    docs = DocServer(ca)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(GATEHOUSE_ADDR=f"127.0.0.1:{port}", GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE=str(ca / "ca.pem"),
               GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK="true", GATEHOUSE_PENDING_CLIENT_CAP="0",
               GATEHOUSE_LOG="warn", NO_COLOR="1")
    server = subprocess.Popen([str(binary), "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    issuer = f"{base}/t/demo"
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        first, cached, dcr = [], [], []
        for i in range(60):
            path = f"/clients/{secrets.token_hex(6)}.json"
            url = docs.url(path)
            docs.serve(path, {"client_id": url, "client_name": f"Bench {i}", "redirect_uris": [REDIRECT]})
            status, ms = get(authorize_url(issuer, url))
            assert status == 200, status
            if i >= 10:  # the first few warm up the TLS configuration and the connection path
                first.append(ms)
        for _ in range(300):
            status, ms = get(authorize_url(issuer, url))
            assert status == 200, status
            cached.append(ms)
        reg = urllib.request.Request(f"{issuer}/oauth/register", method="POST",
                                     data=json.dumps({"client_name": "b", "redirect_uris": [REDIRECT],
                                                      "token_endpoint_auth_method": "none"}).encode(),
                                     headers={"Content-Type": "application/json"})
        client_id = json.loads(urllib.request.urlopen(reg).read())["client_id"]
        for _ in range(300):
            status, ms = get(authorize_url(issuer, client_id))
            assert status == 200, status
            dcr.append(ms)
        print("authorization request → sign-in page (release gatehouse serve, embedded store, loopback):")
        summary("metadata document URL, first request (fetch)", first)
        summary("metadata document URL, document cached", cached)
        summary("registered (DCR) client", dcr)
    finally:
        server.terminate()
        server.wait(timeout=10)
        docs.close()


if __name__ == "__main__":
    main()
