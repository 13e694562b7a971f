"""Black-box test harness for Gatehouse: starts the real `gatehouse serve` binary and talks to it
over HTTP with nothing but the standard library.

Fixtures
- `server`: one server per store mode for the whole session (`embedded`, `dynamodb`). Tests that
  take it run once per mode. The per-IP registration rate limit is off on it.
- `start_server(extra_env=None, mode="embedded")`: a factory for servers with their own settings
  (pending-client cap, lifetime, public URL...). Every server it starts is stopped when the test
  ends.

Helpers
- `request(method, url, body=None, headers=None) -> (status, headers, body_bytes)`.
- `request_without_content_type(...)`: the same over `http.client`, for the one case urllib
  cannot express (a body with no `Content-Type` at all).

Every server's output goes to a log file; a server that logged "panicked" fails the test that
started it (or the session, for `server`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/blackbox/conftest.py -> repo root
DEMO_ADMIN_PASSWORD = "admin-pass-123"
DEMO_USER_PASSWORD = "user-pass-123"
STARTUP_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0
MODES = ("embedded", "dynamodb")

# Every DynamoDB-mode server of the session records each item access it makes, per Lambda
# function (GATEHOUSE_DYNAMODB_ACCESS_LOG, see shared/src/telemetry.rs), into this one file;
# test_zz_iam_policies.py holds infra/template.yaml's policies to it after the rest of the suite.
# The local key that wraps private signing keys in DynamoDB-mode servers and CLI runs (one per
# test session, so every process on a table opens what another sealed); KMS is tested on its own
# (test_signing_keys.py).
LOCAL_WRAPPING_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def unseal_local(item: dict, tenant: str, kid: str) -> bytes:
    """The private key (DER) in a `SIGNKEY#` item sealed with LOCAL_WRAPPING_KEY, opened the
    way shared/src/keywrap.rs documents: the data key is AES-256-GCM under the wrapping key
    (`wrapped_key` = nonce || ciphertext), the private key (base64 DER) AES-256-GCM under the
    data key, both with the associated data `gatehouse-signing-key|{tenant}|{kid}`."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def b64(field: str) -> bytes:
        text = item[field]["S"]
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    assert item["wrapping"]["S"] == "local", item["wrapping"]
    aad = f"gatehouse-signing-key|{tenant}|{kid}".encode()
    wrapping = base64.urlsafe_b64decode(LOCAL_WRAPPING_KEY + "=" * (-len(LOCAL_WRAPPING_KEY) % 4))
    wrapped = b64("wrapped_key")
    data_key = AESGCM(wrapping).decrypt(wrapped[:12], wrapped[12:], aad)
    private_b64 = AESGCM(data_key).decrypt(b64("nonce"), b64("ciphertext"), aad)
    return base64.b64decode(private_b64)


DYNAMODB_ACCESS_LOG = Path(tempfile.mkdtemp(prefix="gatehouse-access-")) / "dynamodb-access.jsonl"

DYNAMODB_ENDPOINT_MISSING = (
    "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set, so the dynamodb-mode black-box tests cannot "
    "run. Run the suite through the test command `./tests/run`, which starts moto and sets "
    "GATEHOUSE_TEST_DYNAMODB_ENDPOINT (or start `moto_server` yourself and export "
    "GATEHOUSE_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:<port>). These tests are never skipped."
)


# --------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------


def _encode_body(body, headers: dict) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return json.dumps(body).encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _lower_headers(items) -> dict:
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: D102 - a 3xx is returned as is
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(method: str, url: str, body=None, headers: dict | None = None):
    """One HTTP request. `body`: bytes/str as is, dict/list as JSON (with
    `Content-Type: application/json` unless `headers` names one). Never raises on an HTTP
    status; returns `(status, headers with lowercase names, body bytes)`.

    Note: urllib adds `Content-Type: application/x-www-form-urlencoded` to a bytes body sent
    without one; use `request_without_content_type` to send none at all.
    """
    headers = dict(headers or {})
    data = _encode_body(body, headers)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, _lower_headers(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        try:
            payload = err.read()
        finally:
            err.close()
        return err.code, _lower_headers(err.headers.items()), payload


def request_without_content_type(method: str, url: str, body: bytes, headers: dict | None = None):
    """Like `request`, but sends exactly the given headers (plus Host and Content-Length), so a
    body can travel with no `Content-Type`."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_S)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, _lower_headers(resp.getheaders()), resp.read()
    finally:
        conn.close()


def json_body(resp) -> object:
    status, headers, body = resp
    try:
        return json.loads(body)
    except ValueError:
        pytest.fail(f"response {status} is not JSON: {body[:500]!r} (headers {headers})")


def find_nulls(value, path: str = "$") -> list[str]:
    """JSON paths of every `null` anywhere in a decoded JSON value."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_nulls(v, f"{path}[{i}]")]
    return []


# --------------------------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------------------------


def gatehouse_binary() -> Path:
    if os.environ.get("GATEHOUSE_BIN"):
        path = Path(os.environ["GATEHOUSE_BIN"])
    elif os.environ.get("CARGO_TARGET_DIR"):
        target = Path(os.environ["CARGO_TARGET_DIR"])
        if not target.is_absolute():
            target = REPO_ROOT / target
        path = target / "debug" / "gatehouse"
    else:
        path = REPO_ROOT / "target" / "debug" / "gatehouse"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"gatehouse binary not found at {path}; build it first (cargo build) or point "
            "GATEHOUSE_BIN at it"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.25):
            return True
    except OSError:
        return False


class Server:
    """One running `gatehouse serve` process."""

    def __init__(self, mode: str, extra_env: dict | None, log_dir: Path):
        if mode not in MODES:
            raise ValueError(f"unknown store mode {mode!r}")
        self.mode = mode
        self.extra_env = {k: str(v) for k, v in (extra_env or {}).items()}
        self.log_dir = log_dir
        self.table: str | None = None
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = log_dir / "unstarted.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/t/demo"

    @property
    def register_url(self) -> str:
        return f"{self.base}/t/demo/oauth/register"

    def _env(self, port: int) -> dict:
        # Nothing from the developer's shell may change the store or the tenant settings.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GATEHOUSE_") and not k.startswith("AWS_")
        }
        env.update(
            GATEHOUSE_ADDR=f"127.0.0.1:{port}",
            GATEHOUSE_DEMO_ADMIN_PASSWORD=DEMO_ADMIN_PASSWORD,
            GATEHOUSE_DEMO_USER_PASSWORD=DEMO_USER_PASSWORD,
            NO_COLOR="1",
        )
        if self.mode == "dynamodb":
            endpoint = os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip()
            if not endpoint:
                pytest.fail(DYNAMODB_ENDPOINT_MISSING, pytrace=False)
            if self.table is None:
                self.table = f"gatehouse-bb-{secrets.token_hex(6)}"
            env.update(
                GATEHOUSE_DYNAMODB_ENDPOINT=endpoint,
                GATEHOUSE_TABLE=self.table,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_REGION="us-east-1",
                AWS_EC2_METADATA_DISABLED="true",
                GATEHOUSE_DYNAMODB_ACCESS_LOG=str(DYNAMODB_ACCESS_LOG),
                GATEHOUSE_LOCAL_WRAPPING_KEY=LOCAL_WRAPPING_KEY,
            )
        env.update(self.extra_env)
        return env

    def start(self) -> "Server":
        binary = gatehouse_binary()
        for attempt in range(3):
            port = _free_port()
            env = self._env(port)
            self.port = port
            self.log_path = self.log_dir / f"gatehouse-{self.mode}-{port}.log"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [str(binary), "serve"],
                    env=env,
                    cwd=self.log_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if "Gatehouse listening on" in self.log() and _port_open(port):
                    return self
                time.sleep(0.05)
            if self.proc.poll() is not None:
                # Another process may have taken the port between our probe and the bind.
                if "cannot listen" in self.log() and attempt < 2:
                    continue
                pytest.fail(
                    f"gatehouse serve ({self.mode}, extra env {self.extra_env}) exited with "
                    f"status {self.proc.returncode} before accepting connections. Output:\n"
                    f"{self.log()}",
                    pytrace=False,
                )
            self.stop()
            pytest.fail(
                f"gatehouse serve ({self.mode}, extra env {self.extra_env}) did not accept "
                f"connections on 127.0.0.1:{port} within {STARTUP_TIMEOUT_S:.0f} s. Output:\n"
                f"{self.log()}",
                pytrace=False,
            )
        raise AssertionError("unreachable")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def assert_no_panic(self) -> None:
        log = self.log()
        assert "panicked" not in log, (
            f"gatehouse serve ({self.mode}, extra env {self.extra_env}) panicked; "
            f"log {self.log_path}:\n{log}"
        )

    def __repr__(self) -> str:
        return f"<gatehouse {self.mode} {self.base} {self.extra_env}>"


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=MODES)
def server(request, tmp_path_factory):
    """The shared server, once per store mode. Registration rate limit off and a pending cap far
    above what the whole suite registers (the cap and the limit are tested on servers of their
    own)."""
    srv = Server(
        request.param,
        {"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0", "GATEHOUSE_PENDING_CLIENT_CAP": "100000"},
        tmp_path_factory.mktemp(f"gatehouse-{request.param}"),
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
    srv.assert_no_panic()


@pytest.fixture
def start_server(tmp_path):
    """Factory: `start_server(extra_env=None, mode="embedded")` starts a server with the usual
    environment plus `extra_env` and returns it (`.base`, `.issuer`, `.register_url`). Stopped
    and checked for panics when the test ends."""
    started: list[Server] = []

    def start(extra_env: dict | None = None, mode: str = "embedded") -> Server:
        srv = Server(mode, extra_env, tmp_path)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
    for srv in started:
        srv.assert_no_panic()


# --------------------------------------------------------------------------------------------
# PKCE (RFC 7636)
# --------------------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    """RFC 7636 §4.1-§4.2: a high-entropy verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = b64url(secrets.token_bytes(48))  # 64 chars, within 43..128
        return cls(verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest()))
