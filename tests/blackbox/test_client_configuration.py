"""RFC 7592 Dynamic Client Registration Management, black box:
`GET|PUT|DELETE {issuer}/oauth/register/{client_id}` with the registration access token
(docs/admin-api.md "RFC 7592").

- §3 / RFC 7591 §3.2.1: every registration answer carries `registration_access_token` and
  `registration_client_uri`.
- §2.1 read, §2.2 update (full replacement, `client_id` must match, `client_secret` must be the
  current one, re-validated like a registration), §2.3 delete.
- §2 / RFC 6750: a missing or wrong token, another client's token, an unknown or expired client
  are all `401 invalid_token` with a Bearer challenge (never revealing whether the client exists).
- The admin API shows what an update did: a pending client stays pending (a new configuration
  version when something changed); an approved client's changes wait in `pending_changes` until an
  administrator approves them, which moves its `config_version`.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    REDIRECT_URI,
    REFRESHING,
    Admin,
    approve_as_admin,
    assert_api_error,
    assert_consent_page,
    assert_json,
    assert_no_content,
    authorize,
    unique,
)
from conftest import MODES, json_body, request, request_without_content_type  # noqa: E402
from test_tokens import basic  # noqa: E402

# RFC 7592 §2.2: never sent in an update.
READ_ONLY = {"registration_access_token", "registration_client_uri", "client_secret_expires_at",
             "client_id_issued_at"}
# RFC 7591 §2 metadata this server stores.
METADATA = ("client_name", "redirect_uris", "grant_types", "response_types",
            "token_endpoint_auth_method", "scope", "application_type")
SEED = {
    "client_name": "Configurable agent",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": REFRESHING,
    "client_uri": "https://agent.example.com",
    "logo_uri": "https://agent.example.com/logo.png",
    "tos_uri": "https://agent.example.com/tos",
}


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    return Admin(server)


def register(server, **fields) -> dict:
    doc = dict(SEED, client_name=unique("configurable"))
    doc.update(fields)
    resp = request("POST", server.register_url, doc)
    assert resp[0] == 201, f"registration failed: {resp[0]} {resp[2][:800]!r}"
    return json_body(resp)


def config_url(server, client_id: str) -> str:
    return f"{server.issuer}/oauth/register/{client_id}"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def read(server, client: dict, token: str | None = None):
    return request("GET", client["registration_client_uri"], None,
                   bearer(token or client["registration_access_token"]))


def current(server, client: dict) -> dict:
    resp = read(server, client)
    doc = assert_json(resp)
    assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
    return doc


def update_body(doc: dict, **changes) -> dict:
    """RFC 7592 §2.2: everything last returned, minus the read-only fields, plus `changes`
    (None drops a field)."""
    body = {k: v for k, v in doc.items() if k not in READ_ONLY and k != "client_secret"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def put(server, client: dict, body, token: str | None = None, headers: dict | None = None):
    h = bearer(token or client["registration_access_token"])
    h.update(headers or {})
    return request("PUT", client["registration_client_uri"], body, h)


def assert_invalid_token(resp) -> None:
    """RFC 7592 §2 / RFC 6750 §3: 401 with a Bearer challenge."""
    code, headers, raw = resp
    assert code == 401, f"expected 401 invalid_token, got {code}: {raw[:800]!r}"
    assert headers.get("www-authenticate", "").startswith("Bearer"), headers
    body = json_body(resp)
    assert body.get("error") == "invalid_token", body
    assert "client_name" not in body and "redirect_uris" not in body, body


def assert_error(resp, status: int, *errors: str) -> dict:
    code, headers, raw = resp
    assert code == status, f"expected {status} {errors}, got {code}: {raw[:800]!r}"
    body = json_body(resp)
    assert body.get("error") in errors, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    return body


# --------------------------------------------------------------------------------------------
# The registration answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "none"])
def test_registration_answer_carries_the_configuration_credentials(server, method):
    first = register(server, token_endpoint_auth_method=method)
    second = register(server, token_endpoint_auth_method=method)
    for client in (first, second):
        token = client.get("registration_access_token")
        assert isinstance(token, str) and len(token) >= 43, client  # 256 bits
        assert token != client.get("client_secret")
        assert client.get("registration_client_uri") == config_url(server, client["client_id"]), client
    assert first["registration_access_token"] != second["registration_access_token"]


def test_read_returns_the_registration_without_the_secret(server):
    client = register(server)
    doc = current(server, client)
    assert doc["client_id"] == client["client_id"]
    assert doc.get("client_id_issued_at") == client["client_id_issued_at"], doc
    assert doc.get("registration_client_uri") == client["registration_client_uri"], doc
    for field in (*METADATA, "client_uri", "logo_uri", "tos_uri"):
        assert doc.get(field) == client[field], f"{field}: {doc.get(field)!r} != {client[field]!r}"
    assert "client_secret" not in doc, "the secret is stored hashed and cannot be read back"
    assert not [k for k in doc if "hash" in k.lower()], doc
    assert client["client_secret"].encode() not in read(server, client)[2]
    # Reading twice changes nothing (the token is not single use).
    assert current(server, client)["client_id"] == client["client_id"]


# --------------------------------------------------------------------------------------------
# Authentication of the configuration endpoint
# --------------------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401_invalid_token(server):
    client = register(server)
    other = register(server)
    before = current(server, client)
    url = client["registration_client_uri"]
    wrong = [
        {},
        {"Authorization": "Bearer " + secrets.token_urlsafe(32)},
        {"Authorization": "Bearer "},
        bearer(other["registration_access_token"]),  # another client's token
        bearer(client["client_secret"]),  # the client secret is not the registration token
        {"Authorization": basic(client["client_id"], client["client_secret"])},
        {"Authorization": client["registration_access_token"]},  # no scheme
        {"Authorization": "Bearer " + client["registration_access_token"][:-2]},
    ]
    for headers in wrong:
        assert_invalid_token(request("GET", url, None, headers))
        assert_invalid_token(request("PUT", url, update_body(before, client_name="hijacked"),
                                     headers))
        assert_invalid_token(request("DELETE", url, None, headers))
    assert current(server, client) == before, "a refused request changed the client"
    assert current(server, other)["client_id"] == other["client_id"]


def test_unknown_client_is_401_like_a_wrong_token(server):
    client = register(server)
    for client_id in ("0123456789abcdef0123456789abcdef", "nope"):
        url = config_url(server, client_id)
        for method in ("GET", "DELETE"):
            assert_invalid_token(request(method, url, None, bearer(client["registration_access_token"])))
        assert_invalid_token(request(
            "PUT", url, dict(update_body(current(server, client)), client_id=client_id),
            bearer(client["registration_access_token"])))


def test_registration_token_and_admin_token_are_not_interchangeable(server, admin):
    client = register(server)
    resp = request("GET", f"{server.issuer}/api/v1/oauth-clients/{client['client_id']}", None,
                   bearer(client["registration_access_token"]))
    assert_api_error(resp, 401, "invalid_token")
    assert_invalid_token(request("GET", client["registration_client_uri"], None, bearer(admin.token)))


# --------------------------------------------------------------------------------------------
# §2.2 update
# --------------------------------------------------------------------------------------------


def test_update_replaces_the_metadata(server, admin):
    client = register(server)
    before = current(server, client)
    new_uris = ["https://agent.example.com/new-cb", "http://127.0.0.1:8976/cb"]
    body = update_body(before, client_name="Renamed agent", redirect_uris=new_uris,
                       logo_uri=None, tos_uri=None)
    resp = put(server, client, body)
    doc = assert_json(resp)
    assert "no-store" in resp[1].get("cache-control", "").lower(), resp[1]
    assert doc["client_id"] == client["client_id"]
    assert doc["redirect_uris"] == new_uris and doc["client_name"] == "Renamed agent", doc
    assert "client_secret" not in doc, doc
    after = current(server, client)
    assert after["redirect_uris"] == new_uris and after["client_name"] == "Renamed agent", after
    # Omitted optional fields are removed.
    assert "logo_uri" not in after and "tos_uri" not in after, after
    assert after["client_uri"] == SEED["client_uri"], after
    for field in ("grant_types", "response_types", "token_endpoint_auth_method", "scope",
                  "application_type"):
        assert after[field] == before[field], field
    # The admin API sees the same client.
    stored = admin.client(client["client_id"])
    assert stored["redirect_uris"] == new_uris and stored["client_name"] == "Renamed agent", stored
    assert "logo_uri" not in stored, stored


def test_update_with_the_current_client_secret_is_accepted(server):
    client = register(server)
    body = update_body(current(server, client), client_name="With secret",
                       client_secret=client["client_secret"])
    assert assert_json(put(server, client, body))["client_name"] == "With secret"
    assert current(server, client)["client_name"] == "With secret"


def test_update_with_a_wrong_client_secret_is_refused(server):
    client = register(server)
    before = current(server, client)
    body = update_body(before, client_name="Wrong secret", client_secret="not-" + secrets.token_urlsafe(32))
    resp = put(server, client, body)
    # spec: the secret "must be the client's current one" without a status; RFC 7592 §2.2
    # leaves it open too: 400 invalid_client_metadata or 401 (as for a bad credential).
    assert resp[0] in (400, 401), resp
    assert json_body(resp).get("error") in ("invalid_client_metadata", "invalid_request",
                                            "invalid_client", "invalid_token"), resp
    assert current(server, client) == before


@pytest.mark.parametrize("client_id", ["0123456789abcdef0123456789abcdef", None, "", 5],
                         ids=["other", "missing", "empty", "number"])
def test_update_must_carry_the_matching_client_id(server, client_id):
    client = register(server)
    before = current(server, client)
    body = update_body(before, client_name="Mismatch")
    if client_id is None:
        body.pop("client_id")
    else:
        body["client_id"] = client_id
    # spec: the error code for a missing/mismatched client_id is not stated.
    assert_error(put(server, client, body), 400, "invalid_request", "invalid_client_metadata")
    assert current(server, client) == before


@pytest.mark.parametrize("registered, new", [
    ("client_secret_basic", "client_secret_post"),
    ("client_secret_basic", "none"),
    ("none", "client_secret_basic"),
])
def test_update_cannot_change_the_auth_method(server, registered, new):
    client = register(server, token_endpoint_auth_method=registered)
    before = current(server, client)
    resp = put(server, client, update_body(before, token_endpoint_auth_method=new))
    assert_error(resp, 400, "invalid_client_metadata")
    assert b"client_secret\"" not in resp[2]
    assert current(server, client) == before


def test_update_omitting_the_auth_method_never_turns_a_public_client_confidential(server):
    """Omitting `token_endpoint_auth_method` means the RFC 7591 default (`client_secret_basic`),
    which for a public client is a change of method: refused. Keeping `none` is tolerated
    (spec: not stated); what must not happen is a secretless confidential client."""
    client = register(server, token_endpoint_auth_method="none")
    before = current(server, client)
    resp = put(server, client, update_body(before, token_endpoint_auth_method=None))
    if resp[0] == 200:
        assert current(server, client)["token_endpoint_auth_method"] == "none"
    else:
        assert_error(resp, 400, "invalid_client_metadata")
        assert current(server, client) == before


@pytest.mark.parametrize("uris", [
    ["javascript:alert(1)"],
    ["https://agent.example.com/cb", "data:text/html,x"],
    ["http://example.com/cb"],
    ["https://a.example/cb#frag"],
    [],
], ids=["javascript", "data-among-good", "plain-http", "fragment", "empty"])
def test_update_with_a_bad_redirect_uri_is_refused(server, uris):
    client = register(server)
    before = current(server, client)
    assert_error(put(server, client, update_body(before, redirect_uris=uris)), 400,
                 "invalid_redirect_uri")
    assert current(server, client) == before


@pytest.mark.parametrize("changes", [
    {"scope": "admin"},
    {"scope": "mcp:execute admin"},
    {"client_name": None},
    {"client_name": "x" * 201},
    {"grant_types": ["client_credentials"]},
    {"response_types": ["token"]},
    {"logo_uri": "javascript:alert(1)"},
    {"application_type": "desktop"},
], ids=["unknown-scope", "unknown-scope-among-known", "no-name", "long-name",
        "client-credentials", "response-token", "javascript-logo", "desktop"])
def test_update_is_validated_like_a_registration(server, changes):
    client = register(server)
    before = current(server, client)
    assert_error(put(server, client, update_body(before, **changes)), 400, "invalid_client_metadata")
    assert current(server, client) == before


def test_update_must_be_json(server):
    client = register(server)
    before = current(server, client)
    body = json.dumps(update_body(before, client_name="Not JSON"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        assert_error(put(server, client, body, headers={"Content-Type": content_type}), 415,
                     "invalid_request")
    resp = request_without_content_type("PUT", client["registration_client_uri"], body.encode(),
                                        bearer(client["registration_access_token"]))
    assert_error(resp, 415, "invalid_request")
    for raw in (b"{", b"[]", b"null"):
        resp = put(server, client, raw, headers={"Content-Type": "application/json"})
        # As for registration: malformed or non-object JSON is invalid_client_metadata.
        assert_error(resp, 400, "invalid_client_metadata")
    assert current(server, client) == before


def test_pending_client_stays_pending_after_an_update(server, admin):
    client = register(server)
    before = admin.client(client["client_id"])
    assert before["status"] == "pending", before
    body = update_body(current(server, client), redirect_uris=["https://agent.example.com/other"])
    assert_json(put(server, client, body))
    after = admin.client(client["client_id"])
    assert after["status"] == "pending", after
    assert after["expires_at"] == before["expires_at"], "same expiry"
    assert after["redirect_uris"] == ["https://agent.example.com/other"], after
    # A new configuration: an approval page showing the old one no longer approves.
    assert after["config_version"] == before["config_version"] + 1, after
    assert "pending_changes" not in after, after
    # Still awaiting approval: the administrator sees the approval page for it.
    attempt = authorize(server, admin.browser, dict(client, redirect_uris=after["redirect_uris"]))
    assert attempt.resp.status == 200 and "new, unverified application" in attempt.resp.text.lower(), (
        attempt.resp)


def test_update_of_an_approved_client_bumps_config_version_on_a_redirect_uri_change(server, admin):
    """An approved client's new redirect URIs (or scope) wait for an administrator; approving
    them bumps `config_version`, so every user consents again."""
    client = register(server)
    approve_as_admin(server, admin.browser, client)
    # The administrator's consent is recorded with the approval: no page now.
    remembered = authorize(server, admin.browser, client)
    assert remembered.resp.status in (302, 303), remembered.resp
    version = admin.client(client["client_id"])["config_version"]
    doc = current(server, client)
    approve_changes = f"/oauth-clients/{client['client_id']}/approve"

    # An identical update is no change: nothing to approve.
    assert_json(put(server, client, update_body(doc)))
    unchanged = admin.client(client["client_id"])
    assert unchanged["config_version"] == version, unchanged
    assert unchanged["status"] == "approved", unchanged
    assert "pending_changes" not in unchanged, unchanged
    assert_api_error(admin.api("POST", approve_changes), 409, "invalid_request")

    new_uris = [REDIRECT_URI, "https://agent.example.com/second-cb"]
    answer = assert_json(put(server, client, update_body(doc, redirect_uris=new_uris)))
    assert answer["redirect_uris"] == [REDIRECT_URI], "the answer shows the values in force"
    waiting = admin.client(client["client_id"])
    assert waiting["status"] == "approved", "an update does not undo the approval"
    assert waiting["config_version"] == version, waiting
    assert waiting["redirect_uris"] == [REDIRECT_URI], waiting
    assert waiting["pending_changes"]["redirect_uris"] == new_uris, waiting
    # Nothing changed for users yet: the consent recorded still holds.
    assert authorize(server, admin.browser, client).resp.status in (302, 303)

    after = assert_json(admin.api("POST", approve_changes))
    assert after["config_version"] == version + 1, after
    assert after["status"] == "approved", after
    assert after["redirect_uris"] == new_uris, after
    assert "pending_changes" not in after, after
    # Every user sees the consent page again (the consent page, not the approval page).
    assert_consent_page(authorize(server, admin.browser, client).resp)

    # A scope change waits, then bumps it as well.
    assert_json(put(server, client, update_body(current(server, client), scope="mcp:execute")))
    assert admin.client(client["client_id"])["config_version"] == version + 1
    assert assert_json(admin.api("POST", approve_changes))["config_version"] == version + 2


# --------------------------------------------------------------------------------------------
# §2.3 delete
# --------------------------------------------------------------------------------------------


def test_delete_removes_the_client(server, admin):
    client = register(server)
    other = register(server)
    assert_no_content(request("DELETE", client["registration_client_uri"], None,
                              bearer(client["registration_access_token"])))
    assert_invalid_token(read(server, client))
    assert_invalid_token(put(server, client, {"client_id": client["client_id"],
                                              "client_name": "back", "redirect_uris": [REDIRECT_URI]}))
    assert_invalid_token(request("DELETE", client["registration_client_uri"], None,
                                 bearer(client["registration_access_token"])))
    assert_api_error(admin.api("GET", f"/oauth-clients/{client['client_id']}"), 404, "not_found")
    # Its credentials are gone everywhere: the token endpoint no longer knows it.
    resp = request("POST", f"{server.issuer}/oauth/introspect", "token=x",
                   {"Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": basic(client["client_id"], client["client_secret"])})
    assert resp[0] == 401, resp
    # Another client is untouched.
    assert current(server, other)["client_id"] == other["client_id"]


def test_admin_deletion_ends_the_registration_token(server, admin):
    client = register(server)
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{client['client_id']}"))
    assert_invalid_token(read(server, client))
    assert_invalid_token(request("DELETE", client["registration_client_uri"], None,
                                 bearer(client["registration_access_token"])))


def test_deleting_an_approved_client_with_its_token(server, admin):
    client = register(server)
    approve_as_admin(server, admin.browser, client)
    assert_no_content(request("DELETE", client["registration_client_uri"], None,
                              bearer(client["registration_access_token"])))
    assert_api_error(admin.api("GET", f"/oauth-clients/{client['client_id']}"), 404, "not_found")
    page = authorize(server, admin.browser, client).resp
    assert page.status == 400 and "unknown application" in page.text.lower(), page


# --------------------------------------------------------------------------------------------
# An expired pending client (a server of its own)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_expired_pending_client_is_401(start_server, mode):
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_TTL": "2",
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    client = register(srv)
    assert current(srv, client)["client_id"] == client["client_id"]
    body = update_body(current(srv, client), client_name="Too late")
    time.sleep(3.2)
    assert_invalid_token(read(srv, client))
    assert_invalid_token(put(srv, client, body))
    assert_invalid_token(request("DELETE", client["registration_client_uri"], None,
                                 bearer(client["registration_access_token"])))
