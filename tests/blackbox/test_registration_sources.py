"""Per-source shares of a tenant's pending quota, through `gatehouse serve`: one network
address may use only its share of the tenant's pending-client cap per window (tenant setting
`pending_client_source_share_percent`, default 50), so one address flooding the public
registration URL leaves room for everyone else registering with the tenant. The counters are
in the store (both modes), so they hold across processes and restarts; the per-process rate
limit is off here (`GATEHOUSE_REGISTRATION_RATE_LIMIT=0`) to isolate them.

Sources are told apart by the TCP peer address: requests are sent from 127.0.0.1, 127.0.0.2
and 127.0.0.3 (all loopback on Linux) to the server on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import sys
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import Admin, assert_api_error, assert_json  # noqa: E402
from test_audit_trail import admin  # noqa: E402,F401 - the admin fixture
from test_dynamic_registration import assert_created, assert_too_many, minimal  # noqa: E402


def register_from(server, source: str, name: str):
    """POST a registration from the loopback address `source`."""
    parts = urllib.parse.urlsplit(server.register_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("POST", parts.path, body=json.dumps(minimal(client_name=name)),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["embedded", "dynamodb"])
def test_one_address_uses_only_its_share_of_the_tenant_cap(start_server, mode):
    # Cap 4, default share 50%: two per address.
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_CAP": "4", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"},
                       mode=mode)
    for i in range(2):
        assert_created(register_from(srv, "127.0.0.1", f"src-a{i}"))
    refused = register_from(srv, "127.0.0.1", "src-a2")
    retry = assert_too_many(refused)
    # The source's count ends with the current window (the pending lifetime, 3600 s).
    assert retry <= 3600, refused[1]
    assert b"network address" in refused[2], refused
    assert b"client_id" not in refused[2], refused
    # Another address still registers, up to its own share...
    for i in range(2):
        assert_created(register_from(srv, "127.0.0.2", f"src-b{i}"))
    # ...and the tenant's cap holds over all addresses.
    capped = register_from(srv, "127.0.0.3", "src-c0")
    assert_too_many(capped)
    assert b"network address" not in capped[2], capped


def test_the_share_is_a_tenant_setting_and_100_lifts_the_per_address_limit(start_server):
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_CAP": "10", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"})
    boss = Admin(srv)
    assert_json(boss.patch_settings({"pending_client_source_share_percent": 10}))  # one each
    assert_created(register_from(srv, "127.0.0.1", "src-0"))
    assert_too_many(register_from(srv, "127.0.0.1", "src-1"))
    assert_json(boss.patch_settings({"pending_client_source_share_percent": 100}))
    assert_created(register_from(srv, "127.0.0.1", "src-2"))  # not counted per address
    # Half of 10: the address has used one of its five (the refused attempt and the one at
    # 100% did not count).
    assert_json(boss.patch_settings({"pending_client_source_share_percent": 50}))
    for i in range(4):
        assert_created(register_from(srv, "127.0.0.1", f"src-{3 + i}"))
    assert_too_many(register_from(srv, "127.0.0.1", "src-7"))
    assert_created(register_from(srv, "127.0.0.2", "src-8"))


@pytest.fixture
def restore_share(admin):
    yield
    assert_json(admin.patch_settings({"pending_client_source_share_percent": 50}))


BAD_SHARES = [0, 101, -1, "50", None, 1.5, True, [50], {"percent": 50}]


def test_the_share_defaults_to_half_and_is_validated(server, admin, restore_share):
    assert admin.settings()["pending_client_source_share_percent"] == 50
    for good in (1, 100, 75):
        doc = assert_json(admin.patch_settings({"pending_client_source_share_percent": good}))
        assert doc["pending_client_source_share_percent"] == good, doc
        assert admin.settings()["pending_client_source_share_percent"] == good
    for bad in BAD_SHARES:
        before = admin.settings()
        resp = admin.patch_settings({"pending_client_source_share_percent": bad})
        assert_api_error(resp, 400, "invalid_request", "pending_client_source_share_percent")
        assert admin.settings() == before, bad
