"""An HTTPS server for Client ID Metadata Documents in tests: serves whatever a test sets up at
a path (a document, a status, headers, a redirect, a slow or huge body) over TLS with the test
CA's `localhost` certificate (tests/devca.py), on a free loopback port, and counts requests per
path so a test can prove a document was (or was never) fetched."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay_before_headers: float = 0.0
    # (chunk bytes, seconds between chunks, total bytes): headers at once, then a slow body
    trickle: tuple | None = None


class DocServer:
    def __init__(self, cert_dir: str | Path):
        cert_dir = Path(cert_dir)
        self.routes: dict[str, Route] = {}
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                with outer.lock:
                    outer.counts[self.path] = outer.counts.get(self.path, 0) + 1
                    route = outer.routes.get(self.path)
                if route is None:
                    route = Route(404, b"not found", {"Content-Type": "text/plain"})
                try:
                    if route.delay_before_headers:
                        time.sleep(route.delay_before_headers)
                    self.send_response(route.status)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    if route.trickle:
                        chunk, pause, total = route.trickle
                        self.send_header("Content-Length", str(total))
                        self.end_headers()
                        sent = 0
                        while sent < total:
                            self.wfile.write(b" " * chunk)
                            self.wfile.flush()
                            sent += chunk
                            time.sleep(pause)
                        return
                    self.send_header("Content-Length", str(len(route.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_dir / "leaf.pem", cert_dir / "leaf.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def serve(self, path: str, body, status: int = 200, headers: dict | None = None,
              content_type: str = "application/json", delay_before_headers: float = 0.0,
              trickle: tuple | None = None) -> str:
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = bytes(body)
        h = {"Content-Type": content_type} if content_type else {}
        h.update(headers or {})
        with self.lock:
            self.routes[path] = Route(status, raw, h, delay_before_headers, trickle)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        with self.lock:
            self.routes[path] = Route(status, b"", {"Location": location})
        return self.url(path)

    def hits(self, path: str) -> int:
        with self.lock:
            return self.counts.get(path, 0)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
