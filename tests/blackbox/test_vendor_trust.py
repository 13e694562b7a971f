"""Vendor trust, black box (issue 17): an administrator approving a pending DCR client with
`{"trust_vendor": true}` also trusts the application's future registrations. A later
registration with exactly the trusted `redirect_uris` (any order), the same
`token_endpoint_auth_method` and the same `software_id` (or both without one) is created
approved (`vendor_trust`, `approved_by: "vendor-trust:<id>"`, no `expires_at`) and a regular
user can connect at once; anything else stays pending. Trusts are listed
(`GET {issuer}/api/v1/vendor-trusts`) and revoked (`DELETE …/vendor-trusts/{id}`); the clients
a trust approved keep working. Every step is in the audit trail.

Every test invents its own application (redirect URIs on a host of its own), so a trust never
approves another test's registrations on the shared servers. The admin side (ineligible clients,
bad bodies, authentication, the pending cap, the console and the consent page) is in
`test_vendor_trust_admin.py`, which reuses the helpers here.
"""

from __future__ import annotations

import re
import secrets
import sys
import time

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    CLIENT_FIELDS,
    REFRESHING,
    USER_EMAIL,
    Admin,
    assert_api_error,
    assert_consent_page,
    assert_json,
    assert_no_content,
    authorize,
    code_of,
    register,
    unique,
)
from conftest import DEMO_USER_PASSWORD, MODES, find_nulls, json_body, request  # noqa: E402
from test_access_requests import assert_event, user_actor  # noqa: E402
from test_audit_trail import (  # noqa: E402,F401 - the admin fixture
    admin,
    client_trail,
    only,
    trail,
)
from test_authorization import Browser  # noqa: E402
from test_client_configuration import current, put, update_body  # noqa: E402
from test_tokens import assert_tokens, exchange, refresh  # noqa: E402

TRUST_FIELDS = {"id", "created_at", "created_by", "client_id", "client_name", "redirect_uris",
                "token_endpoint_auth_method", "software_id", "revoked_at"}
TRUST_REQUIRED = TRUST_FIELDS - {"software_id", "revoked_at"}
TRUSTED_CLIENT_FIELDS = CLIENT_FIELDS | {"vendor_trust"}
TRUST_ID = re.compile(r"[0-9a-f]{64}")
TEN_MINUTES = 600

# --------------------------------------------------------------------------------------------
# Applications, trusts, clients
# --------------------------------------------------------------------------------------------


def new_app(method: str = "client_secret_basic", software: bool = True) -> dict:
    """The registration metadata of an application of its own: two https redirect URIs on a
    fresh DNS name, an auth method and (by default) a software_id."""
    host = f"{unique('vendor')}.example.com"
    app = {"redirect_uris": [f"https://{host}/oauth/callback", f"https://{host}/cb"],
           "token_endpoint_auth_method": method}
    if method != "none":
        app["grant_types"] = REFRESHING
    if software:
        app["software_id"] = unique("com.example.agent")
    return app


def variant(app: dict, **changes) -> dict:
    """`app` with `changes` (None removes a field)."""
    out = dict(app, **changes)
    return {k: v for k, v in out.items() if v is not None}


def approve(admin: Admin, cid: str, body=None, headers: dict | None = None):
    return admin.api("POST", f"/oauth-clients/{cid}/approve", body, headers)


def trust_app(server, admin: Admin, app: dict) -> tuple[dict, str]:
    """A registration of `app` approved with trust: `(registration, trust id)`."""
    client = register(server, **app)
    doc = assert_json(approve(admin, client["client_id"], {"trust_vendor": True}))
    tid = doc.get("vendor_trust_created")
    assert isinstance(tid, str) and TRUST_ID.fullmatch(tid), doc
    assert doc["status"] == "approved" and doc["client_id"] == client["client_id"], doc
    # The founding client is approved by the administrator, not by the trust.
    assert "vendor_trust" not in doc and "expires_at" not in doc, doc
    return client, tid


def trusts(admin: Admin) -> list[dict]:
    """`GET …/vendor-trusts`: `{"data": [...]}`, newest first, only documented fields."""
    doc = assert_json(admin.api("GET", "/vendor-trusts"))
    assert set(doc) == {"data"}, doc
    data = doc["data"]
    assert isinstance(data, list), doc
    for t in data:
        assert TRUST_REQUIRED <= set(t) <= TRUST_FIELDS, f"trust fields {set(t)}: {t}"
        assert not find_nulls(t), t
    times = [t["created_at"] for t in data]
    assert times == sorted(times, reverse=True), f"not newest first: {times}"
    assert len({t["id"] for t in data}) == len(data), "a trust is listed twice"
    return data


def trust_of(admin: Admin, tid: str) -> dict:
    found = [t for t in trusts(admin) if t["id"] == tid]
    assert len(found) == 1, f"trust {tid} listed {len(found)} times"
    return found[0]


def revoke_trust(admin: Admin, tid: str):
    return admin.api("DELETE", f"/vendor-trusts/{tid}")


def client_doc(admin: Admin, cid: str) -> dict:
    doc = assert_json(admin.api("GET", f"/oauth-clients/{cid}"))
    extra = set(doc) - TRUSTED_CLIENT_FIELDS
    assert not extra, f"undocumented fields {extra}: {doc}"
    return doc


def assert_trusted(admin: Admin, client: dict, tid: str) -> dict:
    """The admin API's view of a client a trust approved."""
    doc = client_doc(admin, client["client_id"])
    assert doc["status"] == "approved", doc
    assert doc.get("vendor_trust") == tid, doc
    assert doc.get("approved_by") == f"vendor-trust:{tid}", doc
    assert isinstance(doc.get("approved_at"), int), doc
    assert abs(doc["approved_at"] - time.time()) < TEN_MINUTES, doc
    assert "expires_at" not in doc, doc
    return doc


def assert_pending(admin: Admin, client: dict) -> dict:
    """Registered pending as before: no trust, an expiry, no approval in the trail."""
    doc = client_doc(admin, client["client_id"])
    assert doc["status"] == "pending", doc
    assert "vendor_trust" not in doc and "approved_by" not in doc, doc
    assert isinstance(doc.get("expires_at"), int), doc
    assert [e["type"] for e in client_trail(admin, client["client_id"])] == [
        "client.registered"], "a pending client's trail"
    return doc


def user_connects(server, client: dict, consent: bool | None = True) -> dict:
    """The demo regular user signs in on the client's authorization URL, meets the consent page
    (not "Administrator approval required"), approves, and exchanges the code: the tokens.
    `consent=None`: the consent page may be skipped (the user consented before)."""
    browser = Browser(server)
    attempt = authorize(server, browser, client)
    resp = attempt.resp
    if resp.status == 200 and any(f.fields.get("action") == "sign_in" for f in resp.forms):
        resp = browser.sign_in(resp, USER_EMAIL, DEMO_USER_PASSWORD)
    assert "administrator approval required" not in resp.text.lower(), resp
    if consent is not None:
        assert (resp.status == 200) == consent, f"consent page expected: {consent}: {resp!r}"
    if resp.status == 200:
        resp = browser.submit(assert_consent_page(resp), "approve")
    code = code_of(server, attempt, resp)
    return assert_tokens(exchange(server, client, code))


def trust_events(admin: Admin, type_: str, tid: str, count: int = 1) -> list[dict]:
    """The `vendor_trust.*` events of one trust (waiting for `count` of them in the trail)."""
    def mine(events):
        return [e for e in events if e.get("detail", {}).get("vendor_trust") == tid]
    return mine(trail(admin, type=type_, until=lambda ev: len(mine(ev)) >= count))


def assert_created_event(server, admin: Admin, tid: str, app: dict, via: str) -> dict:
    events = trust_events(admin, "vendor_trust.created", tid)
    assert len(events) == 1, events
    event = assert_event(server, events[0], "vendor_trust.created",
                         actor=user_actor(admin, ADMIN_EMAIL), via=via)
    detail = event.get("detail", {})
    assert detail.get("redirect_uris") == sorted(app["redirect_uris"]), event
    assert detail.get("token_endpoint_auth_method") == app["token_endpoint_auth_method"], event
    assert detail.get("software_id") == app.get("software_id"), event
    return event


# --------------------------------------------------------------------------------------------
# Creating a trust
# --------------------------------------------------------------------------------------------


def test_approval_with_trust_creates_the_trust(server, admin):
    app = new_app()
    client, tid = trust_app(server, admin, app)
    cid = client["client_id"]
    me = admin.user(ADMIN_EMAIL)
    approved = client_doc(admin, cid)
    assert approved.get("approved_by") == me["id"] and "vendor_trust" not in approved, approved
    record = trust_of(admin, tid)
    assert set(record) == TRUST_FIELDS - {"revoked_at"}, record
    assert record["created_by"] == {"id": me["id"], "email": ADMIN_EMAIL}, record
    assert record["client_id"] == cid and record["client_name"] == client["client_name"], record
    assert record["redirect_uris"] == sorted(app["redirect_uris"]), record
    assert record["token_endpoint_auth_method"] == "client_secret_basic", record
    assert record["software_id"] == app["software_id"], record
    assert isinstance(record["created_at"], int), record
    assert abs(record["created_at"] - time.time()) < TEN_MINUTES, record
    assert trusts(admin)[0]["created_at"] >= record["created_at"], "not newest first"
    # The trail: the trust and the approval, both by the administrator through the API.
    events = client_trail(admin, cid)
    types = sorted(e["type"] for e in events if e["type"] != "vendor_trust.created")
    assert types == ["client.approved", "client.registered"], events
    approval = assert_event(server, only(events, "client.approved"), "client.approved",
                            actor=user_actor(admin, ADMIN_EMAIL), via="api", client=approved,
                            status="approved")
    assert approval.get("detail") == {"config_version": approved["config_version"]}, approval
    # docs/events.md: the created event is about the approved client.
    created = assert_created_event(server, admin, tid, app, "api")
    assert created.get("client_id") == cid, created


def test_matching_registration_is_approved_at_once_and_usable_by_a_regular_user(server, admin):
    app = new_app()
    _, tid = trust_app(server, admin, app)
    reordered = variant(app, redirect_uris=list(reversed(app["redirect_uris"])),
                        client_name=unique("second-user"))
    resp = request("POST", server.register_url, reordered)
    assert resp[0] == 201, resp
    client = json_body(resp)
    for name in ("client_id", "client_secret", "registration_access_token",
                 "registration_client_uri", "client_id_issued_at"):
        assert client.get(name), f"{name} missing from the registration response: {client}"
    assert client["redirect_uris"] == reordered["redirect_uris"], client
    assert client.get("software_id") == app["software_id"], client
    doc = assert_trusted(admin, client, tid)
    assert doc.get("config_version") == 1, doc
    assert "access_requests" not in doc, doc
    tokens = user_connects(server, client)
    assert tokens.get("refresh_token"), tokens
    # The trail: registered (approved, by the trust), approved by the system via the trust.
    events = client_trail(admin, client["client_id"])
    assert sorted(e["type"] for e in events) == ["client.approved", "client.registered"], events
    registered = assert_event(server, only(events, "client.registered"), "client.registered",
                              actor={"type": "anonymous"}, via="registration", client=client,
                              status="approved")
    assert registered.get("detail") == {"vendor_trust": tid}, registered
    approved = assert_event(server, only(events, "client.approved"), "client.approved",
                            actor={"type": "system"}, via="vendor_trust", client=client,
                            status="approved")
    assert approved.get("detail") == {"vendor_trust": tid, "config_version": 1}, approved


def test_trust_without_software_id_matches_only_registrations_without_one(server, admin):
    app = new_app(method="none", software=False)
    founding, tid = trust_app(server, admin, app)
    record = trust_of(admin, tid)
    assert "software_id" not in record, record
    assert record["token_endpoint_auth_method"] == "none", record
    assert_created_event(server, admin, tid, app, "api")
    same = register(server, **app)
    assert_trusted(admin, same, tid)
    user_connects(server, same)
    assert_pending(admin, register(server, **variant(app, software_id=unique("sw"))))
    assert_pending(admin, register(server, **variant(app, token_endpoint_auth_method=None)))


def test_every_trust_has_its_own_id_and_the_same_shape_the_same_id(server, admin):
    app = new_app()
    _, first = trust_app(server, admin, app)
    _, other = trust_app(server, admin, new_app())
    assert first != other
    # While the trust is active, a registration of the same application is approved by it
    # (so it cannot found another trust).
    same = register(server, **variant(app, redirect_uris=app["redirect_uris"][::-1]))
    assert_trusted(admin, same, first)
    assert_api_error(approve(admin, same["client_id"], {"trust_vendor": True}), 400,
                     "invalid_request")
    assert [t["id"] for t in trusts(admin)].count(first) == 1


# --------------------------------------------------------------------------------------------
# Registrations that stay pending
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusted_app(server, admin) -> tuple[dict, str]:
    """One trusted application for the registrations below: `(metadata, trust id)`."""
    app = new_app()
    _, tid = trust_app(server, admin, app)
    return app, tid


def _uris(app: dict) -> list[str]:
    return app["redirect_uris"]


OTHER_SHAPES = {
    "extra-uri": lambda a: {"redirect_uris": _uris(a) + [_uris(a)[0] + "/extra"]},
    "one-uri-fewer": lambda a: {"redirect_uris": _uris(a)[:1]},
    "different-uri": lambda a: {"redirect_uris": [_uris(a)[0], _uris(a)[1] + "x"]},
    "trailing-slash": lambda a: {"redirect_uris": [_uris(a)[0], _uris(a)[1] + "/"]},
    "client_secret_post": lambda a: {"token_endpoint_auth_method": "client_secret_post"},
    "public-client": lambda a: {"token_endpoint_auth_method": "none", "grant_types": None},
    "other-software-id": lambda a: {"software_id": unique("com.example.other")},
    "software-id-case": lambda a: {"software_id": a["software_id"].upper()},
    "no-software-id": lambda a: {"software_id": None},
    "plus-loopback-ip": lambda a: {"redirect_uris": _uris(a) + ["http://127.0.0.1/cb"]},
    "plus-localhost-port": lambda a: {"redirect_uris": _uris(a) + ["http://localhost:3000/cb"]},
    "plus-private-scheme": lambda a: {"redirect_uris": _uris(a) + ["com.example.app:/cb"]},
    "loopback-ip-only": lambda a: {"redirect_uris": ["http://127.0.0.1/cb"]},
    "localhost-port-only": lambda a: {"redirect_uris": ["http://localhost:3000/cb"]},
    "private-scheme-only": lambda a: {"redirect_uris": ["com.example.app:/cb"]},
    "https-localhost": lambda a: {"redirect_uris": ["https://localhost/cb"]},
    "https-ip": lambda a: {"redirect_uris": ["https://10.0.0.1/cb"]},
    "plus-https-localhost": lambda a: {"redirect_uris": _uris(a) + ["https://localhost/cb"]},
    "plus-https-ip": lambda a: {"redirect_uris": _uris(a) + ["https://10.0.0.1/cb"]},
}


@pytest.mark.parametrize("shape", list(OTHER_SHAPES))
def test_registration_of_another_shape_stays_pending(server, admin, trusted_app, shape):
    app, _ = trusted_app
    doc = variant(app, client_name=unique(f"other-{shape}"), **OTHER_SHAPES[shape](app))
    resp = request("POST", server.register_url, doc)
    if resp[0] == 400 and "https" in shape:
        # Not a valid registration at all (the DCR redirect URI rules): nothing to approve.
        assert json_body(resp).get("error") in ("invalid_redirect_uri", "invalid_client_metadata")
        return
    assert resp[0] == 201, f"{shape}: {resp[0]} {resp[2][:500]!r}"
    assert_pending(admin, json_body(resp))


def test_exact_registration_of_the_trusted_app_is_still_approved(server, admin, trusted_app):
    """The control for the shapes above: the same trust approves its own shape."""
    app, tid = trusted_app
    assert_trusted(admin, register(server, **app), tid)


# --------------------------------------------------------------------------------------------
# Revocation
# --------------------------------------------------------------------------------------------


def test_revocation_keeps_the_clients_it_approved_and_stops_new_ones(server, admin):
    app = new_app()
    founding, tid = trust_app(server, admin, app)
    client = register(server, **app)
    assert_trusted(admin, client, tid)
    tokens = user_connects(server, client)
    time.sleep(1.1)  # the revocation a second after the approval (the same second: below)
    assert_no_content(revoke_trust(admin, tid))
    revoked = trust_of(admin, tid)
    assert isinstance(revoked.get("revoked_at"), int), revoked
    assert abs(revoked["revoked_at"] - time.time()) < TEN_MINUTES, revoked
    time.sleep(1.1)
    assert_no_content(revoke_trust(admin, tid))
    assert trust_of(admin, tid) == revoked, "revoking again changed the record"
    # The client it approved stays approved and keeps working.
    assert_trusted(admin, client, tid)
    assert_tokens(refresh(server, client, tokens["refresh_token"]), refresh_token=True)
    user_connects(server, client, consent=None)
    # A new matching registration is pending like any other.
    assert_pending(admin, register(server, **app))
    events = trust_events(admin, "vendor_trust.revoked", tid)
    assert len(events) == 1, f"one revocation event, not one per DELETE: {events}"
    event = assert_event(server, events[0], "vendor_trust.revoked",
                         actor=user_actor(admin, ADMIN_EMAIL), via="api")
    assert event.get("detail") == {"vendor_trust": tid, "client_name": founding["client_name"],
                                   "redirect_uris": sorted(app["redirect_uris"])}, event


@pytest.mark.parametrize("mode", MODES)
def test_client_registered_in_the_second_of_the_revocation_keeps_working(start_server, mode):
    """Registered (approved) just before the revocation, within the same clock second. (A server
    of its own: a client the server cannot read would break the shared server's listings.)"""
    s = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    boss = Admin(s)
    app = new_app()
    _, tid = trust_app(s, boss, app)
    time.sleep(1.02 - time.time() % 1)  # at the start of a second: both fit in it
    client = register(s, **app)
    assert_no_content(revoke_trust(boss, tid))
    assert_trusted(boss, client, tid)
    assert_json(boss.api("GET", "/oauth-clients"))
    user_connects(s, client)


def test_trust_revoked_and_trusted_again_is_reactivated(server, admin):
    app = new_app()
    _, tid = trust_app(server, admin, app)
    assert_no_content(revoke_trust(admin, tid))
    assert_pending(admin, register(server, **app))
    _, again = trust_app(server, admin, app)
    assert again == tid
    record = trust_of(admin, tid)
    assert "revoked_at" not in record, record
    assert_trusted(admin, register(server, **app), tid)


def test_unknown_or_malformed_trust_id_is_404(server, admin):
    _, tid = trust_app(server, admin, new_app())
    for bad in (secrets.token_hex(32), tid.upper(), tid[:-1], tid + "0", "nope", "x" * 64,
                "%20" + tid):
        assert_api_error(revoke_trust(admin, bad), 404, "not_found")
    assert "revoked_at" not in trust_of(admin, tid)


def test_other_methods_are_405(server, admin):
    _, tid = trust_app(server, admin, new_app())
    for method in ("GET", "POST", "PUT", "PATCH"):
        resp = admin.api(method, f"/vendor-trusts/{tid}", None if method == "GET" else {})
        assert resp[0] == 405, f"{method} …/vendor-trusts/id: {resp[0]} {resp[2][:300]!r}"
        assert resp[1].get("allow") == "DELETE", resp[1]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        resp = admin.api(method, "/vendor-trusts", None if method == "DELETE" else {})
        assert resp[0] == 405, f"{method} …/vendor-trusts: {resp[0]} {resp[2][:300]!r}"
        assert resp[1].get("allow") == "GET", resp[1]
    assert "revoked_at" not in trust_of(admin, tid)


# --------------------------------------------------------------------------------------------
# A trust-approved client is an approved client like any other
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_trusted_client_dropping_a_redirect_uri_keeps_working(start_server, mode):
    """RFC 7592: an approved client may drop redirect URIs on its own, at once. (A server of its
    own: a client the server cannot read would break the shared server's listings.)"""
    s = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    boss = Admin(s)
    app = new_app()
    _, tid = trust_app(s, boss, app)
    client = register(s, **app)
    kept = app["redirect_uris"][1]
    resp = put(s, client, update_body(current(s, client), redirect_uris=[kept]))
    assert resp[0] == 200, resp
    assert_json(boss.api("GET", "/oauth-clients"))
    doc = client_doc(boss, client["client_id"])
    assert doc["status"] == "approved" and doc["redirect_uris"] == [kept], doc
    user_connects(s, dict(client, redirect_uris=[kept]))


def test_trusted_client_can_be_edited_and_its_changes_approved(server, admin):
    app = new_app()
    _, tid = trust_app(server, admin, app)
    client = register(server, **app)
    cid = client["client_id"]
    tokens = user_connects(server, client)
    assert_json(admin.patch_client(cid, {"consentMethod": "trusted"}))
    renamed = unique("renamed")
    resp = put(server, client, update_body(current(server, client), client_name=renamed))
    assert resp[0] == 200, resp
    assert client_doc(admin, cid).get("pending_changes", {}).get("client_name") == renamed
    doc = assert_json(approve(admin, cid))
    assert doc["client_name"] == renamed and doc["status"] == "approved", doc
    assert_tokens(refresh(server, client, tokens["refresh_token"]), refresh_token=True)
    user_connects(server, client, consent=False)  # consentMethod trusted: no consent page
    # Deleting it leaves the trust alone.
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{cid}"))
    assert "revoked_at" not in trust_of(admin, tid)
    assert_trusted(admin, register(server, **app), tid)
