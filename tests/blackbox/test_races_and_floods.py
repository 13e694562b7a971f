"""Races and floods, black box: many requests at once against one code, one refresh token, one
pending client, one client being deleted, one tenant's registration endpoint and one account's
sign-in, on both store modes (the dynamodb mode talks to moto serialised per request, like
DynamoDB's per-item atomicity).

Already covered elsewhere, and only extended here:
- `test_tokens.py`: 10 parallel redemptions of one code (statuses only) and 5 parallel refreshes
  of one token (all succeed); sequential reuse after the grace window.
- `test_authorization.py`: two tabs of one administrator approving one after the other; an
  approval submitted after the pending client expired; 11 sequential sign-ins for one account.
- `test_dynamic_registration.py`: the pending cap and the per-IP limit, sequentially.

What this file adds:
1. Parallel redemption: the replay rule also applies to the losers of the race (the winner's
   tokens are revoked), for confidential and public clients.
2. Parallel refresh (8 threads), then parallel refresh of the 8 siblings; and, with a 1-second
   grace window, parallel reuse of the stale token racing refreshes of the newest ones: the whole
   family goes, including tokens issued during that race.
3. Two administrators approving the same pending client at the same instant: approved once.
4. Approvals submitted while the pending lifetime runs out: each either wins durably (approved,
   no expiry, its code redeemable after the original expiry) or fails cleanly (gone, no code);
   one surely before and one surely after the expiry make both outcomes happen on every run.
5. Deleting a client while its tokens are refreshed, introspected, used at the MCP endpoint and
   its codes redeemed: no 5xx, and afterwards nothing of it works.
6. Registration floods: a concurrent flood at the pending cap admits exactly the cap; a
   2000-registration flood with the cap off keeps the server's memory bounded.
7. Console sign-in brute force in parallel: the per-account limit holds under concurrency and
   then refuses even the right password.

No timing assertions: only counts, statuses and memory bounds. Sleeps only move past a
lifetime (pending client, refresh grace) or spread racing requests around an instant; no
outcome depends on which request wins, only on the invariants every interleaving must keep.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    REFRESHING,
    USER_EMAIL,
    Admin,
    assert_api_error,
    assert_json,
    assert_no_content,
    authorize,
    code_of,
    consent_code,
    console_sign_in,
    console_sign_in_attempt,
    is_approval_page,
    page_form,
    register,
    unique,
    unique_email,
)
from conftest import (  # noqa: E402
    DEMO_ADMIN_PASSWORD,
    DEMO_USER_PASSWORD,
    MODES,
    json_body,
    request,
)
from test_authorization import LOOPBACK_ALIASES, Browser  # noqa: E402
from test_tokens import (  # noqa: E402
    Code,
    assert_error,
    assert_tokens,
    exchange,
    introspect,
    refresh,
)

# shared/src/defaults.rs
SIGNINS_PER_ACCOUNT_PER_MINUTE = 10
SIGNINS_PER_IP_PER_MINUTE = 20
TOO_MANY_SIGNINS_TEXT = "Too many sign-in attempts"
JOIN_TIMEOUT_S = 120
MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Helpers: running things at once
# --------------------------------------------------------------------------------------------


def together(calls) -> list:
    """Runs every callable in its own thread, released at the same instant by a barrier; returns
    their results in order. An exception in any call is raised here (after all have ended)."""
    calls = list(calls)
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = [None] * len(calls)

    def run(i):
        try:
            barrier.wait(timeout=60)
            results[i] = calls[i]()
        except BaseException as err:  # noqa: BLE001 - reported below, in the test's thread
            errors[i] = err

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a racing request never returned"
    for err in errors:
        if err is not None:
            raise err
    return results


def flood(server_call, count: int, workers: int = 16) -> list:
    """`server_call(i)` for i in range(count) from `workers` threads, as fast as they go."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(server_call, range(count)))


def status_of(resp) -> int:
    return resp.status if hasattr(resp, "status") else resp[0]


def brief(resp) -> str:
    if hasattr(resp, "status"):
        return repr(resp)
    return f"{resp[0]} {resp[2][:300]!r}"


def assert_no_5xx(responses, what: str) -> None:
    bad = [brief(r) for r in responses if status_of(r) >= 500]
    assert not bad, f"{what}: {len(bad)} answer(s) with a 5xx: {bad[:5]}"


def tally(responses) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in responses:
        counts[status_of(r)] = counts.get(status_of(r), 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------------------
# Helpers: clients, tokens, the demo MCP resource
# --------------------------------------------------------------------------------------------


def approved_client(server, admin: Admin, **fields) -> dict:
    """A DCR client approved by `admin` (confidential with refresh tokens unless told)."""
    fields.setdefault("grant_types", REFRESHING)
    fields.setdefault("client_name", unique("race"))
    client = register(server, **fields)
    attempt = authorize(server, admin.browser, client)
    assert attempt.resp.status == 200 and is_approval_page(attempt.resp), attempt.resp
    done = admin.browser.submit(page_form(attempt.resp, "decide"), "approve")
    code_of(server, attempt, done)  # approval works; this code is left unused
    return client


def fresh_code(server, admin: Admin, client: dict) -> Code:
    return consent_code(server, admin.browser, client)


def tokens_for(server, admin: Admin, client: dict) -> dict:
    return assert_tokens(exchange(server, client, fresh_code(server, admin, client)),
                         refresh_token="refresh_token" in client["grant_types"] or None)


def mcp_tools_list(server, token: str):
    headers = {"Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18",
               "Authorization": f"Bearer {token}"}
    return request("POST", f"{server.issuer}/mcp",
                   {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers)


def assert_mcp_works(server, token: str) -> None:
    resp = mcp_tools_list(server, token)
    assert resp[0] == 200, f"MCP tools/list with a live token: {brief(resp)}"
    assert [t["name"] for t in json_body(resp)["result"]["tools"]] == ["whoami"], resp


def assert_mcp_refuses(server, token: str) -> None:
    resp = mcp_tools_list(server, token)
    assert resp[0] == 401, f"MCP accepted a dead token: {brief(resp)}"
    assert 'error="invalid_token"' in resp[1].get("www-authenticate", ""), resp[1]


def introspection(server, caller: dict, token: str) -> dict:
    resp = introspect(server, caller, token)
    assert resp[0] == 200, f"introspection: {brief(resp)}"
    return json_body(resp)


def assert_inactive(server, caller: dict, token: str, what: str) -> None:
    info = introspection(server, caller, token)
    assert info == {"active": False}, f"{what} is still active: {info}"


def assert_dead_family(server, client: dict, tokens, refresh_statuses=(400,),
                       client_deleted: bool = False) -> None:
    """Every token of a revoked grant (or of a deleted client) fails everywhere. `tokens`:
    (where it came from, token response) pairs. Introspection is asked by the tokens' own
    client (it answers no other): inactive, or `401 invalid_client` once the client is deleted.
    Every check runs; the failures are reported together, each with the request and the
    answer."""
    failures: list[str] = []

    def introspected_dead(token: str) -> str | None:
        resp = introspect(server, client, token)
        if client_deleted:
            dead = resp[0] == 401 and json_body(resp).get("error") == "invalid_client"
        else:
            dead = resp[0] == 200 and json_body(resp) == {"active": False}
        return None if dead else brief(resp)

    for origin, body in tokens:
        rt = body.get("refresh_token")
        if rt:
            resp = refresh(server, client, rt)
            if resp[0] not in refresh_statuses or (
                    resp[0] == 400 and json_body(resp).get("error") != "invalid_grant"):
                failures.append(f"[{origin}] POST /oauth/token grant_type=refresh_token "
                                f"refresh_token={rt[:8]}… → {brief(resp)}")
            if answer := introspected_dead(rt):
                failures.append(f"[{origin}] POST /oauth/introspect refresh token {rt[:8]}… → "
                                f"{answer}")
        at = body["access_token"]
        if answer := introspected_dead(at):
            failures.append(f"[{origin}] POST /oauth/introspect access token → {answer}")
        resp = mcp_tools_list(server, at)
        if resp[0] != 401:
            failures.append(f"[{origin}] POST /t/demo/mcp tools/list with the access token → "
                            f"{brief(resp)}")
    assert not failures, (
        f"{len(failures)} check(s) found a token of a revoked family / deleted client still "
        "working:\n" + "\n".join(failures))


def list_pending(admin: Admin) -> list[dict]:
    """Every pending client, through the admin API (`status eq "pending"`, pages of 100)."""
    out: list[dict] = []
    cursor = None
    for _ in range(100):
        query = {"filter": 'status eq "pending"', "limit": "100"}
        if cursor:
            query["cursor"] = cursor
        doc = assert_json(admin.api(
            "GET", "/oauth-clients?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)))
        out.extend(doc["data"])
        cursor = doc.get("next_cursor")
        if not cursor:
            return out
    pytest.fail("the pending listing never ended")


def rss_bytes(srv) -> int:
    """The server process's resident set size (`VmRSS` of /proc/<pid>/status)."""
    assert srv.proc is not None and srv.proc.poll() is None, f"{srv} is not running"
    with open(f"/proc/{srv.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                value, unit = line.split()[1:3]
                assert unit == "kB", line
                return int(value) * 1024
    pytest.fail(f"no VmRSS in /proc/{srv.proc.pid}/status")


# --------------------------------------------------------------------------------------------
# Fixtures: the demo administrator on the shared server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(server) -> Admin:
    """The demo administrator on the shared server: console session (which also approves and
    consents) and an admin API token. One argon2 sign-in per server."""
    return Admin(server)


# --------------------------------------------------------------------------------------------
# 1. Parallel redemption of one code: one winner, and the losers' replay revokes its tokens
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_parallel_redemption_has_one_winner_whose_tokens_the_replay_then_revokes(
        server, admin, kind):
    """RFC 6749 §4.1.2 / RFC 9700 §4.5: ten simultaneous redemptions of one code issue tokens
    once; the nine others are replays, so what the winner got is revoked."""
    fields = {"token_endpoint_auth_method": "none", "grant_types": ["authorization_code"]} \
        if kind == "public" else {}
    client = approved_client(server, admin, **fields)
    code = fresh_code(server, admin, client)
    results = together([lambda: exchange(server, client, code)] * 10)
    assert_no_5xx(results, "parallel redemption")
    assert sorted(r[0] for r in results) == [200] + [400] * 9, [brief(r) for r in results]
    winner = None
    for r in results:
        if r[0] == 200:
            winner = assert_tokens(r, refresh_token=(kind == "confidential"))
        else:
            assert_error(r, 400, "invalid_grant")
    # Replay rule: the winner's tokens no longer work anywhere (introspection answers the
    # confidential client only, about its own tokens).
    assert_mcp_refuses(server, winner["access_token"])
    if kind == "confidential":
        assert_inactive(server, client, winner["access_token"], "the winner's access token")
        assert_error(refresh(server, client, winner["refresh_token"]), 400, "invalid_grant")
        assert_inactive(server, client, winner["refresh_token"], "the winner's refresh token")
    # The code stays spent; the client itself is fine (a new code works).
    assert_error(exchange(server, client, code), 400, "invalid_grant")
    again = assert_tokens(exchange(server, client, fresh_code(server, admin, client)))
    assert_mcp_works(server, again["access_token"])


# --------------------------------------------------------------------------------------------
# 2. Parallel refresh of one token, and reuse after the grace window racing rotation
# --------------------------------------------------------------------------------------------


def test_parallel_refreshes_within_the_grace_window_keep_the_session(server, admin):
    """Refreshes, harder than test_tokens' five: eight at once, then the eight siblings at once;
    nobody is logged out and nothing answers 5xx."""
    client = approved_client(server, admin)
    first = tokens_for(server, admin, client)
    results = together([lambda: refresh(server, client, first["refresh_token"])] * 8)
    assert_no_5xx(results, "parallel refresh of one token")
    winners = [assert_tokens(r, refresh_token=True) for r in results if r[0] == 200]
    assert winners, f"no parallel refresh succeeded: {[brief(r) for r in results]}"
    for r in results:
        if r[0] != 200:
            assert_error(r, 400, "invalid_grant")
    assert len({w["refresh_token"] for w in winners}) == len(winners), "a refresh token twice"
    # The session survived: the newest tokens work (all refreshed at once, too).
    second = together([lambda rt=w["refresh_token"]: refresh(server, client, rt)
                       for w in winners])
    assert [r[0] for r in second] == [200] * len(winners), [brief(r) for r in second]
    newest = [assert_tokens(r, refresh_token=True) for r in second]
    for body in newest:
        assert introspection(server, client, body["access_token"]).get("active") is True
        assert introspection(server, client, body["refresh_token"]).get("active") is True
    assert_mcp_works(server, newest[-1]["access_token"])
    assert_tokens(refresh(server, client, newest[0]["refresh_token"]), refresh_token=True)


@pytest.mark.parametrize("mode", MODES)
def test_reuse_after_the_grace_window_racing_rotation_revokes_the_whole_family(
        start_server, mode):
    """RFC 9700 §4.14.2 under concurrency: after a parallel refresh, the stale token comes back
    after the (1 s) grace window while the legitimate holders refresh the newest tokens at the
    same instant. Whatever the interleaving, every token of the grant ends up dead, including
    any issued during that race."""
    srv = start_server({"GATEHOUSE_REFRESH_GRACE": "1",
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    admin = Admin(srv)
    client = approved_client(srv, admin)
    first = tokens_for(srv, admin, client)
    race = together([lambda: refresh(srv, client, first["refresh_token"])] * 8)
    assert_no_5xx(race, "parallel refresh of one token")
    winners = [assert_tokens(r, refresh_token=True) for r in race if r[0] == 200]
    assert winners, f"no parallel refresh succeeded: {[brief(r) for r in race]}"
    # Still one grant: the sibling tokens all work now.
    assert introspection(srv, client, winners[-1]["refresh_token"]).get("active") is True
    time.sleep(2.2)  # past the grace window of the original token
    stale = [lambda: refresh(srv, client, first["refresh_token"])] * 4
    fresh = [lambda rt=w["refresh_token"]: refresh(srv, client, rt) for w in winners[:4]]
    second = together(stale + fresh)
    assert_no_5xx(second, "stale reuse racing fresh refreshes")
    for r in second[:len(stale)]:
        assert_error(r, 400, "invalid_grant")
    for r in second[len(stale):]:
        assert r[0] in (200, 400), brief(r)
        if r[0] == 400:
            assert_error(r, 400, "invalid_grant")
    issued = ([("the original tokens", first)]
              + [(f"parallel refresh {i}", w) for i, w in enumerate(winners)]
              + [(f"refresh of sibling {i} racing the stale reuse", json_body(r))
                 for i, r in enumerate(second[len(stale):]) if r[0] == 200])
    assert_dead_family(srv, client, issued)
    # Only that grant went: the client gets a new one.
    fresh_tokens = tokens_for(srv, admin, client)
    assert_tokens(refresh(srv, client, fresh_tokens["refresh_token"]), refresh_token=True)


# --------------------------------------------------------------------------------------------
# 3. Two administrators approve one pending client at the same instant
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_admin(server, admin) -> tuple[Browser, str]:
    """Another administrator of demo (added through the admin API), signed in at the console;
    its browser and user id."""
    email = unique_email("second-admin")
    password = "second-admin-pass-" + unique("pw")
    user = admin.add_user(email, password, role="admin")
    assert user.get("role") == "admin", user
    return console_sign_in(server, email, password), user["id"]


def test_two_administrators_approving_at_once_approve_exactly_once(
        server, admin, second_admin):
    """Each administrator has the approval page of the same new client open (each through its
    own authorization request) and presses Approve at the same instant. Both end with a code
    (the second carries on as consent) or one gets a clear 4xx page; never a 5xx, and the
    client is approved once, by one of them."""
    other_browser, other_id = second_admin
    first_id = admin.user(ADMIN_EMAIL)["id"]
    browsers = [admin.browser, other_browser]
    clients = [register(server, client_name=unique("two-admins"), grant_types=REFRESHING)
               for _ in range(3)]
    pending = []
    for client in clients:
        for browser in browsers:
            attempt = authorize(server, browser, client)
            assert attempt.resp.status == 200 and is_approval_page(attempt.resp), attempt.resp
            pending.append((client, browser, attempt, page_form(attempt.resp, "decide")))
    results = together([lambda b=b, f=f: b.submit(f, "approve") for _, b, _, f in pending])
    assert_no_5xx(results, "simultaneous approvals")
    for (client, _, attempt, _), resp in zip(pending, results):
        if resp.status in (302, 303):
            code = code_of(server, attempt, resp)
            assert_tokens(exchange(server, client, code), refresh_token=True)
        else:
            assert 400 <= resp.status < 500 and resp.location is None, (
                f"an approval that lost must be a clear error page: {resp!r}")
            assert resp.headers.get("content-type", "").startswith("text/html"), resp.headers
    approvers = {}
    for client in clients:
        ends = [r.status for (c, *_), r in zip(pending, results) if c is client]
        assert any(s in (302, 303) for s in ends), f"neither approval of a client went through: {ends}"
        doc = admin.client(client["client_id"])
        assert doc["status"] == "approved", doc
        assert doc.get("approved_by") in (first_id, other_id), doc
        assert "expires_at" not in doc, f"an approved client must not expire: {doc}"
        approvers[client["client_id"]] = doc["approved_by"]
        assert client["client_id"] not in {c["client_id"] for c in list_pending(admin)}
        # Both administrators consented with the approval: the next authorization of each
        # comes straight back with a code.
        for browser in browsers:
            attempt = authorize(server, browser, client)
            code_of(server, attempt)
    # The audit trail agrees: one "approved client" line per client, naming the administrator
    # the store recorded (the other approval carried on as consent and approved nothing).
    log = server.log()
    for cid, approver in approvers.items():
        approvals = [line for line in log.splitlines()
                     if "approved client" in line and f"client_id={cid}" in line]
        assert len(approvals) == 1 and f"approved_by={approver}" in approvals[0], (
            f"client {cid} was approved once, by {approver} (admin API), but the log records "
            f"{len(approvals)} approvals:\n" + "\n".join(approvals))


# --------------------------------------------------------------------------------------------
# 4. Approval racing the pending client's expiry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_approval_racing_expiry_wins_durably_or_fails_cleanly(start_server, mode):
    """Pending lifetime 3 s. Approval pages for several new clients; Approve pressed once surely
    within the lifetime (it must win), at spread moments around the expiry (either outcome), and
    once surely after it (it must lose). An approval that won made the client permanent (still
    there, approved and unexpiring after the lifetime, its code redeemable); one that lost is a
    410/400 page, no code, and the client is gone. Both branches run on every run."""
    ttl = 3
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_TTL": str(ttl),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    admin = Admin(srv)  # signed in before the clock starts: argon2 is slow in debug builds
    # The server keeps whole seconds: a client created at t expires at floor(t) + ttl, so it is
    # surely pending until t + ttl - 1 and surely gone from t + ttl on. Each Approve is pressed
    # at a moment relative to its client's registration: "early" at once (surely pending),
    # "around" at ttl-1, ttl-0.5 and ttl seconds (either way), "late" a second after the latest
    # possible expiry.
    plan = [("early", 0.0), ("around", ttl - 1.0), ("around", ttl - 0.5), ("around", float(ttl)),
            ("late", ttl + 1.0)]
    clients, attempts, outcomes = [], [], []
    registered: list[tuple[float, float]] = []  # monotonic time before and after registering
    for kind, _ in plan:
        before = time.monotonic()
        client = register(srv, client_name=unique(f"expiring-{kind}"), grant_types=REFRESHING)
        registered.append((before, time.monotonic()))
        attempt = authorize(srv, admin.browser, client)
        assert attempt.resp.status == 200 and is_approval_page(attempt.resp), (
            f"approval page while the client is pending: {attempt.resp!r}")
        clients.append(client)
        attempts.append(attempt)
        if kind == "early":
            outcomes.append(admin.browser.submit(page_form(attempt.resp, "decide"), "approve"))
            elapsed = time.monotonic() - before
            assert elapsed < ttl - 1, (
                f"the early approval took {elapsed:.2f} s after registration, past the "
                f"{ttl - 1} s the client is surely pending: the machine is too slow for this test")
    for (kind, offset), attempt, (before, after) in zip(plan, attempts, registered):
        if kind == "early":
            continue
        delay = (after if kind == "late" else before) + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        outcomes.append(admin.browser.submit(page_form(attempt.resp, "decide"), "approve"))
    assert len(outcomes) == len(plan)
    assert_no_5xx(outcomes, "approvals around the expiry")
    first, last = outcomes[0], outcomes[-1]
    assert first.status in (302, 303), f"approval well within the lifetime: {first!r}"
    assert last.status in (400, 410), f"approval after the expiry: {last!r}"
    # Well past every original expiry now.
    delay = registered[-1][1] + ttl + 1.5 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    branches = {"won": 0, "lost": 0}
    for client, attempt, resp in zip(clients, attempts, outcomes):
        cid = client["client_id"]
        if resp.status in (302, 303):
            branches["won"] += 1
            code = code_of(srv, attempt, resp)
            doc = admin.client(cid)
            assert doc["status"] == "approved", doc
            assert "expires_at" not in doc, f"the approval did not remove the expiry: {doc}"
            assert_tokens(exchange(srv, client, code), refresh_token=True)
            code_of(srv, authorize(srv, admin.browser, client))
        else:
            branches["lost"] += 1
            assert resp.status in (400, 410), f"a late approval must be a 4xx page: {resp!r}"
            assert resp.location is None, f"a late approval must not redirect: {resp!r}"
            assert "code=" not in resp.body, resp
            assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
            page = authorize(srv, admin.browser, client).resp
            assert page.status == 400 and "unknown application" in page.text.lower(), page
            assert cid not in {c["client_id"] for c in list_pending(admin)}
    assert branches["won"] >= 1 and branches["lost"] >= 1, (
        f"both outcomes must have been checked: {branches}, statuses "
        f"{[r.status for r in outcomes]}")


# --------------------------------------------------------------------------------------------
# 5. Deleting a client while its tokens are in use
# --------------------------------------------------------------------------------------------


def test_delete_racing_token_use_leaves_no_working_token(server, admin):
    """`DELETE {issuer}/api/v1/oauth-clients/{id}` while other threads refresh its tokens,
    introspect them, call the MCP endpoint with them and redeem its outstanding codes: no 5xx,
    and once the delete has returned, every token of the client is dead — those issued during
    the race included."""
    client = approved_client(server, admin)
    bystander = approved_client(server, admin)
    bystander_tokens = tokens_for(server, admin, bystander)
    grants = [tokens_for(server, admin, client) for _ in range(3)]
    codes = [fresh_code(server, admin, client) for _ in range(16)]
    assert_mcp_works(server, grants[0]["access_token"])

    seen_lock = threading.Lock()
    issued: list[tuple[str, dict]] = []
    answers: list = []
    deleted = threading.Event()

    def note(origin: str, resp) -> None:
        when = "after" if deleted.is_set() else "before"
        with seen_lock:
            answers.append(resp)
            if resp[0] == 200 and "access_token" in (body := json_body(resp)):
                issued.append((f"{origin}, answered {when} the DELETE returned", body))

    def keep_using(origin: str, action):
        """Repeat `action` until the delete has returned, then once more."""
        def run():
            for _ in range(200):
                after = deleted.is_set()
                note(origin, action())
                if after:
                    return
        return run

    def refresher(i: int, rt: str):
        state = {"rt": rt}

        def step():
            resp = refresh(server, client, state["rt"])
            if resp[0] == 200:
                state["rt"] = json_body(resp)["refresh_token"]
            return resp
        return keep_using(f"refresh of grant {i} during the delete", step)

    def redeemer(i: int, code: Code):
        def run():
            # Spread around the delete: dense at first (an embedded-store delete is over in
            # a moment), sparser later (a DynamoDB one takes several calls).
            time.sleep(0.002 * 1.4 ** i)
            note(f"code {i} redeemed during the delete", exchange(server, client, code))
        return run

    def delete():
        time.sleep(0.03)  # a few redemptions and refreshes are under way by then
        resp = admin.api("DELETE", f"/oauth-clients/{client['client_id']}")
        deleted.set()
        return resp

    calls = [delete]
    calls += [refresher(i, g["refresh_token"]) for i, g in enumerate(grants)]
    calls += [keep_using("MCP", lambda at=g["access_token"]: mcp_tools_list(server, at))
              for g in grants]
    calls += [keep_using("introspection", lambda at=g["access_token"]:
                         introspect(server, client, at)) for g in grants[:2]]
    calls += [redeemer(i, c) for i, c in enumerate(codes)]
    results = together(calls)
    assert_no_content(results[0])
    assert_no_5xx(answers, "token use racing the delete")
    for resp in answers:
        assert resp[0] in (200, 400, 401), f"unexpected answer during the delete: {brief(resp)}"
    # The delete has completed: nothing of the client works any more.
    assert_api_error(admin.api("GET", f"/oauth-clients/{client['client_id']}"), 404, "not_found")
    for i, code in enumerate(codes):
        resp = exchange(server, client, code)
        assert resp[0] in (400, 401), f"code {i} redeemed after the delete: {brief(resp)}"
    assert_dead_family(server, client,
                       [(f"grant {i} issued before the delete", g) for i, g in enumerate(grants)]
                       + issued,
                       refresh_statuses=(400, 401), client_deleted=True)
    # Another client was not collateral damage.
    assert introspection(server, bystander, bystander_tokens["access_token"]).get("active") is True
    assert_mcp_works(server, bystander_tokens["access_token"])


# --------------------------------------------------------------------------------------------
# 6. Registration floods
# --------------------------------------------------------------------------------------------


def registration(srv, i: int):
    return request("POST", srv.register_url, {
        "client_name": f"flood {i}", "redirect_uris": ["https://agent.example.com/cb"]})


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_registration_flood_admits_exactly_the_pending_cap(start_server, mode):
    """400 registrations from 16 threads against a cap of 50 (per-IP limit off): only 201 or
    429 (with Retry-After), exactly 50 created, and the pending queue holds exactly those."""
    cap = 50
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": str(cap),
                        "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    results = flood(lambda i: registration(srv, i), 400)
    counts = tally(results)
    assert set(counts) <= {201, 429}, f"answers other than 201/429: {counts} " + str(
        [brief(r) for r in results if r[0] not in (201, 429)][:5])
    assert counts.get(201, 0) <= cap, f"the cap of {cap} let {counts[201]} through: {counts}"
    assert counts.get(201, 0) == cap, f"the flood got fewer than the cap admitted: {counts}"
    for r in results:
        if r[0] == 429:
            assert_error(r, 429, "too_many_requests")
            retry_after = r[1].get("retry-after", "")
            assert retry_after.isdigit() and int(retry_after) > 0, r[1]
    created = {json_body(r)["client_id"] for r in results if r[0] == 201}
    assert len(created) == cap, "a client_id was issued twice"
    admin = Admin(srv)
    listed = [c["client_id"] for c in list_pending(admin)]
    assert len(listed) <= cap, f"{len(listed)} pending clients with a cap of {cap}"
    assert set(listed) == created, "the pending queue is not exactly the admitted registrations"
    # Still capped after the flood.
    assert registration(srv, 400)[0] == 429


@pytest.mark.parametrize("mode", MODES)
def test_uncapped_registration_flood_keeps_memory_bounded(start_server, mode):
    """With the cap (and so the per-IP limit) off and a short pending lifetime, 2000
    registrations from 16 threads all succeed and the server's resident memory grows by less
    than 200 MiB (a memory bound, not a timing one)."""
    srv = start_server({"GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE": "100", "GATEHOUSE_PENDING_CLIENT_CAP": "0",
                        "GATEHOUSE_PENDING_CLIENT_TTL": "5"}, mode=mode)
    warm = flood(lambda i: registration(srv, i), 100)
    assert tally(warm) == {201: 100}, tally(warm)
    before = rss_bytes(srv)
    results = flood(lambda i: registration(srv, 100 + i), 2000)
    after = rss_bytes(srv)
    counts = tally(results)
    assert counts == {201: 2000}, f"uncapped flood: {counts} " + str(
        [brief(r) for r in results if r[0] != 201][:5])
    growth = after - before
    assert growth < 200 * MIB, (
        f"resident memory grew by {growth / MIB:.1f} MiB over 2000 registrations "
        f"({before / MIB:.1f} → {after / MIB:.1f} MiB)")


# --------------------------------------------------------------------------------------------
# 7. Console sign-in brute force
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_parallel_console_sign_in_brute_force_is_limited_per_account(start_server, mode):
    """30 wrong passwords for one account at once on the console sign-in (each from its own
    loopback address where possible, so only the per-account limit applies): exactly the
    per-account limit of them are checked (401), the rest are 429; then the right password is
    refused with 429 too. Another account is unaffected. (A rate limit, not a lockout: the
    window is a minute, which this test does not wait for.)"""
    # Without loopback aliases every attempt comes from 127.0.0.1; the account limit is still
    # the one that binds, being the lower.
    assert SIGNINS_PER_ACCOUNT_PER_MINUTE < SIGNINS_PER_IP_PER_MINUTE
    srv = start_server({"GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode=mode)
    # Load each sign-in page first (the GET counts nothing), then post them all at once.
    pages = []
    for _ in range(30):
        browser = Browser(srv)
        url = f"{srv.base}/t/demo/admin/signin"
        page = browser.get(url)
        assert page.status == 200, page
        form = [f for f in page.forms if {"email", "password", "csrf"} <= set(f.fields)]
        assert len(form) == 1, page
        assert browser.cookie("gh_browser"), "the sign-in page sets gh_browser"
        pages.append((browser, urllib.parse.urljoin(url, form[0].action or url), form[0]))
    # The per-account window is a fixed minute of the wall clock (floor(now / 60)): a flood that
    # straddled a minute boundary would start counting afresh and let the right password in.
    # Start early in a minute, so that the flood and the check below share one window.
    into_minute = time.time() % 60
    if into_minute > 40:
        time.sleep(60 - into_minute + 0.2)
    results = together([
        lambda b=b, a=a, f=f, i=i: b.post(a, dict(f.fields, email=USER_EMAIL,
                                                   password=f"wrong-password-{i}"))
        for i, (b, a, f) in enumerate(pages)])
    counts = tally(results)
    assert set(counts) <= {401, 429}, f"brute force answers: {counts} {results[:3]!r}"
    assert counts.get(401, 0) == SIGNINS_PER_ACCOUNT_PER_MINUTE, (
        f"the per-account limit ({SIGNINS_PER_ACCOUNT_PER_MINUTE}/min) let "
        f"{counts.get(401, 0)} parallel attempts be checked: {counts}")
    for resp in results:
        assert resp.location is None and not resp.set_cookie("gh_session"), resp
        if resp.status == 429:
            assert TOO_MANY_SIGNINS_TEXT.lower() in resp.text.lower(), resp.text
        else:
            assert "incorrect email or password" in resp.text.lower(), resp.text
    # Now even the right password is refused for that account, from a fresh browser.
    browser, right = console_sign_in_attempt(srv, USER_EMAIL, DEMO_USER_PASSWORD)
    assert right.status == 429, f"the right password got through the limit: {right!r}"
    assert TOO_MANY_SIGNINS_TEXT.lower() in right.text.lower(), right.text
    assert browser.cookie("gh_session") is None
    # The limit is per account: the administrator still signs in (from another address).
    if LOOPBACK_ALIASES:
        console_sign_in(srv, ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
    assert srv.proc.poll() is None
