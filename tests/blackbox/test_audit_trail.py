"""The audit trail, black box (issue 17): every administrator action, approval (consent page,
console, API, CLI), rejection, registration, access request, edit, deletion, settings and user
change, API token, sign-in and failed sign-in is an event in `GET {issuer}/api/v1/audit-events`
with the right type, actor, `via` and client — and nothing secret is in any of them (nor in the
server's log).

The query mechanics (filters, cursors, errors, authentication), the retention setting and the
console's audit page are in `test_audit_trail_api.py`. Events are found by the client they
concern (its trail ends with its registration or creation) or by a fresh user.
"""

from __future__ import annotations

import sys
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    USER_EMAIL,
    Admin,
    api,
    approve_as_admin,
    approved_dcr_client,
    assert_json,
    assert_no_content,
    authorize,
    console_sign_in,
    console_sign_in_attempt,
    is_approval_page,
    page_form,
    register,
    secret_keys,
    unique,
    unique_email,
)
from conftest import MODES, json_body, request  # noqa: E402
from test_access_requests import asked, assert_event, dom, user_actor  # noqa: E402
from test_access_requests_admin import assert_back_to_queue, queue_forms  # noqa: E402
from test_authorization import Browser, assert_page  # noqa: E402
from test_client_configuration import current, put, update_body  # noqa: E402
from test_operator_cli import run, server_env  # noqa: E402

PASSWORD = "a long enough password"
WRONG_PASSWORD_PREFIX = "typed-wrong-"
CLIENT_ORIGINS = ("client.registered", "client.created")

# --------------------------------------------------------------------------------------------
# Reading the trail
# --------------------------------------------------------------------------------------------


def audit(admin: Admin, **params):
    query = urllib.parse.urlencode(params)
    return admin.api("GET", "/audit-events" + (f"?{query}" if query else ""))


def audit_page(admin: Admin, **params) -> tuple[list[dict], str | None]:
    """One page: `{"data": [...], "next_cursor"?}`, newest first, no secret-looking keys."""
    doc = assert_json(audit(admin, **params))
    assert set(doc) <= {"data", "next_cursor"}, doc
    data = doc.get("data")
    assert isinstance(data, list), doc
    times = [e["occurred_at"] for e in data]
    assert times == sorted(times, reverse=True), f"not newest first: {times}"
    for event in data:
        assert not secret_keys(event), f"secret-looking keys {secret_keys(event)}: {event}"
    cursor = doc.get("next_cursor")
    assert cursor is None or (isinstance(cursor, str) and cursor), doc
    return data, cursor


def trail(admin: Admin, until=None, pages: int = 40, **params) -> list[dict]:
    """Pages (100 events each unless `limit` says otherwise), newest first, until the trail
    ends or `until(events so far)` holds."""
    params.setdefault("limit", 100)
    events: list[dict] = []
    cursor = None
    for _ in range(pages):
        data, cursor = audit_page(admin, **params, **({"cursor": cursor} if cursor else {}))
        events.extend(data)
        if cursor is None or (until is not None and until(events)):
            return events
    raise AssertionError(f"the trail {params} did not end within {pages} pages")


def client_trail(admin: Admin, cid: str) -> list[dict]:
    """Every event of a client: they end (oldest) with its registration or creation."""
    events = trail(admin, client_id=cid,
                   until=lambda ev: any(e["type"] in CLIENT_ORIGINS for e in ev))
    assert all(e.get("client_id") == cid for e in events), events
    return events


def only(events: list[dict], type_: str) -> dict:
    found = [e for e in events if e["type"] == type_]
    assert len(found) == 1, f"expected one {type_}, got {[e['type'] for e in events]}"
    return found[0]


def source_of(browser: Browser | None) -> str:
    """The address a black-box browser's requests come from."""
    return (browser.source if browser is not None and browser.source else None) or "127.0.0.1"


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    return Admin(server)


@pytest.fixture(scope="module")
def admin_actor(admin) -> dict:
    return user_actor(admin, ADMIN_EMAIL)


# --------------------------------------------------------------------------------------------
# Clients: registration, access request, approvals, edits, rejection, deletion
# --------------------------------------------------------------------------------------------


def test_registration_is_audited(server, admin):
    client = register(server, client_name=unique("audit-reg"), software_id=unique("sw"))
    event = only(client_trail(admin, client["client_id"]), "client.registered")
    assert_event(server, event, "client.registered", actor={"type": "anonymous"},
                 via="registration", client=client, status="pending")
    assert event.get("source_ip") == "127.0.0.1", event


def test_access_request_is_audited(server, admin):
    client = register(server, client_name=unique("audit-ask"))
    browser = asked(server, admin, client)
    events = client_trail(admin, client["client_id"])
    assert [e["type"] for e in events] == ["client.access_requested", "client.registered"], events
    event = assert_event(server, events[0], "client.access_requested",
                         actor=user_actor(admin, USER_EMAIL), client=client, status="pending")
    assert [r["email"] for r in event["access_requests"]] == [USER_EMAIL], event
    assert event.get("source_ip") == source_of(browser), event


def test_approval_on_the_consent_page_is_audited(server, admin, admin_actor):
    client = register(server, client_name=unique("audit-consent"))
    approve_as_admin(server, admin.browser, client)
    doc = admin.client(client["client_id"])
    event = only(client_trail(admin, client["client_id"]), "client.approved")
    assert_event(server, event, "client.approved", actor=admin_actor, via="consent_page",
                 client=doc, status="approved")
    assert event.get("detail") == {"config_version": doc["config_version"]}, event
    assert event.get("source_ip") == source_of(admin.browser), event


def test_approval_through_the_api_is_audited(server, admin, admin_actor):
    client = register(server, client_name=unique("audit-api-approve"))
    doc = assert_json(admin.api("POST", f"/oauth-clients/{client['client_id']}/approve"))
    event = only(client_trail(admin, client["client_id"]), "client.approved")
    assert_event(server, event, "client.approved", actor=admin_actor, via="api", client=doc,
                 status="approved")
    assert event.get("detail") == {"config_version": doc["config_version"]}, event


def test_approval_and_rejection_in_the_console_are_audited(server, admin, admin_actor):
    approve_me = register(server, client_name=unique("audit-console-approve"))
    reject_me = register(server, client_name=unique("audit-console-reject"))
    _, approve, _ = queue_forms(server, admin.browser, approve_me["client_id"])
    assert_back_to_queue(server, admin.browser.submit(approve))
    before = admin.client(reject_me["client_id"])
    _, _, reject = queue_forms(server, admin.browser, reject_me["client_id"])
    assert_back_to_queue(server, admin.browser.submit(reject))
    approved = only(client_trail(admin, approve_me["client_id"]), "client.approved")
    assert_event(server, approved, "client.approved", actor=admin_actor, via="console",
                 client=admin.client(approve_me["client_id"]), status="approved")
    events = client_trail(admin, reject_me["client_id"])
    assert [e["type"] for e in events] == ["client.rejected", "client.registered"], events
    assert_event(server, events[0], "client.rejected", actor=admin_actor, via="console",
                 client=before, status="pending")


def test_rejection_through_the_api_is_audited(server, admin, admin_actor):
    client = register(server, client_name=unique("audit-api-reject"))
    before = admin.client(client["client_id"])
    assert_no_content(admin.api("POST", f"/oauth-clients/{client['client_id']}/reject"))
    event = only(client_trail(admin, client["client_id"]), "client.rejected")
    assert_event(server, event, "client.rejected", actor=admin_actor, via="api", client=before,
                 status="pending")


def test_cli_approval_is_audited(server, admin):
    if server.mode != "dynamodb":
        pytest.skip("the operator CLI works on a DynamoDB table (the dynamodb-mode run checks it)")
    client = register(server, client_name=unique("audit-cli"))
    # The CLI links the console when it knows the public URL.
    env = dict(server_env(server), GATEHOUSE_PUBLIC_URL=server.base)
    done = run(["clients", "approve", "demo", client["client_id"]], env)
    assert done.returncode == 0, done.stderr
    event = only(client_trail(admin, client["client_id"]), "client.approved")
    assert_event(server, event, "client.approved", actor={"type": "operator"}, via="cli",
                 client=admin.client(client["client_id"]), status="approved")
    by_operator = trail(admin, actor="operator", until=lambda ev: len(ev) >= 1)
    assert by_operator[0]["id"] == event["id"], by_operator[:1]


def test_client_deleting_its_own_registration_is_audited(server, admin):
    """RFC 7592 §2.3: the client itself is the actor."""
    client = register(server, client_name=unique("audit-self-delete"))
    cid = client["client_id"]
    before = admin.client(cid)
    resp = request("DELETE", client["registration_client_uri"],
                   headers={"Authorization": f"Bearer {client['registration_access_token']}"})
    assert resp[0] == 204, resp
    event = only(client_trail(admin, cid), "client.deleted")
    assert_event(server, event, "client.deleted", actor={"type": "client", "id": cid},
                 via="client", client=before, status="pending")


def test_creation_edits_and_deletion_are_audited(server, admin, admin_actor):
    created = admin.create_client(client_name=unique("audit-edit"))
    cid = created["client_id"]
    name = unique("audit-renamed")
    edited = assert_json(admin.patch_client(cid, {"scope": "mcp:execute", "client_name": name,
                                                  "consentMethod": "trusted"}))
    assert_json(admin.patch_client(cid, {"consentMethod": "required"}))
    assert_no_content(admin.api("DELETE", f"/oauth-clients/{cid}"))
    events = client_trail(admin, cid)
    assert [e["type"] for e in events] == ["client.deleted", "client.edited", "client.edited",
                                           "client.created"], events
    deleted, second, first, origin = events
    assert_event(server, origin, "client.created", actor=admin_actor, via="api", client=created,
                 status="approved")
    assert_event(server, first, "client.edited", actor=admin_actor, via="api", client=edited,
                 status="approved")
    detail = first.get("detail", {})
    assert sorted(detail.get("changed", [])) == ["client_name", "consent_method", "scope"], first
    assert (detail.get("scope"), detail.get("consent_method"), detail.get("client_name")) == (
        "mcp:execute", "trusted", name), first
    assert second.get("detail") == {"changed": ["consent_method"], "consent_method": "required"}
    assert_event(server, deleted, "client.deleted", actor=admin_actor, via="api",
                 client=dict(edited, consentMethod="required"), status="approved")


def test_console_edit_is_audited(server, admin, admin_actor):
    cid = admin.create_client(client_name=unique("audit-console-edit"))["client_id"]
    url = f"{server.issuer}/admin/clients/{cid}"
    page = admin.browser.get(url)
    assert_page(page, 200)
    form = dom(page).one("form", id="edit").as_form(url)
    done = admin.browser.submit(form, scope="user_default")
    assert done.status == 303, done
    event = only(client_trail(admin, cid), "client.edited")
    assert_event(server, event, "client.edited", actor=admin_actor, via="console",
                 client=admin.client(cid), status="approved")
    assert event.get("detail") == {"changed": ["scope"], "scope": "user_default"}, event


def test_approval_of_pending_changes_is_audited(server, admin, admin_actor):
    client, _ = approved_dcr_client(server, admin, client_name=unique("audit-changes"))
    cid = client["client_id"]
    renamed = unique("audit-changed")
    resp = put(server, client, update_body(current(server, client), client_name=renamed))
    assert resp[0] == 200, resp
    doc = assert_json(admin.api("POST", f"/oauth-clients/{cid}/approve"))
    assert doc["client_name"] == renamed, doc
    event = only(client_trail(admin, cid), "client.changes_approved")
    assert_event(server, event, "client.changes_approved", actor=admin_actor, via="api",
                 client=doc, status="approved")
    assert event.get("detail") == {"config_version": doc["config_version"]}, event


# --------------------------------------------------------------------------------------------
# Settings, users, API tokens
# --------------------------------------------------------------------------------------------


def test_settings_change_is_audited(server, admin, admin_actor):
    before = admin.settings()
    try:
        assert_json(admin.patch_settings({"audit_retention_days": 31,
                                          "display_name": unique("Audited")}))
        assert_json(admin.patch_settings({"audit_retention_days": 32}))
    finally:
        assert_json(admin.patch_settings({k: before[k] for k in
                                          ("audit_retention_days", "display_name")}))
    events = audit_page(admin, type="settings.changed", limit=3)[0]
    restore, second, first = events
    for event in events:
        assert_event(server, event, "settings.changed", actor=admin_actor, via="api")
        assert "client_id" not in event and "client" not in event, event
    assert sorted(first["detail"]["changed"]) == ["audit_retention_days", "display_name"], first
    assert second["detail"] == {"changed": ["audit_retention_days"]}, second
    assert sorted(restore["detail"]["changed"]) == ["audit_retention_days", "display_name"]


def user_events(admin: Admin, email: str, count: int) -> list[dict]:
    """The newest `count` user.added/user.changed events about `email`, newest first."""
    def about(events):
        return [e for e in events if e["type"] in ("user.added", "user.changed")
                and e.get("detail", {}).get("email") == email]
    return about(trail(admin, actor=ADMIN_EMAIL, until=lambda ev: len(about(ev)) >= count))


def test_user_changes_are_audited(server, admin, admin_actor):
    email = unique_email("audited")
    added = admin.add_user(email, PASSWORD)
    new_password = "reset-" + unique("password")
    for body in ({"role": "admin"}, {"disabled": True}, {"password": new_password}):
        assert_json(admin.patch_user(email, body))
    events = user_events(admin, email, 4)
    assert [e["type"] for e in events] == ["user.changed"] * 3 + ["user.added"], events
    for event in events:
        assert_event(server, event, event["type"], actor=admin_actor, via="api")
    uid = added["id"]
    assert events[3]["detail"] == {"user_id": uid, "email": email, "role": "user"}, events[3]
    expect = [(["password"], "admin", True), (["disabled"], "admin", True),
              (["role"], "admin", False)]
    for event, (changed, role, disabled) in zip(events[:3], expect):
        assert event["detail"] == {"user_id": uid, "email": email, "changed": changed,
                                   "role": role, "disabled": disabled}, event
    raw = audit(admin, actor=ADMIN_EMAIL, limit=100)[2].decode()
    assert new_password not in raw and PASSWORD not in raw
    assert new_password not in server.log() and PASSWORD not in server.log()


def test_api_tokens_are_audited(server, admin, admin_actor):
    name = unique("audited-token")
    minted = admin.session.mint(name=name, expires_in=3600)
    assert_no_content(api(server, "DELETE", "/tokens/current", token=minted["token"]))

    def mine(events):
        return [e for e in events if e.get("detail", {}).get("name") == name]
    events = mine(trail(admin, actor=ADMIN_EMAIL, until=lambda ev: len(mine(ev)) >= 2))
    assert [e["type"] for e in events] == ["api_token.revoked", "api_token.created"], events
    for event in events:
        assert_event(server, event, event["type"], actor=admin_actor)
        assert event["detail"] == {"name": name, "expires_at": minted["expires_at"]}, event
    assert events[1].get("via") == "api", events[1]
    raw = audit(admin, limit=100)[2].decode()
    secret = minted["token"].split("_", 2)[2]
    assert secret not in raw and secret not in server.log(), "the API token leaked"


# --------------------------------------------------------------------------------------------
# Sign-ins
# --------------------------------------------------------------------------------------------


def test_sign_ins_and_failed_sign_ins_are_audited(server, admin):
    email = unique_email("signs-in")
    uid = admin.add_user(email, PASSWORD)["id"]
    wrong = WRONG_PASSWORD_PREFIX + unique("pw")
    browser = Browser(server)
    page = browser.authorize(register(server, client_name=unique("audit-signin")))
    refused = browser.sign_in(page, email, wrong)
    assert refused.status == 401, refused
    assert browser.sign_in(refused, email, PASSWORD).status in (200, 302, 303, 403)
    refused_browser, console_refused = console_sign_in_attempt(server, email, wrong + "-console")
    assert console_refused.status == 401, console_refused
    console_browser = console_sign_in(server, email, PASSWORD)
    events = trail(admin, actor=email, until=lambda ev: len(ev) >= 4)
    assert [e["type"] for e in events[:4]] == ["signin.succeeded", "signin.failed",
                                               "signin.succeeded", "signin.failed"], events
    me, anonymous = {"type": "user", "id": uid, "email": email}, {"type": "anonymous",
                                                                   "email": email}
    expect = [(me, {"page": "console"}, console_browser),
              (anonymous, {"page": "console", "reason": "invalid"}, refused_browser),
              (me, {"page": "authorize"}, browser),
              (anonymous, {"page": "authorize", "reason": "invalid"}, browser)]
    for event, (actor, detail, by) in zip(events, expect):
        assert_event(server, event, event["type"], actor=actor)
        assert event.get("detail") == detail, event
        assert event.get("source_ip") == source_of(by), event
    raw = audit(admin, limit=100)[2].decode() + audit(admin, actor=email)[2].decode()
    assert wrong not in raw and PASSWORD not in raw, "a typed password is in the audit trail"
    assert WRONG_PASSWORD_PREFIX not in server.log(), "a typed password is in the server log"


def test_failed_sign_in_with_a_non_address_names_no_email(server, admin):
    browser = Browser(server)
    page = browser.authorize(register(server, client_name=unique("audit-signin-garbage")))
    typed = "not an address " + unique("x")
    refused = browser.sign_in(page, typed, WRONG_PASSWORD_PREFIX + "garbage")
    assert refused.status == 401, refused
    newest = audit_page(admin, type="signin.failed", limit=1)[0][0]
    assert_event(server, newest, "signin.failed", actor={"type": "anonymous"})
    assert newest.get("detail") == {"page": "authorize", "reason": "invalid"}, newest
    assert newest.get("source_ip") == source_of(browser), newest
    assert typed not in audit(admin, limit=100)[2].decode()


# --------------------------------------------------------------------------------------------
# Nothing secret
# --------------------------------------------------------------------------------------------


def test_no_secret_is_in_any_event_or_the_log(server, admin):
    client = register(server, client_name=unique("audit-secrets"))
    minted = admin.session.mint(name=unique("secret-token"))
    assert_no_content(api(server, "DELETE", "/tokens/current", token=minted["token"]))
    email = unique_email("secret-user")
    first, reset = "first-" + unique("password"), "reset-" + unique("password")
    admin.add_user(email, first)
    assert_json(admin.patch_user(email, {"password": reset}))
    _, refused = console_sign_in_attempt(server, email, WRONG_PASSWORD_PREFIX + "secrets")
    assert refused.status == 401, refused
    raw = audit(admin, limit=100)[2].decode() + audit(admin, client_id=client["client_id"])[2].decode()
    assert client["client_id"] in raw and email in raw, "the events to check are not listed"
    secrets_ = {"client_secret": client["client_secret"],
                "registration_access_token": client["registration_access_token"],
                "API token": minted["token"].split("_", 2)[2], "password": first,
                "reset password": reset, "failed password": WRONG_PASSWORD_PREFIX + "secrets"}
    log = server.log()
    for what, value in secrets_.items():
        assert value not in raw, f"the {what} is in the audit trail"
        assert value not in log, f"the {what} is in the server log"


# --------------------------------------------------------------------------------------------
# Expiry observed (the server's clock moved: GATEHOUSE_DEV_CLOCK_FILE, see test_lifetimes.py)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_expiry_found_on_the_approval_form_is_audited(start_server, tmp_path, mode):
    clock = tmp_path / f"clock-{mode}"
    clock.write_text("0\n")
    s = start_server({"GATEHOUSE_DEV_CLOCK_FILE": str(clock), "GATEHOUSE_PENDING_CLIENT_TTL": "60",
                      "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    boss = Admin(s)
    client = register(s, client_name=unique("audit-expired"))
    before = boss.client(client["client_id"])
    attempt = authorize(s, boss.browser, client)
    assert is_approval_page(attempt.resp), attempt.resp
    clock.write_text("120\n")  # past the client's 60 s, within the parked request's 600 s
    done = boss.browser.submit(page_form(attempt.resp, "decide"), "approve")
    assert_page(done, 410)
    events = client_trail(boss, client["client_id"])
    assert [e["type"] for e in events] == ["client.expired", "client.registered"], events
    assert_event(s, events[0], "client.expired", actor={"type": "system"}, client=before,
                 status="pending")
    assert ids_of(trail(boss, actor="system", until=lambda ev: len(ev) >= 1)[:1]) == ids_of(
        events[:1])


def ids_of(events: list[dict]) -> list[str]:
    return [e["id"] for e in events]


def test_key_rotation_is_audited(start_server):
    """`gatehouse keys rotate demo` (operator CLI, DynamoDB table): one event in the tenant's
    trail naming the new key ids, which the tenant's JWKS publishes."""
    s = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    done = run(["keys", "rotate", "demo"], server_env(s))
    assert done.returncode == 0, done.stderr
    boss = Admin(s)
    events = audit_page(boss, type="keys.rotated")[0]
    assert len(events) == 1, events
    event = assert_event(s, events[0], "keys.rotated", actor={"type": "operator"}, via="cli")
    kids = event.get("detail", {}).get("kids")
    assert isinstance(kids, list) and len(kids) == 2 and all(k in done.stdout for k in kids), event
    jwks = json_body(request("GET", f"{s.base}/t/demo/jwks.json"))
    assert set(kids) <= {k["kid"] for k in jwks["keys"]}, jwks
