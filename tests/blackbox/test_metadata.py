"""RFC 8414 OAuth 2.0 Authorization Server Metadata, black box.

The demo tenant's issuer is `{base}/t/demo`. §3 puts its metadata at
`{base}/.well-known/oauth-authorization-server/t/demo` (path insertion); older clients append
the well-known suffix to the issuer instead (`{base}/t/demo/.well-known/...`), and both must
serve the same document.
"""

from __future__ import annotations

import urllib.parse

import pytest

from admin_support import Admin, assert_json
from conftest import MODES, find_nulls, json_body, request

WELL_KNOWN = "/.well-known/oauth-authorization-server"


def inserted_url(server, tenant="demo"):
    return f"{server.base}{WELL_KNOWN}/t/{tenant}"


def appended_url(server, tenant="demo"):
    return f"{server.base}/t/{tenant}{WELL_KNOWN}"


def fetch_metadata(server) -> dict:
    resp = request("GET", inserted_url(server))
    status, headers, raw = resp
    assert status == 200, f"{status}: {raw[:1000]!r}"
    assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json", headers
    body = json_body(resp)
    assert isinstance(body, dict), body
    return body


def assert_json_error(resp, status, error):
    code, headers, raw = resp
    assert code == status, f"expected {status}, got {code}: {raw[:1000]!r}"
    assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json", headers
    body = json_body(resp)
    assert body.get("error") == error, body
    assert isinstance(body.get("error_description"), str) and body["error_description"].strip(), body
    assert headers.get("access-control-allow-origin") == "*", headers
    return body


# §3: where the document lives


def test_path_insertion_and_appended_paths_serve_the_identical_document(server):
    inserted = request("GET", inserted_url(server))
    appended = request("GET", appended_url(server))
    assert inserted[0] == 200, inserted
    assert appended[0] == 200, appended
    for _, headers, _ in (inserted, appended):
        assert headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    assert inserted[2] == appended[2]


def test_document_is_found_at_the_url_derived_from_its_issuer(server):
    # §3.1: metadata URL = scheme://host + /.well-known/oauth-authorization-server + issuer path.
    doc = fetch_metadata(server)
    issuer = urllib.parse.urlsplit(doc["issuer"])
    derived = f"{issuer.scheme}://{issuer.netloc}{WELL_KNOWN}{issuer.path}"
    assert derived == inserted_url(server)


# §2 / §3.2: the document's content


def test_issuer_is_the_tenant_issuer_byte_for_byte(server):
    doc = fetch_metadata(server)
    assert doc["issuer"] == f"{server.base}/t/demo"


def test_registration_endpoint_is_the_tenants_register_url(server):
    doc = fetch_metadata(server)
    assert doc.get("registration_endpoint") == f"{server.base}/t/demo/oauth/register", doc


def test_advertised_registration_endpoint_accepts_registrations(server):
    doc = fetch_metadata(server)
    status, _, raw = request(
        "POST",
        doc["registration_endpoint"],
        {"client_name": "Discovered", "redirect_uris": ["https://agent.example.com/cb"]},
    )
    assert status == 201, raw


def test_pkce_s256_only(server):
    assert fetch_metadata(server).get("code_challenge_methods_supported") == ["S256"]


def test_code_response_type_only(server):
    assert fetch_metadata(server).get("response_types_supported") == ["code"]


def test_scopes_supported_are_the_tenants_scopes(server):
    assert fetch_metadata(server).get("scopes_supported") == ["user_default", "mcp:execute", "offline_access"]


def test_document_has_no_null_values(server):
    doc = fetch_metadata(server)
    assert find_nulls(doc) == [], doc


def test_document_is_readable_cross_origin(server):
    status, headers, _ = request("GET", inserted_url(server), headers={"Origin": "https://inspector.example.com"})
    assert status == 200
    assert headers.get("access-control-allow-origin") == "*", headers


# §3.2 errors


@pytest.mark.parametrize("where", ["inserted", "appended"])
def test_unknown_tenant_is_404_json(server, where):
    url = inserted_url(server, "nope") if where == "inserted" else appended_url(server, "nope")
    assert_json_error(request("GET", url), 404, "not_found")


def test_post_is_405(server):
    resp = request("POST", inserted_url(server), {"x": 1})
    assert_json_error(resp, 405, "method_not_allowed")
    allow = [m.strip().upper() for m in resp[1].get("allow", "").split(",")]
    assert "GET" in allow, resp[1]


# Configured public URL


def test_issuer_follows_the_configured_public_url(start_server):
    srv = start_server({"GATEHOUSE_PUBLIC_URL": "https://auth.example.com"})
    doc = fetch_metadata(srv)
    assert doc["issuer"] == "https://auth.example.com/t/demo"
    assert doc.get("registration_endpoint") == "https://auth.example.com/t/demo/oauth/register", doc


# Caching (RFC 9110 §8.8.3, §13.1.2; RFC 9111): the documents are prebuilt per tenant and
# settings, tagged with a digest of the body, and revalidated with If-None-Match.

DOCUMENTS = {
    "authorization server": inserted_url,
    "protected resource": lambda s: f"{s.base}/.well-known/oauth-protected-resource/t/demo/mcp",
    "jwks": lambda s: f"{s.base}/t/demo/jwks.json",
    "openid configuration (appended)": lambda s: f"{s.base}/t/demo/.well-known/openid-configuration",
    "openid configuration (inserted)": lambda s: f"{s.base}/.well-known/openid-configuration/t/demo",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_carry_a_strong_etag_and_answer_304_to_a_client_that_holds_them(server, name):
    url = DOCUMENTS[name](server)
    status, headers, raw = request("GET", url)
    assert status == 200, raw[:500]
    etag = headers.get("etag", "")
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, headers
    assert headers.get("cache-control", "").startswith("public, max-age="), headers
    # The same body gets the same tag, request after request.
    again = request("GET", url)
    assert (again[1].get("etag"), again[2]) == (etag, raw)

    for held in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        nm_status, nm_headers, nm_raw = request("GET", url, headers={"If-None-Match": held})
        assert nm_status == 304, (held, nm_status, nm_raw[:300])
        assert nm_raw == b"", nm_raw
        assert nm_headers.get("etag") == etag, nm_headers
        assert nm_headers.get("cache-control") == headers.get("cache-control"), nm_headers
    for stale in ('"something-else"', etag.strip('"'), 'W/"x"'):
        assert request("GET", url, headers={"If-None-Match": stale})[0] == 200, stale


@pytest.mark.parametrize("mode", MODES)
def test_a_settings_change_is_a_new_document_with_a_new_tag(start_server, mode):
    srv = start_server(mode=mode)
    url = inserted_url(srv)
    before = request("GET", url)
    etag = before[1]["etag"]
    assert "registration_endpoint" in json_body(before)

    assert_json(Admin(srv).patch_settings({"dcr_enabled": False}))
    after = request("GET", url, headers={"If-None-Match": etag})
    assert after[0] == 200, after
    assert "registration_endpoint" not in json_body(after), json_body(after)
    assert after[1]["etag"] != etag
    assert request("GET", url, headers={"If-None-Match": after[1]["etag"]})[0] == 304
