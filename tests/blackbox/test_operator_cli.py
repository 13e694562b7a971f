"""The operator CLI against a real DynamoDB API (moto): bootstrap a tenant and its first
administrator on the table a running server uses, then sign in there through the hosted page."""

import json
import os
import re
import subprocess
import urllib.parse
import http.cookiejar
import urllib.request

from conftest import gatehouse_binary, request


def cli(server, *args, password=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "AWS_"))}
    env.update(
        GATEHOUSE_TABLE=server.table,
        GATEHOUSE_DYNAMODB_ENDPOINT=os.environ["GATEHOUSE_TEST_DYNAMODB_ENDPOINT"],
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if password is not None:
        env["GATEHOUSE_NEW_PASSWORD"] = password
    return subprocess.run(
        [str(gatehouse_binary()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_bootstrap_a_tenant_and_its_first_administrator(start_server):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")

    created = cli(server, "tenant", "create", "acme", "Acme", "Corp")
    assert created.returncode == 0, created.stderr
    again = cli(server, "tenant", "create", "acme")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = cli(server, "tenant", "create", "Not_Valid")
    assert bad.returncode == 1 and "tenant ids" in bad.stderr

    short = cli(server, "user", "add", "acme", "boss@acme.test", "admin", password="short")
    assert short.returncode == 1 and "at least 12" in short.stderr
    added = cli(server, "user", "add", "acme", "boss@acme.test", "admin", password="a long enough password")
    assert added.returncode == 0, added.stderr
    nowhere = cli(server, "user", "add", "nope", "x@acme.test", "user", password="a long enough password")
    assert nowhere.returncode == 1 and "no tenant" in nowhere.stderr

    status, _, body = request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/acme")
    assert status == 200
    assert json.loads(body)["issuer"] == f"{server.base}/t/acme"

    status, _, body = request(
        "POST",
        f"{server.base}/t/acme/oauth/register",
        {"client_name": "Agent", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"},
    )
    assert status == 201, body
    client_id = json.loads(body)["client_id"]

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/cb",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "s",
    })
    page = opener.open(f"{server.base}/t/acme/oauth/authorize?{query}").read().decode()
    fields = dict(re.findall(r'name="(request_id|client_id|csrf_token)" value="([^"]+)"', page))
    form = urllib.parse.urlencode({**fields, "action": "sign_in", "email": "boss@acme.test",
                                   "password": "a long enough password"}).encode()
    consent = opener.open(urllib.request.Request(f"{server.base}/t/acme/oauth/authorize", data=form)).read().decode()
    assert "New, unverified application" in consent
    assert f'action="{server.base}/t/acme/admin/approve"' in consent


def test_keys_rotate_publishes_a_new_key(start_server):
    server = start_server({}, mode="dynamodb")
    before = json.loads(request("GET", f"{server.base}/t/demo/jwks.json")[2])["keys"]
    rotated = cli(server, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    listed = cli(server, "keys", "list")
    assert listed.returncode == 0
    kids = [line.split()[0] for line in listed.stdout.splitlines()]
    assert len(kids) == len(before) + 1
    assert {k["kid"] for k in before} < set(kids)
