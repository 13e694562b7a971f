"""Per-tenant signing keys, sealed at rest (`shared/src/keywrap.rs`), through `gatehouse serve`
on DynamoDB (moto) and the operator CLI:

- each tenant has its own key set: its JWKS lists none of another tenant's keys, so it never
  verifies another tenant's tokens;
- no private key is stored in the clear: each `SIGNKEY#` item holds ciphertext and a wrapped
  data key, wrapped by the test session's local key or, when configured, by a KMS key (moto's
  KMS);
- a process that keeps keys in DynamoDB refuses to start without a wrapping key, and says which
  variable to set.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import boto3
import pytest

from conftest import LOCAL_WRAPPING_KEY, _free_port, gatehouse_binary, request

if "test_tokens" not in sys.modules:
    pytest.register_assert_rewrite("test_tokens")

from test_operator_cli import REGION, bare_env, cli, fails, moto_endpoint, ok, run, server_env  # noqa: E402
from test_tokens import Flow, assert_tokens, exchange, refreshing_client  # noqa: E402


def moto(service: str):
    return boto3.client(service, endpoint_url=moto_endpoint(), region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def signkey_items(table: str) -> list[dict]:
    items, start = [], None
    while True:
        page = moto("dynamodb").scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items += [i for i in page["Items"] if i["pk"]["S"].startswith("SIGNKEY#")]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def jwks_kids(server, tenant: str) -> set[str]:
    resp = request("GET", f"{server.base}/t/{tenant}/jwks.json")
    assert resp[0] == 200, resp
    return {k["kid"] for k in json.loads(resp[2])["keys"]}


def token_kid(server) -> str:
    flow = Flow(server)
    client = refreshing_client(flow)
    body = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
    header = body["access_token"].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def assert_sealed(items: list[dict], wrapping: str) -> None:
    assert items, "no signing key stored"
    for item in items:
        assert "pkcs8" not in item, item["pk"]
        assert item["wrapping"]["S"] == wrapping, item
        for field in ("wrapped_key", "nonce", "ciphertext"):
            assert item[field]["S"], (field, item["pk"])
        # Base64 DER private keys (PKCS#8 and PKCS#1) start "MII" or "MIG": none in any value.
        values = [v.get("S", "") for v in item.values()]
        assert not any(v.startswith(("MII", "MIG")) for v in values), item["pk"]


def test_each_tenant_has_its_own_key_set_and_keys_are_sealed(start_server):
    server = start_server({}, mode="dynamodb")
    ok(cli(server, "tenant", "create", "keys-acme"))
    demo = jwks_kids(server, "demo")
    assert len(demo) == 2, "the server made the demo tenant's ES256 and RS256 keys at start-up"
    assert jwks_kids(server, "keys-acme") == set(), "a new tenant's keys come on first use"
    out = ok(cli(server, "keys", "generate", "keys-acme")).stdout
    assert "keys-acme" in out, out
    acme = jwks_kids(server, "keys-acme")
    assert len(acme) == 2 and not acme & demo, (acme, demo)
    # A token of the demo tenant names a key the other tenant does not publish.
    kid = token_kid(server)
    assert kid in demo and kid not in jwks_kids(server, "keys-acme")
    items = signkey_items(server.table)
    assert {i["pk"]["S"] for i in items} == {
        *(f"SIGNKEY#demo#{k}" for k in demo), *(f"SIGNKEY#keys-acme#{k}" for k in acme)}
    assert_sealed(items, "local")
    # Rotation is per tenant and shows in that tenant's key list only (the JWKS follows once
    # the server's key cache turns over: test_lifetimes.py).
    ok(cli(server, "keys", "rotate", "keys-acme", "--alg", "ES256"))
    def listed_kids(tenant: str) -> set[str]:
        out = ok(cli(server, "keys", "list", tenant)).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}
    assert len(listed_kids("keys-acme")) == 3 and acme < listed_kids("keys-acme")
    assert listed_kids("demo") == demo
    # An unknown tenant is refused by name.
    fails(cli(server, "keys", "rotate", "no-such-tenant"), 1, "no-such-tenant")
    fails(cli(server, "keys", "rotate", "Bad_Tenant"), 1, "tenant ids")


def test_a_kms_key_wraps_signing_keys_when_configured(start_server):
    key = moto("kms").create_key(Description="gatehouse black-box")["KeyMetadata"]["Arn"]
    kms = {"GATEHOUSE_KMS_KEY_ID": key, "GATEHOUSE_LOCAL_WRAPPING_KEY": ""}
    server = start_server(kms, mode="dynamodb")
    token_kid(server)  # signs with a key unsealed through KMS Decrypt
    assert_sealed(signkey_items(server.table), "kms")
    env = {**server_env(server), **kms}
    ok(run(["keys", "rotate", "demo"], env))
    assert_sealed(signkey_items(server.table), "kms")
    # Without a wrapping key the CLI says which variable to set, and creates nothing.
    before = len(signkey_items(server.table))
    bare = {**server_env(server), "GATEHOUSE_LOCAL_WRAPPING_KEY": ""}
    fails(run(["keys", "rotate", "demo"], bare), 2, "GATEHOUSE_KMS_KEY_ID")
    fails(run(["keys", "rotate", "demo"], {**env, "GATEHOUSE_LOCAL_WRAPPING_KEY": LOCAL_WRAPPING_KEY}),
          2, "not both")
    # A local key on a table whose keys KMS sealed would make keys the functions cannot open.
    local_only = {**server_env(server), "GATEHOUSE_LOCAL_WRAPPING_KEY": LOCAL_WRAPPING_KEY}
    fails(run(["keys", "rotate", "demo"], local_only), 2, "sealed with a kms key")
    fails(run(["keys", "generate", "demo"], local_only), 2, "sealed with a kms key")
    assert len(signkey_items(server.table)) == before


@pytest.mark.parametrize("wrapping, phrase", [
    ({}, "GATEHOUSE_KMS_KEY_ID"),
    ({"GATEHOUSE_LOCAL_WRAPPING_KEY": "c2hvcnQ"}, "32 bytes"),
    ({"GATEHOUSE_LOCAL_WRAPPING_KEY": LOCAL_WRAPPING_KEY, "GATEHOUSE_KMS_KEY_ID": "alias/x"}, "not both"),
])
def test_serve_on_dynamodb_refuses_to_start_without_a_usable_wrapping_key(wrapping, phrase):
    env = bare_env()
    env.update(GATEHOUSE_TABLE=f"gatehouse-nokey-{os.getpid()}", GATEHOUSE_DYNAMODB_ENDPOINT=moto_endpoint(),
               AWS_REGION=REGION, GATEHOUSE_ADDR=f"127.0.0.1:{_free_port()}", **wrapping)
    result = subprocess.run([str(gatehouse_binary()), "serve"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0, result
    assert phrase in result.stderr + result.stdout, result
