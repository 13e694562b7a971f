"""Garbage battery, black box: every Gatehouse endpoint against hostile input.

For each endpoint (registration and RFC 7592 client configuration, both metadata path forms,
protected resource metadata, JWKS, authorize GET/POST, the approval POST, token / revoke /
introspect, the demo MCP server, every admin API route with a valid admin token *and*
anonymously, and the admin console with a valid session and its CSRF field) the battery sends:

- an empty body, truncated JSON / form bodies, binary garbage (NUL, invalid UTF-8), bodies just
  over 64 KiB and of 1 MiB (also chunked) → `413` wherever a body is read;
- duplicated parameters in the query and in forms (`client_id=a&client_id=b`);
- type-confused JSON (arrays, numbers, null, nested objects where strings are expected,
  `redirect_uris: "string"`, `scope: 5`, `consentMethod: []`, booleans as strings in settings,
  non-object documents, 30 000-deep nesting, out-of-range numbers) and `x[]=` form names;
- wrong content types (text/plain, multipart/form-data, JSON type with a form body and the
  reverse, none at all, look-alike types) around a body that would otherwise be accepted;
- 9 KiB header values (junk headers, Authorization, Cookie) and 9 KiB query strings;
- percent-encoding garbage (`%zz`, `%00`, overlong UTF-8 `%c0%af`), NUL and lone surrogates in
  JSON strings, raw invalid UTF-8 inside JSON strings;
- path-traversal-looking and malformed ids (`..%2f..`, `%2e%2e`, `..`, `%00`, ...);
- unicode (RTL override, emoji, combining characters) in client names and user emails (client
  names refuse the override and zero-width joiners: `400`);
- methods an endpoint does not serve (→ `405` with an `Allow` header naming exactly the ones
  it does).

Every answer must be a 4xx (never a 5xx, never a hang: each request has a timeout), unless the
input is legitimately acceptable, in which case the specific status is asserted with a comment
(metadata ignores a body, RFC 7009 revocation answers 200 for unknown tokens, MCP notifications
are 202, ...). JSON endpoints must answer JSON errors with an `error` member. After every test
the server log must not contain "panicked" and the server must still be running. The last test
checks that the stored data survived: the tenant settings, the demo administrator's and demo
user's records, the set of listed clients (apart from the clients this module created on
purpose) and the sacrificial client the battery aimed its edits at. It does not rely on the
tests before it: every battery case records itself in the module's world, and the last test
first runs whatever part of the battery has not run (all of it when it runs alone), then checks
that every case ran exactly once before it compares.

Requests go out through `http.client` so that targets, headers and bodies travel byte for byte
(no re-encoding, no Content-Type added behind our back). The demo administrator signs in once
per module and server (argon2 is slow in a debug build).
"""

from __future__ import annotations

import base64
import html
import http.client
import json
import os
import random
import re
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from typing import Callable

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    REDIRECT_URI,
    USER_EMAIL,
    Admin,
    assert_json,
    authorize,
    consent_code,
    forms_with,
    page_form,
    register,
    unique,
)
from conftest import HTTP_TIMEOUT_S  # noqa: E402
from test_authorization import Browser  # noqa: E402

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
API = "/t/demo/api/v1"
R = REDIRECT_URI
LONG = 9 * 1024  # "8 KiB+" header values and query strings
JUST_OVER_64K = 64 * 1024 + 1
ONE_MIB = 1024 * 1024

# Binary garbage: a fixed pseudo-random blob with NULs, overlong and truncated UTF-8 sequences,
# lone surrogates encoded as UTF-8 (invalid) and bytes that are never valid UTF-8.
BIN = (b"\x00\x00\xff\xfe\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80\xc3"
       + random.Random(20240601).randbytes(700) + b"\x00\r\n\r\n\x00")

DEEP_ARRAY = b"[" * 30000 + b"]" * 30000            # 60 000 bytes, under the 64 KiB limit
DEEP_OBJECT = b'{"a":' * 10000 + b"1" + b"}" * 10000  # 60 001 bytes

# JSON documents that are not objects, or not JSON at all once you look closely.
NON_OBJECTS = [b"[]", b'"a string"', b"5", b"null", b"true", b"[{}]", b"{}{}",
               b'{"a": 1} trailing garbage', b"1e999999", b'{"a": 1e999999}',
               b"123456789012345678901234567890", DEEP_ARRAY, DEEP_OBJECT]

RTL = "\u202eexe.tneilc\u202c trusted"              # right-to-left override
EMOJI = "\U0001f980\U0001f511 emoji client \U0001f468\u200d\U0001f469\u200d\U0001f467"  # joiners
PLAIN_EMOJI = "\U0001f980\U0001f511 emoji client \U0001f46a"
COMBINING = ("Ze\u0301\u0302\u0303\u0304\u0305 combining a\u0335\u0321\u0334\u0336 "
             "\u0e01\u0e34\u0e4a")
UNICODE_NAMES = [RTL, EMOJI, COMBINING]
# A client's name is judged by people: bidirectional overrides and zero-width characters (the
# joiners of EMOJI too) make it read differently from what it is, so they are refused there;
# other non-ASCII names are stored exactly.
SHOWN_NAMES = [PLAIN_EMOJI, COMBINING]
DISGUISED_NAMES = [RTL, EMOJI]
UNICODE_EMAILS = ["\u202eadmin@demo.test", "\U0001f980@demo.test", "e\u0301\u0301@demo.test"]

# Ids that look like path traversal or are not ids at all (sent raw in the path).
BAD_IDS = ["..%2f..", "%2e%2e", "..", ".", "%2e%2e%2f%2e%2e%2fsettings", "..%5c..%5cwindows",
           "%252e%252e%252f", "%c0%ae%c0%ae%c0%af", "%zz", "%00", "a%00b", "%ff%fe",
           "%F0%9F%A6%80", "x" * 300]

DUP_QUERY = ("?client_id=a&client_id=b&redirect_uri=a&redirect_uri=b&state=1&state=2"
             "&filter=x&filter=y&limit=1&limit=2&cursor=a&cursor=b&view=pending&view=pending"
             "&after=a&after=b")
DUP_FORM = (b"client_id=a&client_id=b&token=x&token=y&grant_type=authorization_code"
            b"&grant_type=refresh_token&code=a&code=b&action=update&action=delete"
            b"&email=a%40demo.test&email=b%40demo.test&request_id=a&request_id=b"
            b"&decision=approve&decision=deny&consent_method=trusted&consent_method=required")
PCT_QUERY = ("?client_id=%zz&redirect_uri=%00&state=%c0%af&response_type=%ff%fe"
             "&filter=%zz%00&limit=%c0%af&cursor=%00&%zz=%zz&%00=%00")
PCT_FORM = (b"client_id=%zz&token=%00%c0%af&grant_type=%c0%af&code=%zz&email=%ff%fe%00"
            b"&action=%zz&request_id=%00&decision=%c0%af&password=%00&redirect_uri=%zz%00"
            b"&consent_method=%c0%af&display_name=%00")
BRACKET_FORM = (b"client_id[]=a&token[]=b&grant_type[0]=authorization_code&action[]=decide"
                b"&email[$ne]=x&csrf[]=y&request_id[]=1&decision[]=approve&scope[$gt]=")


# --------------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        media = self.headers.get("content-type", "")
        shown = self.body[:400]
        if media.startswith("text/html"):  # an HTML page: its title says what it is
            title = re.search(rb"<title>(.*?)</title>", self.body, re.S)
            shown = b"<title>" + (title.group(1) if title else b"?") + b"</title>"
        return f"{self.status} {media!r} {shown!r}"


def send(server, method: str, target: str, body: bytes | None = None,
         headers: dict | None = None, chunked: bool = False) -> Answer:
    """One request, byte for byte: `target` is sent as is (no re-encoding), only Host and
    Content-Length (or chunked framing) are added. A server that answers before reading a big
    body may close the connection under us; its answer is still read."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None:
            if chunked:
                hdrs["Transfer-Encoding"] = "chunked"
            else:
                hdrs["Content-Length"] = str(len(body))
        for name, value in hdrs.items():
            conn.putheader(name, value)
        conn.endheaders()
        if body:
            try:
                if chunked:
                    step = 16 * 1024
                    for i in range(0, len(body), step):
                        piece = body[i:i + step]
                        conn.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    conn.sock.sendall(b"0\r\n\r\n")
                else:
                    conn.sock.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered (413) before the body was read; read that answer below
        resp = conn.getresponse()
        out: dict[str, str] = {}
        for k, v in resp.getheaders():
            k = k.lower()
            out[k] = f"{out[k]}, {v}" if k in out else v
        return Answer(resp.status, out, resp.read())
    except (TimeoutError, socket.timeout):
        pytest.fail(f"no answer within {HTTP_TIMEOUT_S:.0f} s (hang): {method} {target[:300]}",
                    pytrace=False)
    except (ConnectionError, http.client.HTTPException) as err:
        pytest.fail(f"connection dropped without an answer ({err!r}): {method} {target[:300]}",
                    pytrace=False)
    finally:
        conn.close()


def multipart(fields: dict) -> tuple[bytes, str]:
    boundary = "gatehouse-garbage-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in fields.items()]
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode("utf-8"), f"multipart/form-data; boundary={boundary}"


def urlenc(fields: dict) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


def dumps(value) -> bytes:
    return json.dumps(value).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The world: one signed-in administrator and the clients the battery aims at, per server
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    server: object
    admin: Admin
    csrf: str
    session: str
    browser: str
    signin_browser: str
    signin_csrf: str
    victim: dict
    public: dict
    conf: dict
    dcr: dict
    access_token: str
    before: dict
    victim_before: dict
    created_approved: set = field(default_factory=set)
    created_pending: set = field(default_factory=set)
    # Battery cases already sent (ids as in BATTERY below), in order; the last test runs the rest.
    ran: list = field(default_factory=list)


def list_ids(admin: Admin, flt: str | None) -> dict[str, dict]:
    ids: dict[str, dict] = {}
    cursor = None
    while True:
        query = {"limit": "100"}
        if flt:
            query["filter"] = flt
        if cursor:
            query["cursor"] = cursor
        doc = assert_json(admin.api("GET", "/oauth-clients?" + urllib.parse.urlencode(query)))
        ids.update((c["client_id"], c) for c in doc["data"])
        cursor = doc.get("next_cursor")
        if not cursor:
            return ids


def snapshot(admin: Admin) -> dict:
    return {
        "settings": assert_json(admin.api("GET", "/settings")),
        "admin": assert_json(admin.api("GET", "/users/admin%40demo.test")),
        "user": assert_json(admin.api("GET", "/users/user%40demo.test")),
        "approved": list_ids(admin, None),
        "pending": list_ids(admin, 'status eq "pending"'),
    }


def build_world(server) -> World:
    admin = Admin(server)  # the one argon2 sign-in of the module (per server)
    before = snapshot(admin)
    victim = admin.create_client(client_name=unique("garbage-victim"))
    public = admin.create_client(client_name=unique("garbage-public"), consentMethod="trusted",
                                 token_endpoint_auth_method="none",
                                 scope="user_default mcp:execute")
    conf = admin.create_client(client_name=unique("garbage-confidential"))
    dcr = register(server, client_name=unique("garbage-dcr"))
    # An access token for the demo MCP endpoint: the trusted public client, authorized in the
    # administrator's browser (no consent page), code exchanged at the token endpoint.
    code = consent_code(server, admin.browser, public)
    resp = send(server, "POST", "/t/demo/oauth/token", urlenc({
        "grant_type": "authorization_code", "code": code.code, "redirect_uri": code.redirect_uri,
        "code_verifier": code.verifier, "client_id": public["client_id"]}),
        {"Content-Type": FORM})
    assert resp.status == 200, f"token exchange for the MCP access token failed: {resp!r}"
    # A fresh sign-in page for the console sign-in endpoint: its gh_browser cookie and csrf.
    signin = Browser(server)
    page = signin.get(f"{server.issuer}/admin/signin")
    form = forms_with(page, "email", "password", "csrf")[0]
    world = World(
        server=server, admin=admin, csrf=admin.session.csrf,
        session=admin.browser.cookie("gh_session"), browser=admin.browser.cookie("gh_browser"),
        signin_browser=signin.cookie("gh_browser"), signin_csrf=form.fields["csrf"],
        victim=victim, public=public, conf=conf, dcr=dcr,
        access_token=resp.json()["access_token"], before=before,
        victim_before=admin.client(victim["client_id"]),
    )
    world.created_approved |= {victim["client_id"], public["client_id"], conf["client_id"]}
    world.created_pending.add(dcr["client_id"])
    return world


@pytest.fixture(scope="module")
def world(server) -> World:
    return build_world(server)


@pytest.fixture(autouse=True)
def no_panic(server):
    """Every test: the server did not log a panic and is still running afterwards."""
    try:
        start = os.path.getsize(server.log_path)
    except OSError:
        start = 0
    yield
    with open(server.log_path, "rb") as log:
        log.seek(start)
        tail = log.read().decode("utf-8", errors="replace")
    assert "panicked" not in tail, f"the server panicked ({server.log_path}):\n{tail[-6000:]}"
    assert server.proc.poll() is None, f"the server exited:\n{server.log()[-4000:]}"


# --------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ep:
    id: str
    method: str
    path: str                     # placeholders: {dcr} {victim} {missing} {admin}
    kind: str                     # json | mcp | form | nobody (the endpoint reads no body)
    auth: str
    plain: frozenset | None = None   # answer when the body (and query) is ignored
    fixed: frozenset | None = None   # answer to *everything* but a too-large body (auth first)
    empty: frozenset | None = None   # answer to an empty body, when that is a valid request
    json_errors: bool = True
    query_sensitive: bool = False
    id_slot: str | None = None
    id_expect: frozenset | None = None

    @property
    def group(self) -> str:
        return self.id.removesuffix("_anonymous").removesuffix("_session")


def S(*codes: int) -> frozenset:
    return frozenset(codes)


OK = S(200)
BEARER_EPS = [
    Ep("api_clients_list", "GET", f"{API}/oauth-clients", "nobody", "admin_token", plain=OK,
       query_sensitive=True),
    Ep("api_clients_create", "POST", f"{API}/oauth-clients", "json", "admin_token"),
    Ep("api_client_get", "GET", f"{API}/oauth-clients/{{victim}}", "nobody", "admin_token",
       plain=OK, id_slot="victim", id_expect=S(404)),
    Ep("api_client_patch", "PATCH", f"{API}/oauth-clients/{{victim}}", "json", "admin_token",
       id_slot="victim", id_expect=S(404)),
    # DELETE with a valid token deletes: aimed at an id that does not exist.
    Ep("api_client_delete", "DELETE", f"{API}/oauth-clients/{{missing}}", "nobody",
       "admin_token", plain=S(404), id_slot="missing", id_expect=S(404)),
    Ep("api_settings_get", "GET", f"{API}/settings", "nobody", "admin_token", plain=OK),
    Ep("api_settings_patch", "PATCH", f"{API}/settings", "json", "admin_token"),
    Ep("api_users_list", "GET", f"{API}/users", "nobody", "admin_token", plain=OK),
    Ep("api_users_create", "POST", f"{API}/users", "json", "admin_token"),
    Ep("api_user_get", "GET", f"{API}/users/{{admin}}", "nobody", "admin_token", plain=OK,
       id_slot="admin", id_expect=S(404)),
    Ep("api_user_patch", "PATCH", f"{API}/users/{{admin}}", "json", "admin_token",
       id_slot="admin", id_expect=S(404)),
    # docs/admin-api.md: tokens are minted from a session only → 403 for a bearer token.
    Ep("api_tokens_create", "POST", f"{API}/tokens", "json", "admin_token", fixed=S(403)),
    # DELETE with the valid token would revoke it: a well-formed but unknown token instead.
    Ep("api_tokens_current", "DELETE", f"{API}/tokens/current", "nobody", "bad_admin_token",
       fixed=S(401)),
    # /session describes a browser session; called with a token it is invalid_request.
    Ep("api_session", "GET", f"{API}/session", "nobody", "admin_token", fixed=S(400)),
]
ANONYMOUS_EPS = [replace(ep, id=f"{ep.id}_anonymous", auth="anon", fixed=S(401), plain=None,
                         query_sensitive=False,
                         id_expect=S(401) if ep.id_slot else None)
                 for ep in BEARER_EPS if ep.id != "api_tokens_current"]
ANONYMOUS_EPS.append(replace(BEARER_EPS[-2], id="api_tokens_current_anonymous", auth="anon"))

EPS: list[Ep] = [
    Ep("register", "POST", "/t/demo/oauth/register", "json", "anon"),
    Ep("client_config_get", "GET", "/t/demo/oauth/register/{dcr}", "nobody", "rat", plain=OK,
       id_slot="dcr", id_expect=S(401)),
    Ep("client_config_put", "PUT", "/t/demo/oauth/register/{dcr}", "json", "rat",
       id_slot="dcr", id_expect=S(401)),
    # DELETE with the valid registration token deletes: a wrong token instead (RFC 7592 §2:
    # always 401, whatever the id).
    Ep("client_config_delete", "DELETE", "/t/demo/oauth/register/{dcr}", "nobody", "bad_rat",
       fixed=S(401), id_slot="dcr", id_expect=S(401)),
    Ep("as_metadata_insert", "GET", "/.well-known/oauth-authorization-server/t/demo", "nobody",
       "anon", plain=OK),
    Ep("as_metadata_suffix", "GET", "/t/demo/.well-known/oauth-authorization-server", "nobody",
       "anon", plain=OK),
    Ep("prm_insert", "GET", "/.well-known/oauth-protected-resource/t/demo/mcp", "nobody", "anon",
       plain=OK),
    Ep("prm_suffix", "GET", "/t/demo/mcp/.well-known/oauth-protected-resource", "nobody", "anon",
       plain=OK),
    Ep("jwks", "GET", "/t/demo/jwks.json", "nobody", "anon", plain=OK),
    # Without a client_id the authorization endpoint shows an error page (400).
    Ep("authorize_get", "GET", "/t/demo/oauth/authorize", "nobody", "session", plain=None,
       json_errors=False, query_sensitive=True),
    Ep("authorize_post", "POST", "/t/demo/oauth/authorize", "form", "session", json_errors=False),
    Ep("approve", "POST", "/t/demo/admin/approve", "form", "session", json_errors=False),
    Ep("token", "POST", "/t/demo/oauth/token", "form", "public_client"),
    Ep("revoke", "POST", "/t/demo/oauth/revoke", "form", "public_client"),
    Ep("introspect", "POST", "/t/demo/oauth/introspect", "form", "conf_client"),
    Ep("mcp", "POST", "/t/demo/mcp", "mcp", "access_token"),
    Ep("mcp_anonymous", "POST", "/t/demo/mcp", "mcp", "anon", fixed=S(401)),
    *BEARER_EPS,
    *ANONYMOUS_EPS,
    # The admin API through the console session (cookie + X-CSRF-Token). An empty body on
    # POST /tokens is a valid request (name and lifetime take their defaults): 201.
    Ep("api_tokens_create_session", "POST", f"{API}/tokens", "json", "api_session",
       empty=S(201)),
    Ep("api_session_session", "GET", f"{API}/session", "nobody", "api_session", plain=OK),
    # The console, signed in (form posts carry the session's csrf field).
    Ep("console_home", "GET", "/t/demo/admin", "nobody", "console", plain=OK, json_errors=False,
       query_sensitive=True),
    Ep("console_signin_get", "GET", "/t/demo/admin/signin", "nobody", "signin", plain=OK,
       json_errors=False),
    Ep("console_signin_post", "POST", "/t/demo/admin/signin", "form", "signin",
       json_errors=False),
    Ep("console_client_get", "GET", "/t/demo/admin/clients/{victim}", "nobody", "console",
       plain=OK, json_errors=False, id_slot="victim", id_expect=S(404)),
    Ep("console_client_post", "POST", "/t/demo/admin/clients/{victim}", "form", "console",
       json_errors=False, id_slot="victim", id_expect=S(404)),
    Ep("console_settings_get", "GET", "/t/demo/admin/settings", "nobody", "console", plain=OK,
       json_errors=False),
    Ep("console_settings_post", "POST", "/t/demo/admin/settings", "form", "console",
       json_errors=False),
    Ep("console_users_get", "GET", "/t/demo/admin/users", "nobody", "console", plain=OK,
       json_errors=False),
    Ep("console_users_post", "POST", "/t/demo/admin/users", "form", "console",
       json_errors=False),
    # Last: a sign-out form that carried the csrf field would end the shared session, so the
    # battery never sends it one with a form content type (it must be refused anyway).
    Ep("console_signout", "POST", "/t/demo/admin/signout", "form", "console_nocsrf",
       json_errors=False),
]

HEADER_AUTHS = {"admin_token", "bad_admin_token", "api_session", "rat", "bad_rat",
                "access_token", "conf_client"}
CONSOLE_AUTHS = {"console", "console_nocsrf"}
CT_OF = {"json": JSON, "mcp": JSON, "form": FORM, "nobody": None}


def auth_headers(ep: Ep, w: World) -> dict:
    a = ep.auth
    if a == "admin_token":
        return {"Authorization": f"Bearer {w.admin.token}"}
    if a == "bad_admin_token":
        return {"Authorization": "Bearer gha_demo_" + "A" * 43}
    if a == "api_session":
        return {"Cookie": f"gh_session={w.session}", "X-CSRF-Token": w.csrf}
    if a in ("session", "console", "console_nocsrf"):
        return {"Cookie": f"gh_session={w.session}; gh_browser={w.browser}"}
    if a == "signin":
        return {"Cookie": f"gh_browser={w.signin_browser}"}
    if a == "rat":
        return {"Authorization": f"Bearer {w.dcr['registration_access_token']}"}
    if a == "bad_rat":
        return {"Authorization": "Bearer " + "x" * 43}
    if a == "conf_client":
        raw = f"{w.conf['client_id']}:{w.conf['client_secret']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if a == "access_token":
        return {"Authorization": f"Bearer {w.access_token}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-06-18"}
    if ep.kind == "mcp":
        return {"Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-06-18"}
    return {}


def target(ep: Ep, w: World, id_value: str | None = None, query: str = "") -> str:
    values = {
        "dcr": w.dcr["client_id"], "victim": w.victim["client_id"],
        "missing": "garbage-missing-client-0000", "admin": "admin%40demo.test",
    }
    if id_value is not None and ep.id_slot:
        values[ep.id_slot] = id_value
    return ep.path.format(**values) + query


def wrap(ep: Ep, w: World, raw: bytes) -> bytes:
    """A form body as the endpoint's legitimate caller would frame it: the console's csrf field,
    or the public client's client_id (the token-side endpoints authenticate it)."""
    if ep.auth == "console":
        return f"csrf={w.csrf}&".encode() + raw
    if ep.auth == "public_client":
        return f"client_id={w.public['client_id']}&".encode() + raw
    return raw


def base(ep: Ep) -> frozenset | None:
    """What the endpoint answers to a request whose body is garbage: the fixed answer, the
    plain answer of a body-less endpoint (it ignores the body), else any 4xx (None)."""
    if ep.fixed:
        return ep.fixed
    return ep.plain if ep.kind == "nobody" else None


def empty_expect(ep: Ep) -> frozenset | None:
    return ep.fixed or ep.empty or base(ep)


def huge_expect(ep: Ep) -> frozenset:
    # The runner refuses any body over 64 KiB before routing: 413 on every body-reading
    # endpoint. An endpoint that reads no body may also just ignore it.
    if ep.kind == "nobody":
        return S(413) | (base(ep) or frozenset())
    return S(413)


@dataclass
class Req:
    target: str
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    expect: frozenset | None = None      # None: any 4xx
    what: str = ""
    method: str | None = None
    chunked: bool = False
    check: Callable[[Answer], None] | None = None
    allow: frozenset | None = None       # for 405: exactly these methods in Allow


def req(ep: Ep, w: World, body: bytes | None, ct: str | None, expect, what: str,
        tgt: str | None = None, extra: dict | None = None, **kw) -> Req:
    headers = auth_headers(ep, w)
    if ct is not None:
        headers["Content-Type"] = ct
    headers.update(extra or {})
    return Req(tgt or target(ep, w), body, headers, expect, what, **kw)


# --------------------------------------------------------------------------------------------
# Per-endpoint bodies
# --------------------------------------------------------------------------------------------


def valid_fields(ep: Ep, w: World) -> dict:
    """A body the endpoint would act on if it ignored the content type (so a wrong content type
    must be what refuses it). Chosen so that acting on it would be visible or harmless."""
    pub = w.public["client_id"]
    return {
        "register": {"client_name": "garbage wrong content type", "redirect_uris": [R]},
        "client_config_put": {"client_id": w.dcr["client_id"], "client_name": "garbage ct",
                              "redirect_uris": [R]},
        "mcp": {"jsonrpc": "2.0", "id": 7, "method": "ping"},
        "api_clients_create": {"client_name": "garbage wrong content type",
                               "redirect_uris": [R]},
        "api_client_patch": {"consentMethod": "trusted"},
        "api_settings_patch": {"display_name": "Changed by a wrong content type"},
        "api_users_create": {"email": "garbage-ct@demo.test", "password": "x" * 16,
                             "role": "user"},
        "api_user_patch": {"role": "admin"},
        "api_tokens_create": {"name": "garbage wrong content type"},
        "token": {"grant_type": "authorization_code", "code": "x", "redirect_uri": R,
                  "code_verifier": "v" * 43, "client_id": pub},
        "revoke": {"token": "x", "client_id": pub},
        "introspect": {"token": "x"},
        "authorize_post": {"request_id": "x", "client_id": pub, "csrf_token": "x",
                           "action": "decide", "decision": "approve"},
        "approve": {"request_id": "x", "client_id": pub, "csrf_token": "x",
                    "action": "decide", "decision": "approve"},
        "console_client_post": {"csrf": w.csrf, "action": "update",
                                "consent_method": "trusted"},
        "console_settings_post": {"csrf": w.csrf, "display_name": "Changed by a wrong type",
                                  "allowed_scopes": "user_default",
                                  "pending_client_ttl_secs": "3600",
                                  "pending_client_cap": "5"},
        "console_users_post": {"csrf": w.csrf, "action": "disable", "email": USER_EMAIL},
        "console_signin_post": {"csrf": w.signin_csrf, "email": ADMIN_EMAIL,
                                "password": "wrong-password-123"},
        "console_signout": {"csrf": w.csrf},
    }.get(ep.group, {})


REGISTRATION_CONFUSION = [
    {"redirect_uris": R},
    {"redirect_uris": [5]},
    {"redirect_uris": [[R]]},
    {"redirect_uris": {"0": R}},
    {"redirect_uris": True},
    {"redirect_uris": [None]},
    {"redirect_uris": [R], "scope": 5},
    {"redirect_uris": [R], "scope": ["user_default"]},
    {"redirect_uris": [R], "client_name": ["a"]},
    {"redirect_uris": [R], "client_name": {"$ne": ""}},
    {"redirect_uris": [R], "client_name": 1.5},
    {"redirect_uris": [R], "grant_types": "authorization_code"},
    {"redirect_uris": [R], "grant_types": [None]},
    {"redirect_uris": [R], "response_types": "code"},
    {"redirect_uris": [R], "token_endpoint_auth_method": 1},
    {"redirect_uris": [R], "token_endpoint_auth_method": ["none"]},
    {"redirect_uris": [R], "contacts": "admin@example.com"},
    {"redirect_uris": [R], "contacts": [{"email": "a@b.c"}]},
    {"redirect_uris": [R], "client_uri": True},
    {"redirect_uris": [R], "logo_uri": {"url": "https://x.example"}},
    {"redirect_uris": [R], "application_type": 0},
    {"redirect_uris": [R], "software_id": []},
    {"redirect_uris": [R], "software_version": {"major": 1}},
]


def type_bodies(ep: Ep, w: World) -> list[tuple[bytes, frozenset | None, Callable | None]]:
    """(body, expected, extra check) for the type-confusion battery of a JSON endpoint."""
    g = ep.group
    docs: list = []
    special: list[tuple[bytes, frozenset | None, Callable | None]] = []
    if g == "register":
        docs = REGISTRATION_CONFUSION
    elif g == "client_config_put":
        cid = w.dcr["client_id"]
        docs = [dict(d, client_id=cid) for d in REGISTRATION_CONFUSION] + [
            {"client_id": 5, "redirect_uris": [R]},
            {"client_id": [cid], "redirect_uris": [R]},
            {"client_id": None, "redirect_uris": [R]},
            {"client_id": {"$ne": ""}, "redirect_uris": [R]},
            {"client_id": cid, "redirect_uris": [R], "client_secret": 5},
            {"client_id": cid, "redirect_uris": [R], "client_secret": ["x"]},
            {"client_id": cid, "redirect_uris": [R], "token_endpoint_auth_method": "none"},
        ]
    elif g == "api_clients_create":
        base_doc = {"client_name": "garbage", "redirect_uris": [R]}
        docs = [
            {"client_name": 5, "redirect_uris": [R]},
            {"client_name": ["x"], "redirect_uris": [R]},
            {"client_name": None, "redirect_uris": [R]},
            {"client_name": "garbage", "redirect_uris": R},
            {"client_name": "garbage", "redirect_uris": [{"uri": R}]},
            dict(base_doc, consentMethod=[]),
            dict(base_doc, consentMethod=True),
            dict(base_doc, consentMethod={"value": "trusted"}),
            dict(base_doc, consentMethod="always"),
            dict(base_doc, scope=5),
            dict(base_doc, scope=["user_default"]),
            dict(base_doc, grant_types={}),
            dict(base_doc, contacts=[1]),
            dict(base_doc, token_endpoint_auth_method=0),
            dict(base_doc, status="pending"),
            dict(base_doc, createdByType="dcr"),
            dict(base_doc, client_secret="chosen-by-the-caller"),
            dict(base_doc, client_id="chosen-by-the-caller"),
        ]
    elif g == "api_client_patch":
        docs = [
            {"consentMethod": []}, {"consentMethod": None}, {"consentMethod": True},
            {"consentMethod": "always"}, {"consentMethod": {"value": "trusted"}},
            {"scope": 5}, {"scope": ["user_default"]}, {"scope": ""}, {"scope": None},
            {"scope": "user_default no-such:scope"}, {"client_name": ""}, {"client_name": 0},
            {"client_name": {"$ne": ""}}, {"client_name": "x" * 201}, {"client_name": None},
            {"client_id": "x"}, {"config_version": "1"}, {"status": "approved"},
            {"createdByType": "user"}, {"token_endpoint_auth_method": "none"},
            {"redirect_uris": ["https://evil.example/cb"]}, {"client_secret": "x"},
            {"consentMethod": "trusted", "scope": 5},  # one bad field: nothing is applied
        ]
    elif g == "api_settings_patch":
        docs = [
            {"dcr_enabled": "false"}, {"dcr_enabled": 0}, {"dcr_enabled": None},
            {"dcr_enabled": [True]}, {"require_client_uri": "true"}, {"require_client_uri": 1},
            {"allowed_auth_methods": "none"}, {"allowed_auth_methods": [1]},
            {"allowed_auth_methods": [["none"]]}, {"allowed_auth_methods": ["none", "bogus"]},
            {"allowed_auth_methods": None}, {"allowed_scopes": ["user_default"]},
            {"allowed_scopes": 5}, {"allowed_scopes": ""}, {"allowed_scopes": None},
            {"allowed_scopes": 'bad"scope'}, {"pending_client_ttl_secs": "3600"},
            {"pending_client_ttl_secs": 3600.5}, {"pending_client_ttl_secs": -1},
            {"pending_client_ttl_secs": 1e20}, {"pending_client_ttl_secs": 59},
            {"pending_client_ttl_secs": None}, {"pending_client_cap": 18446744073709551617},
            {"pending_client_cap": True}, {"pending_client_cap": -1},
            {"pending_client_cap": 100001}, {"pending_client_cap": "5"},
            {"display_name": ["x"]}, {"display_name": ""}, {"display_name": None},
            {"display_name": "x" * 101}, {"display_name": {"en": "x"}},
            {"default_resource": 5}, {"default_resource": "javascript:alert(1)"},
            {"default_resource": ["https://x.example"]},
            {"default_resource": "https://x.example/#frag"},
            {"default_resource": "http://evil.example/"},
            {"display_name": "Partially applied", "pending_client_cap": "x"},
            {"unknown_setting": 1},
        ]
    elif g == "api_users_create":
        ok_pw = "x" * 16
        docs = [
            {"email": 5, "password": ok_pw, "role": "user"},
            {"email": ["garbage@demo.test"], "password": ok_pw, "role": "user"},
            {"email": None, "password": ok_pw, "role": "user"},
            {"email": {"$ne": None}, "password": ok_pw, "role": "user"},
            {"email": "garbage@demo.test", "password": 1234567890123456, "role": "user"},
            {"email": "garbage@demo.test", "password": [ok_pw], "role": "user"},
            {"email": "garbage@demo.test", "password": ok_pw, "role": ["admin"]},
            {"email": "garbage@demo.test", "password": ok_pw, "role": True},
            {"email": "garbage@demo.test", "password": ok_pw, "role": "root"},
            {"email": "garbage@demo.test", "password": ok_pw, "role": "user",
             "disabled": "false"},
            {"email": "garbage@demo.test", "password": ok_pw, "role": "user", "id": "x"},
        ]
    elif g == "api_user_patch":  # the administrator's own record
        docs = [
            {"role": ["user"]}, {"role": "user"}, {"role": 1}, {"role": "root"},
            {"role": None}, {"disabled": "true"}, {"disabled": 1}, {"disabled": True},
            {"disabled": None}, {"disabled": "false"}, {"password": 5},
            {"password": ["x" * 16]}, {"password": None}, {"password": "short"},
            {"password": {"new": "x" * 16}}, {"email": "x@demo.test"}, {"id": "x"},
            {"created_at": 0}, {"is_admin": True},
        ]
    elif g == "api_tokens_create":
        docs = [
            {"name": 5}, {"name": ""}, {"name": ["a"]}, {"name": "x" * 101},
            {"name": {"$ne": ""}}, {"expires_in": "3600"}, {"expires_in": 1e30},
            {"expires_in": -5}, {"expires_in": 3600.5}, {"expires_in": 59},
            {"expires_in": 90 * 86400 + 1}, {"expires_in": True}, {"scope": "admin"},
        ]
    elif g == "mcp":
        in_band = S(200)  # JSON-RPC errors about a method's params travel in a 200 answer

        def rpc_error(ans: Answer) -> None:
            doc = ans.json()
            assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc

        def rpc_any(ans: Answer) -> None:
            if ans.status == 200:
                doc = ans.json()
                assert isinstance(doc, dict) and ("result" in doc or "error" in doc), doc

        special = [
            (dumps({"jsonrpc": "2.0", "id": 1, "method": 5}), None, None),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": ["initialize"]}), None, None),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": None}), None, None),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": {"name": "ping"}}), None, None),
            # A batch (not part of the 2025-06-18 protocol revision): refused.
            (dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]), None, None),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "whoami"}),
             in_band, rpc_error),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": ["whoami"]}}), in_band, rpc_error),
            (dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": [1, 2]}),
             in_band, rpc_error),
            # A protocolVersion that is not a string: the server answers with the version it
            # prefers (MCP lifecycle: the client then decides whether to continue).
            (dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": 5}}), in_band, rpc_any),
            # An id that is not a string/number: JSON-RPC 2.0 leaves the answer to the server
            # (an error, or an answer echoing the id); either way no 5xx.
            (dumps({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), S(200, 400), rpc_any),
            (dumps({"jsonrpc": "2.0", "id": [1], "method": "ping"}), S(200, 400), rpc_any),
            (dumps({"jsonrpc": "2.0", "id": 1.5e308, "method": "ping"}), S(200, 400), rpc_any),
            (dumps({"jsonrpc": 5, "id": 1, "method": "ping"}), S(200, 400), rpc_any),
            # Notifications (no id) are accepted without an answer body (Streamable HTTP: 202).
            (dumps({"jsonrpc": "2.0", "method": "notifications/initialized", "params": 5}),
             S(202), None),
            (dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}), S(202, 400), None),
        ]
    out = [(dumps(d), None, None) for d in docs] + special
    out += [(b, None, None) for b in NON_OBJECTS]
    if ep.fixed:
        out = [(b, ep.fixed, None) for b, _, _ in out]
    return out


def nul_field(ep: Ep, w: World) -> tuple[str, dict] | None:
    """The string field of a JSON endpoint that the NUL / surrogate / invalid UTF-8 bodies go
    into, and the rest of an otherwise valid body."""
    return {
        "register": ("client_name", {"redirect_uris": [R]}),
        "client_config_put": ("client_name", {"client_id": w.dcr["client_id"],
                                              "redirect_uris": [R]}),
        "api_clients_create": ("client_name", {"redirect_uris": [R]}),
        "api_client_patch": ("client_name", {}),
        "api_settings_patch": ("display_name", {}),
        "api_users_create": ("email", {"password": "x" * 16, "role": "user"}),
        "api_user_patch": ("role", {}),
        "api_tokens_create": ("name", {}),
        "mcp": ("method", {"jsonrpc": "2.0", "id": 1}),
    }.get(ep.group)


# --------------------------------------------------------------------------------------------
# The battery: one builder per kind of garbage
# --------------------------------------------------------------------------------------------


def c_empty(ep: Ep, w: World) -> list[Req]:
    ct = CT_OF[ep.kind]
    body = wrap(ep, w, b"") if ep.kind == "form" else b""
    return [req(ep, w, body, ct, empty_expect(ep), "empty body")]


def c_truncated(ep: Ep, w: World) -> list[Req]:
    exp = base(ep)
    out = [req(ep, w, b'{"client_name": "a', JSON, exp, "truncated JSON"),
           req(ep, w, b'{"redirect_uris": ["https://agent.exa', JSON, exp, "truncated JSON"),
           req(ep, w, b'[{"jsonrpc": "2.0", "id": 1, "method": "pi', JSON, exp,
               "truncated JSON")]
    if ep.kind == "form":
        out += [req(ep, w, wrap(ep, w, b"grant_type=authorization_code&code=abc%2"), FORM, exp,
                    "truncated form (half a percent escape)"),
                req(ep, w, wrap(ep, w, b"action=%e2%82&code=%&email"), FORM, exp,
                    "truncated form")]
        if ep.group in ("revoke", "introspect"):
            # A token cut short is just an unknown token: 200 (RFC 7009 §2.2; RFC 7662 §2.2
            # answers {"active": false}).
            out.append(req(ep, w, wrap(ep, w, b"token=%e2%82"), FORM, S(200),
                           "truncated token"))
    return out


def c_binary(ep: Ep, w: World) -> list[Req]:
    exp = base(ep)
    body = wrap(ep, w, BIN) if ep.kind == "form" else BIN
    return [req(ep, w, body, CT_OF[ep.kind] or JSON, exp, "binary garbage"),
            req(ep, w, BIN, None, exp, "binary garbage without a content type"),
            req(ep, w, BIN, "application/octet-stream", exp, "binary garbage, octet-stream")]


def c_huge(ep: Ep, w: World) -> list[Req]:
    exp = huge_expect(ep)
    ct = CT_OF[ep.kind] or JSON
    out = []
    for size in (JUST_OVER_64K, ONE_MIB):
        if ep.kind == "form":
            body = wrap(ep, w, b"a=" + b"b" * size)
        else:
            body = b'{"client_name": "' + b"a" * size + b'"}'
        out.append(req(ep, w, body, ct, exp, f"{len(body)}-byte body"))
    if ep.kind != "nobody":
        out.append(req(ep, w, b"[" + b"1," * (ONE_MIB // 2) + b"1]", ct, exp,
                       "1 MiB chunked body", chunked=True))
    return out


def c_dup(ep: Ep, w: World) -> list[Req]:
    if ep.kind == "nobody":
        exp = ep.fixed or (None if ep.query_sensitive else base(ep))
        return [req(ep, w, None, None, exp, "duplicated query parameters",
                    tgt=target(ep, w, query=DUP_QUERY))]
    body = wrap(ep, w, DUP_FORM) if ep.kind == "form" else b'{"garbage": [null]}'
    out = [req(ep, w, body, CT_OF[ep.kind], base(ep), "duplicated form parameters"
               if ep.kind == "form" else "duplicated query parameters, unknown JSON member",
               tgt=target(ep, w, query=DUP_QUERY))]
    if ep.group in ("revoke", "introspect"):
        # The same token twice: RFC 6749 §3.2 (parameters must not repeat) → 400, not 200.
        out.append(req(ep, w, wrap(ep, w, b"token=a&token=a"), FORM, ep.fixed or S(400),
                       "token parameter twice"))
    if ep.group == "token":
        out.append(req(ep, w, wrap(ep, w, f"client_id={w.public['client_id']}"
                                          "&grant_type=authorization_code&code=x".encode()),
                       FORM, S(400), "client_id twice (same value)"))
    return out


def c_type(ep: Ep, w: World) -> list[Req]:
    if ep.kind == "form":
        return [req(ep, w, wrap(ep, w, BRACKET_FORM), FORM, base(ep), "x[]= form names")]
    return [req(ep, w, body, JSON, exp, f"type-confused JSON {body[:80]!r}", check=check)
            for body, exp, check in type_bodies(ep, w)]


def c_wrong_ct(ep: Ep, w: World) -> list[Req]:
    exp = base(ep)
    fields = valid_fields(ep, w)
    if ep.kind == "nobody":
        return [req(ep, w, b'{"a": 1}', "text/plain", exp, "text/plain body"),
                req(ep, w, *multipart({"a": "1"}), exp, "multipart body")]
    if ep.kind in ("json", "mcp"):
        good = dumps(fields)
        mp_body, mp_type = multipart({k: json.dumps(v) for k, v in fields.items()})
        form_body = urlenc({k: v if isinstance(v, str) else json.dumps(v)
                            for k, v in fields.items()})
        # docs/admin-api.md and the README: JSON endpoints answer 415 to any other type.
        refused = ep.fixed or S(415)
        if ep.group == "mcp" and not ep.fixed:
            # The demo MCP endpoint parses the body as JSON whatever the declared type (the
            # bearer token already forces a CORS preflight, so a cross-site text/plain
            # "simple request" cannot reach it): a valid message is answered.
            refused = S(200)
        out = [
            req(ep, w, good, "text/plain", refused, "valid body as text/plain"),
            req(ep, w, good, FORM, refused, "valid JSON body as a form"),
            req(ep, w, good, None, refused, "valid body without a content type"),
            req(ep, w, good, "application/jsonx", refused, "look-alike content type"),
            req(ep, w, good, "application/json-patch+json", refused, "JSON Patch type"),
            req(ep, w, good, "text/json; application/json", refused, "type list"),
            req(ep, w, mp_body, mp_type, ep.fixed or (
                S(415) if ep.group != "mcp" else None), "multipart/form-data body"),
            req(ep, w, form_body, JSON, ep.fixed, "form body declared as JSON"),
        ]
        return out
    good = urlenc(fields) if fields else wrap(ep, w, b"")
    mp_body, mp_type = multipart(fields or {"a": "1"})
    return [
        req(ep, w, good, "text/plain", exp, "valid form as text/plain"),
        req(ep, w, good, JSON, exp, "valid form declared as JSON"),
        req(ep, w, good, None, exp, "valid form without a content type"),
        req(ep, w, good, "application/x-www-form-urlencodedx", exp, "look-alike type"),
        req(ep, w, mp_body, mp_type, exp, "multipart/form-data form"),
        req(ep, w, dumps(fields), FORM, exp, "JSON body declared as a form"),
    ]


def c_long_header(ep: Ep, w: World) -> list[Req]:
    ct = CT_OF[ep.kind]
    body = wrap(ep, w, b"") if ep.kind == "form" else (b"" if ct else None)
    exp = empty_expect(ep)
    junk = {"X-Garbage": "a" * LONG, "Accept-Language": "b" * LONG, "Referer": "c" * LONG,
            "User-Agent": "d" * LONG}
    bad_auth = S(401) if ep.auth in HEADER_AUTHS or ep.fixed == S(401) else exp
    if ep.auth in CONSOLE_AUTHS:
        bad_cookie = S(303)  # the console sends an unknown session to the sign-in page
    elif ep.auth == "api_session":
        bad_cookie = S(401)
    else:
        bad_cookie = exp
    cookie = auth_headers(ep, w).get("Cookie")
    long_cookie = (f"{cookie}; " if cookie and ep.auth not in CONSOLE_AUTHS | {"api_session"}
                   else "") + f"gh_session={'s' * LONG}; gh_browser={'b' * LONG}"
    return [
        req(ep, w, body, ct, exp, "9 KiB junk headers", extra=junk),
        req(ep, w, body, ct, bad_auth, "9 KiB Authorization",
            extra={"Authorization": "Bearer " + "t" * LONG}),
        req(ep, w, body, ct, bad_cookie, "9 KiB session cookie", extra={"Cookie": long_cookie}),
        req(ep, w, body, ct, exp, "9 KiB junk cookie next to the real ones",
            extra={"Cookie": (f"{cookie}; " if cookie else "") + f"junk={'j' * LONG}"}),
    ]


def c_long_query(ep: Ep, w: World) -> list[Req]:
    name = {"api_clients_list": "filter", "console_home": "after",
            "authorize_get": "client_id"}.get(ep.group, "q")
    ct = CT_OF[ep.kind]
    body = wrap(ep, w, b"") if ep.kind == "form" else (b"" if ct else None)
    exp = ep.fixed or (None if ep.query_sensitive else empty_expect(ep))
    return [req(ep, w, body, ct, exp, "9 KiB query parameter",
                tgt=target(ep, w, query=f"?{name}={'a' * LONG}")),
            req(ep, w, body, ct, exp, "9 KiB of query parameters",
                tgt=target(ep, w, query="?" + "&".join(f"{name}{i}=x" for i in range(1500))))]


def c_pct(ep: Ep, w: World) -> list[Req]:
    if ep.kind == "nobody":
        exp = ep.fixed or (None if ep.query_sensitive else base(ep))
        if ep.group == "console_home":
            # `after` is the console's page cursor: an unknown one may give an empty page or
            # a 400; what matters is no 5xx (the value reaches the store's listing).
            exp = S(200, 400)
        out = [req(ep, w, None, None, exp, "percent-encoding garbage in the query",
                   tgt=target(ep, w, query=PCT_QUERY))]
        if ep.group == "console_home":
            out.append(req(ep, w, None, None, exp, "cursor garbage",
                           tgt=target(ep, w, query="?after=%c0%af%00..%2f..&view=x")))
        return out
    if ep.kind == "form":
        out = [req(ep, w, wrap(ep, w, PCT_FORM), FORM, base(ep), "percent-encoding garbage")]
        if ep.group == "console_settings_post":
            # The whole settings form as the page would post it, unchanged but for control
            # characters in the display name: refused like control characters in a client
            # name (400 page), nothing saved.
            st = w.before["settings"]
            for bad in ("Demo\x00", "Demo\x1b[31m\x07"):
                pairs = [("csrf", w.csrf), ("display_name", bad),
                         ("allowed_scopes", st["allowed_scopes"]),
                         ("pending_client_ttl_secs", str(st["pending_client_ttl_secs"])),
                         ("pending_client_cap", str(st["pending_client_cap"])),
                         ("default_resource", st["default_resource"] or "")]
                pairs += [(k, "on") for k in ("dcr_enabled", "require_client_uri") if st[k]]
                pairs += [("allowed_auth_methods", m) for m in st["allowed_auth_methods"]]
                out.append(req(ep, w, urllib.parse.urlencode(pairs).encode(), FORM, S(400),
                               f"settings form with display_name {bad!r}"))
        if ep.group == "revoke":
            # RFC 7009 §2.2: an invalid or unknown token is answered 200, like a revoked one.
            out.append(req(ep, w, wrap(ep, w, b"token=%00%c0%af%zz%ff"), FORM, S(200),
                           "garbage token", check=lambda a: _eq(a.json(), {})))
        if ep.group == "introspect":
            # RFC 7662 §2.2: a token that is not active is {"active": false}, status 200.
            out.append(req(ep, w, b"token=%00%c0%af%zz%ff", FORM, S(200), "garbage token",
                           check=lambda a: _eq(a.json(), {"active": False})))
        return out
    spec = nul_field(ep, w)
    assert spec, ep
    name, rest = spec
    nul = dumps(dict(rest, **{name: "a\u0000b"}))
    surrogate = b"{" + b", ".join(
        [dumps(k) + b": " + dumps(v) for k, v in rest.items()]
        + [dumps(name) + b': "\\ud800 lone surrogate"']) + b"}"
    raw_utf8 = surrogate.replace(b"\\ud800 lone surrogate", b"\xc0\xaf\xff\xfe")
    nul_expect = ep.fixed
    check = None
    if ep.group == "mcp" and not ep.fixed:
        nul_expect = S(200)  # an unknown method name: JSON-RPC "method not found", in band

        def check(ans: Answer) -> None:
            doc = ans.json()
            assert doc.get("error", {}).get("code") == -32601, doc
    # Control characters in stored text are refused (400), as registration and the admin API
    # already refuse them in client names (client_metadata::string_field).
    out = [req(ep, w, nul, JSON, nul_expect, f"NUL in {name}", check=check),
           req(ep, w, dumps(dict(rest, **{name: "a\u0007\u001b[31mb\r\n"})), JSON, nul_expect,
               f"control characters in {name}", check=check),
           req(ep, w, surrogate, JSON, ep.fixed, f"lone surrogate in {name}"),
           req(ep, w, raw_utf8, JSON, ep.fixed, f"invalid UTF-8 in {name}")]
    if ep.group in ("register", "client_config_put", "api_clients_create"):
        nul_uri = dumps(dict(rest, redirect_uris=["https://agent.example.com/cb\u0000"]))
        out.append(req(ep, w, nul_uri, JSON, ep.fixed, "NUL in a redirect URI"))
    return out


def _eq(actual, expected) -> None:
    assert actual == expected, f"expected {expected!r}, got {actual!r}"


def c_path_ids(ep: Ep, w: World) -> list[Req]:
    exp = ep.id_expect
    body, ct = None, None
    if ep.group == "api_client_patch":
        body, ct = dumps({"consentMethod": "trusted"}), JSON
    elif ep.group == "api_user_patch":
        body, ct = dumps({"role": "user"}), JSON
    elif ep.group == "client_config_put":
        body, ct = dumps({"client_id": "..", "redirect_uris": [R]}), JSON
    elif ep.group == "console_client_post":
        body, ct = wrap(ep, w, b"action=delete"), FORM
    ids = list(BAD_IDS)
    real = {"dcr": w.dcr["client_id"], "victim": w.victim["client_id"],
            "missing": "garbage-missing-client-0000", "admin": "admin%40demo.test"}[ep.id_slot]
    ids += [real + "%00", real + "%2f..", real + "%2f..%2f..%2fsettings", "..%2f" + real]
    return [req(ep, w, body, ct, exp, f"id {i[:40]!r}", tgt=target(ep, w, id_value=i))
            for i in ids]


def c_unicode(ep: Ep, w: World) -> list[Req]:
    g, out = ep.group, []
    exp = ep.fixed  # anonymous twins: their fixed answer (401) whatever the name
    refused = lambda a: _eq(a.json().get("error"), "invalid_client_metadata")  # noqa: E731
    if g == "register":
        for name in SHOWN_NAMES:
            def check(ans: Answer, name=name) -> None:
                doc = ans.json()
                w.created_pending.add(doc["client_id"])
                _eq(doc.get("client_name"), name)
            # Unicode names are legitimate: registered (201) and stored exactly.
            out.append(req(ep, w, dumps({"client_name": name, "redirect_uris": [R]}), JSON,
                           S(201), f"unicode client_name {name!r}", check=check))
        for name in DISGUISED_NAMES:
            out.append(req(ep, w, dumps({"client_name": name, "redirect_uris": [R]}), JSON,
                           S(400), f"disguised client_name {name!r}", check=refused))
    elif g == "client_config_put":
        for name in SHOWN_NAMES:
            out.append(req(ep, w, dumps({"client_id": w.dcr["client_id"], "client_name": name,
                                         "redirect_uris": [R]}), JSON, S(200),
                           f"unicode client_name {name!r}",
                           check=lambda a, name=name: _eq(a.json().get("client_name"), name)))
        for name in DISGUISED_NAMES:
            out.append(req(ep, w, dumps({"client_id": w.dcr["client_id"], "client_name": name,
                                         "redirect_uris": [R]}), JSON, S(400),
                           f"disguised client_name {name!r}", check=refused))
    elif g == "api_clients_create":
        for name in UNICODE_NAMES + [PLAIN_EMOJI]:
            if ep.fixed:
                out.append(req(ep, w, dumps({"client_name": name, "redirect_uris": [R]}), JSON,
                               exp, f"unicode client_name {name!r}"))
                continue
            if name in DISGUISED_NAMES:
                out.append(req(ep, w, dumps({"client_name": name, "redirect_uris": [R]}), JSON,
                               S(400), f"disguised client_name {name!r}", check=refused))
                continue

            def check(ans: Answer, name=name) -> None:
                doc = ans.json()
                w.created_approved.add(doc["client_id"])
                _eq(doc.get("client_name"), name)
            out.append(req(ep, w, dumps({"client_name": name, "redirect_uris": [R]}), JSON,
                           S(201), f"unicode client_name {name!r}", check=check))
    elif g == "api_client_patch":
        for name in UNICODE_NAMES + [PLAIN_EMOJI]:
            if ep.fixed:
                out.append(req(ep, w, dumps({"client_name": name}), JSON, ep.fixed,
                               f"unicode client_name {name!r}"))
            elif name in DISGUISED_NAMES:
                out.append(req(ep, w, dumps({"client_name": name}), JSON, S(400),
                               f"disguised client_name {name!r}", check=refused))
            else:
                out.append(req(ep, w, dumps({"client_name": name}), JSON, S(200),
                               f"unicode client_name {name!r}",
                               check=lambda a, name=name: _eq(a.json().get("client_name"), name)))
    elif g == "api_users_create":
        # A too-short password keeps a unicode address that passes from creating a user (and
        # from costing an argon2 hash): 400 either way.
        for email in UNICODE_EMAILS:
            out.append(req(ep, w, dumps({"email": email, "password": "short", "role": "user"}),
                           JSON, ep.fixed or S(400), f"unicode email {email!r}"))
    elif g in ("api_user_get", "api_user_patch"):
        for email in UNICODE_EMAILS + ["admin@demo.test\u202e", "adm\u0131n@demo.test"]:
            body = dumps({"role": "user"}) if g == "api_user_patch" else None
            out.append(req(ep, w, body, JSON if body else None, ep.fixed or S(404),
                           f"unicode email {email!r} in the path",
                           tgt=target(ep, w, id_value=urllib.parse.quote(email, safe="@"))))
    elif g == "authorize_get":
        for name in UNICODE_NAMES:
            q = "?" + urllib.parse.urlencode({"client_id": name, "redirect_uri": R + name,
                                              "response_type": "code", "state": name})
            out.append(req(ep, w, None, None, None, f"unicode client_id {name!r}",
                           tgt=target(ep, w, query=q)))
    elif g in ("authorize_post", "approve"):
        for name in UNICODE_NAMES:
            out.append(req(ep, w, urlenc({"request_id": name, "client_id": name,
                                          "csrf_token": name, "action": "decide",
                                          "decision": "approve"}), FORM, None,
                           f"unicode form {name!r}"))
    elif g == "token":
        for name in UNICODE_NAMES:
            out.append(req(ep, w, urlenc({"client_id": name, "grant_type": "authorization_code",
                                          "code": name, "code_verifier": name,
                                          "redirect_uri": R}), FORM, None,
                           f"unicode client_id {name!r}"))
    elif g == "revoke":
        for name in UNICODE_NAMES:
            # RFC 7009 §2.2: an unknown token is answered 200.
            out.append(req(ep, w, wrap(ep, w, urlenc({"token": name})), FORM, S(200),
                           f"unicode token {name!r}"))
    elif g == "introspect":
        for name in UNICODE_NAMES:
            out.append(req(ep, w, urlenc({"token": name}), FORM, S(200),
                           f"unicode token {name!r}",
                           check=lambda a: _eq(a.json(), {"active": False})))
    elif g == "mcp":
        for name in UNICODE_NAMES:
            msg = {"jsonrpc": "2.0", "id": name, "method": "tools/call",
                   "params": {"name": name, "arguments": {name: name}}}
            if ep.fixed:
                out.append(req(ep, w, dumps(msg), JSON, exp, f"unicode {name!r}"))
                continue

            def check(ans: Answer, name=name) -> None:
                doc = ans.json()
                _eq(doc.get("id"), name)
                assert doc.get("error", {}).get("code") == -32602, doc
            # An unknown tool: a JSON-RPC error in a 200 answer, the id echoed exactly.
            out.append(req(ep, w, dumps(msg), JSON, S(200), f"unicode tool name {name!r}",
                           check=check))
    elif g == "console_client_post":
        for name in DISGUISED_NAMES:
            out.append(req(ep, w, wrap(ep, w, urlenc({"action": "update", "client_name": name})),
                           FORM, S(400), f"disguised client_name {name!r}"))
        for name in SHOWN_NAMES + ['<img src=x onerror=alert(1)> "quoted" & \'single\'']:
            def check(ans: Answer, name=name) -> None:
                page = send(w.server, "GET", target(ep, w), None, auth_headers(ep, w))
                assert page.status == 200, page
                text = page.body.decode("utf-8")
                assert "<img src=x" not in text, "the client name is not HTML-escaped"
                shown = re.search(r'data-field="client_name">(.*?)</dd>', text, re.S)
                assert shown, "no [data-field=client_name] on the detail page"
                _eq(html.unescape(shown.group(1)), name)
            # Renaming the sacrificial client to a unicode name is legitimate: 303 back to
            # the detail page, which shows the name exactly (escaped).
            out.append(req(ep, w, wrap(ep, w, urlenc({"action": "update", "client_name": name})),
                           FORM, S(303), f"unicode client_name {name!r}", check=check))
    elif g == "console_users_post":
        for email in UNICODE_EMAILS:
            out.append(req(ep, w, wrap(ep, w, urlenc({"email": email, "password": "short",
                                                      "role": "user"})), FORM, S(400),
                           f"unicode email {email!r}"))
    elif g == "console_signin_post":
        # One real attempt (argon2 is slow): the generic 401 page, or 429 when other modules
        # on the shared server already spent this address's sign-in allowance.
        out.append(req(ep, w, urlenc({"csrf": w.signin_csrf, "email": UNICODE_EMAILS[0],
                                      "password": "wrong-password-123"}), FORM, S(401, 429),
                       "unicode email sign-in"))
    return out


def c_parked(ep: Ep, w: World) -> list[Req]:
    """Garbage in a real decision form: a request parked by `GET /oauth/authorize` in the
    administrator's browser (the pending DCR client's approval page, posted to
    /admin/approve; the approved confidential client's consent page, posted to
    /oauth/authorize), its request_id, csrf_token and client_id intact, the decision mangled.
    Nothing may be approved or consented: every variant is refused (4xx)."""
    client = w.dcr if ep.group == "approve" else w.conf
    page_name = "approval" if ep.group == "approve" else "consent"

    def fresh() -> dict:
        attempt = authorize(w.server, w.admin.browser, client)
        assert attempt.resp.status == 200, f"expected the {page_name} page: {attempt.resp!r}"
        form = page_form(attempt.resp, "decide")
        action = urllib.parse.urljoin(f"{w.server.issuer}/oauth/authorize", form.action)
        assert urllib.parse.urlsplit(action).path == ep.path, (form.action, ep.path)
        return dict(form.fields)

    other = w.public["client_id"]
    variants: list[tuple[str, Callable[[dict], list], dict | None, frozenset | None]] = [
        ("no decision", lambda f: list(f.items()), None, S(400)),
        ("decision=APPROVE", lambda f: [*f.items(), ("decision", "APPROVE")], None, S(400)),
        ("decision with a NUL", lambda f: [*f.items(), ("decision", "approve\x00")], None,
         S(400)),
        ("decision with a space", lambda f: [*f.items(), ("decision", "approve ")], None,
         S(400)),
        ("decision[]", lambda f: [*f.items(), ("decision[]", "approve")], None, S(400)),
        ("decision twice", lambda f: [*f.items(), ("decision", "approve"),
                                      ("decision", "deny")], None, S(400)),
        ("action twice", lambda f: [*f.items(), ("action", "decide"),
                                    ("decision", "approve")], None, S(400)),
        ("action with an RTL override", lambda f: [*{**f, "action": "decide\u202e"}.items(),
                                                   ("decision", "approve")], None, S(400)),
        ("wrong csrf_token", lambda f: [*{**f, "csrf_token": "0" * 64}.items(),
                                        ("decision", "approve")], None, S(403)),
        ("csrf_token twice", lambda f: [*f.items(), ("csrf_token", f.get("csrf_token", "")),
                                        ("decision", "approve")], None, S(400)),
        ("request_id with %00", lambda f: [*{**f, "request_id": f.get("request_id", "") +
                                             "\x00"}.items(), ("decision", "approve")],
         None, None),
        ("request_id traversal", lambda f: [*{**f, "request_id": "../" + f.get(
            "request_id", "")}.items(), ("decision", "approve")], None, None),
        ("another client's id", lambda f: [*{**f, "client_id": other}.items(),
                                           ("decision", "approve")], None, S(403)),
        ("no browser cookie", lambda f: [*f.items(), ("decision", "approve")],
         {"Cookie": f"gh_session={w.session}"}, S(403)),
        ("garbage browser cookie", lambda f: [*f.items(), ("decision", "approve")],
         {"Cookie": f"gh_session={w.session}; gh_browser=%00%c0%af"}, S(403)),
    ]
    out = []
    for what, pairs, headers, exp in variants:
        body = urllib.parse.urlencode(pairs(fresh())).encode()
        r = req(ep, w, body, FORM, exp, f"parked {page_name} form, {what}", extra=headers)
        out.append(r)

    def still_undecided(ans: Answer) -> None:
        fresh()  # the page is still the approval/consent page: nothing was decided

    out[-1].check = still_undecided
    return out


UNICODE_GROUPS = {"register", "client_config_put", "api_clients_create", "api_client_patch",
                  "api_users_create", "api_user_get", "api_user_patch", "authorize_get",
                  "authorize_post", "approve", "token", "revoke", "introspect", "mcp",
                  "console_client_post", "console_users_post", "console_signin_post"}

BUILDERS: dict[str, Callable[[Ep, World], list[Req]]] = {
    "empty": c_empty,
    "truncated": c_truncated,
    "binary": c_binary,
    "huge": c_huge,
    "dup_params": c_dup,
    "type_confused": c_type,
    "wrong_content_type": c_wrong_ct,
    "long_headers": c_long_header,
    "long_query": c_long_query,
    "percent_garbage": c_pct,
    "path_ids": c_path_ids,
    "unicode": c_unicode,
    "parked_form": c_parked,
}


def applies(ep: Ep, cat: str) -> bool:
    if cat == "type_confused":
        return ep.kind != "nobody"
    if cat == "path_ids":
        return ep.id_slot is not None
    if cat == "unicode":
        return ep.group in UNICODE_GROUPS
    if cat == "parked_form":
        return ep.id in ("authorize_post", "approve")
    return True


CASES = [pytest.param(ep, cat, id=f"{ep.id}-{cat}")
         for ep in EPS for cat in BUILDERS if applies(ep, cat)]


# --------------------------------------------------------------------------------------------
# Judging an answer
# --------------------------------------------------------------------------------------------


def judge(ep: Ep, r: Req, method: str, ans: Answer) -> list[str]:
    ct = r.headers.get("Content-Type")
    where = (f"[{r.what}] {method} {r.target[:160]}{'…' if len(r.target) > 160 else ''} "
             f"(Content-Type {ct!r}, {len(r.body or b'')} body bytes)")
    problems = []
    if ans.status >= 500:
        return [f"{where} → {ans!r}: a server error"]
    if r.expect is None:
        if not 400 <= ans.status < 500:
            problems.append(f"{where} → {ans!r}: expected a 4xx")
    elif ans.status not in r.expect:
        problems.append(f"{where} → {ans!r}: expected {sorted(r.expect)}")
    if 400 <= ans.status < 500 and (ep.json_errors or ans.status == 413):
        media = ans.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            doc = json.loads(ans.body)
        except ValueError:
            doc = None
        if media != JSON or not isinstance(doc, dict) or "error" not in doc:
            problems.append(f"{where} → {ans!r}: a JSON error with an `error` member expected")
    if ans.status == 405:
        allow = {m.strip() for m in ans.headers.get("allow", "").split(",") if m.strip()}
        if not allow:
            problems.append(f"{where} → {ans!r}: 405 without an Allow header")
        elif r.allow is not None and allow != r.allow:
            problems.append(f"{where} → 405 with Allow {sorted(allow)}, expected "
                            f"{sorted(r.allow)}")
    if r.check and not problems:
        try:
            r.check(ans)
        except (AssertionError, ValueError, KeyError, AttributeError) as err:
            problems.append(f"{where} → {ans!r}: {err}")
    return problems


def run(server, ep: Ep, reqs: list[Req], restore: Callable[[], list[str]] | None = None):
    problems: list[str] = []
    for r in reqs:
        method = r.method or ep.method
        ans = send(server, method, r.target, r.body, r.headers, chunked=r.chunked)
        problems += judge(ep, r, method, ans)
    if restore:
        problems += restore()
    assert not problems, f"{len(problems)} of {len(reqs)} requests misbehaved:\n" + "\n".join(
        problems)


def settings_guard(w: World) -> Callable[[], list[str]]:
    """After a settings test: the settings must be as before; if garbage got through, report it
    and put them back so later tests (and other modules) see the tenant as it was."""
    def check() -> list[str]:
        now = assert_json(w.admin.api("GET", "/settings"))
        if now == w.before["settings"]:
            return []
        restore = {k: v for k, v in w.before["settings"].items()}
        back = w.admin.api("PATCH", "/settings", restore)
        return [f"garbage changed the tenant settings: {now} (was {w.before['settings']}); "
                f"restored → {back[0]}"]
    return check


def garbage_case(server, world: World, ep: Ep, cat: str) -> None:
    world.ran.append(f"garbage {ep.id}-{cat}")
    reqs = BUILDERS[cat](ep, world)
    assert reqs, f"no requests for {ep.id} × {cat}"
    guard = settings_guard(world) if ep.group in ("api_settings_patch",
                                                  "console_settings_post") else None
    run(server, ep, reqs, guard)


@pytest.mark.parametrize("ep,cat", CASES)
def test_garbage(server, world, ep: Ep, cat: str):
    garbage_case(server, world, ep, cat)


# --------------------------------------------------------------------------------------------
# Methods an endpoint does not serve: 405 with an Allow header naming exactly what it serves
# --------------------------------------------------------------------------------------------

# (endpoint whose path and credentials are used, methods it serves, methods to try)
METHOD_CASES = [
    ("register", "POST OPTIONS", "GET PUT PATCH DELETE"),
    ("client_config_get", "GET PUT DELETE", "POST PATCH"),
    ("as_metadata_insert", "GET HEAD OPTIONS", "POST PUT PATCH DELETE"),
    ("as_metadata_suffix", "GET HEAD OPTIONS", "POST PUT PATCH DELETE"),
    ("prm_insert", "GET HEAD OPTIONS", "POST PUT PATCH DELETE"),
    ("prm_suffix", "GET HEAD OPTIONS", "POST PUT PATCH DELETE"),
    ("jwks", "GET HEAD OPTIONS", "POST PUT PATCH DELETE BREW"),
    ("authorize_get", "GET POST", "PUT PATCH DELETE"),
    ("approve", "POST", "GET PUT PATCH DELETE"),
    ("token", "POST OPTIONS", "GET PUT PATCH DELETE"),
    ("revoke", "POST OPTIONS", "GET PUT PATCH DELETE"),
    ("introspect", "POST OPTIONS", "GET PUT PATCH DELETE"),
    # Streamable HTTP: a server that offers no GET stream answers GET with 405.
    ("mcp", "POST OPTIONS", "GET PUT PATCH DELETE"),
    ("api_clients_list", "GET POST", "PUT PATCH DELETE"),
    ("api_clients_list_anonymous", "GET POST", "PUT PATCH DELETE"),
    ("api_client_get", "GET PATCH DELETE", "POST PUT"),
    ("api_client_get_anonymous", "GET PATCH DELETE", "POST PUT"),
    ("api_settings_get", "GET PATCH", "POST PUT DELETE"),
    ("api_settings_get_anonymous", "GET PATCH", "POST PUT DELETE"),
    ("api_users_list", "GET POST", "PUT PATCH DELETE"),
    ("api_users_list_anonymous", "GET POST", "PUT PATCH DELETE"),
    ("api_user_get", "GET PATCH", "POST PUT DELETE"),
    ("api_user_get_anonymous", "GET PATCH", "POST PUT DELETE"),
    ("api_session", "GET", "POST PUT PATCH DELETE"),
    ("api_session_anonymous", "GET", "POST PUT PATCH DELETE"),
    ("api_tokens_create", "POST", "GET PUT PATCH DELETE"),
    ("api_tokens_create_anonymous", "POST", "GET PUT PATCH DELETE"),
    ("api_tokens_current_anonymous", "DELETE", "GET POST PUT PATCH"),
    # docs/admin-api.md: `GET /admin` (no form posts to it); the other pages are GET|POST.
    ("console_home", "GET", "POST PUT PATCH DELETE"),
    ("console_client_get", "GET POST", "PUT PATCH DELETE"),
    ("console_settings_get", "GET POST", "PUT PATCH DELETE"),
    ("console_users_get", "GET POST", "PUT PATCH DELETE"),
    ("console_signin_get", "GET POST", "PUT PATCH DELETE"),
    ("console_signout", "POST", "GET PUT PATCH DELETE"),
]
EP_BY_ID = {ep.id: ep for ep in EPS}


@pytest.mark.parametrize("ep_id,allowed,tried", METHOD_CASES,
                         ids=[c[0] for c in METHOD_CASES])
def test_unserved_methods_are_405_with_allow(server, world, ep_id, allowed, tried):
    unserved_methods_case(server, world, ep_id, allowed, tried)


def unserved_methods_case(server, world: World, ep_id: str, allowed: str, tried: str) -> None:
    world.ran.append(f"methods {ep_id}")
    ep = EP_BY_ID[ep_id]
    reqs = []
    for method in tried.split():
        body, ct = None, None
        if method in ("POST", "PUT", "PATCH") and ep.auth == "console":
            # A form that would be accepted were the method served (never for sign-out).
            body, ct = f"csrf={world.csrf}".encode(), FORM
        reqs.append(req(ep, world, body, ct, S(405), f"{method} not served", method=method,
                        allow=frozenset(allowed.split())))
    run(server, ep, reqs)


# --------------------------------------------------------------------------------------------
# Paths that lead nowhere
# --------------------------------------------------------------------------------------------

NOWHERE = [
    "/t/demo/oauth/../admin", "/t/../t/demo/jwks.json", "/%2e%2e/t/demo/jwks.json",
    "/t/demo%00/admin", "/t/demo/jwks.json/", "//t/demo/jwks.json", "/t/demo/jwks.json%00",
    "/t/demo/oauth/register/a/b", "/t/%F0%9F%A6%80/api/v1/settings", "/t/%c0%ae%c0%ae/admin",
    "/t/demo/api/v1", "/t/demo/api/v1/", "/t/demo/api/v1/%2e%2e/settings",
    "/t/demo/api/v1/settings/..", "/t/demo/api/v1/oauth-clients/a/b",
    "/t/demo/api/v1/users/admin%40demo.test/..", "/t/demo/api/v1/tokens/..",
    "/t/" + "a" * LONG + "/admin", "/.well-known/oauth-authorization-server/t/demo/..",
    "/t/demo/mcp/.well-known/..%2foauth-protected-resource",
    "/.well-known/oauth-protected-resource/t/demo", "/t/demo/oauth", "/t/demo/",
    "/t/no-such-tenant/admin", "/t/no-such-tenant/api/v1/settings", "/t/-bad-/admin", "/",
    "/%zz", "/t/demo/%00",
]


@pytest.mark.parametrize("path", NOWHERE, ids=[p[:60] for p in NOWHERE])
def test_paths_that_lead_nowhere_are_404(server, world, path):
    nowhere_case(server, world, path)


def nowhere_case(server, world: World, path: str) -> None:
    world.ran.append(f"nowhere {path}")
    nowhere = Ep("nowhere", "GET", path, "nobody", "anon")
    for method, body in (("GET", None), ("POST", b'{"client_name": "x"}')):
        headers = {"Content-Type": JSON} if body else {}
        run(server, nowhere, [Req(path, body, headers, S(404), "no such endpoint",
                                  method=method)])


# --------------------------------------------------------------------------------------------
# After the battery: nothing stored changed
# --------------------------------------------------------------------------------------------


# Every case of the battery, in file order: (id as recorded in World.ran, how to run it).
BATTERY: list[tuple[str, Callable[[object, World], None]]] = [
    *[(f"garbage {p.values[0].id}-{p.values[1]}",
       lambda srv, w, ep=p.values[0], cat=p.values[1]: garbage_case(srv, w, ep, cat))
      for p in CASES],
    *[(f"methods {ep_id}",
       lambda srv, w, c=(ep_id, allowed, tried): unserved_methods_case(srv, w, *c))
      for ep_id, allowed, tried in METHOD_CASES],
    *[(f"nowhere {path}", lambda srv, w, path=path: nowhere_case(srv, w, path))
      for path in NOWHERE],
]


def test_zz_stored_data_survived_the_battery(server, world):
    # Self-contained: the cases the tests above did not run (all of them when this test runs
    # alone, e.g. `pytest test_garbage.py::test_zz_...`) run here first, so the comparison below
    # always follows the whole battery.
    already = set(world.ran)
    missing = [(case_id, case) for case_id, case in BATTERY if case_id not in already]
    for _, case in missing:
        case(server, world)
    expected = [case_id for case_id, _ in BATTERY]
    assert len(set(expected)) == len(expected), "two battery cases share an id"
    assert sorted(world.ran) == sorted(expected), (
        "the battery did not run each case exactly once before the check: "
        f"never {sorted(set(expected) - set(world.ran))[:10]}, "
        f"twice {sorted({c for c in world.ran if world.ran.count(c) > 1})[:10]}")
    # The battery's own creations are the positive sign that it reached the store: the unicode
    # registrations and admin-API creations it made on purpose (beyond build_world's four).
    assert len(world.created_pending) > 1 and len(world.created_approved) > 3, (
        f"the battery created nothing on purpose: pending {world.created_pending}, "
        f"approved {world.created_approved}")
    admin = world.admin
    after = snapshot(admin)
    before = world.before
    assert after["settings"] == before["settings"], "the tenant settings changed"
    assert after["admin"] == before["admin"], "the demo administrator's record changed"
    assert after["user"] == before["user"], "the demo user's record changed"
    gone = before["approved"].keys() - after["approved"].keys()
    assert not gone, f"approved clients disappeared: {gone}"
    extra = after["approved"].keys() - before["approved"].keys()
    assert extra == world.created_approved, (
        f"approved clients created by garbage: {sorted(extra - world.created_approved)}; "
        f"created on purpose but missing: {sorted(world.created_approved - extra)}")
    # A pending client left by another module may reach its expiry meanwhile; any other
    # disappearance is the battery's doing.
    now = time.time()
    gone = {c for c in before["pending"].keys() - after["pending"].keys()
            if before["pending"][c].get("expires_at", now + 1) > now}
    assert not gone, f"pending clients disappeared before their expiry: {gone}"
    extra = after["pending"].keys() - before["pending"].keys()
    assert extra == world.created_pending, (
        f"pending clients created by garbage: {sorted(extra - world.created_pending)}; "
        f"created on purpose but missing: {sorted(world.created_pending - extra)}")
    # The sacrificial client: only its name was changed on purpose (unicode renames).
    victim = admin.client(world.victim["client_id"])
    assert victim["client_name"] != world.victim_before["client_name"], (
        "the battery never renamed the sacrificial client: it did not reach it")
    drop = {"client_name"}
    assert {k: v for k, v in victim.items() if k not in drop} == {
        k: v for k, v in world.victim_before.items() if k not in drop}, victim
    # The credentials the battery used still work.
    assert send(server, "GET", f"{API}/session", None,
                {"Cookie": f"gh_session={world.session}"}).status == 200
    assert_json(admin.api("GET", "/settings"))
