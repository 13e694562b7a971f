"""RFC 7591 Dynamic Client Registration, black box: `POST {issuer}/oauth/register`.

Sections follow the RFC: §2 client metadata (defaults, unknown fields), §3.1 the request,
§3.2.1 the response, §3.2.2 errors; then CORS for browser-based clients, and the tenant's
anonymous-registration limits (pending-client cap, per-IP rate limit).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import find_nulls, json_body, request, request_without_content_type

CLIENT_ID = re.compile(r"[0-9a-f]{32}")
CLIENT_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # 256 bits, base64url without padding
ALL_SCOPES = "user_default mcp:execute offline_access"
PUBLIC_DEFAULT_SCOPES = "user_default mcp:execute"

# What an MCP client such as Claude sends: every optional field a real client fills.
CLAUDE_REGISTRATION = {
    "client_name": "Claude",
    "redirect_uris": ["https://claude.example.com/api/mcp/auth_callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "software_id": "com.example.claude",
    "software_version": "1.0.0",
    "logo_uri": "https://claude.example.com/images/logo.png",
    "tos_uri": "https://www.example.com/legal/terms",
    "policy_uri": "https://www.example.com/legal/privacy",
    "client_uri": "https://claude.example.com",
}

SERVER_ISSUED = {
    "client_id",
    "client_id_issued_at",
    "client_secret",
    "client_secret_expires_at",
    # RFC 7592 §3: the client configuration endpoint and its credential.
    "registration_access_token",
    "registration_client_uri",
}
SERVER_DEFAULTED = {"token_endpoint_auth_method", "scope", "application_type"}


def minimal(**fields) -> dict:
    doc = {"client_name": "Black-box agent", "redirect_uris": ["https://agent.example.com/cb"]}
    doc.update(fields)
    return doc


def register(server, doc, headers=None, tenant="demo"):
    return request("POST", f"{server.base}/t/{tenant}/oauth/register", doc, headers)


def assert_no_store(headers):
    assert "no-store" in headers.get("cache-control", "").lower(), headers


def assert_json_content_type(headers):
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    assert media == "application/json", headers


def assert_created(resp) -> dict:
    status, headers, raw = resp
    assert status == 201, f"expected 201, got {status}: {raw[:1000]!r}"
    assert_json_content_type(headers)
    assert_no_store(headers)
    assert headers.get("access-control-allow-origin") == "*", headers
    body = json_body(resp)
    assert isinstance(body, dict), body
    assert find_nulls(body) == [], f"null values in registration response: {body}"
    assert CLIENT_ID.fullmatch(body.get("client_id", "")), body
    issued = body.get("client_id_issued_at")
    assert isinstance(issued, int) and not isinstance(issued, bool), body
    assert abs(issued - time.time()) <= 30, f"client_id_issued_at {issued} is not about now"
    return body


def assert_error(resp, status: int, error: str) -> dict:
    """RFC 7591 §3.2.2 (and the server's own transport errors): a JSON error body, not cached,
    readable by browser clients, and no client issued."""
    code, headers, raw = resp
    assert code == status, f"expected {status} {error}, got {code}: {raw[:1000]!r}"
    assert_json_content_type(headers)
    assert_no_store(headers)
    assert headers.get("access-control-allow-origin") == "*", (
        f"{status} response lacks Access-Control-Allow-Origin: *; headers {headers}"
    )
    body = json_body(resp)
    assert isinstance(body, dict), body
    assert body.get("error") == error, body
    description = body.get("error_description")
    assert isinstance(description, str) and description.strip(), body
    assert "client_id" not in body and "client_secret" not in body, body
    assert find_nulls(body) == [], body
    return body


# --------------------------------------------------------------------------------------------
# §3.1 / §3.2.1: a successful registration
# --------------------------------------------------------------------------------------------


def test_a_full_registration_returns_201_with_the_full_client_information(server):
    body = assert_created(register(server, CLAUDE_REGISTRATION))

    # §3.2.1: client_secret for a confidential client, and when it expires (0 = never).
    assert CLIENT_SECRET.fullmatch(body.get("client_secret", "")), body
    assert body.get("client_secret_expires_at") == 0, body
    assert not isinstance(body["client_secret_expires_at"], bool)

    # §3.2.1: "all registered metadata about the client", exactly as sent.
    for name, sent in CLAUDE_REGISTRATION.items():
        assert body.get(name) == sent, f"{name}: sent {sent!r}, got {body.get(name)!r}"
    assert body["redirect_uris"] == CLAUDE_REGISTRATION["redirect_uris"]

    # §2 defaults and the tenant's defaults.
    assert body.get("token_endpoint_auth_method") == "client_secret_basic", body
    assert body.get("scope") == ALL_SCOPES, body
    assert body.get("application_type") == "web", body


def test_response_has_only_registered_metadata_and_issued_credentials(server):
    body = assert_created(register(server, CLAUDE_REGISTRATION))
    unexpected = set(body) - set(CLAUDE_REGISTRATION) - SERVER_ISSUED - SERVER_DEFAULTED
    assert unexpected == set(), f"unexpected fields in response: {unexpected}"


def test_rfc7591_defaults_apply_to_a_minimal_request(server):
    body = assert_created(register(server, minimal()))
    assert body["grant_types"] == ["authorization_code"], body
    assert body["response_types"] == ["code"], body
    assert body["token_endpoint_auth_method"] == "client_secret_basic", body
    assert body["application_type"] == "web", body
    assert body["scope"] == ALL_SCOPES, body
    assert CLIENT_SECRET.fullmatch(body.get("client_secret", "")), body
    assert body.get("client_secret_expires_at") == 0, body
    for optional in ("logo_uri", "tos_uri", "policy_uri", "client_uri", "software_id",
                     "software_version", "contacts"):
        assert optional not in body, f"{optional} echoed although not sent: {body}"


def test_unknown_fields_are_ignored_and_credentials_are_server_issued(server):
    # §2: "The authorization server MUST ignore any client metadata sent by the client that it
    # does not understand"; §3.2.1: the server issues client_id (and client_secret).
    doc = minimal(
        foo=1,
        client_id="mine",
        client_secret="my-own-secret-of-my-choosing",
        client_id_issued_at=1,
        client_secret_expires_at=99,
        registration_access_token="mine-too",
    )
    body = assert_created(register(server, doc))
    assert "foo" not in body, body
    # RFC 7592: the registration access token is issued by the server, never taken from the
    # request.
    assert body["registration_access_token"] != "mine-too", body
    assert CLIENT_SECRET.fullmatch(body["registration_access_token"]), body
    assert body["client_id"] != "mine"
    assert CLIENT_ID.fullmatch(body["client_id"]), body
    assert body["client_secret"] != "my-own-secret-of-my-choosing"
    assert CLIENT_SECRET.fullmatch(body["client_secret"]), body
    assert body["client_secret_expires_at"] == 0, body
    assert body["client_id_issued_at"] != 1, body


def test_two_registrations_get_different_credentials(server):
    first = assert_created(register(server, minimal()))
    second = assert_created(register(server, minimal()))
    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


def test_redirect_uris_are_echoed_exactly_as_sent_not_normalised(server):
    uris = [
        "https://Agent.Example.com:443/Callback",
        "https://agent.example.com/cb?tenant=a&x=1",
        "http://localhost:1234/cb",
        "com.example.agent:/oauth2redirect",
    ]
    body = assert_created(register(server, minimal(redirect_uris=uris)))
    assert body["redirect_uris"] == uris, body


# --------------------------------------------------------------------------------------------
# §2: token_endpoint_auth_method, application_type, scope
# --------------------------------------------------------------------------------------------


def test_public_client_gets_no_secret_and_no_offline_access(server):
    body = assert_created(
        register(server, minimal(token_endpoint_auth_method="none", scope="offline_access mcp:execute"))
    )
    assert body["token_endpoint_auth_method"] == "none", body
    assert "client_secret" not in body, body
    assert "client_secret_expires_at" not in body, body
    assert body["scope"] == "mcp:execute", body


def test_public_client_without_scope_gets_the_default_scopes_minus_offline_access(server):
    body = assert_created(register(server, minimal(token_endpoint_auth_method="none")))
    assert "client_secret" not in body, body
    assert "client_secret_expires_at" not in body, body
    assert body["scope"] == PUBLIC_DEFAULT_SCOPES, body


def test_client_secret_post_is_accepted(server):
    body = assert_created(register(server, minimal(token_endpoint_auth_method="client_secret_post")))
    assert body["token_endpoint_auth_method"] == "client_secret_post", body
    assert CLIENT_SECRET.fullmatch(body.get("client_secret", "")), body
    assert body.get("client_secret_expires_at") == 0, body


def test_native_application_type_is_accepted_and_echoed(server):
    body = assert_created(
        register(server, minimal(application_type="native", redirect_uris=["http://127.0.0.1:8976/cb"]))
    )
    assert body["application_type"] == "native", body


def test_explicit_scope_subset_is_echoed_in_canonical_order(server):
    body = assert_created(register(server, minimal(scope="offline_access user_default")))
    assert body["scope"] == "user_default offline_access", body


# --------------------------------------------------------------------------------------------
# §2 redirect_uris: RFC 8252 native-app shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost/callback",
        "http://localhost:33418/cb",
        "http://127.0.0.1:8976/cb",
        "http://[::1]:9000/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_loopback_and_private_use_redirect_uris_are_accepted(server, uri):
    body = assert_created(register(server, minimal(redirect_uris=[uri])))
    assert body["redirect_uris"] == [uri], body


# --------------------------------------------------------------------------------------------
# CORS: browser-based MCP clients call the endpoint directly
# --------------------------------------------------------------------------------------------


def test_cors_preflight_allows_post_with_mcp_protocol_version(server):
    status, headers, _ = request(
        "OPTIONS",
        server.register_url,
        headers={
            "Origin": "https://inspector.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, mcp-protocol-version",
        },
    )
    assert status == 204, headers
    assert headers.get("access-control-allow-origin") == "*", headers
    methods = [m.strip().upper() for m in headers.get("access-control-allow-methods", "").split(",")]
    assert "POST" in methods, headers
    allowed = [h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")]
    assert "mcp-protocol-version" in allowed, headers
    assert "content-type" in allowed, headers


def test_cors_headers_on_success_and_error_responses(server):
    origin = {"Origin": "https://inspector.example.com"}
    created = register(server, minimal(), headers={"Content-Type": "application/json", **origin})
    assert_created(created)
    refused = register(server, minimal(redirect_uris=["javascript:alert(1)"]),
                       headers={"Content-Type": "application/json", **origin})
    assert_error(refused, 400, "invalid_redirect_uri")


# --------------------------------------------------------------------------------------------
# §3.2.2: the request body itself is wrong
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b'{"client_name": "x",', b"not json"], ids=["open-brace", "truncated", "text"])
def test_malformed_json_is_invalid_client_metadata(server, raw):
    assert_error(register(server, raw, {"Content-Type": "application/json"}), 400, "invalid_client_metadata")


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"1", b"null"], ids=["array", "string", "number", "null"])
def test_json_that_is_not_an_object_is_invalid_client_metadata(server, raw):
    assert_error(register(server, raw, {"Content-Type": "application/json"}), 400, "invalid_client_metadata")


@pytest.mark.parametrize(
    "content_type, raw",
    [
        ("text/plain", json.dumps(minimal()).encode()),
        ("application/x-www-form-urlencoded",
         b"client_name=Agent&redirect_uris=https%3A%2F%2Fagent.example.com%2Fcb"),
    ],
    ids=["text-plain", "form-urlencoded"],
)
def test_wrong_content_type_is_415(server, content_type, raw):
    assert_error(register(server, raw, {"Content-Type": content_type}), 415, "invalid_request")


def test_missing_content_type_is_415(server):
    resp = request_without_content_type("POST", server.register_url, json.dumps(minimal()).encode())
    assert_error(resp, 415, "invalid_request")


def test_json_content_type_with_charset_parameter_is_accepted(server):
    assert_created(register(server, minimal(), {"Content-Type": "application/json; charset=utf-8"}))


def test_body_over_64_kib_is_413(server):
    doc = minimal(client_name="x" * 70000)
    assert_error(register(server, doc), 413, "invalid_request")


# --------------------------------------------------------------------------------------------
# §3.2.2 invalid_redirect_uri
# --------------------------------------------------------------------------------------------

_MISSING = object()


@pytest.mark.parametrize(
    "value",
    [_MISSING, [], None, "https://agent.example.com/cb", [1], ["https://agent.example.com/cb", 1]],
    ids=["missing", "empty-array", "null", "string-not-array", "number", "mixed"],
)
def test_redirect_uris_must_be_a_non_empty_array_of_strings(server, value):
    doc = minimal()
    if value is _MISSING:
        del doc["redirect_uris"]
    else:
        doc["redirect_uris"] = value
    assert_error(register(server, doc), 400, "invalid_redirect_uri")


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,x",
        "/relative",
        "https://a.example/cb#frag",
        "http://example.com/cb",
        "https://user:pw@a.example/cb",
    ],
)
def test_unsafe_redirect_uris_are_refused(server, uri):
    assert_error(register(server, minimal(redirect_uris=[uri])), 400, "invalid_redirect_uri")


def test_one_bad_redirect_uri_among_good_ones_refuses_the_registration(server):
    doc = minimal(redirect_uris=["https://agent.example.com/cb", "javascript:alert(1)"])
    assert_error(register(server, doc), 400, "invalid_redirect_uri")


# --------------------------------------------------------------------------------------------
# §3.2.2 invalid_client_metadata
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [_MISSING, 5, "x" * 201, "   "],
    ids=["missing", "number", "201-chars", "blank"],
)
def test_client_name_is_required_string_of_at_most_200_chars(server, value):
    doc = minimal()
    if value is _MISSING:
        del doc["client_name"]
    else:
        doc["client_name"] = value
    assert_error(register(server, doc), 400, "invalid_client_metadata")


def test_client_name_of_exactly_200_chars_is_accepted(server):
    body = assert_created(register(server, minimal(client_name="n" * 200)))
    assert body["client_name"] == "n" * 200


@pytest.mark.parametrize(
    "field, value",
    [
        ("grant_types", ["client_credentials"]),
        ("grant_types", ["implicit"]),
        ("grant_types", ["authorization_code", "password"]),
        ("response_types", ["token"]),
        ("token_endpoint_auth_method", "private_key_jwt"),
        ("application_type", "desktop"),
    ],
    ids=["client_credentials", "implicit", "password", "response-token", "private_key_jwt",
         "application-desktop"],
)
def test_unsupported_grant_response_and_auth_choices_are_refused(server, field, value):
    assert_error(register(server, minimal(**{field: value})), 400, "invalid_client_metadata")


def test_unknown_scope_is_refused_and_named(server):
    body = assert_error(register(server, minimal(scope="admin")), 400, "invalid_client_metadata")
    assert "admin" in body["error_description"], body


def test_unknown_scope_among_known_ones_is_refused(server):
    body = assert_error(register(server, minimal(scope="mcp:execute admin")), 400, "invalid_client_metadata")
    assert "admin" in body["error_description"], body


@pytest.mark.parametrize(
    "field, value",
    [
        ("logo_uri", "javascript:alert(1)"),
        ("client_uri", "data:text/html,x"),
        ("tos_uri", "http://example.com/tos"),
        ("policy_uri", "/privacy"),
    ],
)
def test_informational_uris_must_be_safe_web_urls(server, field, value):
    assert_error(register(server, minimal(**{field: value})), 400, "invalid_client_metadata")


# --------------------------------------------------------------------------------------------
# Routing: unknown tenants, wrong methods
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["nope", "NOPE!"], ids=["unknown", "malformed"])
def test_unknown_or_malformed_tenant_is_404(server, tenant):
    assert_error(register(server, minimal(), tenant=tenant), 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_with_allow(server, method):
    body = minimal() if method == "PUT" else None
    resp = request(method, server.register_url, body)
    assert_error(resp, 405, "method_not_allowed")
    allow = [m.strip().upper() for m in resp[1].get("allow", "").split(",")]
    assert "POST" in allow, resp[1]


# --------------------------------------------------------------------------------------------
# Tenant limits on anonymous registration (per-tenant settings through the environment)
# --------------------------------------------------------------------------------------------


def assert_too_many(resp) -> int:
    assert_error(resp, 429, "too_many_requests")
    retry_after = resp[1].get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) > 0, resp[1]
    return int(retry_after)


@pytest.mark.parametrize("mode", ["embedded", "dynamodb"])
def test_pending_client_cap_refuses_the_registration_past_the_cap(start_server, mode):
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "3", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    for i in range(3):
        assert_created(register(srv, minimal(client_name=f"agent {i}")))
    assert_too_many(register(srv, minimal(client_name="agent 3")))


@pytest.mark.parametrize("mode", ["embedded", "dynamodb"])
def test_refused_registrations_store_nothing_and_use_no_quota(start_server, mode):
    # A cap of 2 leaves room for exactly two clients: if any refused request below had stored
    # a client (and so counted against the cap), the second good registration would be 429.
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "2", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    json_ct = {"Content-Type": "application/json"}
    refused = [
        (register(srv, b"{", json_ct), 400),
        (register(srv, b"[]", json_ct), 400),
        (register(srv, json.dumps(minimal()).encode(), {"Content-Type": "text/plain"}), 415),
        (register(srv, minimal(client_name="x" * 70000)), 413),
        (register(srv, minimal(redirect_uris=["javascript:alert(1)"])), 400),
        (register(srv, minimal(redirect_uris=[])), 400),
        (register(srv, {"redirect_uris": ["https://agent.example.com/cb"]}), 400),
        (register(srv, minimal(grant_types=["client_credentials"])), 400),
        (register(srv, minimal(scope="admin")), 400),
        (register(srv, minimal(logo_uri="javascript:alert(1)")), 400),
    ]
    for resp, status in refused:
        assert resp[0] == status, resp
        assert b"client_id" not in resp[2], resp
    assert_created(register(srv, minimal(client_name="first")))
    assert_created(register(srv, minimal(client_name="second")))
    assert_too_many(register(srv, minimal(client_name="third")))


def test_pending_cap_frees_up_after_the_pending_lifetime(start_server):
    srv = start_server({
        "GATEHOUSE_PENDING_CLIENT_TTL": "2",
        "GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "3",
        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
    })
    for i in range(3):
        assert_created(register(srv, minimal(client_name=f"agent {i}")))
    first_refusal = register(srv, minimal())
    # Retry-After promises room: registrations stop counting within two lifetimes (4 s).
    assert 1 <= assert_too_many(first_refusal) <= 4, first_refusal[1]
    # The quota counts the current and the previous lifetime window, so room comes back within
    # two lifetimes (4 s); allow generous slack on a loaded machine.
    deadline = time.monotonic() + 10
    while True:
        resp = register(srv, minimal())
        if resp[0] == 201 or time.monotonic() > deadline:
            break
        assert_too_many(resp)
        time.sleep(0.5)
    assert_created(resp)


def test_pending_cap_zero_turns_off_the_cap_and_the_rate_limit(start_server):
    # No GATEHOUSE_REGISTRATION_RATE_LIMIT: the default (30 per minute per IP) would stop this
    # loop, but a cap of 0 turns both limits off.
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "0"})
    statuses = [register(srv, minimal(client_name=f"agent {i}"))[0] for i in range(40)]
    assert statuses == [201] * 40, statuses


def test_per_ip_rate_limit_refuses_the_sixth_registration_in_a_minute(start_server):
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "5", "GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "1000"})
    for i in range(5):
        assert_created(register(srv, minimal(client_name=f"agent {i}")))
    retry_after = assert_too_many(register(srv, minimal(client_name="agent 5")))
    assert retry_after <= 60, retry_after
