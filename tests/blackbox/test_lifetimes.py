"""Lifetimes end to end, with the server's clock moved instead of waiting: `gatehouse serve`
reads its clock as the system time plus the offset written in `GATEHOUSE_DEV_CLOCK_FILE`
(`shared/src/clock.rs`), so a test reaches the 8-hour session or the 30-day grant in
milliseconds. Each lifetime is checked on both sides of its end: still valid just before,
refused just after.

- authorization code: 300 s (RFC 6749 §4.1.2 recommends at most 10 minutes);
- parked authorization request (the hosted sign-in and consent forms): 600 s;
- browser session: 8 h;
- grant behind refresh tokens: 30 days (rotation does not extend it);
- a grant without refresh tokens ends with its only access token, whose lifetime is
  `GATEHOUSE_ACCESS_TOKEN_TTL` (the demo MCP endpoint checks the grant on every call).
"""
from __future__ import annotations

import base64
import json
import math
import time
import urllib.parse

import pytest

from conftest import MODES, Pkce, json_body, request
from test_tokens import (
    ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    Browser,
    Flow,
    assert_error,
    assert_tokens,
    exchange,
    mcp_tools_list,
    only_form,
    public_client,
    refresh,
    refreshing_client,
)

DAY = 24 * 3600


class Clock:
    """The server's clock offset, in seconds ahead of the system clock."""

    def __init__(self, path):
        self.path = path
        self.set(0)

    def set(self, offset: int) -> None:
        self.path.write_text(f"{offset}\n")


@pytest.fixture
def clocked(start_server, tmp_path):
    """`clocked(mode, **env)` → (server, clock): a server whose clock the test moves."""

    def start(mode: str = "embedded", **env):
        clock = Clock(tmp_path / f"clock-{mode}")
        srv = start_server({"GATEHOUSE_DEV_CLOCK_FILE": str(clock.path),
                            "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0", **env}, mode=mode)
        return srv, clock

    return start


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("mode", MODES)
def test_an_authorization_code_lives_300_seconds(clocked, mode):
    srv, clock = clocked(mode)
    flow = Flow(srv)
    client = refreshing_client(flow)
    code = flow.code(client)
    clock.set(299)
    assert_tokens(exchange(srv, client, code), refresh_token=True)
    clock.set(0)
    late = flow.code(client)
    clock.set(301)
    resp = assert_error(exchange(srv, client, late), 400, "invalid_grant")
    assert "expired" in resp["error_description"], resp


@pytest.mark.parametrize("mode", MODES)
def test_a_grant_with_refresh_tokens_lives_30_days_whatever_the_rotation(clocked, mode):
    srv, clock = clocked(mode)
    flow = Flow(srv)
    client = refreshing_client(flow)
    tokens = assert_tokens(exchange(srv, client, flow.code(client)), refresh_token=True)
    clock.set(29 * DAY)
    rotated = assert_tokens(refresh(srv, client, tokens["refresh_token"]), refresh_token=True)
    # An access token minted near the grant's end does not outlive it.
    assert rotated["expires_in"] <= 3600, rotated
    clock.set(30 * DAY - 60)
    rotated = assert_tokens(refresh(srv, client, rotated["refresh_token"]), refresh_token=True)
    assert 0 < rotated["expires_in"] <= 60, rotated
    clock.set(30 * DAY + 1)
    assert_error(refresh(srv, client, rotated["refresh_token"]), 400, "invalid_grant")


def test_the_configured_access_token_lifetime_reaches_clients_without_refresh_tokens(clocked):
    """A grant without refresh tokens ends when its access token does: with a configured
    lifetime of two hours the token and the grant behind it last two hours, not the built-in
    one hour."""
    srv, clock = clocked(GATEHOUSE_ACCESS_TOKEN_TTL="7200")
    flow = Flow(srv)
    client = public_client(flow, scope="mcp:execute")
    body = assert_tokens(exchange(srv, client, flow.code(client)), refresh_token=False)
    assert body["expires_in"] == 7200, body
    jwt_claims = claims(body["access_token"])
    assert jwt_claims["exp"] - jwt_claims["iat"] == 7200, jwt_claims
    clock.set(3700)
    status, _, answer = mcp_tools_list(srv, body["access_token"])
    assert status == 200, f"the grant ended before its access token did: {status} {answer}"
    clock.set(7260)
    status, headers, _ = mcp_tools_list(srv, body["access_token"])
    assert status == 401 and "invalid_token" in headers.get("www-authenticate", ""), status


def _signin_page(srv, browser: Browser, client: dict) -> str:
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client["client_id"],
        "redirect_uri": client["redirect_uris"][0],
        "code_challenge": Pkce.new().challenge, "code_challenge_method": "S256",
    })
    status, _, body = browser.send(f"{srv.issuer}/oauth/authorize?{query}")
    assert status == 200 and only_form(body)["fields"].get("action") == "sign_in", body[-800:]
    return body


def _submit(srv, browser: Browser, page: str, **extra):
    form = only_form(page)
    action = urllib.parse.urljoin(f"{srv.issuer}/oauth/authorize", form["action"])
    return browser.send(action, {**form["fields"], **extra})


def test_a_parked_authorization_request_lives_600_seconds(clocked):
    srv, clock = clocked()
    client = refreshing_client(Flow(srv))

    on_time = Browser()
    page = _signin_page(srv, on_time, client)
    clock.set(599)
    status, headers, _ = _submit(srv, on_time, page, email=ADMIN_EMAIL,
                                 password=DEMO_ADMIN_PASSWORD)
    assert status in (302, 303), "a sign-in within 600 s continues the authorization"
    assert headers["location"].startswith(client["redirect_uris"][0]), headers

    clock.set(0)
    late = Browser()
    page = _signin_page(srv, late, client)
    clock.set(601)
    status, headers, body = _submit(srv, late, page, email=ADMIN_EMAIL,
                                    password=DEMO_ADMIN_PASSWORD)
    assert status == 400 and "location" not in headers, (status, headers)
    assert "This sign-in request has expired" in body


def test_a_browser_session_lives_8_hours(clocked):
    srv, clock = clocked()
    flow = Flow(srv)
    client = refreshing_client(flow)  # signs the administrator in at offset 0
    clock.set(8 * 3600 - 60)
    status, headers, _ = flow.authorize(client, Pkce.new(), state="s")
    assert status == 302 and "code=" in headers.get("location", ""), (
        "a session younger than 8 hours needs no new sign-in")
    clock.set(8 * 3600 + 60)
    status, _, body = flow.authorize(client, Pkce.new(), state="s")
    assert status == 200 and only_form(body)["fields"].get("action") == "sign_in", (
        "an 8-hour-old session signs in again")


def test_a_rotated_in_key_is_published_at_once_and_signs_after_the_activation_delay(clocked):
    """`gatehouse keys rotate` adds a key. Resource servers must see it before any token is
    signed with it: it is published (JWKS) once this process's key cache turns over (300 s) and
    signs only after the activation delay (two cache periods plus the JWKS `max-age`: 900 s)."""
    from test_operator_cli import cli, ok

    srv, clock = clocked("dynamodb")
    flow = Flow(srv)
    client = refreshing_client(flow)

    def kid_of_a_new_token() -> str:
        body = assert_tokens(exchange(srv, client, flow.code(client)), refresh_token=True)
        header = body["access_token"].split(".")[0]
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]

    def jwks() -> list[dict]:
        resp = request("GET", f"{srv.issuer}/jwks.json")
        assert resp[0] == 200, resp
        return json_body(resp)["keys"]

    def published() -> set[str]:
        return {k["kid"] for k in jwks()}

    def rsa_kid(kids: set[str]) -> str:
        (kid,) = [k["kid"] for k in jwks() if k["kid"] in kids and k["kty"] == "RSA"]
        return kid

    old = kid_of_a_new_token()
    first_rsa = published() - {old}
    assert len(first_rsa) == 1, "one ES256 key signs access tokens, one RS256 key ID tokens"
    # Keys are ordered by their creation second: the rotated-in key must be a later one.
    time.sleep(1.1)
    rotated_at = int(time.time())  # the new key's creation second is this or a later one
    ok(cli(srv, "keys", "rotate", "demo"))
    clock.set(301)
    new = published() - {old} - first_rsa
    assert len(new) == 2, "the rotated-in keys (ES256, RS256) are published once the cache turned over"
    new = {k for k in new if k != rsa_kid(new)}
    assert kid_of_a_new_token() == old, "a just-published key does not sign yet"
    # Just before the delay ends, counted from the key's creation, not from the test's start:
    # the key is stamped with the real time of the rotation and the server's clock keeps
    # running under the offset, so a fixed offset would pass the boundary on a slow run. Two
    # seconds of slack cover the exchange that follows.
    clock.set(898 - math.ceil(time.time() - rotated_at))
    assert kid_of_a_new_token() == old, "nor before the activation delay has passed"
    clock.set(1300)
    assert kid_of_a_new_token() == new.pop(), "after the delay the new key signs"
    assert old in published(), "the previous key stays published for tokens it signed"
