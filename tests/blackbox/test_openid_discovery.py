"""OpenID Connect Discovery 1.0, black box: the OpenID Provider configuration document of a tenant.

The demo tenant's issuer is `{base}/t/demo`. Discovery §4 puts its configuration at the issuer
plus `/.well-known/openid-configuration` (`{base}/t/demo/.well-known/openid-configuration`);
RFC 8414 §5 also allows the path-insertion form (`{base}/.well-known/openid-configuration/t/demo`),
and both serve the same document.

- §3: every REQUIRED field, the RECOMMENDED ones Gatehouse publishes, each value of the type
  the section gives it, no `null` anywhere; `request_uri_parameter_supported` is said to be
  false (its default is true, and `request_uri` is refused).
- §4.3: `issuer` is byte for byte the issuer the document was looked up for.
- RFC 8414 §3 ("the same metadata as the OpenID configuration"): whatever both documents say,
  they say alike (issuer, endpoints, scopes, authentication methods, PKCE methods).
- The tenant setting `openid_enabled` changes `scopes_supported` in both documents at once; the
  document is published whether it is on or off.
- Caching like the other metadata documents (RFC 9110 §8.8.3, §13.1.2; RFC 9111): a strong
  `ETag`, `Cache-Control: public, max-age=...`, `304` on `If-None-Match`.

Tests that turn `openid_enabled` on turn it off again, whatever happens (`openid_on`): the
`server` fixture is shared by the whole session.
"""

from __future__ import annotations

import contextlib
import sys
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import Admin, assert_json  # noqa: E402
from conftest import find_nulls, json_body, request  # noqa: E402
from test_metadata import assert_json_error, fetch_metadata  # noqa: E402

WELL_KNOWN = "/.well-known/openid-configuration"
OPENID_SCOPES = ("openid", "profile", "email")
ID_TOKEN_ALGS = {"RS256", "ES256"}

# Discovery §3 (and RFC 8414 §2 for the fields both documents define): value types.
URL_FIELDS = {
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
    "registration_endpoint", "service_documentation", "op_policy_uri", "op_tos_uri",
    "revocation_endpoint", "introspection_endpoint", "end_session_endpoint",
    "check_session_iframe",
}
BOOLEAN_FIELDS = {
    "claims_parameter_supported", "request_parameter_supported",
    "request_uri_parameter_supported", "require_request_uri_registration",
    "authorization_response_iss_parameter_supported", "client_id_metadata_document_supported",
    "frontchannel_logout_supported", "frontchannel_logout_session_supported",
    "backchannel_logout_supported", "backchannel_logout_session_supported",
    "require_pushed_authorization_requests", "tls_client_certificate_bound_access_tokens",
}
REQUIRED_FIELDS = {
    "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
    "response_types_supported", "subject_types_supported",
    "id_token_signing_alg_values_supported",
}
# What both documents must carry, and carry alike.
SHARED_FIELDS = {
    "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint",
    "scopes_supported", "response_types_supported", "token_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
}


# --------------------------------------------------------------------------------------------
# Helpers (imported by test_openid_connect.py and test_jwt_authorizer.py)
# --------------------------------------------------------------------------------------------


def appended_url(server, tenant: str = "demo") -> str:
    """Discovery §4.1: the issuer followed by `/.well-known/openid-configuration`."""
    return f"{server.base}/t/{tenant}{WELL_KNOWN}"


def inserted_url(server, tenant: str = "demo") -> str:
    """RFC 8414 §5: the well-known suffix inserted between the host and the issuer's path."""
    return f"{server.base}{WELL_KNOWN}/t/{tenant}"


def openid_configuration(server, tenant: str = "demo") -> dict:
    """Discovery §4.2: `200`, `application/json`, one JSON object."""
    resp = request("GET", appended_url(server, tenant))
    status, headers, raw = resp
    assert status == 200, f"{appended_url(server, tenant)}: {status} {raw[:1000]!r}"
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    assert media == "application/json", headers
    doc = json_body(resp)
    assert isinstance(doc, dict), doc
    return doc


def set_openid(admin: Admin, enabled: bool) -> dict:
    """`PATCH {issuer}/api/v1/settings {"openid_enabled": enabled}`; the settings after it."""
    settings = assert_json(admin.patch_settings({"openid_enabled": enabled}))
    assert settings.get("openid_enabled") is enabled, settings
    return settings


def allowed_scopes(settings: dict) -> set[str]:
    """The administrator's `allowed_scopes` setting (space-separated) as a set."""
    value = settings["allowed_scopes"]
    return set(value.split() if isinstance(value, str) else value)


@contextlib.contextmanager
def openid_on(admin: Admin):
    """OpenID Connect on for the demo tenant for the `with` block, off again afterwards
    whatever happens (the demo tenant starts with it off)."""
    try:
        yield set_openid(admin, True)
    finally:
        set_openid(admin, False)


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    return Admin(server)


# --------------------------------------------------------------------------------------------
# §4: where the document lives
# --------------------------------------------------------------------------------------------


def test_appended_and_path_insertion_forms_serve_the_identical_document(server):
    appended = request("GET", appended_url(server))
    inserted = request("GET", inserted_url(server))
    for (status, headers, raw), url in ((appended, appended_url(server)),
                                        (inserted, inserted_url(server))):
        assert status == 200, f"{url}: {status} {raw[:500]!r}"
        assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    assert appended[2] == inserted[2]


def test_document_is_found_at_the_issuer_plus_the_well_known_suffix(server):
    """§4.1: the configuration of issuer X is at X + `/.well-known/openid-configuration`."""
    doc = openid_configuration(server)
    assert doc["issuer"] + WELL_KNOWN == appended_url(server)


def test_issuer_is_the_tenant_issuer_byte_for_byte(server):
    """§4.3: the `issuer` value must be identical to the issuer the document was fetched for."""
    assert openid_configuration(server)["issuer"] == f"{server.base}/t/demo"
    assert json_body(request("GET", inserted_url(server)))["issuer"] == f"{server.base}/t/demo"


@pytest.mark.parametrize("form", ["appended", "inserted"])
def test_unknown_tenant_is_404_json(server, form):
    url = appended_url(server, "nope") if form == "appended" else inserted_url(server, "nope")
    assert_json_error(request("GET", url), 404, "not_found")


def test_post_is_405(server):
    resp = request("POST", appended_url(server), {"x": 1})
    assert_json_error(resp, 405, "method_not_allowed")
    allow = [m.strip().upper() for m in resp[1].get("allow", "").split(",")]
    assert "GET" in allow, resp[1]


def test_document_is_readable_cross_origin(server):
    status, headers, _ = request("GET", appended_url(server),
                                 headers={"Origin": "https://app.example.com"})
    assert status == 200
    assert headers.get("access-control-allow-origin") == "*", headers


# --------------------------------------------------------------------------------------------
# §3: the fields
# --------------------------------------------------------------------------------------------


def assert_absolute_url(name: str, value) -> None:
    assert isinstance(value, str) and value, f"{name} must be a non-empty string: {value!r}"
    parts = urllib.parse.urlsplit(value)
    assert parts.scheme in ("http", "https") and parts.netloc, f"{name} is not a URL: {value!r}"
    assert not parts.fragment, f"{name} has a fragment: {value!r}"


def assert_field_types(doc: dict) -> None:
    """Each field of the type §3 gives it: URLs are absolute URL strings, flags are JSON
    booleans, every other `*_supported` field a non-empty array of distinct strings."""
    assert find_nulls(doc) == [], doc
    for name, value in doc.items():
        if name in URL_FIELDS:
            assert_absolute_url(name, value)
        elif name in BOOLEAN_FIELDS:
            assert isinstance(value, bool), f"{name} must be a boolean: {value!r}"
        elif name.endswith("_supported"):
            assert isinstance(value, list) and value, f"{name} must be a non-empty array: {value!r}"
            assert all(isinstance(v, str) and v for v in value), f"{name}: {value!r}"
            assert len(set(value)) == len(value), f"{name} repeats a value: {value!r}"


def test_every_required_field_is_present(server):
    doc = openid_configuration(server)
    missing = REQUIRED_FIELDS - set(doc)
    assert not missing, f"REQUIRED fields missing: {sorted(missing)}: {doc}"


def test_every_field_has_the_type_the_specification_gives_it(server):
    assert_field_types(openid_configuration(server))


def test_document_has_no_null_values(server):
    doc = openid_configuration(server)
    assert find_nulls(doc) == [], doc


def test_endpoints_are_the_tenants_own(server):
    doc = openid_configuration(server)
    issuer = f"{server.base}/t/demo"
    assert doc.get("authorization_endpoint") == f"{issuer}/oauth/authorize", doc
    assert doc.get("token_endpoint") == f"{issuer}/oauth/token", doc
    assert doc.get("jwks_uri") == f"{issuer}/jwks.json", doc
    assert doc.get("userinfo_endpoint") == f"{issuer}/oauth/userinfo", doc
    assert doc.get("registration_endpoint") == f"{issuer}/oauth/register", doc


def test_response_types_are_the_code_flow_only(server):
    doc = openid_configuration(server)
    assert doc["response_types_supported"] == ["code"], doc
    if "response_modes_supported" in doc:
        assert doc["response_modes_supported"] == ["query"], doc


def test_subject_type_is_public(server):
    """`sub` is the user's identifier, the same for every client (see
    test_openid_connect.py), which §3 calls the `public` subject type."""
    assert openid_configuration(server)["subject_types_supported"] == ["public"]


def test_id_token_signing_algorithms_include_rs256_and_are_those_clients_may_register(server):
    """§3: RS256 MUST be included. Registration accepts `id_token_signed_response_alg` RS256
    or ES256 and nothing else (`none` included), so exactly those two are listed."""
    algs = openid_configuration(server)["id_token_signing_alg_values_supported"]
    assert "RS256" in algs, algs
    assert set(algs) == ID_TOKEN_ALGS, algs


def test_request_uri_parameter_supported_is_explicitly_false(server):
    """§3: `request_uri_parameter_supported` defaults to true when absent, and Gatehouse
    refuses `request_uri` (`request_uri_not_supported`), so it must be said to be false."""
    doc = openid_configuration(server)
    assert "request_uri_parameter_supported" in doc, doc
    assert doc["request_uri_parameter_supported"] is False, doc


def test_request_parameter_is_not_claimed(server):
    """`request` objects are refused (`request_not_supported`): the field, default false, is
    absent or false."""
    doc = openid_configuration(server)
    assert doc.get("request_parameter_supported", False) is False, doc


def test_prompt_values_if_listed_are_those_the_authorization_endpoint_accepts(server):
    """`prompt_values_supported` (Initiating User Registration via OpenID Connect 1.0) is
    optional; listed, it names exactly the `prompt` values `{issuer}/oauth/authorize` accepts."""
    doc = openid_configuration(server)
    if "prompt_values_supported" in doc:
        assert set(doc["prompt_values_supported"]) == {
            "none", "login", "consent", "select_account"}, doc


def test_token_endpoint_auth_signing_algorithms_never_list_none(server):
    doc = openid_configuration(server)
    assert "none" not in doc.get("token_endpoint_auth_signing_alg_values_supported", []), doc


def test_claims_supported_lists_the_user_claims_gatehouse_releases(server):
    """§3 RECOMMENDED `claims_supported`: `sub` always, `email` and `email_verified` with the
    `email` scope."""
    claims = openid_configuration(server).get("claims_supported")
    assert isinstance(claims, list), claims
    assert {"sub", "email", "email_verified"} <= set(claims), claims


def test_recommended_fields_gatehouse_publishes_are_present(server):
    doc = openid_configuration(server)
    for name in ("userinfo_endpoint", "registration_endpoint", "scopes_supported",
                 "claims_supported"):
        assert name in doc, f"{name} missing: {doc}"


def test_jwks_uri_holds_a_key_for_every_advertised_id_token_algorithm(server):
    doc = openid_configuration(server)
    resp = request("GET", doc["jwks_uri"])
    assert resp[0] == 200, resp
    keys = json_body(resp).get("keys")
    assert isinstance(keys, list) and keys, keys
    kinds = {(k.get("kty"), k.get("crv")) for k in keys if k.get("use", "sig") == "sig"}
    for alg in doc["id_token_signing_alg_values_supported"]:
        want = ("RSA", None) if alg.startswith("RS") else ("EC", {"ES256": "P-256"}[alg])
        assert want in kinds, f"no {alg} signing key in the JWKS: {keys}"
    for key in keys:
        assert isinstance(key.get("kid"), str) and key["kid"], key
        if key.get("kty") == "RSA":
            assert key.get("n") and key.get("e"), key
            assert "d" not in key and "p" not in key, f"private RSA parameters published: {key}"
        assert "d" not in key, f"a private key was published: {key}"


def test_advertised_userinfo_endpoint_wants_a_bearer_token(server):
    doc = openid_configuration(server)
    status, headers, _ = request("GET", doc["userinfo_endpoint"])
    assert status == 401, status
    assert headers.get("www-authenticate", "").startswith("Bearer"), headers


# --------------------------------------------------------------------------------------------
# Consistency with the RFC 8414 document
# --------------------------------------------------------------------------------------------


def assert_consistent(oidc: dict, oauth: dict) -> None:
    for name in SHARED_FIELDS:
        assert name in oidc, f"{name} missing from the OpenID configuration: {oidc}"
        assert name in oauth, f"{name} missing from the RFC 8414 document: {oauth}"
    differing = {name: (oidc[name], oauth[name])
                 for name in set(oidc) & set(oauth) if oidc[name] != oauth[name]}
    assert not differing, f"the two documents disagree (OpenID, RFC 8414): {differing}"


def test_both_documents_say_the_same_thing(server):
    assert_consistent(openid_configuration(server), fetch_metadata(server))


def test_published_while_openid_connect_is_off_with_the_tenants_scopes(server, admin):
    """Off (the demo tenant's start): the document is still there, and `scopes_supported` is
    what the tenant allows, as in the RFC 8414 document."""
    settings = admin.settings()
    assert settings.get("openid_enabled") is False, settings
    doc = openid_configuration(server)
    assert doc["scopes_supported"] == fetch_metadata(server)["scopes_supported"]
    assert set(doc["scopes_supported"]) == allowed_scopes(settings), (doc, settings)
    assert not set(OPENID_SCOPES) & set(doc["scopes_supported"]), doc


def test_turning_openid_connect_on_lists_its_scopes_in_both_documents(server, admin):
    before_oidc = request("GET", appended_url(server))
    before_oauth = fetch_metadata(server)
    with openid_on(admin) as settings:
        oidc = openid_configuration(server)
        oauth = fetch_metadata(server)
        assert set(OPENID_SCOPES) <= set(oidc["scopes_supported"]), oidc
        assert set(oidc["scopes_supported"]) == allowed_scopes(settings) | set(OPENID_SCOPES), (
            oidc, settings)
        assert_consistent(oidc, oauth)
        assert_field_types(oidc)
        # The rest of the RFC 8414 document is unchanged.
        assert {k: v for k, v in oauth.items() if k != "scopes_supported"} == {
            k: v for k, v in before_oauth.items() if k != "scopes_supported"}
    after = request("GET", appended_url(server))
    assert after[0] == 200 and after[2] == before_oidc[2], "off again: the original document"
    assert fetch_metadata(server) == before_oauth


# --------------------------------------------------------------------------------------------
# Caching, like the other metadata documents (test_metadata.py)
# --------------------------------------------------------------------------------------------


# The ETag and 304 answers of both URL forms are tested with the other metadata documents
# (test_metadata.py, DOCUMENTS).


def test_a_settings_change_is_a_new_document_with_a_new_tag(server, admin):
    url = appended_url(server)
    before = request("GET", url)
    etag = before[1]["etag"]
    with openid_on(admin):
        after = request("GET", url, headers={"If-None-Match": etag})
        assert after[0] == 200, after
        assert after[1]["etag"] != etag
        assert "openid" in json_body(after)["scopes_supported"]
        assert request("GET", url, headers={"If-None-Match": after[1]["etag"]})[0] == 304
    assert request("GET", url, headers={"If-None-Match": etag})[0] == 304


# --------------------------------------------------------------------------------------------
# Configured public URL
# --------------------------------------------------------------------------------------------


def test_document_follows_the_configured_public_url(start_server):
    """§3: `issuer` is an https URL without query or fragment, and the endpoints are the
    public ones."""
    srv = start_server({"GATEHOUSE_PUBLIC_URL": "https://auth.example.com"})
    doc = openid_configuration(srv)
    issuer = "https://auth.example.com/t/demo"
    assert doc["issuer"] == issuer, doc
    parts = urllib.parse.urlsplit(doc["issuer"])
    assert parts.scheme == "https" and not parts.query and not parts.fragment, doc
    for name in URL_FIELDS & set(doc):
        assert doc[name].startswith(f"{issuer}/") or doc[name] == issuer, (name, doc[name])
    assert_consistent(doc, fetch_metadata(srv))
