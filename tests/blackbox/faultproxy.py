"""A fault-injecting HTTP reverse proxy for the DynamoDB API, standard library only.

It sits between a `gatehouse serve` process (`GATEHOUSE_DYNAMODB_ENDPOINT` pointed at the proxy)
and a moto server, and does what the test tells it, thread-safely:

- pass every request through (the default);
- stall: accept a request and never answer it (the next N requests, optionally only those of
  one operation, or every request until `release()`); a stalled request is never forwarded, so
  it writes nothing, and on release its connection is closed without an answer;
- fail: answer the next N requests of one operation, or of any (`ANY`) (`None`: every one until `clear()`) with
  a DynamoDB throttling error (`400 ProvisionedThroughputExceededException`) or an internal
  error (`500 InternalServerError`), without forwarding them;
- lose the answer: forward the next N requests of one operation to moto (so they take effect)
  and then drop the connection without answering, as a network fault after the commit would
  (`fail(op, LOSE_ANSWER)`);
- count requests per operation (`X-Amz-Target` without its `DynamoDB_20120810.` prefix), and
  separately the ones it faulted or stalled.

    proxy = FaultProxy("http://127.0.0.1:5000").start()
    proxy.fail("TransactWriteItems", THROTTLE, count=2)
    ...
    proxy.counts()["TransactWriteItems"]
    proxy.stop()
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
import zlib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGET_PREFIX = "DynamoDB_20120810."
THROTTLE = "throttle"
INTERNAL_ERROR = "internal_error"
ANY = "*"  # an operation name matching every operation
LOSE_ANSWER = "lose_answer"  # forwarded, then the connection dropped without an answer

_FAULTS = {
    THROTTLE: (400, {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "Rate exceeded",
    }),
    INTERNAL_ERROR: (500, {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
    }),
}

# Headers that describe one hop, not the message (RFC 9110 §7.6.1).
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authenticate", "proxy-authorization",
}

UPSTREAM_TIMEOUT_S = 60.0


def operation_name(target: str | None) -> str:
    """`DynamoDB_20120810.GetItem` → `GetItem`; no target → `?`."""
    if not target:
        return "?"
    return target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else target


@dataclass
class _FailRule:
    op: str
    kind: str
    remaining: int | None  # None: every matching request until cleared


@dataclass
class _StallRule:
    op: str | None  # None: every operation
    remaining: int | None  # None: every matching request until released


class FaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1"):
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._lock = threading.Lock()
        self._fail_rules: list[_FailRule] = []
        self._stall_rule: _StallRule | None = None
        self._release = threading.Event()  # set: stalled requests may go (closed unanswered)
        self._release.set()
        self._stopping = threading.Event()
        self._counts: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()
        self._stalled: Counter[str] = Counter()
        self._stalled_now = 0
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- commands (thread-safe) --------------------------------------------------------

    def passthrough(self) -> None:
        """Every rule off; stalled requests are released (closed unanswered)."""
        self.clear()
        self.release()

    def clear(self) -> None:
        """Drops every fail rule."""
        with self._lock:
            self._fail_rules.clear()

    def fail(self, op: str, kind: str = THROTTLE, count: int | None = 1) -> None:
        """Answer the next `count` requests of operation `op` (`GetItem` or
        `DynamoDB_20120810.GetItem`; `ANY` for every operation) with the `kind` fault; `count=None`: every one until
        `clear()`. Rules for one operation apply in the order they were added."""
        if kind not in _FAULTS and kind != LOSE_ANSWER:
            raise ValueError(f"unknown fault {kind!r}")
        if count is not None and count < 1:
            raise ValueError("count must be positive or None")
        with self._lock:
            self._fail_rules.append(_FailRule(operation_name(op), kind, count))

    def stall(self, count: int | None = None, op: str | None = None) -> None:
        """Accept the next `count` requests (`None`: every request until `release()`), of `op`
        only if given, and never answer them."""
        with self._lock:
            self._release.clear()
            self._stall_rule = _StallRule(operation_name(op) if op else None, count)

    def release(self) -> None:
        """Stop stalling; requests stalled so far are closed without an answer (they were never
        forwarded, so they wrote nothing)."""
        with self._lock:
            self._stall_rule = None
            self._release.set()

    def counts(self) -> dict[str, int]:
        """Requests received per operation (passed, faulted and stalled alike)."""
        with self._lock:
            return dict(self._counts)

    def count(self, op: str) -> int:
        with self._lock:
            return self._counts.get(operation_name(op), 0)

    def faulted(self) -> dict[str, int]:
        """Requests answered with an injected error, per operation."""
        with self._lock:
            return dict(self._faulted)

    def stalled(self) -> dict[str, int]:
        """Requests stalled, per operation (ever)."""
        with self._lock:
            return dict(self._stalled)

    def stalled_now(self) -> int:
        """Requests being held right now."""
        with self._lock:
            return self._stalled_now

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._faulted.clear()
            self._stalled.clear()

    # ---- the decision for one request --------------------------------------------------

    def _decide(self, op: str) -> tuple[str, str | None]:
        """("stall", None) | ("fail", kind) | ("pass", None); counts the request."""
        with self._lock:
            self._counts[op] += 1
            rule = self._stall_rule
            if rule is not None and (rule.op is None or rule.op == op):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        # The last one to stall: later requests pass, but this one (and those
                        # before it) stay held until release().
                        self._stall_rule = None
                self._stalled[op] += 1
                self._stalled_now += 1
                return "stall", None
            for fail in self._fail_rules:
                if fail.op not in (op, ANY):
                    continue
                if fail.remaining is not None:
                    fail.remaining -= 1
                    if fail.remaining <= 0:
                        self._fail_rules.remove(fail)
                self._faulted[op] += 1
                return "fail", fail.kind
            return "pass", None

    def _unstalled(self) -> None:
        with self._lock:
            self._stalled_now -= 1

    # ---- HTTP -------------------------------------------------------------------------

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive towards the SDK, like DynamoDB

            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _drop(self):
                """Close the connection without an answer, as a dead network would."""
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _handle(self):
                body = self._body()
                op = operation_name(self.headers.get("X-Amz-Target"))
                action, kind = proxy._decide(op)
                if action == "stall":
                    try:
                        while not proxy._release.wait(0.2):
                            pass
                    finally:
                        proxy._unstalled()
                    self._drop()  # never answered
                    return
                if action == "fail" and kind == LOSE_ANSWER:
                    self._forward(body, answer=False)
                    return
                if action == "fail":
                    status, doc = _FAULTS[kind]
                    payload = json.dumps(doc).encode("utf-8")
                    self._answer(status, payload, [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("x-amzn-RequestId", f"faultproxy-{threading.get_ident()}"),
                        ("x-amz-crc32", str(zlib.crc32(payload) & 0xFFFFFFFF)),
                    ])
                    return
                self._forward(body)

            def _forward(self, body: bytes, answer: bool = True):
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
                headers["Connection"] = "close"
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_S)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                    # send_response() writes its own Server and Date.
                    out = [(k, v) for k, v in resp.getheaders()
                           if k.lower() not in _HOP_BY_HOP
                           and k.lower() not in ("content-length", "server", "date")]
                    status = resp.status
                except OSError:
                    # The upstream is gone or frozen past our patience: drop the connection,
                    # as a dead network would.
                    self.close_connection = True
                    return
                finally:
                    conn.close()
                if not answer:
                    self._drop()  # committed upstream, lost on the way back
                    return
                self._answer(status, payload, out)

            def do_POST(self):  # noqa: N802
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST  # noqa: N815

        return Handler
