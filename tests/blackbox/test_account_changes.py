"""Account changes take effect everywhere at once, and sign-in throttling holds, black box.

A user who loses a role or an account loses it everywhere, at once:
- An administrator demoted or disabled while an approval page is open cannot approve with it:
  the form is refused (`403` page, no redirect) and the client stays pending.
- Disabling a user ends their sessions: the hosted flow shows the sign-in page again (no code),
  also after the account is re-enabled.
- A password reset ends the user's sessions: the hosted flow asks to sign in again and the
  console session is `401` at the admin API.
- Disabling a user revokes their grants: refresh tokens are `invalid_grant` (and stay so after
  re-enabling), an unredeemed code is `invalid_grant`, introspection says `{"active": false}`.
- A re-enabled user signs in again and gets new, working tokens.

Sign-in throttling counts failures per account, in the store:
- Ten wrong passwords for one account within a minute: the next attempt, even with the right
  password, is `429` (hosted sign-in form and console sign-in alike).
- Successful sign-ins are not counted.
- The lockout holds across processes sharing a table (as Lambda containers do).
- Failing sign-ins for many other accounts do not lift a lockout.

Every test works with accounts of its own, added through the users API (`POST /api/v1/users`),
and each browser connects from its own loopback address where the OS allows it, so the per-IP
sign-in limit (20 a minute) is never what answers.
"""

from __future__ import annotations

import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    INVALID_CREDENTIALS_TEXT,
    REFRESHING,
    Admin,
    Attempt,
    approve_as_admin,
    approved_dcr_client,
    assert_json,
    assert_unauthenticated,
    authorize,
    code_of,
    console_sign_in,
    console_sign_in_attempt,
    is_approval_page,
    open_session,
    page_form,
    register,
    unique,
    unique_email,
)
from test_authorization import LOOPBACK_ALIASES, Browser, Resp, assert_page  # noqa: E402
from test_races_and_floods import (  # noqa: E402
    SIGNINS_PER_ACCOUNT_PER_MINUTE,
    TOO_MANY_SIGNINS_TEXT,
)
from test_tokens import active, assert_error, assert_tokens, exchange, refresh  # noqa: E402

SURFACES = ("hosted", "console")


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    """The demo administrator: console session (its browser approves clients) and API token."""
    return Admin(server)


def new_account(admin: Admin, role: str = "user") -> tuple[str, str]:
    """A fresh account added through the users API; its email and password."""
    email = unique_email(f"account-{role}")
    password = "pw-" + secrets.token_urlsafe(12)
    admin.add_user(email, password, role)
    return email, password


def trusted_client(server, admin: Admin, **fields) -> dict:
    """An approved DCR client whose users get a code without a consent page."""
    client, _ = approved_dcr_client(server, admin, client_name=unique("account-changes"),
                                    **fields)
    changed = assert_json(admin.patch_client(client["client_id"], {"consentMethod": "trusted"}))
    assert changed["consentMethod"] == "trusted", changed
    return client


def sign_in_page(server, browser: Browser, client: dict) -> Attempt:
    """The hosted flow asks `browser` to sign in: a 200 page with the sign-in form, no code."""
    attempt = authorize(server, browser, client)
    assert_page(attempt.resp, 200, "Sign in")
    page_form(attempt.resp, "sign_in")
    return attempt


def hosted_sign_in(server, client: dict, email: str, password: str,
                   browser: Browser | None = None) -> tuple[Browser, Attempt, Resp]:
    """A browser starts an authorization of `client` and signs in on the hosted form."""
    browser = browser or Browser(server)
    attempt = sign_in_page(server, browser, client)
    resp = browser.submit(page_form(attempt.resp, "sign_in"), email=email, password=password)
    return browser, attempt, resp


def sign_in_form(server, surface: str):
    """`(email, password) -> Resp`: posts one sign-in form of `surface` (the hosted form of an
    authorization request, or the console's), always from the same new browser."""
    browser = Browser(server)
    if surface == "console":
        return lambda email, password: console_sign_in_attempt(server, email, password,
                                                               browser)[1]
    page = assert_page(browser.authorize(register(server, client_name=unique("sign-in"))), 200,
                       "Sign in")
    return lambda email, password: browser.sign_in(page, email, password)


def assert_refused(resp: Resp, status: int, text: str) -> None:
    """A refused sign-in: the status, a page saying why, no session, no redirect."""
    assert resp.status == status, f"expected a {status} sign-in answer, got {resp!r}"
    assert resp.location is None, resp
    assert resp.set_cookie("gh_session") is None, resp.set_cookies
    assert text.lower() in resp.text.lower(), resp.text


def start_early_in_a_minute() -> None:
    """The per-account sign-in window is a fixed minute of the wall clock (floor(now / 60)), so
    a lockout lifts at the next minute boundary: start a lockout early in a minute, leaving the
    test at least 35 s of it for what it checks afterwards."""
    into_minute = time.time() % 60
    if into_minute > 25:
        time.sleep(60 - into_minute + 0.2)


def lock_out(server, email: str, surface: str = "hosted") -> None:
    """Ten wrong passwords for `email`."""
    start_early_in_a_minute()
    attempt = sign_in_form(server, surface)
    for i in range(SIGNINS_PER_ACCOUNT_PER_MINUTE):
        assert_refused(attempt(email, f"wrong-password-{i}"), 401, INVALID_CREDENTIALS_TEXT)


# --------------------------------------------------------------------------------------------
# An administrator who stops being one
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"role": "user"}, {"disabled": True}],
                         ids=["demoted", "disabled"])
def test_an_administrator_who_loses_the_role_cannot_approve_with_an_open_approval_page(
        server, admin, change):
    email, password = new_account(admin, "admin")
    client = register(server, client_name=unique("awaiting-approval"))
    browser, _, page = hosted_sign_in(server, client, email, password)
    assert page.status == 200 and is_approval_page(page), f"no approval page: {page!r}"
    form = page_form(page, "decide")

    assert_json(admin.patch_user(email, change))
    resp = browser.submit(form, "approve")
    assert resp.location is None, f"the decision went through: {resp!r}"
    if "disabled" in change:
        # Disabling ended the session: the form leads back to signing in, nothing else.
        assert resp.status == 200 and resp.form().fields.get("action") == "sign_in", resp
    else:
        assert_page(resp, 403)
    assert admin.client(client["client_id"])["status"] == "pending"
    # Still waiting for an administrator, who can approve it.
    approve_as_admin(server, admin.browser, client)


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def test_disabling_a_user_ends_their_session_and_re_enabling_does_not_revive_it(server, admin):
    client = trusted_client(server, admin)
    email, password = new_account(admin)
    browser, attempt, resp = hosted_sign_in(server, client, email, password)
    code_of(server, attempt, resp)
    code_of(server, authorize(server, browser, client))  # signed in: a code at once

    assert_json(admin.patch_user(email, {"disabled": True}))
    sign_in_page(server, browser, client)
    assert_json(admin.patch_user(email, {"disabled": False}))
    sign_in_page(server, browser, client)


def test_a_password_reset_ends_every_session_of_the_user(server, admin):
    client = trusted_client(server, admin)
    email, password = new_account(admin, "admin")
    browser, attempt, resp = hosted_sign_in(server, client, email, password)
    code_of(server, attempt, resp)
    console = open_session(server, email, password)
    assert_json(console.call("GET", "/oauth-clients", csrf=None))

    new_password = "new-pw-" + secrets.token_urlsafe(12)
    assert_json(admin.patch_user(email, {"password": new_password}))
    attempt = sign_in_page(server, browser, client)
    assert_unauthenticated(console.call("GET", "/oauth-clients", csrf=None))

    # The new password opens a new session.
    resp = browser.submit(page_form(attempt.resp, "sign_in"), email=email,
                          password=new_password)
    code_of(server, attempt, resp)


def test_signing_out_of_the_console_ends_the_session(server, admin):
    email, password = new_account(admin, "admin")
    console = open_session(server, email, password)
    cookie = console.cookie
    assert_json(console.call("GET", "/oauth-clients", csrf=None))
    resp = console.browser.post(f"{server.issuer}/admin/signout", {"csrf": console.csrf})
    assert resp.status in (302, 303), resp
    # The session is gone from the store, not only from this browser: the old cookie is dead.
    console.browser.set_cookie("gh_session", cookie)
    assert_unauthenticated(console.call("GET", "/oauth-clients", csrf=None))


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def test_disabling_a_user_revokes_their_grants_and_unredeemed_codes(server, admin):
    client = trusted_client(server, admin, grant_types=REFRESHING)
    email, password = new_account(admin)
    browser, attempt, resp = hosted_sign_in(server, client, email, password)
    tokens = assert_tokens(exchange(server, client, code_of(server, attempt, resp)),
                           refresh_token=True)
    unredeemed = code_of(server, authorize(server, browser, client))
    assert active(server, client, tokens["refresh_token"]).get("active") is True

    assert_json(admin.patch_user(email, {"disabled": True}))
    assert_error(refresh(server, client, tokens["refresh_token"]), 400, "invalid_grant")
    assert_error(exchange(server, client, unredeemed), 400, "invalid_grant")
    for token in (tokens["refresh_token"], tokens["access_token"]):
        assert active(server, client, token) == {"active": False}

    assert_json(admin.patch_user(email, {"disabled": False}))
    assert_error(refresh(server, client, tokens["refresh_token"]), 400, "invalid_grant")
    assert active(server, client, tokens["refresh_token"]) == {"active": False}


def test_a_re_enabled_user_signs_in_again_and_gets_new_tokens(server, admin):
    client = trusted_client(server, admin, grant_types=REFRESHING)
    email, password = new_account(admin)
    assert_json(admin.patch_user(email, {"disabled": True}))
    assert_json(admin.patch_user(email, {"disabled": False}))

    _, attempt, resp = hosted_sign_in(server, client, email, password)
    tokens = assert_tokens(exchange(server, client, code_of(server, attempt, resp)),
                           refresh_token=True)
    assert active(server, client, tokens["access_token"]).get("active") is True
    assert_tokens(refresh(server, client, tokens["refresh_token"]), refresh_token=True)


# --------------------------------------------------------------------------------------------
# Sign-in throttling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_ten_failed_sign_ins_lock_the_account_even_against_the_right_password(
        server, admin, surface):
    email, password = new_account(admin)
    start_early_in_a_minute()
    attempt = sign_in_form(server, surface)
    for i in range(SIGNINS_PER_ACCOUNT_PER_MINUTE):
        assert_refused(attempt(email, f"wrong-password-{i}"), 401, INVALID_CREDENTIALS_TEXT)
    assert_refused(attempt(email, password), 429, TOO_MANY_SIGNINS_TEXT)
    # Another browser, on another address, is refused as well: the account is locked.
    assert_refused(sign_in_form(server, surface)(email, password), 429, TOO_MANY_SIGNINS_TEXT)


def test_successful_sign_ins_are_not_counted_against_the_account(server, admin):
    client = trusted_client(server, admin)
    email, password = new_account(admin)
    for i in range(SIGNINS_PER_ACCOUNT_PER_MINUTE + 2):
        if i % 2:
            _, attempt, resp = hosted_sign_in(server, client, email, password)
            assert resp.status != 429, f"successful sign-in {i + 1} was throttled: {resp!r}"
            code_of(server, attempt, resp)
        else:
            console_sign_in(server, email, password)
    # Nor did they use up the failures the account is allowed.
    assert_refused(sign_in_form(server, "console")(email, "wrong-password"), 401,
                   INVALID_CREDENTIALS_TEXT)


def test_the_lockout_holds_across_server_processes_sharing_a_table(start_server):
    first = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    email, password = new_account(Admin(first))
    second = start_server({"GATEHOUSE_TABLE": first.table,
                           "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    lock_out(first, email)
    for surface in SURFACES:
        assert_refused(sign_in_form(second, surface)(email, password), 429,
                       TOO_MANY_SIGNINS_TEXT)


@pytest.mark.skipif(not LOOPBACK_ALIASES, reason="needs 127.0.0.0/8 source addresses")
def test_failed_sign_ins_for_many_other_accounts_do_not_lift_a_lockout(server, admin):
    email, password = new_account(admin)
    lock_out(server, email, "console")
    assert_refused(sign_in_form(server, "console")(email, password), 429, TOO_MANY_SIGNINS_TEXT)

    # 30 other (unknown) accounts fail to sign in, each from its own address.
    forms = [sign_in_form(server, "console") for _ in range(30)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        others = list(pool.map(lambda form: form(unique_email("nobody"), "wrong-password"),
                               forms))
    for resp in others:
        assert_refused(resp, 401, INVALID_CREDENTIALS_TEXT)

    assert_refused(sign_in_form(server, "console")(email, password), 429, TOO_MANY_SIGNINS_TEXT)
    assert_refused(sign_in_form(server, "hosted")(email, password), 429, TOO_MANY_SIGNINS_TEXT)
