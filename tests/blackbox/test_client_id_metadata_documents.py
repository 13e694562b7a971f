"""Client ID Metadata Documents (issue #11) through the real HTTP interface.

Documents are served over HTTPS from loopback by `docserver.DocServer` with a throwaway test CA
(`tests/devca.py`); the servers under test trust it through the two development-only settings
(`GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE`, `GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK`). The SSRF cases run on
servers without them, where every internal address must be refused before any connection.

Covered: metadata advertisement and the tenant switch; the first authorization request recording
a pending `cimd` client; the approval gate (regular user refused, administrator approves on the
consent page showing the document's name, URL, logo address and URIs); tokens; a second user
through the same client id after one consent, with the document fetched once (cache); every
document error as a page, never a redirect, with nothing recorded, and `401 invalid_client` at
the token endpoint; the SSRF and URL-shape refusals; cache bounds from `Cache-Control`; a changed
document waiting for re-approval; the pending cap; deletion and re-recording.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
import urllib.parse

import pytest

from conftest import (DEMO_USER_PASSWORD, MODES, REPO_ROOT, Server, json_body, request)
from admin_support import (Admin, USER_EMAIL, assert_api_error, assert_consent_page, assert_json,
                           authorize, code_of, is_approval_page, mcp, page_form)
from docserver import DocServer, closed_port
from test_authorization import Browser, assert_page
from test_tokens import assert_error, assert_tokens, exchange, post_form

sys.path.insert(0, str(REPO_ROOT / "tests"))
import devca  # noqa: E402

REDIRECT = "http://127.0.0.1:9999/callback"
OTHER_REDIRECT = "http://127.0.0.1:9999/other"
LOGO = "https://agent.example/logo.png"
PAGE_STATUSES = {400, 502}


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory):
    return devca.write(tmp_path_factory.mktemp("devca"))


@pytest.fixture(scope="module")
def docs(ca_dir):
    server = DocServer(ca_dir)
    yield server
    server.close()


def dev_env(ca_dir, **extra) -> dict:
    env = {
        "GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE": str(ca_dir / "ca.pem"),
        "GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK": "true",
        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0",
        "GATEHOUSE_PENDING_CLIENT_CAP": "100000",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module", params=MODES)
def srv(request, ca_dir, tmp_path_factory):
    """A server that trusts the test CA and allows loopback documents, per store mode."""
    server = Server(request.param, dev_env(ca_dir), tmp_path_factory.mktemp(f"cimd-{request.param}"))
    server.start()
    yield server
    server.stop()
    server.assert_no_panic()


@pytest.fixture(scope="module")
def admin(srv) -> Admin:
    return Admin(srv)


def document(url: str, **overrides) -> dict:
    doc = {
        "client_id": url,
        "client_name": "CIMD Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://agent.example/",
        "logo_uri": LOGO,
        "scope": "user_default mcp:execute",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def fresh_path() -> str:
    return f"/clients/{secrets.token_hex(6)}/metadata.json"


def publish(docs: DocServer, headers: dict | None = None, **overrides) -> tuple[str, str]:
    """A valid document at a fresh path; returns (url, path)."""
    path = fresh_path()
    url = docs.url(path)
    docs.serve(path, document(url, **overrides), headers=headers)
    return url, path


def as_client(url: str, redirect_uri: str = REDIRECT) -> dict:
    """What the flow helpers need to know of a client."""
    return {"client_id": url, "redirect_uris": [redirect_uri]}


def quoted(url: str) -> str:
    return urllib.parse.quote(url, safe="")


def first_request(server, url: str, browser: Browser | None = None, **params):
    return authorize(server, browser or Browser(server), as_client(url), **params)


def assert_refused_page(resp, *keywords: str, statuses=PAGE_STATUSES):
    """An error page (never a redirect) naming the problem."""
    assert resp.status in statuses, f"expected a {sorted(statuses)} page, got {resp!r}"
    return assert_page(resp, resp.status, *keywords)


def assert_not_recorded(admin: Admin, url: str) -> None:
    assert_api_error(admin.api("GET", f"/oauth-clients/{quoted(url)}"), 404, "not_found")


def cimd_clients(admin: Admin, status: str | None = None) -> list[dict]:
    expr = 'createdByType eq "cimd"' + (f' and status eq "{status}"' if status else "")
    out, cursor = [], None
    while True:
        q = {"filter": expr, "limit": "100"}
        if cursor:
            q["cursor"] = cursor
        doc = assert_json(admin.api("GET", f"/oauth-clients?{urllib.parse.urlencode(q)}"))
        out += doc["data"]
        cursor = doc.get("next_cursor")
        if not cursor:
            return out


def approve_first_connection(server, admin: Admin, url: str):
    """The administrator's first connection: approval page, Approve, code, tokens."""
    attempt = first_request(server, url, admin.browser)
    assert attempt.resp.status == 200 and is_approval_page(attempt.resp), attempt.resp
    done = admin.browser.submit(page_form(attempt.resp, "decide"), "approve")
    code = code_of(server, attempt, done)
    tokens = assert_tokens(exchange(server, as_client(url) | {"token_endpoint_auth_method": "none"},
                                    code), refresh_token=False)
    return attempt, tokens


def signed_in_user(server, url: str) -> tuple[Browser, object]:
    browser = Browser(server)
    attempt = first_request(server, url, browser)
    assert_page(attempt.resp, 200, "Sign in")
    return browser, attempt


# --------------------------------------------------------------------------------------------
# Metadata and the tenant switch
# --------------------------------------------------------------------------------------------


def test_authorization_server_metadata_advertises_metadata_documents(srv):
    doc = json_body(request("GET", f"{srv.base}/.well-known/oauth-authorization-server/t/demo"))
    assert doc.get("client_id_metadata_document_supported") is True, doc
    # DCR stays beside it.
    assert doc.get("registration_endpoint") == f"{srv.issuer}/oauth/register", doc


def test_the_tenant_setting_turns_metadata_documents_off_and_on(start_server, ca_dir, docs):
    server = start_server(dev_env(ca_dir))
    admin = Admin(server)
    assert admin.settings()["cimd_enabled"] is True
    assert_api_error(admin.patch_settings({"cimd_enabled": "yes"}), 400, "invalid_request",
                     "cimd_enabled")
    assert assert_json(admin.patch_settings({"cimd_enabled": False}))["cimd_enabled"] is False
    meta = json_body(request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/demo"))
    assert meta.get("client_id_metadata_document_supported") is not True, meta
    url, path = publish(docs)
    assert_page(first_request(server, url).resp, 400, "Unknown application")
    assert docs.hits(path) == 0, "nothing may be fetched while the setting is off"
    assert_error(post_form(f"{server.issuer}/oauth/token",
                           {"grant_type": "authorization_code", "code": "x", "client_id": url,
                            "code_verifier": "v" * 43, "redirect_uri": REDIRECT}),
                 401, "invalid_client")
    assert assert_json(admin.patch_settings({"cimd_enabled": True}))["cimd_enabled"] is True
    assert_page(first_request(server, url).resp, 200, "Sign in")
    assert docs.hits(path) == 1


# --------------------------------------------------------------------------------------------
# The approval gate and the whole flow
# --------------------------------------------------------------------------------------------


def test_first_request_records_a_pending_client_from_the_document(srv, docs, admin):
    url, path = publish(docs, headers={"Cache-Control": "max-age=600"})
    before = int(time.time())
    assert_page(first_request(srv, url).resp, 200, "Sign in", "CIMD Agent")
    assert docs.hits(path) == 1
    view = admin.client(quoted(url))
    assert view["client_id"] == url
    assert view["createdByType"] == "cimd"
    assert view["status"] == "pending"
    assert view["client_name"] == "CIMD Agent"
    assert view["redirect_uris"] == [REDIRECT]
    assert view["logo_uri"] == LOGO
    assert view["token_endpoint_auth_method"] == "none"
    assert "offline_access" not in view["scope"].split(), view
    assert view["expires_at"] - view["created_at"] == 3600, view
    meta = view["metadata_document"]
    assert meta["url"] == url
    assert before - 2 <= meta["fetched_at"] <= int(time.time()) + 2
    assert meta["fresh_until"] - meta["fetched_at"] == 600
    assert "pending_changes" not in view
    listed = [c["client_id"] for c in cimd_clients(admin, "pending")]
    assert url in listed
    # Pending clients stay hidden from the default listing; only a `status` filter shows them.
    default = assert_json(admin.api("GET", "/oauth-clients?limit=100"))
    assert url not in [c["client_id"] for c in default["data"]]


def test_a_regular_user_cannot_connect_a_new_application(srv, docs, admin):
    url, _ = publish(docs)
    browser, attempt = signed_in_user(srv, url)
    resp = browser.sign_in(attempt.resp, USER_EMAIL, DEMO_USER_PASSWORD)
    assert_page(resp, 403, "administrator")
    assert admin.client(quoted(url))["status"] == "pending"


def test_administrator_approves_then_every_user_connects_through_the_same_client(srv, docs, admin):
    url, path = publish(docs)
    attempt = first_request(srv, url, admin.browser)
    page = assert_page(attempt.resp, 200, "New, unverified application", "CIMD Agent", url,
                       REDIRECT, "metadata document")
    assert LOGO in page.text, "the document's logo address is shown"
    assert "<img" not in page.body.lower(), "the approval page loads nothing from the document"
    form = page_form(page, "decide")
    assert form.action == f"{srv.issuer}/admin/approve", form
    done = admin.browser.submit(form, "approve")
    code = code_of(srv, attempt, done)
    public = as_client(url) | {"token_endpoint_auth_method": "none"}
    tokens = assert_tokens(exchange(srv, public, code), refresh_token=False)
    assert mcp(srv, tokens["access_token"])[0] == 200
    view = admin.client(quoted(url))
    assert view["status"] == "approved" and "expires_at" not in view, view

    # A regular user: one consent, then tokens, through the same client id.
    browser, attempt = signed_in_user(srv, url)
    consent = browser.sign_in(attempt.resp, USER_EMAIL, DEMO_USER_PASSWORD)
    form = assert_consent_page(consent)
    assert form.action == f"{srv.issuer}/oauth/authorize", form
    code = code_of(srv, attempt, browser.submit(form, "approve"))
    user_tokens = assert_tokens(exchange(srv, public, code), refresh_token=False)
    status, _, body = mcp(srv, user_tokens["access_token"])
    assert status == 200, body
    # The next time: no consent page, straight back with a code.
    again = first_request(srv, url, browser)
    code_of(srv, again)

    assert [c["client_id"] for c in cimd_clients(admin)].count(url) == 1
    assert docs.hits(path) == 1, "the document is cached for at least 5 minutes"


def test_a_redirect_uri_the_document_does_not_list_is_a_page(srv, docs, admin):
    url, _ = publish(docs)
    resp = first_request(srv, url, redirect_uri="http://127.0.0.1:9999/elsewhere").resp
    assert_page(resp, 400, "Invalid redirect URI")


def test_approval_through_the_api_approves_a_pending_metadata_document_client(srv, docs, admin):
    url, _ = publish(docs)
    assert_page(first_request(srv, url).resp, 200, "Sign in")
    view = assert_json(admin.api("POST", f"/oauth-clients/{quoted(url)}/approve"))
    assert view["status"] == "approved" and "expires_at" not in view, view
    assert_api_error(admin.api("POST", f"/oauth-clients/{quoted(url)}/approve"), 409,
                     "invalid_request")


# --------------------------------------------------------------------------------------------
# Documents that cannot be used
# --------------------------------------------------------------------------------------------


def _serve(docs, path, url, body=None, **kw):
    docs.serve(path, document(url) if body is None else body, **kw)


BAD_DOCUMENTS = {
    "client_id of another document": (lambda d, p, u: _serve(d, p, u, document(u.replace(".json", "-other.json"))), "client_id"),
    "client_id with a query added": (lambda d, p, u: _serve(d, p, u, document(u + "?x=1")), "client_id"),
    "client_id missing": (lambda d, p, u: _serve(d, p, u, document(u, client_id=None)), "client_id"),
    "a client_secret": (lambda d, p, u: _serve(d, p, u, document(u, client_secret="s3cret")), "client_secret"),
    "client_secret_basic": (lambda d, p, u: _serve(d, p, u, document(u, token_endpoint_auth_method="client_secret_basic")), "token_endpoint_auth_method"),
    "private_key_jwt": (lambda d, p, u: _serve(d, p, u, document(u, token_endpoint_auth_method="private_key_jwt")), "token_endpoint_auth_method"),
    "no redirect_uris": (lambda d, p, u: _serve(d, p, u, document(u, redirect_uris=None)), "redirect_uris"),
    "javascript redirect": (lambda d, p, u: _serve(d, p, u, document(u, redirect_uris=["javascript:alert(1)"])), "redirect_uris"),
    "a right-to-left override in client_name": (lambda d, p, u: _serve(d, p, u, document(u, client_name="Claude\u202egnp.exe")), "client_name"),
    "a zero-width space in client_name": (lambda d, p, u: _serve(d, p, u, document(u, client_name="Cla\u200bude")), "client_name"),
    "not JSON": (lambda d, p, u: _serve(d, p, u, b"{"), "JSON"),
    "a JSON array": (lambda d, p, u: _serve(d, p, u, [document(u)]), "JSON object"),
    "text/html": (lambda d, p, u: _serve(d, p, u, content_type="text/html"), "content type"),
    "no content type": (lambda d, p, u: _serve(d, p, u, content_type=""), "content type"),
    "HTTP 404": (lambda d, p, u: _serve(d, p, u, status=404), "HTTP status 404"),
    "HTTP 500": (lambda d, p, u: _serve(d, p, u, status=500), "HTTP status 500"),
    "1 MiB body": (lambda d, p, u: _serve(d, p, u, document(u, x_padding="a" * (1 << 20))), "larger than"),
    "20 KiB body": (lambda d, p, u: _serve(d, p, u, document(u, x_padding="a" * 20_000)), "larger than"),
    "slow body": (lambda d, p, u: _serve(d, p, u, trickle=(1, 1.0, 30)), "in time"),
    "slow headers": (lambda d, p, u: _serve(d, p, u, delay_before_headers=20), "in time"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_an_unusable_document_is_a_page_and_records_nothing(srv, docs, admin, case):
    setup, keyword = BAD_DOCUMENTS[case]
    path = fresh_path()
    url = docs.url(path)
    setup(docs, path, url)
    started = time.monotonic()
    resp = first_request(srv, url).resp
    assert time.monotonic() - started < 15, "the fetch deadline holds"
    assert_refused_page(resp, keyword)
    assert_not_recorded(admin, url)
    # The token endpoint: 401 invalid_client, whatever the document.
    assert_error(post_form(f"{srv.issuer}/oauth/token",
                           {"grant_type": "authorization_code", "code": "x" * 43,
                            "client_id": url, "code_verifier": "v" * 43,
                            "redirect_uri": REDIRECT}),
                 401, "invalid_client")


def test_a_redirecting_document_server_is_not_followed(srv, docs, admin):
    target_url, target_path = publish(docs)
    path = fresh_path()
    url = docs.redirect(path, target_url)
    assert_refused_page(first_request(srv, url).resp, "redirect", statuses={502})
    assert docs.hits(target_path) == 0, "the redirect target must never be fetched"
    assert_not_recorded(admin, url)


def test_a_document_server_that_is_down_is_a_502_page(srv, admin):
    url = f"https://localhost:{closed_port()}/clients/agent.json"
    assert_refused_page(first_request(srv, url).resp, "connect", statuses={502})
    assert_not_recorded(admin, url)


def test_a_document_of_several_kibibytes_is_accepted(srv, docs, admin):
    url, _ = publish(docs, x_padding="a" * 3000)
    assert_page(first_request(srv, url).resp, 200, "Sign in")


@pytest.mark.parametrize("raw", [
    "https://localhost:{port}",
    "https://localhost:{port}/",
    "https://localhost:{port}/a/../b.json",
    "https://localhost:{port}/./b.json",
    "https://user:pw@localhost:{port}/a.json",
    "https://localhost:{port}/a.json#frag",
    "http://localhost:{port}/a.json",
])
def test_client_id_urls_of_the_wrong_shape_are_refused(srv, docs, raw):
    url = raw.format(port=docs.port)
    path_hits = docs.hits("/a.json") + docs.hits("/b.json")
    resp = first_request(srv, url).resp
    assert resp.status == 400 and resp.location is None, resp
    assert_page(resp, 400)
    assert docs.hits("/a.json") + docs.hits("/b.json") == path_hits


def test_the_token_endpoint_never_fetches_for_an_unknown_url(srv, docs):
    url, path = publish(docs)
    assert_error(post_form(f"{srv.issuer}/oauth/token",
                           {"grant_type": "authorization_code", "code": "x" * 43,
                            "client_id": url, "code_verifier": "v" * 43,
                            "redirect_uri": REDIRECT}),
                 401, "invalid_client")
    assert docs.hits(path) == 0


# --------------------------------------------------------------------------------------------
# SSRF: internal addresses are refused before any connection
# --------------------------------------------------------------------------------------------

INTERNAL = [
    "https://127.0.0.1:{port}/clients/a.json",
    "https://localhost:{port}/clients/a.json",
    "https://[::1]:{port}/clients/a.json",
    "https://10.0.0.1/clients/a.json",
    "https://192.168.1.20/c.json",
    "https://172.16.5.4/c.json",
    "https://169.254.169.254/latest/meta-data/iam",
    "https://[fd00:ec2::254]/latest/meta-data",
    "https://100.64.0.1/c.json",
    "https://0x7f000001:{port}/clients/a.json",
    "https://127.1:{port}/clients/a.json",
    "https://[::ffff:127.0.0.1]:{port}/clients/a.json",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data",
    "https://224.0.0.1/c.json",
    "https://0.0.0.0:{port}/clients/a.json",
]


def test_internal_addresses_are_refused_without_the_development_settings(start_server, docs):
    server = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"})
    admin = Admin(server)
    docs.serve("/clients/a.json", {"client_id": "placeholder"})
    for raw in INTERNAL:
        url = raw.format(port=docs.port)
        started = time.monotonic()
        resp = first_request(server, url).resp
        assert time.monotonic() - started < 3, f"{url}: refused at once"
        assert_refused_page(resp, "not allowed", statuses={400})
        assert_not_recorded(admin, url)
    assert docs.hits("/clients/a.json") == 0, "no connection reached the document server"


def test_loopback_alone_is_allowed_to_connect_but_the_certificate_must_be_trusted(start_server, docs):
    server = start_server({"GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK": "true",
                           "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"})
    url, path = publish(docs)
    resp = first_request(server, url).resp
    assert_refused_page(resp, "TLS", statuses={502})
    assert "not allowed" not in resp.text


def test_private_addresses_stay_refused_with_the_development_settings(srv):
    for url in ("https://10.0.0.1/clients/a.json", "https://169.254.169.254/latest",
                "https://[fe80::1]/c.json"):
        assert_refused_page(first_request(srv, url).resp, "not allowed", statuses={400})


# --------------------------------------------------------------------------------------------
# Cache bounds
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache_control, lifetime", [
    ("max-age=600", 600),
    ("public, max-age=10", 300),
    ("max-age=9999999", 86400),
    ("no-store", 300),
    ("no-cache", 300),
    (None, 3600),
])
def test_the_document_cache_honours_cache_control_within_bounds(srv, docs, admin, cache_control,
                                                                lifetime):
    headers = {"Cache-Control": cache_control} if cache_control else None
    url, _ = publish(docs, headers=headers)
    assert_page(first_request(srv, url).resp, 200, "Sign in")
    meta = admin.client(quoted(url))["metadata_document"]
    assert meta["fresh_until"] - meta["fetched_at"] == lifetime, meta


# --------------------------------------------------------------------------------------------
# A changed document after approval
# --------------------------------------------------------------------------------------------


def test_a_changed_document_waits_for_an_administrators_approval(srv, docs, admin):
    url, path = publish(docs)
    approve_first_connection(srv, admin, url)
    before = admin.client(quoted(url))
    docs.serve(path, document(url, client_name="CIMD Agent v2",
                              redirect_uris=[REDIRECT, OTHER_REDIRECT]))
    view = assert_json(admin.api("POST", f"/oauth-clients/{quoted(url)}/refresh-metadata"))
    assert docs.hits(path) == 2
    assert view["client_name"] == "CIMD Agent", "approved values stay in force"
    assert view["redirect_uris"] == [REDIRECT]
    assert view["pending_changes"]["client_name"] == "CIMD Agent v2"
    assert view["pending_changes"]["redirect_uris"] == [REDIRECT, OTHER_REDIRECT]
    assert view["config_version"] == before["config_version"]

    # The new redirect URI is not used before approval; the old one keeps working.
    assert_page(first_request(srv, url, redirect_uri=OTHER_REDIRECT).resp, 403, "administrator")
    browser, attempt = signed_in_user(srv, url)
    assert "CIMD Agent v2" not in attempt.resp.text
    consent = browser.sign_in(attempt.resp, USER_EMAIL, DEMO_USER_PASSWORD)
    assert "CIMD Agent v2" not in consent.text
    code_of(srv, attempt, browser.submit(assert_consent_page(consent), "approve"))

    # The console shows the change awaiting approval.
    page = admin.browser.get(f"{srv.issuer}/admin/clients/{quoted(url)}")
    assert_page(page, 200, "Changes awaiting approval", "CIMD Agent v2", OTHER_REDIRECT, url)

    approved = assert_json(admin.api("POST", f"/oauth-clients/{quoted(url)}/approve"))
    assert approved["client_name"] == "CIMD Agent v2"
    assert approved["redirect_uris"] == [REDIRECT, OTHER_REDIRECT]
    assert approved["config_version"] == before["config_version"] + 1
    assert "pending_changes" not in approved
    assert_page(first_request(srv, url, redirect_uri=OTHER_REDIRECT).resp, 200, "Sign in")
    # The user consents again to the new configuration.
    again = first_request(srv, url, browser)
    assert_consent_page(again.resp)
    assert_api_error(admin.api("POST", f"/oauth-clients/{quoted(url)}/approve"), 409,
                     "invalid_request")


def test_a_dropped_redirect_uri_stops_working_at_once(srv, docs, admin):
    url, path = publish(docs, redirect_uris=[REDIRECT, OTHER_REDIRECT])
    approve_first_connection(srv, admin, url)
    docs.serve(path, document(url, redirect_uris=[REDIRECT]))
    view = assert_json(admin.api("POST", f"/oauth-clients/{quoted(url)}/refresh-metadata"))
    assert view["redirect_uris"] == [REDIRECT]
    assert "pending_changes" not in view
    assert_page(first_request(srv, url, redirect_uri=OTHER_REDIRECT).resp, 400,
                "Invalid redirect URI")


def test_a_broken_document_on_refresh_keeps_the_client_as_it_was(srv, docs, admin):
    url, path = publish(docs)
    approve_first_connection(srv, admin, url)
    before = admin.client(quoted(url))
    docs.serve(path, document(url, client_secret="x"))
    assert_api_error(admin.api("POST", f"/oauth-clients/{quoted(url)}/refresh-metadata"), 400,
                     "invalid_client_metadata", "client_secret")
    docs.serve(path, {}, status=503)
    assert_api_error(admin.api("POST", f"/oauth-clients/{quoted(url)}/refresh-metadata"), 502,
                     "invalid_client_metadata", "503")
    assert admin.client(quoted(url)) == before


def test_metadata_actions_on_other_clients(srv, admin):
    reg = json_body(request("POST", srv.register_url,
                            {"client_name": "DCR", "redirect_uris": [REDIRECT]}))
    assert_api_error(admin.api("POST", f"/oauth-clients/{reg['client_id']}/refresh-metadata"),
                     400, "invalid_request")
    unknown = quoted("https://localhost:1/unknown.json")
    assert_api_error(admin.api("POST", f"/oauth-clients/{unknown}/refresh-metadata"), 404,
                     "not_found")
    assert_api_error(admin.api("POST", f"/oauth-clients/{unknown}/approve"), 404, "not_found")
    resp = admin.api("GET", f"/oauth-clients/{reg['client_id']}/approve")
    assert_api_error(resp, 405, "method_not_allowed")
    assert resp[1].get("allow") == "POST", resp[1]


def test_the_name_of_a_metadata_document_client_comes_from_its_document(srv, docs, admin):
    url, _ = publish(docs)
    approve_first_connection(srv, admin, url)
    assert_api_error(admin.patch_client(quoted(url), {"client_name": "Renamed"}), 400,
                     "invalid_request", "document")
    edited = assert_json(admin.patch_client(quoted(url), {"consentMethod": "trusted"}))
    assert edited["consentMethod"] == "trusted"


# --------------------------------------------------------------------------------------------
# Quota, deletion
# --------------------------------------------------------------------------------------------


def test_the_pending_cap_counts_metadata_document_clients(start_server, ca_dir, docs):
    server = start_server(dev_env(ca_dir, GATEHOUSE_PENDING_CLIENT_CAP="1"))
    first, _ = publish(docs)
    second, second_path = publish(docs)
    assert_page(first_request(server, first).resp, 200, "Sign in")
    assert_page(first_request(server, second).resp, 429, "Too many new applications")
    # The first one again: already recorded, not counted twice.
    assert_page(first_request(server, first).resp, 200, "Sign in")


def test_a_deleted_client_comes_back_pending_and_users_consent_again(srv, docs, admin):
    url, _ = publish(docs)
    _, tokens = approve_first_connection(srv, admin, url)
    browser, attempt = signed_in_user(srv, url)
    consent = browser.sign_in(attempt.resp, USER_EMAIL, DEMO_USER_PASSWORD)
    code_of(srv, attempt, browser.submit(assert_consent_page(consent), "approve"))
    status, _, _ = admin.api("DELETE", f"/oauth-clients/{quoted(url)}")
    assert status == 204
    assert mcp(srv, tokens["access_token"])[0] == 401, "the deletion revoked its grants"
    time.sleep(1.1)  # a new record gets a later creation time
    assert_page(first_request(srv, url, browser).resp, 403, "administrator")
    view = admin.client(quoted(url))
    assert view["status"] == "pending", view
    approve_first_connection(srv, admin, url)
    # An earlier consent does not carry over to the new record.
    assert_consent_page(first_request(srv, url, browser).resp)


# --------------------------------------------------------------------------------------------
# DynamoDB round trips (counted by the server's SDK interceptor, as in test_dynamodb_calls.py)
# --------------------------------------------------------------------------------------------

HANDLED = re.compile(r"handled\b.*?\bstatus=(\d+).*?\bdynamodb_calls=(\d+).*?\broute=\"?([a-z_]+)")


def test_dynamodb_round_trips_of_metadata_document_requests(start_server, ca_dir, docs):
    server = start_server(dev_env(ca_dir, GATEHOUSE_PENDING_CLIENT_CAP="50"), mode="dynamodb")
    url, _ = publish(docs)

    def calls(step) -> int:
        offset = len(server.log())
        step()
        time.sleep(0.05)
        rows = [r for r in HANDLED.findall(server.log()[offset:]) if r[2] == "authorize"]
        assert len(rows) == 1, rows
        return int(rows[0][1])

    # Warm the tenant cache first (metadata needs no other read).
    request("GET", f"{server.base}/.well-known/oauth-authorization-server/t/demo")
    # New document: the flow read, the cap's previous-window counter, one transaction that
    # records the client and counts it, its audit event, and the parked request.
    first = calls(lambda: assert_page(first_request(server, url).resp, 200, "Sign in"))
    # Cached: exactly what a registered client costs (the flow read and the parked request).
    cached = calls(lambda: assert_page(first_request(server, url).resp, 200, "Sign in"))
    print(f"\nDynamoDB calls: authorize GET with a new document {first}, cached {cached}")
    assert first <= 5, first
    assert cached <= 2, cached
