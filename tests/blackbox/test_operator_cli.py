"""The operator CLI (`gatehouse`, docs/admin-api.md "Operator CLI") against a real DynamoDB API
(moto), on the table a running server uses: bootstrap a tenant and its first administrator, edit
its settings, moderate its clients, mint admin API tokens, manage signing keys; and check that the
server sees every change.

Where the spec leaves a choice open, the behaviour picked is marked with a `# spec:` comment.
"""

import http.cookiejar
import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import (
    DYNAMODB_ENDPOINT_MISSING,
    LOCAL_WRAPPING_KEY,
    _free_port,
    gatehouse_binary,
    request,
)

ADMIN_TOKEN = re.compile(r"gha_demo_[A-Za-z0-9_-]+")
PASSWORD = "a long enough password"
SETTINGS_KEYS = {
    "display_name", "dcr_enabled", "allowed_auth_methods", "require_client_uri",
    "allowed_scopes", "pending_client_ttl_secs", "pending_client_cap", "default_resource",
}
DEFAULT_SCOPES = {"user_default", "mcp:execute", "offline_access"}
ALL_AUTH_METHODS = {"client_secret_basic", "client_secret_post", "none"}
REGION = "us-east-1"  # the region the servers' tables live in (moto keeps tables per region)


# --------------------------------------------------------------------------------------------
# Running the CLI
# --------------------------------------------------------------------------------------------


def moto_endpoint() -> str:
    endpoint = os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip()
    if not endpoint:
        pytest.fail(DYNAMODB_ENDPOINT_MISSING, pytrace=False)
    return endpoint


def bare_env() -> dict:
    """The caller's environment without anything that could pick a table, endpoint or region;
    AWS credentials (moto accepts any) and no instance-metadata lookups."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
    )
    return env


def server_env(server) -> dict:
    """Everything through the environment: the server's table on moto."""
    env = bare_env()
    env.update(
        GATEHOUSE_TABLE=server.table,
        GATEHOUSE_DYNAMODB_ENDPOINT=moto_endpoint(),
        AWS_REGION=REGION,
        GATEHOUSE_LOCAL_WRAPPING_KEY=LOCAL_WRAPPING_KEY,
    )
    return env


def run(args, env, input=None, timeout=60):
    """`gatehouse ARGS`; stdin is empty unless `input` is given (then that text, then EOF)."""
    kwargs = {"stdin": subprocess.DEVNULL} if input is None else {"input": input}
    return subprocess.run(
        [str(gatehouse_binary()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def cli(server, *args, password=None, input=None):
    """`gatehouse ARGS` on `server`'s table, configured through the environment. `password` goes
    into GATEHOUSE_NEW_PASSWORD; `input` is fed on stdin."""
    env = server_env(server)
    if password is not None:
        env["GATEHOUSE_NEW_PASSWORD"] = password
    return run(args, env, input=input)


def ok(result):
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


def fails(result, code=1, *phrases):
    """Exit `code` (any non-zero one when `code` is None) and, on stderr, at least one of the
    alternatives of each phrase (a tuple = alternatives), case-insensitive."""
    if code is None:
        assert result.returncode != 0, f"expected a failure, got exit 0: {result.stdout}"
    else:
        assert result.returncode == code, (
            f"expected exit {code}, got {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    err = result.stderr.lower()
    for phrase in phrases:
        alternatives = phrase if isinstance(phrase, tuple) else (phrase,)
        assert any(a.lower() in err for a in alternatives), (
            f"none of {alternatives} in stderr: {result.stderr!r}"
        )
    return result


def show(server, tenant):
    """`tenant show` parsed: its stdout must be one JSON object."""
    result = ok(cli(server, "tenant", "show", tenant))
    try:
        settings = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"tenant show did not print JSON: {result.stdout!r}")
    assert isinstance(settings, dict), settings
    return settings


def words_per_line(stdout):
    return [line.split() for line in stdout.splitlines() if line.strip()]


def listed_clients(result):
    """`clients list` output by client id: spec "one line per client: id, status, createdByType,
    name" (lines that do not start with a client id, e.g. a header, are ignored)."""
    out = {}
    for line in ok(result).stdout.splitlines():
        parts = line.split(None, 3)
        if parts and re.fullmatch(r"[0-9a-f]{32}", parts[0]):
            out[parts[0]] = parts[1:]
    return out


def kids(server):
    # spec: `keys list` prints one key per line, its kid first (as the current CLI does).
    return [words[0] for words in words_per_line(ok(cli(server, "keys", "list", "demo")).stdout)]


# --------------------------------------------------------------------------------------------
# HTTP against the server
# --------------------------------------------------------------------------------------------


def register(server, tenant, **fields):
    doc = {"client_name": "CLI test agent", "redirect_uris": ["http://127.0.0.1/cb"],
           "token_endpoint_auth_method": "none"}
    doc.update(fields)
    return request("POST", f"{server.base}/t/{tenant}/oauth/register", doc)


def registered(server, tenant, **fields):
    status, _, body = register(server, tenant, **fields)
    assert status == 201, body
    return json.loads(body)


def authorize_query(client_id):
    return urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/cb",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "s",
    })


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(server, tenant, client_id, email, password):
    """Signs in through the hosted page of an authorization request; returns (whether a session
    cookie was set, the page after sign-in)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    url = f"{server.base}/t/{tenant}/oauth/authorize"
    page = opener.open(f"{url}?{authorize_query(client_id)}").read().decode()
    fields = dict(re.findall(r'name="(request_id|client_id|csrf_token)" value="([^"]+)"', page))
    form = urllib.parse.urlencode({**fields, "action": "sign_in", "email": email,
                                   "password": password}).encode()
    try:
        after = opener.open(urllib.request.Request(url, data=form)).read().decode()
    except urllib.error.HTTPError as err:
        after = err.read().decode(errors="replace")
    return any(c.name == "gh_session" for c in jar), after


# --------------------------------------------------------------------------------------------
# --help, usage errors, table selection
# --------------------------------------------------------------------------------------------

COMMANDS = [
    (),
    ("tenant",), ("tenant", "create"), ("tenant", "list"), ("tenant", "show"), ("tenant", "set"),
    ("user",), ("user", "add"),
    ("clients",), ("clients", "list"), ("clients", "approve"), ("clients", "delete"),
    ("clients", "record-approvals"),
    ("token",), ("token", "create"),
    ("keys",), ("keys", "generate"), ("keys", "rotate"), ("keys", "list"),
    ("serve",),
]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "gatehouse")
def test_help_on_every_command(words):
    # spec: --help needs no table (run with none configured), goes to stdout, exits 0, and the
    # usage names the full command ("gatehouse tenant create", as clap and the spec print it).
    env = bare_env()
    env["GATEHOUSE_ADDR"] = f"127.0.0.1:{_free_port()}"  # should `serve --help` serve anyway
    result = run([*words, "--help"], env, timeout=20)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "usage" in out.lower(), out
    assert " ".join(("gatehouse", *words)) in out, out
    if not words:
        for group in ("tenant", "user", "clients", "token", "keys"):
            assert group in out, f"{group!r} missing from the top-level help: {out}"
        for flag in ("--table", "--endpoint", "--region"):
            assert flag in out, f"global option {flag} missing from the top-level help: {out}"
    options = {("tenant", "create"): "--name", ("clients", "list"): "--pending",
               ("token", "create"): "--expires-in"}
    if words in options:
        assert options[words] in out, out
    if words == ("user", "add"):
        assert "--password" not in out, "passwords never come from a flag"


def test_unknown_command_is_a_usage_error():
    # spec: like a missing table name, a malformed command line exits 2 (clap's usage error).
    fails(run(["frobnicate"], bare_env()), 2)
    fails(run(["tenant", "create"], bare_env()), 2)  # the id is required


@pytest.mark.parametrize("args", [
    ("tenant", "list"),
    ("tenant", "show", "demo"),
    ("clients", "list", "demo"),
    ("token", "create", "demo", "admin@demo.test"),
    ("keys", "list", "demo"),
])
def test_missing_table_name_exits_2_naming_the_option(args):
    env = bare_env()
    env.update(GATEHOUSE_DYNAMODB_ENDPOINT=os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT")
               or "http://127.0.0.1:9", AWS_REGION=REGION)
    fails(run(args, env), 2, ("--table", "GATEHOUSE_TABLE"))
    # spec: an empty GATEHOUSE_TABLE names no table either.
    fails(run(args, {**env, "GATEHOUSE_TABLE": ""}), 2, ("--table", "GATEHOUSE_TABLE"))


def test_table_that_does_not_exist_exits_1_not_found():
    table = f"nope-xyz-{secrets.token_hex(4)}"
    env = bare_env()
    env.update(GATEHOUSE_DYNAMODB_ENDPOINT=moto_endpoint(), AWS_REGION=REGION)
    # spec: "table … not found" names the table.
    fails(run(["--table", table, "tenant", "list"], env), 1, "not found", table)
    fails(run(["--table", table, "keys", "list", "demo"], env), 1, "not found")
    # A write does not create the table either.
    fails(run(["--table", table, "tenant", "create", "acme"], env), 1, "not found")
    fails(run(["--table", table, "keys", "rotate", "demo"], env), 1, "not found")
    fails(run(["tenant", "list"], {**env, "GATEHOUSE_TABLE": table}), 1, "not found")


def test_global_flags_replace_the_environment(start_server):
    server = start_server({"GATEHOUSE_TENANT_CACHE_TTL": "0"}, mode="dynamodb")
    endpoint = moto_endpoint()
    env = bare_env()  # no GATEHOUSE_*, no AWS_ENDPOINT*, no AWS_REGION: only credentials
    flags = ["--table", server.table, "--endpoint", endpoint, "--region", REGION]

    # spec: global options come before the command.
    listed = ok(run([*flags, "tenant", "list"], env))
    assert ["demo"] in [w[:1] for w in words_per_line(listed.stdout)], listed.stdout
    ok(run([*flags, "tenant", "create", "flagco"], env))
    status, _, body = request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/flagco")
    assert status == 200, body  # written to the server's table

    # Flags win over the environment.
    wrong = {**env, "GATEHOUSE_TABLE": "nope-xyz", "AWS_REGION": "eu-west-1",
             "GATEHOUSE_DYNAMODB_ENDPOINT": "http://127.0.0.1:9"}
    ok(run([*flags, "tenant", "show", "flagco"], wrong))
    # --region is honoured: moto keeps tables per region, so the table is not in eu-west-1.
    fails(run(["--table", server.table, "--endpoint", endpoint, "--region", "eu-west-1",
               "tenant", "list"], env), 1, "not found")

    # The environment fallbacks: AWS_ENDPOINT_URL_DYNAMODB, AWS_DEFAULT_REGION.
    ok(run(["tenant", "show", "flagco"], {**env, "GATEHOUSE_TABLE": server.table,
                                          "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                                          "AWS_DEFAULT_REGION": REGION}))
    # GATEHOUSE_DYNAMODB_ENDPOINT comes before AWS_ENDPOINT_URL_DYNAMODB.
    ok(run(["tenant", "show", "flagco"], {**env, "GATEHOUSE_TABLE": server.table,
                                          "GATEHOUSE_DYNAMODB_ENDPOINT": endpoint,
                                          "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9",
                                          "AWS_REGION": REGION}))


# --------------------------------------------------------------------------------------------
# Tenants and their settings
# --------------------------------------------------------------------------------------------


def test_bootstrap_a_tenant_and_its_first_administrator(start_server):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
                           "GATEHOUSE_TENANT_CACHE_TTL": "0"}, mode="dynamodb")

    ok(cli(server, "tenant", "create", "acme", "--name", "Acme Corp"))
    # spec: "already exists", and the id rule, as the current CLI says.
    fails(cli(server, "tenant", "create", "acme"), 1, "already exists")
    fails(cli(server, "tenant", "create", "Not_Valid"), 1, "tenant id")
    ok(cli(server, "tenant", "create", "bare"))

    listed = ok(cli(server, "tenant", "list"))
    # spec: one line per tenant, its id first.
    first_words = {w[0] for w in words_per_line(listed.stdout)}
    assert {"acme", "bare", "demo"} <= first_words, listed.stdout
    assert "Not_Valid" not in listed.stdout

    settings = show(server, "acme")
    assert SETTINGS_KEYS <= set(settings), settings  # the settings API's GET body (an id may be added)
    assert settings["display_name"] == "Acme Corp"
    assert settings["dcr_enabled"] is True
    assert set(settings["allowed_auth_methods"]) == ALL_AUTH_METHODS
    assert set(settings["allowed_scopes"].split()) == DEFAULT_SCOPES
    assert settings["pending_client_ttl_secs"] == 3600
    assert settings["pending_client_cap"] == 200
    assert settings["require_client_uri"] is False
    assert settings["default_resource"] is None
    # spec: without --name the display name is the id.
    assert show(server, "bare")["display_name"] == "bare"
    fails(cli(server, "tenant", "show", "nope"), 1, ("not found", "no tenant"))

    fails(cli(server, "user", "add", "acme", "boss@acme.test", "admin", password="short"),
          1, "at least 12")
    ok(cli(server, "user", "add", "acme", "boss@acme.test", "admin", password=PASSWORD))
    # spec: the current CLI's messages for a duplicate user and an unknown tenant.
    fails(cli(server, "user", "add", "acme", "boss@acme.test", "user", password=PASSWORD),
          1, "already exists")
    fails(cli(server, "user", "add", "nope", "x@acme.test", "user", password=PASSWORD),
          1, ("no tenant", "not found"))
    # spec: a role other than admin|user is refused (clap: 2, hand check: 1).
    fails(cli(server, "user", "add", "acme", "r@acme.test", "owner", password=PASSWORD), None)

    status, _, body = request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/acme")
    assert status == 200
    assert json.loads(body)["issuer"] == f"{server.base}/t/acme"

    client_id = registered(server, "acme", client_name="Agent")["client_id"]
    session, consent = sign_in(server, "acme", client_id, "boss@acme.test", PASSWORD)
    assert session
    assert "New, unverified application" in consent
    assert f'action="{server.base}/t/acme/admin/approve"' in consent


def test_tenant_set_changes_settings_the_server_applies(start_server):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
                           "GATEHOUSE_TENANT_CACHE_TTL": "0"}, mode="dynamodb")
    ok(cli(server, "tenant", "create", "acme", "--name", "Acme Corp"))
    assert register(server, "acme")[0] == 201  # DCR is on by default

    ok(cli(server, "tenant", "set", "acme", "dcr_enabled=false", "pending_client_cap=5",
           "allowed_auth_methods=none", "allowed_scopes=user_default mcp:execute"))
    settings = show(server, "acme")
    assert settings["dcr_enabled"] is False
    assert settings["pending_client_cap"] == 5
    assert settings["allowed_auth_methods"] == ["none"]
    assert set(settings["allowed_scopes"].split()) == {"user_default", "mcp:execute"}
    assert settings["display_name"] == "Acme Corp"  # untouched keys keep their values
    assert settings["pending_client_ttl_secs"] == 3600
    assert show(server, "demo")["dcr_enabled"] is True  # other tenants untouched

    status, _, body = register(server, "acme")
    assert status == 403, body
    assert json.loads(body)["error"] == "access_denied"

    # Client ID Metadata Documents: on by default, off through the CLI, published accordingly.
    meta_url = f"{server.base}/.well-known/oauth-authorization-server/t/acme"
    assert json.loads(request("GET", meta_url)[2]).get("client_id_metadata_document_supported") is True
    ok(cli(server, "tenant", "set", "acme", "cimd_enabled=false"))
    settings = show(server, "acme")
    assert settings["cimd_enabled"] is False
    assert "client_id_metadata_document_supported" not in json.loads(request("GET", meta_url)[2])

    # Bad values: exit 1 naming the key, nothing changed (not even the good pairs beside them).
    for pair in ("pending_client_ttl_secs=5", "foo=1", "dcr_enabled=maybe", "cimd_enabled=perhaps",
                 "allowed_auth_methods=bogus", "pending_client_cap=-1",
                 "default_resource=ftp://mcp.acme.test/"):
        key = pair.split("=")[0]
        fails(cli(server, "tenant", "set", "acme", pair), 1, key)
        # spec: one bad pair rejects the whole command.
        fails(cli(server, "tenant", "set", "acme", "pending_client_cap=7", pair), 1, key)
        assert show(server, "acme") == settings, f"{pair} changed the settings"
    # spec: an argument that is not key=value is refused as a bad setting too (1) or a usage
    # error (2); either way nothing changes.
    assert cli(server, "tenant", "set", "acme", "dcr_enabled").returncode in (1, 2)
    assert show(server, "acme") == settings
    fails(cli(server, "tenant", "set", "nope", "dcr_enabled=false"), 1, ("not found", "no tenant"))

    # The server applies the new policy at once (tenant cache off).
    ok(cli(server, "tenant", "set", "acme", "dcr_enabled=true"))
    status, _, body = register(server, "acme", token_endpoint_auth_method="client_secret_basic")
    assert status == 400, body  # only `none` is allowed now
    assert register(server, "acme")[0] == 201

    # Lists are comma-separated; default_resource= clears it.
    ok(cli(server, "tenant", "set", "acme",
           "allowed_auth_methods=client_secret_post,none", "require_client_uri=true",
           "display_name=Acme Inc", "default_resource=https://mcp.acme.test/mcp",
           "pending_client_ttl_secs=60"))
    settings = show(server, "acme")
    assert set(settings["allowed_auth_methods"]) == {"client_secret_post", "none"}
    assert settings["require_client_uri"] is True
    assert settings["display_name"] == "Acme Inc"
    assert settings["default_resource"] == "https://mcp.acme.test/mcp"
    assert settings["pending_client_ttl_secs"] == 60
    ok(cli(server, "tenant", "set", "acme", "default_resource="))
    assert show(server, "acme")["default_resource"] is None

    confidential = {"token_endpoint_auth_method": "client_secret_post",
                    "redirect_uris": ["https://agent.example.com/cb"],
                    "grant_types": ["authorization_code", "refresh_token"]}
    status, _, body = register(server, "acme", **confidential)
    assert status == 400, body  # client_uri is required now
    client = registered(server, "acme", client_uri="https://agent.example.com", **confidential)
    # offline_access is no longer an allowed scope, so not even a confidential client gets it.
    assert set(client["scope"].split()) == {"user_default", "mcp:execute"}, client


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------


def test_user_add_takes_the_password_from_the_environment_or_stdin_never_a_flag(start_server):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
                           "GATEHOUSE_TENANT_CACHE_TTL": "0"}, mode="dynamodb")
    ok(cli(server, "tenant", "create", "acme"))

    ok(cli(server, "user", "add", "acme", "env@acme.test", "admin", password=PASSWORD))
    # No GATEHOUSE_NEW_PASSWORD: one line on stdin (its line break is not part of the password).
    ok(cli(server, "user", "add", "acme", "stdin@acme.test", "admin",
           input="typed on stdin 123\n"))
    # spec: nothing on stdin is an empty password, refused like a short one.
    fails(cli(server, "user", "add", "acme", "empty@acme.test", "admin"), 1)

    # Never a flag: refused even when the flag's value would be a good password.
    fails(cli(server, "user", "add", "acme", "x@y.test", "admin", "--password", "foo"), None)
    fails(cli(server, "user", "add", "acme", "x@y.test", "admin", "--password",
              "a flag password long enough"), None)
    fails(cli(server, "user", "add", "acme", "x@y.test", "admin",
              "--password=a flag password long enough"), None)
    fails(cli(server, "user", "add", "acme", "x@y.test", "admin", "--password",
              "a flag password long enough", password=PASSWORD), None)
    # ...and none of those created the user.
    ok(cli(server, "user", "add", "acme", "x@y.test", "user", password=PASSWORD))
    ok(cli(server, "user", "add", "acme", "empty@acme.test", "user", password=PASSWORD))

    client_id = registered(server, "acme")["client_id"]
    for email, password in (("env@acme.test", PASSWORD), ("stdin@acme.test", "typed on stdin 123")):
        session, page = sign_in(server, "acme", client_id, email, password)
        assert session, f"{email} could not sign in: {page[:500]}"
        assert f'action="{server.base}/t/acme/admin/approve"' in page  # an administrator
    session, _ = sign_in(server, "acme", client_id, "stdin@acme.test", "typed on stdin 123\n")
    assert not session
    session, _ = sign_in(server, "acme", client_id, "x@y.test", "a flag password long enough")
    assert not session


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def test_clients_list_approve_and_delete(start_server):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    one = registered(server, "demo", client_name="CLI agent one")["client_id"]
    two = registered(server, "demo", client_name="CLI agent two")["client_id"]

    listed = listed_clients(cli(server, "clients", "list", "demo"))
    assert one not in listed and two not in listed, listed  # pending ones are hidden
    # spec: --pending shows the pending ones (whether approved ones are listed too is open).
    pending = listed_clients(cli(server, "clients", "list", "demo", "--pending"))
    assert pending.get(one) == ["pending", "dcr", "CLI agent one"], pending
    assert pending.get(two) == ["pending", "dcr", "CLI agent two"], pending

    ok(cli(server, "clients", "approve", "demo", one))
    listed = listed_clients(cli(server, "clients", "list", "demo"))
    assert listed.get(one) == ["approved", "dcr", "CLI agent one"], listed
    assert two not in listed
    assert listed_clients(cli(server, "clients", "list", "demo", "--pending")).get(two, [None])[0] == "pending"
    fails(cli(server, "clients", "approve", "demo", one), 1, ("already approved", "not pending"))
    # Every approval made here has its approval record: nothing for the upgrade step to do.
    recorded = ok(cli(server, "clients", "record-approvals", "demo"))
    assert "recorded the approval of 0 approved client(s)" in recorded.stdout, recorded.stdout
    # spec: an unknown client cannot be approved; "not found"/"no client" as for delete.
    fails(cli(server, "clients", "approve", "demo", "f" * 32), 1, ("not found", "no client"))
    # spec: a client is only found in its own tenant.
    ok(cli(server, "tenant", "create", "acme"))
    fails(cli(server, "clients", "approve", "acme", two), 1, ("not found", "no client"))
    fails(cli(server, "clients", "delete", "acme", two), 1, ("not found", "no client"))

    authorize = f"{server.issuer}/oauth/authorize?"
    assert request("GET", authorize + authorize_query(one))[0] == 200
    ok(cli(server, "clients", "delete", "demo", one))
    assert one not in listed_clients(cli(server, "clients", "list", "demo"))
    assert one not in listed_clients(cli(server, "clients", "list", "demo", "--pending"))
    assert request("GET", authorize + authorize_query(one))[0] == 400  # unknown to the server
    # spec: a pending client can be deleted too.
    ok(cli(server, "clients", "delete", "demo", two))
    assert two not in listed_clients(cli(server, "clients", "list", "demo", "--pending"))

    fails(cli(server, "clients", "delete", "demo", one), 1, ("not found", "no client"))
    fails(cli(server, "clients", "delete", "demo", "f" * 32), 1, ("not found", "no client"))
    fails(cli(server, "clients", "list", "nope"), 1, ("not found", "no tenant"))


# --------------------------------------------------------------------------------------------
# Admin API tokens
# --------------------------------------------------------------------------------------------


def test_token_create_mints_an_admin_api_token(start_server):
    server = start_server({}, mode="dynamodb")
    clients_url = f"{server.issuer}/api/v1/oauth-clients"

    created = ok(cli(server, "token", "create", "demo", "admin@demo.test"))
    tokens = set(ADMIN_TOKEN.findall(created.stdout))
    assert len(tokens) == 1, created.stdout  # printed once
    token = tokens.pop()

    status, _, body = request("GET", clients_url, headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    assert isinstance(json.loads(body)["data"], list)
    assert request("GET", clients_url)[0] == 401  # it is the token that opened the door
    assert request("GET", clients_url, headers={"Authorization": f"Bearer {token}x"})[0] == 401

    # The settings API agrees with `tenant show` (same keys, same store).
    status, _, body = request("GET", f"{server.issuer}/api/v1/settings",
                              headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    api_settings = json.loads(body)
    shown = show(server, "demo")
    assert {k: shown[k] for k in SETTINGS_KEYS} == {k: api_settings[k] for k in SETTINGS_KEYS}

    again = ok(cli(server, "token", "create", "demo", "admin@demo.test", "--expires-in", "3600"))
    second = ADMIN_TOKEN.findall(again.stdout)
    assert len(second) == 1 and second[0] != token, again.stdout
    status, _, body = request("GET", clients_url, headers={"Authorization": f"Bearer {second[0]}"})
    assert status == 200, body
    # spec: more than 90 days is refused (1 as a bad value, or 2 if the parser enforces it).
    too_long = fails(cli(server, "token", "create", "demo", "admin@demo.test",
                         "--expires-in", str(90 * 86400 + 1)), None)
    assert not ADMIN_TOKEN.search(too_long.stdout)

    regular = fails(cli(server, "token", "create", "demo", "user@demo.test"), 1)
    assert "gha_" not in regular.stdout
    unknown = fails(cli(server, "token", "create", "demo", "nobody@demo.test"), 1)
    assert "gha_" not in unknown.stdout
    fails(cli(server, "token", "create", "nope", "admin@demo.test"), 1)


# --------------------------------------------------------------------------------------------
# Signing keys
# --------------------------------------------------------------------------------------------


def test_keys_generate_keeps_every_published_key(start_server):
    server = start_server({}, mode="dynamodb")
    before = kids(server)
    assert before, "the server published a key at start-up"
    # spec: `keys generate` creates the first signing key of a table that has none; the server
    # already made one here, so all we can require is success and no key lost (whether it adds
    # another one is not asserted).
    ok(cli(server, "keys", "generate", "demo"))
    after = kids(server)
    assert after and set(before) <= set(after), (before, after)


def key_algs(server) -> list[str]:
    """The algorithm column of `keys list` (kid, algorithm, creation time), newest first."""
    return [words[1] for words in words_per_line(ok(cli(server, "keys", "list", "demo")).stdout)]


def test_keys_rotate_publishes_a_new_key_per_algorithm(start_server):
    server = start_server({}, mode="dynamodb")
    before = json.loads(request("GET", f"{server.base}/t/demo/jwks.json")[2])["keys"]
    assert sorted(k["alg"] for k in before) == ["ES256", "RS256"], before
    out = ok(cli(server, "keys", "rotate", "demo")).stdout
    assert "ES256" in out and "RS256" in out, out
    listed = kids(server)
    assert len(listed) == len(before) + 2
    assert {k["kid"] for k in before} < set(listed)
    assert sorted(key_algs(server)) == ["ES256", "ES256", "RS256", "RS256"]


def test_keys_rotate_one_algorithm(start_server):
    server = start_server({}, mode="dynamodb")
    ok(cli(server, "keys", "rotate", "demo", "--alg", "RS256"))
    assert sorted(key_algs(server)) == ["ES256", "RS256", "RS256"]
    for bad in ("HS256", "none", "rs256"):
        failed = fails(cli(server, "keys", "rotate", "demo", "--alg", bad), 2)
        assert "ES256 or RS256" in failed.stderr, failed.stderr
    assert sorted(key_algs(server)) == ["ES256", "RS256", "RS256"], "a refused rotation adds nothing"
