#!/usr/bin/env python3
"""A local Amazon API Gateway (HTTP API, payload format 2.0) in front of the real Lambda
function binaries, so that whole clients (a relying-party library, a browser) can be run
through the Lambda path instead of `gatehouse serve`.

- Routes come from infra/template.yaml: every `HttpApi` event of every function (path with
  `{name}` and `{proxy+}` parameters, method or ANY) is a route to that function's binary
  (`BuildProperties.Binary`); anything else is API Gateway's own `404 {"message":"Not Found"}`.
- Each request becomes the event API Gateway sends: `routeKey`, `rawPath`, `rawQueryString`,
  lower-case `headers` (repeated ones joined with commas), cookies in the `cookies` array (not
  in a header), `pathParameters`, `requestContext` (domain name, method, source IP), and the
  body base64-encoded unless it is JSON or text.
- Each function runs as one process of its binary under a minimal Lambda Runtime API (`GET
  /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`), one invocation at a time,
  like one warm Lambda instance. Its answer (status, headers, `cookies`, base64 body) becomes
  the HTTP response.
- The functions use DynamoDB only (the Lambda build has no embedded store): the table is created
  and the demo tenant seeded first by `gatehouse serve` on the same table, which then stops.
- With GATEHOUSE_GATEWAY_ACCESS_LOG naming a file, each request appends one access log line to
  it as API Gateway writes them: the template's `AccessLogSettings.Format` with every
  `$context.x` replaced by this gateway's value for it ("-" for those it has none of).

    python3 tests/lambda_gateway.py --port 9100 --table gh-lambda
        (needs GATEHOUSE_TEST_DYNAMODB_ENDPOINT or AWS_ENDPOINT_URL_DYNAMODB, and the debug
        binaries in $CARGO_TARGET_DIR/debug; prints "lambda gateway ready on <url>" when ready)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "infra" / "template.yaml"
TEXT_TYPES = ("application/json", "text/")
ACCESS_LOG_ENV = "GATEHOUSE_GATEWAY_ACCESS_LOG"
CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def template_routes(template: Path = TEMPLATE) -> list[tuple[str, str, str]]:
    """(method, path, binary) for every HttpApi event in the template, read line by line: each
    function is a two-space-indented resource with `Binary:` and one-line event properties."""
    routes, binary = [], None
    event = re.compile(r'Path: "([^"]+)", Method: (\w+)')
    for line in template.read_text().splitlines():
        if re.match(r"^  [A-Za-z0-9]+:\s*$", line):
            binary = None
        if m := re.search(r"Binary: (\S+)", line):
            binary = m.group(1)
        if (m := event.search(line)) and binary:
            routes.append((m.group(2), m.group(1), binary))
    return routes


def access_log_format(template: Path = TEMPLATE) -> str:
    """The HttpApi's `AccessLogSettings.Format`, read with a YAML loader that keeps
    CloudFormation's short tags (`!Ref`, `!GetAtt`...) as plain values."""
    import yaml  # only the access log needs PyYAML (the test venv has it)

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, _suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", tagged)
    doc = yaml.load(template.read_text(), Loader=Loader)
    return doc["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]


def render_access_log(fmt: str, values: dict) -> str:
    """One access log line: each `$context.x` of `fmt` replaced by `values["x"]`, JSON-escaped
    where it stands inside a quoted string and as it is elsewhere (numbers); "-" when the
    value is missing or empty, as API Gateway writes it."""
    out, last = [], 0
    for m in CONTEXT_VARIABLE.finditer(fmt):
        value = values.get(m.group(1))
        text = "-" if value is None or value == "" else str(value)
        before = fmt[:m.start()]
        inside_string = (before.count('"') - before.count('\\"')) % 2 == 1
        out += [fmt[last:m.start()], json.dumps(text)[1:-1] if inside_string else text]
        last = m.end()
    out.append(fmt[last:])
    return "".join(out)


def match(template_path: str, path: str) -> dict | None:
    """Path parameters when `path` matches the template path, else None."""
    pattern, segments = template_path.split("/"), path.split("/")
    params = {}
    if pattern[-1] == "{proxy+}":
        fixed = len(pattern) - 1
        rest = segments[fixed:]
        if len(segments) <= fixed or not all(rest):
            return None
        params["proxy"] = "/".join(rest)
        pattern, segments = pattern[:fixed], segments[:fixed]
    elif len(pattern) != len(segments):
        return None
    for p, s in zip(pattern, segments):
        if p.startswith("{") and p.endswith("}"):
            if not s:
                return None
            params[p[1:-1]] = s
        elif p != s:
            return None
    return params


class Function:
    """One function binary under a Runtime API emulator: one invocation at a time."""

    def __init__(self, binary: Path, env: dict, log_dir: Path):
        self.pending: queue.Queue = queue.Queue()
        self.answers: dict[str, queue.Queue] = {}
        self.lock = threading.Lock()
        function = self

        class Runtime(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/invocation/next"):
                    self.send_error(404)
                    return
                request_id, ev = function.pending.get()
                body = json.dumps(ev).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 f"arn:aws:lambda:us-east-1:123456789012:function:{binary.name}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                # .../invocation/{id}/response or .../invocation/{id}/error
                request_id = parts[-2] if len(parts) >= 2 else ""
                kind = parts[-1]
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if request_id in function.answers:
                    function.answers[request_id].put((kind, payload))

        self.runtime = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
        threading.Thread(target=self.runtime.serve_forever, daemon=True).start()
        self.log = open(log_dir / f"{binary.name}.log", "wb")
        self.proc = subprocess.Popen(
            [str(binary)],
            env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.runtime.server_address[1]}",
                 "AWS_LAMBDA_FUNCTION_NAME": binary.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                 "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"},
            stdout=self.log, stderr=subprocess.STDOUT)

    def invoke(self, ev: dict, timeout: float = 30.0) -> dict:
        with self.lock:
            request_id = str(uuid.uuid4())
            answer: queue.Queue = queue.Queue()
            self.answers[request_id] = answer
            self.pending.put((request_id, ev))
            try:
                kind, payload = answer.get(timeout=timeout)
            finally:
                del self.answers[request_id]
        if kind != "response":
            # functionError: for the access log's integrationErrorMessage only.
            return {"statusCode": 502, "body": json.dumps({"message": "Internal Server Error"}),
                    "functionError": payload.decode("utf-8", "replace")}
        return json.loads(payload)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.runtime.shutdown()
        self.log.close()


def to_event(method: str, target: str, headers, body: bytes, route: tuple, params: dict,
             client_ip: str) -> dict:
    route_method, route_path, _ = route
    split = urlsplit(target)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers.items():
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name in lowered:
            lowered[name] += "," + value
        else:
            lowered[name] = value
    host = lowered.get("host", "localhost")
    route_key = f"{route_method} {route_path}"
    ev = {
        "version": "2.0", "routeKey": route_key, "rawPath": split.path,
        "rawQueryString": split.query, "headers": lowered,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": host.split(":")[0],
            "domainPrefix": "local", "requestId": str(uuid.uuid4()), "routeKey": route_key,
            "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
            "http": {"method": method, "path": split.path, "protocol": "HTTP/1.1",
                     "sourceIp": client_ip, "userAgent": lowered.get("user-agent", "")},
        },
        "isBase64Encoded": False,
    }
    if cookies:
        ev["cookies"] = cookies
    if params:
        ev["pathParameters"] = params
    if body:
        content_type = lowered.get("content-type", "")
        if content_type.startswith(TEXT_TYPES):
            ev["body"] = body.decode("utf-8", "replace")
        else:
            ev["body"] = base64.b64encode(body).decode()
            ev["isBase64Encoded"] = True
    return ev


class Gateway:
    def __init__(self, port: int, env: dict, bin_dir: Path, log_dir: Path):
        self.routes = template_routes()
        self.functions = {b: Function(bin_dir / b, env, log_dir)
                          for b in sorted({r[2] for r in self.routes})}
        self.access_log = os.environ.get(ACCESS_LOG_ENV) or None
        self.access_log_format = access_log_format() if self.access_log else None
        self.access_log_lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                self.started = time.monotonic()
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                # The access log's $context variables this gateway knows.
                self.context = {
                    "requestId": str(uuid.uuid4()), "identity.sourceIp": self.client_address[0],
                    "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                    "httpMethod": self.command, "path": path, "protocol": self.request_version,
                    "identity.userAgent": self.headers.get("User-Agent"),
                    "domainName": (self.headers.get("Host") or "").split(":")[0],
                }
                found = None
                for route in gateway.routes:
                    params = match(route[1], path)
                    if params is not None and route[0] in (self.command, "ANY"):
                        found = (route, params)
                        break
                if found is None:
                    self.context["error.message"] = "Not Found"
                    return self.reply(404, {"content-type": "application/json"}, [],
                                      b'{"message":"Not Found"}')
                route, params = found
                ev = to_event(self.command, self.path, self.headers, body, route, params,
                              self.client_address[0])
                ev["requestContext"]["requestId"] = self.context["requestId"]
                self.context["routeKey"] = ev["routeKey"]
                invoked = time.monotonic()
                out = gateway.functions[route[2]].invoke(ev)
                self.context["integrationLatency"] = round((time.monotonic() - invoked) * 1000)
                # Lambda's own status: 200 whenever the function ran, even when it failed.
                self.context["integrationStatus"] = 200
                if "functionError" in out:
                    self.context["integrationErrorMessage"] = out["functionError"]
                    self.context["error.message"] = "Internal Server Error"
                data = out.get("body") or ""
                raw = base64.b64decode(data) if out.get("isBase64Encoded") else data.encode()
                headers = dict(out.get("headers") or {})
                for name, values in (out.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                self.reply(int(out.get("statusCode", 200)), headers, out.get("cookies") or [], raw)

            def log_access(self):
                """Appends the request's access log line; before the response goes out, so a
                client that got its answer finds the line."""
                if not gateway.access_log:
                    return
                self.context["responseLatency"] = round((time.monotonic() - self.started) * 1000)
                line = render_access_log(gateway.access_log_format, self.context)
                with gateway.access_log_lock, open(gateway.access_log, "a") as log:
                    log.write(line + "\n")

            def reply(self, status, headers, cookies, raw):
                self.context.update(status=status, responseLength=len(raw))
                self.log_access()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                for c in cookies:
                    self.send_header("Set-Cookie", c)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(self) -> None:
        self.server.shutdown()
        for f in self.functions.values():
            f.stop()


def seed(env: dict, bin_dir: Path, public_url: str) -> None:
    """Creates the table and seeds the demo tenant with `gatehouse serve`, then stops it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = subprocess.Popen([str(bin_dir / "gatehouse"), "serve"],
                             env={**env, "GATEHOUSE_ADDR": f"127.0.0.1:{port}",
                                  "GATEHOUSE_PUBLIC_URL": public_url},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/t/demo/.well-known/oauth-authorization-server"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("lambda_gateway: gatehouse serve did not seed the table")
            time.sleep(0.2)
    finally:
        serve.terminate()
        serve.wait()


def kms_key(endpoint: str, env: dict) -> str:
    """A new KMS key on the emulator at `endpoint` (moto serves KMS beside DynamoDB)."""
    import boto3  # moto's own dependency, in the test venv

    kms = boto3.client("kms", endpoint_url=endpoint, region_name=env["AWS_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return kms.create_key(Description="gatehouse lambda gateway")["KeyMetadata"]["KeyId"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--table", default=f"gatehouse-lambda-{uuid.uuid4().hex[:8]}")
    ap.add_argument("--bin-dir", type=Path,
                    default=Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug")
    ap.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    args = ap.parse_args()
    endpoint = (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
                or os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT"))
    if not endpoint:
        raise SystemExit("lambda_gateway: set GATEHOUSE_TEST_DYNAMODB_ENDPOINT (moto) first")
    public_url = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "GATEHOUSE_TABLE": args.table, "GATEHOUSE_DYNAMODB_ENDPOINT": endpoint,
           "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "GATEHOUSE_PUBLIC_URL": public_url,
           "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
           "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
           "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    # Private signing keys are sealed with a KMS key, as the stack's functions are configured
    # (GATEHOUSE_KMS_KEY_ID: !Ref SigningKeysKey): one on the emulator, unless the caller gave a
    # wrapping key (a local one, or a KMS key of its own).
    if not (env.get("GATEHOUSE_LOCAL_WRAPPING_KEY") or env.get("GATEHOUSE_KMS_KEY_ID")):
        env["GATEHOUSE_KMS_KEY_ID"] = kms_key(endpoint, env)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    seed(env, args.bin_dir, public_url)
    gateway = Gateway(args.port, env, args.bin_dir, args.log_dir)
    def stop(*_):
        raise SystemExit(0)  # leaves serve_forever; the finally below stops the functions

    signal.signal(signal.SIGTERM, stop)
    print(f"lambda gateway ready on {public_url}", flush=True)
    try:
        gateway.server.serve_forever()
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
