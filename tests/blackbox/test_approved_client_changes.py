"""An approved client cannot rewrite itself: RFC 7592 updates of an approved DCR client, black box.

RFC 7592 §2.2 lets a client replace its own registration with its registration access token,
and lets the server substitute its own values for those it does not accept. Once an
administrator has approved a client, what the administrator approved stays in force:

- A `PUT` that changes what users are shown or where codes go (redirect URIs, name, wider scope)
  answers `200` with the values in force — the approved ones — and the proposal waits as
  `pending_changes` in the admin API (`GET …/oauth-clients/{id}`), the client staying
  `approved` with the same `config_version`.
- A proposed redirect URI is refused with the "Administrator approval required" page (`403`,
  never a redirect); the approved redirect URI keeps working meanwhile, and users see the
  approved name on the consent page.
- `POST …/oauth-clients/{id}/approve` applies the proposal: the new values take effect, the
  proposal is gone, `config_version` moves and every user consents again. With nothing
  waiting it is `409 invalid_request`.
- A later `PUT` replaces the proposal; a `PUT` back to the approved values withdraws it; a
  change of harmless metadata (`software_version`) applies at once.
- A redirect URI the client no longer lists stops working at once: withdrawing one can only
  narrow where codes go (a client that lost a domain must not keep receiving codes there).

Each test registers its own client on the shared server (both stores) and approves it as the
demo administrator on the hosted approval page.
"""

from __future__ import annotations

import secrets
import sys

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    REDIRECT_URI,
    REFRESHING,
    Admin,
    approved_dcr_client,
    assert_api_error,
    assert_consent_page,
    assert_json,
    authorize,
    code_of,
    mcp,
    page_form,
    register,
    unique,
    unique_email,
)
from test_authorization import (  # noqa: E402
    Browser,
    assert_error_redirect,
    assert_page,
    signed_in_browser,
)
from test_client_configuration import current, put, update_body  # noqa: E402
from conftest import json_body, request  # noqa: E402
from test_tokens import assert_tokens, exchange, refresh  # noqa: E402

ATTACKER_URI = "https://attacker.example/cb"
SECOND_URI = "https://agent.example.com/second-cb"
APPROVAL_TEXT = "approval"  # "Administrator approval required"


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    """The demo administrator: console session (its browser approves clients) and API token."""
    return Admin(server)


@pytest.fixture(scope="module")
def member(server, admin) -> Browser:
    """A regular user of the tenant (added through the users API), signed in on the hosted
    flow."""
    email = unique_email("member")
    password = "member-" + secrets.token_urlsafe(12)
    admin.add_user(email, password, "user")
    return signed_in_browser(server, email, password)


def approve_changes(admin: Admin, client_id: str):
    return admin.api("POST", f"/oauth-clients/{client_id}/approve")


def assert_waits_for_approval(server, client: dict, redirect_uri: str,
                              browser: Browser | None = None) -> None:
    """A proposed redirect URI is an "Administrator approval required" page, never a
    redirect."""
    resp = (browser or Browser(server)).authorize(client, redirect_uri=redirect_uri)
    assert_page(resp, 403, APPROVAL_TEXT)


def pending_changes(view: dict) -> dict:
    """The admin API's `pending_changes` of a client view: an object while changes wait."""
    changes = view.get("pending_changes")
    assert isinstance(changes, dict), f"no pending_changes object in {view}"
    return changes


def assert_shows(doc: dict, **values) -> None:
    for field, value in values.items():
        assert doc.get(field) == value, f"{field}: {doc.get(field)!r} != {value!r} in {doc}"


# --------------------------------------------------------------------------------------------
# New redirect URIs and name
# --------------------------------------------------------------------------------------------


def test_a_new_redirect_uri_and_name_wait_for_approval_while_the_approved_ones_stay_in_force(
        server, admin, member):
    name = unique("approved-agent")
    client, _ = approved_dcr_client(server, admin, client_name=name, grant_types=REFRESHING)
    cid = client["client_id"]
    assert_json(admin.patch_client(cid, {"consentMethod": "trusted"}))
    before = admin.client(cid)
    proposed = unique("rewritten-agent")

    shown = assert_json(put(server, client, update_body(
        current(server, client), client_name=proposed,
        redirect_uris=[REDIRECT_URI, ATTACKER_URI])))
    # RFC 7592 §2.2: the answer carries the values in force, which are still the approved ones.
    assert shown.get("client_id") == cid, shown
    assert_shows(shown, client_name=name, redirect_uris=[REDIRECT_URI])
    assert_shows(current(server, client), client_name=name, redirect_uris=[REDIRECT_URI])

    view = admin.client(cid)
    assert_shows(view, status="approved", client_name=name, redirect_uris=[REDIRECT_URI],
                 config_version=before["config_version"])
    assert_shows(pending_changes(view), client_name=proposed,
                 redirect_uris=[REDIRECT_URI, ATTACKER_URI])

    # The proposed redirect URI is refused with a page, signed in or not.
    assert_waits_for_approval(server, client, ATTACKER_URI)
    assert_waits_for_approval(server, client, ATTACKER_URI, member)
    # The approved one keeps working: a trusted client, a signed-in user, a code at once.
    code = code_of(server, authorize(server, member, client))
    assert_tokens(exchange(server, client, code), refresh_token=True)

    approved = assert_json(approve_changes(admin, cid))
    assert_shows(approved, status="approved", client_name=proposed,
                 redirect_uris=[REDIRECT_URI, ATTACKER_URI])
    assert "pending_changes" not in approved, approved
    assert approved["config_version"] > before["config_version"], approved
    assert "pending_changes" not in admin.client(cid)
    assert_shows(current(server, client), client_name=proposed,
                 redirect_uris=[REDIRECT_URI, ATTACKER_URI])

    # Now the new redirect URI is the client's too.
    code_of(server, authorize(server, member, client, redirect_uri=ATTACKER_URI))
    code_of(server, authorize(server, member, client, redirect_uri=REDIRECT_URI))
    # Nothing is waiting any more.
    assert_api_error(approve_changes(admin, cid), 409, "invalid_request")


def test_approved_changes_take_effect_and_every_user_consents_again(server, admin, member):
    name = unique("consented-agent")
    client, _ = approved_dcr_client(server, admin, client_name=name, grant_types=REFRESHING)
    cid = client["client_id"]
    before = admin.client(cid)
    assert before["consentMethod"] == "required", before
    proposed = unique("renamed-agent")
    assert_json(put(server, client, update_body(
        current(server, client), client_name=proposed,
        redirect_uris=[REDIRECT_URI, SECOND_URI])))

    # While the change waits, users consent to the approved configuration.
    attempt = authorize(server, member, client)
    form = assert_consent_page(attempt.resp)
    assert name in attempt.resp.text and proposed not in attempt.resp.text, attempt.resp.text
    code_of(server, attempt, member.submit(form, "approve"))
    code_of(server, authorize(server, member, client))  # consent remembered: no page
    assert_waits_for_approval(server, client, SECOND_URI, member)

    approved = assert_json(approve_changes(admin, cid))
    assert_shows(approved, client_name=proposed, redirect_uris=[REDIRECT_URI, SECOND_URI])
    assert "pending_changes" not in approved, approved
    assert approved["config_version"] > before["config_version"], approved

    # The user who consented before is asked again, now about the new configuration.
    again = authorize(server, member, client, redirect_uri=SECOND_URI)
    form = assert_consent_page(again.resp)
    assert proposed in again.resp.text, again.resp.text
    code_of(server, again, member.submit(form, "approve"))
    code_of(server, authorize(server, member, client))


def test_a_second_update_replaces_the_waiting_changes_and_the_approved_values_withdraw_them(
        server, admin):
    name = unique("indecisive-agent")
    client, _ = approved_dcr_client(server, admin, client_name=name)
    cid = client["client_id"]
    approved_doc = current(server, client)
    version = admin.client(cid)["config_version"]
    first_uri, second_uri = "https://attacker.example/one", "https://attacker.example/two"

    assert_json(put(server, client, update_body(approved_doc, client_name="First proposal",
                                                redirect_uris=[REDIRECT_URI, first_uri])))
    assert_shows(pending_changes(admin.client(cid)), client_name="First proposal",
                 redirect_uris=[REDIRECT_URI, first_uri])
    assert_json(put(server, client, update_body(approved_doc, client_name="Second proposal",
                                                redirect_uris=[REDIRECT_URI, second_uri])))
    view = admin.client(cid)
    assert_shows(pending_changes(view), client_name="Second proposal",
                 redirect_uris=[REDIRECT_URI, second_uri])
    assert_shows(view, client_name=name, redirect_uris=[REDIRECT_URI], config_version=version)
    # The replaced proposal is gone: its redirect URI is simply unknown now.
    assert_page(Browser(server).authorize(client, redirect_uri=first_uri), 400)
    assert_waits_for_approval(server, client, second_uri)

    # Back to exactly what was approved: nothing waits any more.
    shown = assert_json(put(server, client, update_body(approved_doc)))
    assert_shows(shown, client_name=name, redirect_uris=[REDIRECT_URI])
    view = admin.client(cid)
    assert "pending_changes" not in view, view
    assert_shows(view, status="approved", client_name=name, redirect_uris=[REDIRECT_URI],
                 config_version=version)
    assert_page(Browser(server).authorize(client, redirect_uri=second_uri), 400)
    assert_api_error(approve_changes(admin, cid), 409, "invalid_request")


def test_a_redirect_uri_the_client_no_longer_lists_stops_working_at_once(server, admin):
    client, _ = approved_dcr_client(server, admin, redirect_uris=[REDIRECT_URI, SECOND_URI])
    cid = client["client_id"]
    version = admin.client(cid)["config_version"]
    shown = assert_json(put(server, client, update_body(current(server, client),
                                                        redirect_uris=[SECOND_URI])))
    assert_shows(shown, redirect_uris=[SECOND_URI])
    view = admin.client(cid)
    assert "pending_changes" not in view, view
    assert_shows(view, status="approved", redirect_uris=[SECOND_URI], config_version=version)
    assert_page(Browser(server).authorize(client, redirect_uri=REDIRECT_URI), 400)
    resp = Browser(server).authorize(client, redirect_uri=SECOND_URI, response_type="token",
                                     state="still-approved")
    assert_error_redirect(resp, server, SECOND_URI, "unsupported_response_type",
                          "still-approved")


def test_a_client_that_deletes_its_own_registration_loses_its_tokens(server, admin):
    client, code = approved_dcr_client(server, admin, grant_types=REFRESHING)
    tokens = assert_tokens(exchange(server, client, code), refresh_token=True)
    assert mcp(server, tokens["access_token"])[0] == 200
    assert request("DELETE", client["registration_client_uri"], None,
                   {"Authorization": f"Bearer {client['registration_access_token']}"})[0] == 204
    # RFC 7592 §2.3: the client is gone, and so is every grant it held.
    resp = refresh(server, client, tokens["refresh_token"])
    assert resp[0] == 401 and json_body(resp).get("error") == "invalid_client", resp
    assert mcp(server, tokens["access_token"])[0] == 401, "the grant outlived its client"
    assert admin.api("GET", f"/oauth-clients/{client['client_id']}")[0] == 404


def console_client_page(server, admin: Admin, client_id: str):
    resp = admin.browser.get(f"{server.issuer}/admin/clients/{client_id}")
    assert resp.status == 200, resp
    return resp


def test_the_console_shows_the_changes_and_approves_exactly_what_it_showed(server, admin):
    name = unique("console-agent")
    client, _ = approved_dcr_client(server, admin, client_name=name)
    cid = client["client_id"]
    first = unique("first-proposal")
    assert_json(put(server, client, update_body(current(server, client), client_name=first)))
    page = console_client_page(server, admin, cid)
    assert "Changes awaiting approval" in page.text and first in page.text, page.text
    form = page_form(page, "approve")
    assert form.fields.get("shown"), form

    # The client changes its proposal while the page is open: the click approves nothing.
    second = unique("second-proposal")
    assert_json(put(server, client, update_body(current(server, client), client_name=second)))
    again = admin.browser.submit(form)
    assert again.status == 409 and second in again.text, again
    view = admin.client(cid)
    assert_shows(view, client_name=name)
    assert_shows(pending_changes(view), client_name=second)

    # The page shown now approves what it shows.
    done = admin.browser.submit(page_form(again, "approve"))
    assert done.status in (302, 303), done
    view = admin.client(cid)
    assert_shows(view, client_name=second)
    assert "pending_changes" not in view, view


def test_the_console_approves_a_pending_client_only_as_shown(server, admin):
    client = register(server, client_name=unique("queued"))
    cid = client["client_id"]
    form = page_form(console_client_page(server, admin, cid), "approve")
    renamed = unique("renamed-while-queued")
    assert_json(put(server, client, update_body(current(server, client), client_name=renamed)))
    again = admin.browser.submit(form)
    assert again.status == 409 and renamed in again.text, again
    assert admin.client(cid)["status"] == "pending"
    done = admin.browser.submit(page_form(again, "approve"))
    assert done.status in (302, 303), done
    assert_shows(admin.client(cid), status="approved", client_name=renamed)


# --------------------------------------------------------------------------------------------
# Scope and harmless metadata
# --------------------------------------------------------------------------------------------


def test_a_wider_scope_waits_for_approval(server, admin):
    client, _ = approved_dcr_client(server, admin, scope="user_default")
    cid = client["client_id"]
    assert client["scope"] == "user_default", client
    version = admin.client(cid)["config_version"]

    shown = assert_json(put(server, client, update_body(current(server, client),
                                                        scope="user_default mcp:execute")))
    assert shown.get("scope") == "user_default", shown
    assert current(server, client).get("scope") == "user_default"
    view = admin.client(cid)
    assert_shows(view, status="approved", scope="user_default", config_version=version)
    changes = pending_changes(view)
    assert set(changes.get("scope", "").split()) == {"user_default", "mcp:execute"}, changes

    # Until approved, the client cannot ask for the new scope.
    resp = Browser(server).authorize(client, scope="mcp:execute", state="wider")
    assert_error_redirect(resp, server, REDIRECT_URI, "invalid_scope", "wider")

    approved = assert_json(approve_changes(admin, cid))
    assert set(approved["scope"].split()) == {"user_default", "mcp:execute"}, approved
    assert approved["config_version"] > version, approved
    assert "pending_changes" not in approved, approved
    assert_page(Browser(server).authorize(client, scope="mcp:execute"), 200, "Sign in")


def test_a_software_version_change_applies_at_once(server, admin):
    client, _ = approved_dcr_client(server, admin, software_id="black-box-agent",
                                    software_version="1.0.0")
    cid = client["client_id"]
    shown = assert_json(put(server, client, update_body(current(server, client),
                                                        software_version="1.1.0")))
    assert shown.get("software_version") == "1.1.0", shown
    assert current(server, client).get("software_version") == "1.1.0"
    view = admin.client(cid)
    assert "pending_changes" not in view, view
    assert_shows(view, status="approved", software_version="1.1.0")
    # Nothing waits for an administrator.
    assert_api_error(approve_changes(admin, cid), 409, "invalid_request")
