"""Administrators' side of access requests, black box (issue 17): rejecting a pending client
(`POST {issuer}/api/v1/oauth-clients/{id}/reject`), the console's pending queue (who asked,
Approve and Reject per row) and the pending client's detail page, and the notification events
on Amazon EventBridge (checked against moto: a rule on the bus feeds an SQS queue).

Runs on the JSON-logging servers of `test_access_requests` (its fixtures and helpers).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
import time
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    USER_EMAIL,
    Admin,
    api,
    approved_dcr_client,
    assert_api_error,
    assert_json,
    assert_no_content,
    consent_code,
    console_sign_in,
    register,
    unique,
)
from conftest import DEMO_USER_PASSWORD, json_body  # noqa: E402
from test_access_requests import (  # noqa: E402,F401 - fixtures srv, admin, user
    Node,
    admin,
    asked,
    assert_event,
    dom,
    events_of,
    logged_events,
    meet,
    request_access_form,
    requester,
    srv,
    user,
    user_actor,
    without_times,
)
from test_authorization import Browser, Form, Resp, assert_page  # noqa: E402
from test_client_configuration import current, put, update_body  # noqa: E402
from test_operator_cli import cli  # noqa: E402
from test_tokens import assert_tokens, exchange  # noqa: E402

PASSWORD = "a long enough password"

# --------------------------------------------------------------------------------------------
# The console's pending queue
# --------------------------------------------------------------------------------------------


def queue_row(srv, browser: Browser, cid: str) -> Node | None:
    """`table#pending tr[data-client-id=cid]`, following `a#next-page`; None when absent."""
    url = f"{srv.issuer}/admin?view=pending"
    for _ in range(50):
        resp = browser.get(url)
        assert_page(resp, 200)
        page = dom(resp)
        rows = page.one("table", id="pending").all("tr", data_client_id=cid)
        if rows:
            assert len(rows) == 1, rows
            return rows[0]
        nxt = page.all("a", id="next-page")
        if not nxt:
            return None
        url = urllib.parse.urljoin(url, nxt[0].attrs["href"])
    raise AssertionError("the pending queue does not end")


def queue_forms(srv, browser: Browser, cid: str) -> tuple[Node, Form, Form]:
    """A queue row and its Approve and Reject forms, checked against the spec."""
    row = queue_row(srv, browser, cid)
    assert row is not None, f"{cid} is not in the pending queue"
    target = f"{srv.issuer}/admin/clients/{urllib.parse.quote(cid, safe='')}"
    approve, reject = row.one("form", cls="approve"), row.one("form", cls="reject")
    for form, action in ((approve, "approve"), (reject, "reject")):
        assert form.attrs.get("method", "").lower() == "post", form.attrs
        assert form.attrs.get("action") == target, form.attrs
        hidden = form.hidden()
        assert hidden.get("action") == action and hidden.get("csrf"), hidden
        assert form.one("button").text() == action.capitalize(), form.one("button").text()
    assert approve.hidden().get("shown") and approve.hidden().get("from") == "queue"
    return row, approve.as_form(srv.issuer), reject.as_form(srv.issuer)


def assert_back_to_queue(srv, resp: Resp) -> None:
    assert resp.status == 303, resp
    to = urllib.parse.urljoin(f"{srv.issuer}/admin/clients/x", resp.location or "")
    assert to == f"{srv.issuer}/admin?view=pending", resp.location


# --------------------------------------------------------------------------------------------
# Another tenant (the operator CLI needs the DynamoDB table)
# --------------------------------------------------------------------------------------------


def other_tenant_token(srv) -> tuple[str, str]:
    """A new tenant on `srv`'s table with an administrator, and that administrator's admin API
    token: `(tenant, token)`."""
    if srv.mode != "dynamodb":
        pytest.skip("another tenant is created with the operator CLI, which needs the DynamoDB "
                    "table (the dynamodb-mode run of this test checks it)")
    tenant = f"other-{secrets.token_hex(4)}"
    boss = f"boss@{tenant}.test"
    for args, password in ((("tenant", "create", tenant), None),
                           (("user", "add", tenant, boss, "admin"), PASSWORD)):
        done = cli(srv, *args, password=password)
        assert done.returncode == 0, f"gatehouse {' '.join(args)}: {done.stderr}"
    done = cli(srv, "token", "create", tenant, boss)
    assert done.returncode == 0, done.stderr
    found = re.findall(rf"gha_{re.escape(tenant)}_[A-Za-z0-9_-]+", done.stdout)
    assert len(found) == 1, done.stdout
    return tenant, found[0]


# --------------------------------------------------------------------------------------------
# Reject (admin API)
# --------------------------------------------------------------------------------------------


def test_reject_deletes_a_pending_client(srv, admin, user):
    client = register(srv, client_name=unique("reject"), software_id=unique("sw"))
    cid = client["client_id"]
    _, resp = meet(srv, client, user)
    form = request_access_form(srv, resp, client)
    assert_request_sent_page = user.submit(form)
    assert assert_request_sent_page.status == 200, assert_request_sent_page
    before = admin.client(cid)
    assert_no_content(admin.api("POST", f"/oauth-clients/{cid}/reject"))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    assert_api_error(admin.api("POST", f"/oauth-clients/{cid}/reject"), 404, "not_found")
    events = events_of(srv, "client.rejected", cid, count=1)
    assert len(events) == 1, events
    event = assert_event(srv, events[0], "client.rejected", actor=user_actor(admin, ADMIN_EMAIL),
                         via="api", client=before, status="pending")
    # docs/admin-api.md: the event names who had asked for the client.
    assert without_times(event.get("access_requests", [])) == [requester(admin, USER_EMAIL)]
    # The user's form now meets a client that no longer exists.
    assert_page(user.submit(form), 410)


def test_reject_of_an_approved_client_is_409_and_it_still_works(srv, admin):
    client, _ = approved_dcr_client(srv, admin, client_name=unique("reject-approved"))
    cid = client["client_id"]
    before = admin.client(cid)
    resp = admin.api("POST", f"/oauth-clients/{cid}/reject")
    assert_api_error(resp, 409, "invalid_request", "pending")
    assert admin.client(cid) == before
    assert events_of(srv, "client.rejected", cid) == []
    code = consent_code(srv, admin.browser, client)
    assert_tokens(exchange(srv, client, code))


def test_reject_of_an_unknown_client_is_404(srv, admin):
    for cid in ("0123456789abcdef0123456789abcdef", "no-such-client"):
        assert_api_error(admin.api("POST", f"/oauth-clients/{cid}/reject"), 404, "not_found")


def test_reject_other_methods_are_405(srv, admin):
    cid = register(srv, client_name=unique("reject-get"))["client_id"]
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        resp = admin.api(method, f"/oauth-clients/{cid}/reject")
        assert resp[0] == 405, f"{method} …/reject: {resp[0]} {resp[2][:300]!r}"
        assert resp[1].get("allow") == "POST", resp[1]
    assert admin.client(cid)["status"] == "pending"


def test_reject_with_the_session_cookie_needs_the_csrf_token(srv, admin):
    cid = register(srv, client_name=unique("reject-csrf"))["client_id"]
    s = admin.session
    for csrf in (None, "0" * 64):
        resp = s.call("POST", f"/oauth-clients/{cid}/reject", csrf=csrf)
        assert_api_error(resp, 403, "access_denied")
    assert admin.client(cid)["status"] == "pending"
    assert events_of(srv, "client.rejected", cid) == []
    assert_no_content(s.call("POST", f"/oauth-clients/{cid}/reject"))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    events = events_of(srv, "client.rejected", cid, count=1)
    assert [e.get("via") for e in events] == ["api"], events


def test_reject_as_a_regular_user_is_403(srv, admin):
    cid = register(srv, client_name=unique("reject-user"))["client_id"]
    browser = console_sign_in(srv, USER_EMAIL, DEMO_USER_PASSWORD)
    cookie = browser.cookie("gh_session")
    session = api(srv, "GET", "/session", cookie=cookie)
    # Best effort at the user's real CSRF token, so the write fails for the role, not for CSRF.
    csrf = json_body(session).get("csrf_token") if session[0] == 200 else None
    csrf = csrf or hashlib.sha256(f"gatehouse-csrf:{cookie}".encode()).hexdigest()
    resp = api(srv, "POST", f"/oauth-clients/{cid}/reject", cookie=cookie, csrf=csrf)
    assert_api_error(resp, 403, "access_denied")
    assert admin.client(cid)["status"] == "pending"


def test_reject_with_another_tenants_token_is_404(srv, admin):
    tenant, token = other_tenant_token(srv)
    cid = register(srv, client_name=unique("reject-foreign"))["client_id"]
    resp = api(srv, "POST", f"/oauth-clients/{cid}/reject", token=token)
    assert_api_error(resp, 404, "not_found")
    assert admin.client(cid)["status"] == "pending"
    # At home, the other tenant's token does not find demo's client either.
    resp = api(srv, "POST", f"/oauth-clients/{cid}/reject", token=token, tenant=tenant)
    assert_api_error(resp, 404, "not_found")
    assert admin.client(cid)["status"] == "pending"
    assert events_of(srv, "client.rejected", cid) == []


# --------------------------------------------------------------------------------------------
# The console: pending queue and detail page
# --------------------------------------------------------------------------------------------


def test_queue_shows_who_asked_and_approves_from_the_row(srv, admin, user):
    client = register(srv, client_name=unique("queue-approve"))
    cid = client["client_id"]
    nobody = register(srv, client_name=unique("queue-nobody"))
    asked(srv, admin, client, user)
    row, approve, _ = queue_forms(srv, admin.browser, cid)
    assert USER_EMAIL in row.one("td", cls="requested-by").text(), row.text()
    assert row.one("td", cls="time-left").text().endswith("left"), row.text()
    quiet = queue_row(srv, admin.browser, nobody["client_id"])
    assert quiet is not None and quiet.one("td", cls="requested-by").text() == "—", quiet
    assert_back_to_queue(srv, admin.browser.submit(approve))
    approved = admin.client(cid)
    assert approved["status"] == "approved", approved
    assert queue_row(srv, admin.browser, cid) is None, "an approved client is still queued"
    events = events_of(srv, "client.approved", cid, count=1)
    assert len(events) == 1, events
    event = assert_event(srv, events[0], "client.approved", actor=user_actor(admin, ADMIN_EMAIL),
                         via="console", client=approved, status="approved")
    assert without_times(event.get("access_requests", [])) == [requester(admin, USER_EMAIL)]
    assert_tokens(exchange(srv, client, consent_code(srv, user, client)))


def test_queue_rejects_from_the_row(srv, admin, user):
    client = register(srv, client_name=unique("queue-reject"))
    cid = client["client_id"]
    asked(srv, admin, client, user)
    before = admin.client(cid)
    _, _, reject = queue_forms(srv, admin.browser, cid)
    # Without the CSRF field: a 403 page, nothing changed.
    assert_page(admin.browser.submit(reject, csrf=None), 403)
    assert admin.client(cid)["status"] == "pending"
    assert_back_to_queue(srv, admin.browser.submit(reject))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    assert queue_row(srv, admin.browser, cid) is None
    events = events_of(srv, "client.rejected", cid, count=1)
    assert len(events) == 1, events
    assert_event(srv, events[0], "client.rejected", actor=user_actor(admin, ADMIN_EMAIL),
                 via="console", client=before, status="pending")


def test_queue_reject_of_a_client_approved_meanwhile_is_409(srv, admin):
    client = register(srv, client_name=unique("queue-late-reject"))
    cid = client["client_id"]
    _, _, reject = queue_forms(srv, admin.browser, cid)
    approved = assert_json(admin.api("POST", f"/oauth-clients/{cid}/approve"))
    assert_page(admin.browser.submit(reject), 409)
    assert admin.client(cid) == approved
    assert events_of(srv, "client.rejected", cid) == []


def test_queue_approve_of_a_changed_client_approves_nothing(srv, admin):
    """The row's `shown` digest names the configuration the administrator saw."""
    client = register(srv, client_name=unique("queue-changed"))
    cid = client["client_id"]
    _, approve, _ = queue_forms(srv, admin.browser, cid)
    changed = put(srv, client, update_body(current(srv, client), client_name=unique("renamed")))
    assert changed[0] == 200, changed
    done = admin.browser.submit(approve)
    assert done.status == 409, done
    assert admin.client(cid)["status"] == "pending"
    assert events_of(srv, "client.approved", cid) == []


def test_pending_client_page_offers_reject_and_names_who_asked(srv, admin, user):
    client = register(srv, client_name=unique("detail"))
    cid = client["client_id"]
    asked(srv, admin, client, user)
    url = f"{srv.issuer}/admin/clients/{urllib.parse.quote(cid, safe='')}"
    page = admin.browser.get(url)
    assert_page(page, 200)
    tree = dom(page)
    assert USER_EMAIL in tree.one(data_field="access_requests").text()
    reject = tree.one("form", id="reject")
    hidden = reject.hidden()
    assert hidden.get("action") == "reject" and hidden.get("csrf"), hidden
    approve = tree.one("form", id="approve").hidden()
    assert approve.get("action") == "approve" and approve.get("csrf") and approve.get("shown")
    assert_back_to_queue(srv, admin.browser.submit(reject.as_form(url)))
    assert_api_error(admin.api("GET", f"/oauth-clients/{cid}"), 404, "not_found")
    # An approved client's page has no reject form.
    approved, _ = approved_dcr_client(srv, admin, client_name=unique("detail-approved"))
    page = admin.browser.get(f"{srv.issuer}/admin/clients/{approved['client_id']}")
    assert_page(page, 200)
    assert not dom(page).all("form", id="reject"), "an approved client offers Reject"
    assert not dom(page).all(data_field="access_requests"), "requests shown on an approved client"


# --------------------------------------------------------------------------------------------
# Amazon EventBridge (moto serves EventBridge and SQS on the DynamoDB endpoint)
# --------------------------------------------------------------------------------------------

NOTIFIED = ["client.registered", "client.access_requested", "client.approved"]


def moto_endpoint_or_skip() -> str:
    endpoint = os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip()
    if not endpoint:
        pytest.skip("GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: the EventBridge tests need the "
                    "moto server (EventBridge and SQS); run the suite through ./tests/run")
    return endpoint


def aws(service: str, endpoint: str):
    boto3 = pytest.importorskip("boto3")
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def bus_into_queue(endpoint: str) -> tuple[str, str]:
    """A new event bus whose rule (`source: gatehouse`) sends every event to a new SQS queue:
    `(bus name, queue URL)`."""
    events, sqs = aws("events", endpoint), aws("sqs", endpoint)
    bus, rule = unique("gatehouse-bus"), unique("gatehouse-rule")
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=unique("gatehouse-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule, EventBusName=bus, State="ENABLED",
                    EventPattern=json.dumps({"source": ["gatehouse"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return bus, queue_url


def drain(endpoint: str, queue_url: str, want: int, timeout: float = 10) -> list[dict]:
    """The EventBridge envelopes in the queue: at least `want` (waiting up to `timeout`), then
    whatever else arrives within half a second."""
    sqs = aws("sqs", endpoint)
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        now = time.monotonic()
        if len(out) >= want:
            quiet_until = quiet_until or now + 0.5
            if now >= quiet_until:
                return out
        elif now > deadline:
            return out
        time.sleep(0.1)


def json_records(srv) -> list[dict]:
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def test_notifications_are_put_on_the_event_bus(start_server):
    endpoint = moto_endpoint_or_skip()
    bus, queue_url = bus_into_queue(endpoint)
    s = start_server({"GATEHOUSE_EVENT_BUS": bus, "GATEHOUSE_EVENTS_ENDPOINT": endpoint,
                      "GATEHOUSE_LOG_FORMAT": "json", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"},
                     mode="dynamodb")
    boss = Admin(s)  # a sign-in and a token: audit events, not notifications
    client = register(s, client_name=unique("bus"), software_id=unique("sw"))
    cid = client["client_id"]
    asked(s, boss, client)
    approved = assert_json(boss.api("POST", f"/oauth-clients/{cid}/approve"))
    envelopes = drain(endpoint, queue_url, want=len(NOTIFIED))
    assert sorted(e.get("detail-type") for e in envelopes) == sorted(NOTIFIED), envelopes
    logged = {e["type"]: e for e in logged_events(s) if e.get("client_id") == cid}
    for envelope in envelopes:
        assert envelope.get("source") == "gatehouse", envelope
        assert envelope["detail"] == logged[envelope["detail-type"]], envelope
    by_type = {e["detail-type"]: e["detail"] for e in envelopes}
    assert_event(s, by_type["client.registered"], "client.registered", actor={"type": "anonymous"},
                 via="registration", client=client, status="pending")
    request = assert_event(s, by_type["client.access_requested"], "client.access_requested",
                           actor=user_actor(boss, USER_EMAIL), client=client, status="pending")
    assert without_times(request["access_requests"]) == [requester(boss, USER_EMAIL)]
    approval = assert_event(s, by_type["client.approved"], "client.approved",
                            actor=user_actor(boss, ADMIN_EMAIL), via="api", client=approved,
                            status="approved")
    assert without_times(approval["access_requests"]) == [requester(boss, USER_EMAIL)]
    assert not [r for r in json_records(s) if r.get("level") == "ERROR"], s.log()


def test_undeliverable_event_is_logged_and_the_request_still_succeeds(start_server):
    endpoint = moto_endpoint_or_skip()
    s = start_server({"GATEHOUSE_EVENT_BUS": unique("no-such-bus"),
                      "GATEHOUSE_EVENTS_ENDPOINT": endpoint, "GATEHOUSE_LOG_FORMAT": "json",
                      "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}, mode="dynamodb")
    client = register(s, client_name=unique("no-bus"))
    cid = client["client_id"]
    errors = [r for r in json_records(s) if r.get("level") == "ERROR"
              and "event not delivered" in r.get("message", "")]
    assert [r.get("event_type") for r in errors] == ["client.registered"], s.log()
    assert client["registration_access_token"] not in s.log()
    # The audit trail has it all the same.
    boss = Admin(s)
    trail = assert_json(boss.api("GET", f"/audit-events?client_id={cid}"))["data"]
    assert [e["type"] for e in trail] == ["client.registered"], trail
