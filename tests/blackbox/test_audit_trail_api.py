"""The audit trail's query interface, black box (issue 17): `GET {issuer}/api/v1/audit-events`
filters (`type`, `actor` by id or email, `client_id`), cursor pages newest first, `400
invalid_request` naming a bad parameter, `405` for writes, the admin API's authentication; the
tenant setting `audit_retention_days`; and the console's audit page (`GET {issuer}/admin/audit`).
"""

from __future__ import annotations

import base64
import sys
import urllib.parse

import pytest

if "admin_support" not in sys.modules:
    pytest.register_assert_rewrite("admin_support")

from admin_support import (  # noqa: E402
    ADMIN_EMAIL,
    USER_EMAIL,
    api,
    assert_api_error,
    assert_json,
    assert_unauthenticated,
    console_sign_in,
    register,
    unique,
    unique_email,
)
from conftest import DEMO_USER_PASSWORD  # noqa: E402
from test_access_requests import dom  # noqa: E402
from test_access_requests_admin import other_tenant_token  # noqa: E402
from test_audit_trail import (  # noqa: E402,F401 - the admin fixture
    PASSWORD,
    admin,
    audit_page,
    client_trail,
    trail,
)
from test_authorization import Browser, assert_page  # noqa: E402

EVENT_TYPES = [
    "client.registered", "client.created", "client.access_requested", "client.approved",
    "client.changes_approved", "client.rejected", "client.expired", "client.deleted",
    "client.edited", "settings.changed", "user.added", "user.changed", "api_token.created",
    "api_token.revoked", "keys.rotated", "signin.succeeded", "signin.failed",
    "vendor_trust.created", "vendor_trust.revoked",
]


def ids(events: list[dict]) -> list[str]:
    return [e["id"] for e in events]


def busy_client(server, admin) -> str:
    """A client with five events: registered, approved, three edits."""
    cid = register(server, client_name=unique("audit-busy"))["client_id"]
    assert_json(admin.api("POST", f"/oauth-clients/{cid}/approve"))
    for method in ("trusted", "required", "trusted"):
        assert_json(admin.patch_client(cid, {"consentMethod": method}))
    return cid


def at_least(server, admin, count: int) -> None:
    """Makes sure the trail holds `count` events (registrations add one each)."""
    have = len(audit_page(admin, limit=100)[0])
    for _ in range(max(0, count - have)):
        register(server, client_name=unique("audit-filler"))


# --------------------------------------------------------------------------------------------
# Filters and pages
# --------------------------------------------------------------------------------------------


def test_type_filter_lists_only_that_type(server, admin):
    register(server, client_name=unique("audit-type"))
    for type_ in ("client.registered", "client.edited", "signin.succeeded"):
        events, _ = audit_page(admin, type=type_, limit=20)
        assert all(e["type"] == type_ for e in events), events
    assert audit_page(admin, type="client.registered", limit=20)[0], "no registration listed"


def test_client_id_filter_lists_that_clients_events(server, admin):
    cid = busy_client(server, admin)
    events = client_trail(admin, cid)
    assert [e["type"] for e in events] == ["client.edited"] * 3 + [
        "client.approved", "client.registered"], events
    edited = audit_page(admin, client_id=cid, type="client.edited")[0]
    assert ids(edited) == ids(events[:3]), edited
    other = audit_page(admin, client_id="0123456789abcdef0123456789abcdef", limit=5)[0]
    assert other == [], other


def test_actor_filter_matches_the_user_id_or_the_email(server, admin):
    email = unique_email("actor")
    uid = admin.add_user(email, PASSWORD, role="admin")["id"]
    console_sign_in(server, email, PASSWORD)
    console_sign_in(server, email, PASSWORD)
    by_id = trail(admin, actor=uid, until=lambda ev: len(ev) >= 2)
    assert len(by_id) >= 2 and all(e["actor"].get("id") == uid for e in by_id), by_id
    for spelling in (email, email.upper()):
        by_email = trail(admin, actor=spelling, until=lambda ev: len(ev) >= 2)
        assert ids(by_email)[:2] == ids(by_id)[:2], (spelling, by_email)
        assert all(e["actor"].get("email", "").lower() == email for e in by_email), by_email
    assert audit_page(admin, actor=unique_email("nobody"), limit=5)[0] == []


def test_limit_1_walks_the_pages_newest_first_without_duplicates(server, admin):
    cid = busy_client(server, admin)
    whole = client_trail(admin, cid)
    walked, cursor = [], None
    while True:
        page, cursor = audit_page(admin, client_id=cid, limit=1,
                                  **({"cursor": cursor} if cursor else {}))
        assert len(page) == 1, page
        walked.extend(page)
        if page[0]["type"] == "client.registered":
            break
        assert cursor, f"no next_cursor after {len(walked)} of {len(whole)} events"
    assert ids(walked) == ids(whole), (walked, whole)
    # The whole trail too: five pages of one are the first page of five.
    at_least(server, admin, 6)
    first_five = audit_page(admin, limit=5)[0]
    walked, cursor = [], None
    for _ in range(5):
        page, cursor = audit_page(admin, limit=1, **({"cursor": cursor} if cursor else {}))
        assert len(page) == 1 and cursor, page
        walked.extend(page)
    assert ids(walked) == ids(first_five)
    assert len(set(ids(walked))) == 5


def test_default_page_is_50_with_a_cursor(server, admin):
    at_least(server, admin, 51)
    events, cursor = audit_page(admin)
    assert len(events) == 50 and cursor, (len(events), cursor)
    more, _ = audit_page(admin, cursor=cursor, limit=100)
    assert not set(ids(events)) & set(ids(more)), "a second page repeats the first"
    assert more and more[0]["occurred_at"] <= events[-1]["occurred_at"]
    assert len(audit_page(admin, limit=100)[0]) == min(100, len(events) + len(more))


BAD_QUERIES = [
    ("type=client.nope", "type"),
    ("type=CLIENT.REGISTERED", "type"),
    ("type=client.registered&type=client.approved", "type"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=abc", "limit"),
    ("limit=-1", "limit"),
    ("limit=1&limit=2", "limit"),
    ("actor=a%40demo.test&actor=b%40demo.test", "actor"),
    ("client_id=a&client_id=b", "client_id"),
    ("colour=blue", "colour"),
    ("cursor=garbage%21%21", "cursor"),
    ("cursor=" + base64.urlsafe_b64encode(b"hello").decode().rstrip("="), "cursor"),
    ("cursor=a&cursor=b", "cursor"),
]


@pytest.mark.parametrize("query, named", BAD_QUERIES, ids=[q for q, _ in BAD_QUERIES])
def test_bad_parameters_are_400_naming_them(server, admin, query, named):
    resp = admin.api("GET", f"/audit-events?{query}")
    assert_api_error(resp, 400, "invalid_request", named)


def test_limits_1_and_100_are_accepted(server, admin):
    at_least(server, admin, 2)
    assert len(audit_page(admin, limit=1)[0]) == 1
    assert 2 <= len(audit_page(admin, limit=100)[0]) <= 100


# --------------------------------------------------------------------------------------------
# Methods and authentication
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_405(server, admin, method):
    resp = admin.api(method, "/audit-events", {} if method != "DELETE" else None)
    assert resp[0] == 405, f"{method} /audit-events: {resp[0]} {resp[2][:300]!r}"
    assert resp[1].get("allow") == "GET", resp[1]


def test_no_credential_is_401_and_a_regular_user_403(server, admin):
    assert_unauthenticated(api(server, "GET", "/audit-events"))
    assert_unauthenticated(api(server, "GET", "/audit-events", token="gha_demo_" + "A" * 43))
    browser = console_sign_in(server, USER_EMAIL, DEMO_USER_PASSWORD)
    resp = api(server, "GET", "/audit-events", cookie=browser.cookie("gh_session"))
    assert_api_error(resp, 403, "access_denied")
    assert b'"data"' not in resp[2]


def test_the_admin_session_cookie_reads_the_trail(server, admin):
    events = assert_json(admin.session.call("GET", "/audit-events?limit=3", csrf=None))["data"]
    assert ids(events) == ids(audit_page(admin, limit=3)[0])


def test_another_tenants_token_is_404(server, admin):
    tenant, token = other_tenant_token(server)
    cid = register(server, client_name=unique("audit-foreign"))["client_id"]
    for query in ("", "?limit=5", f"?client_id={cid}"):
        resp = api(server, "GET", f"/audit-events{query}", token=token)
        assert_api_error(resp, 404, "not_found")
        assert cid.encode() not in resp[2]
    # At home the other tenant sees its own events only.
    home = api(server, "GET", "/audit-events?limit=100", token=token, tenant=tenant)
    assert all(e["tenant"] == tenant for e in assert_json(home)["data"]), home
    assert cid.encode() not in home[2] and b'"demo"' not in home[2], home


# --------------------------------------------------------------------------------------------
# The retention setting
# --------------------------------------------------------------------------------------------

BAD_RETENTION = [0, 3651, -1, "x", "30", None, 1.5, True, [30], {"days": 30}]


def test_audit_retention_days_defaults_to_400_and_is_validated(server, admin):
    assert admin.settings()["audit_retention_days"] == 400
    try:
        for good in (30, 1, 3650):
            doc = assert_json(admin.patch_settings({"audit_retention_days": good}))
            assert doc["audit_retention_days"] == good, doc
            assert admin.settings()["audit_retention_days"] == good
        for bad in BAD_RETENTION:
            before = admin.settings()
            resp = admin.patch_settings({"audit_retention_days": bad})
            assert_api_error(resp, 400, "invalid_request", "audit_retention_days")
            assert admin.settings() == before, bad
    finally:
        assert_json(admin.patch_settings({"audit_retention_days": 400}))
    assert admin.settings()["audit_retention_days"] == 400


def test_console_settings_form_sets_the_retention(server, admin):
    url = f"{server.issuer}/admin/settings"
    page = admin.browser.get(url)
    assert_page(page, 200)
    form = dom(page).one("form", id="settings")
    field = form.one("input", name="audit_retention_days")
    before = admin.settings()
    assert field.attrs.get("value") == str(before["audit_retention_days"]), field.attrs
    try:
        done = form.post(admin.browser, url, audit_retention_days="45")
        assert done.status == 303, done
        assert admin.settings() == dict(before, audit_retention_days=45)
        event = audit_page(admin, type="settings.changed", limit=1)[0][0]
        assert event.get("via") == "console", event
        assert event.get("detail") == {"changed": ["audit_retention_days"]}, event
        refused = form.post(admin.browser, url, audit_retention_days="0")
        assert_page(refused, 400, "audit_retention_days")
        assert admin.settings()["audit_retention_days"] == 45
    finally:
        assert_json(admin.patch_settings(before))
    assert admin.settings() == before


# --------------------------------------------------------------------------------------------
# The console's audit page
# --------------------------------------------------------------------------------------------


def audit_rows(resp) -> list:
    assert_page(resp, 200)
    rows = dom(resp).one("table", id="audit").all("tr", data_event_id=None)
    for row in rows:
        for cell in ("when", "type", "actor", "client", "via", "source-ip", "detail"):
            row.one("td", cls=cell)
    return rows


def test_console_audit_page_lists_the_trail_with_its_filter_form(server, admin):
    at_least(server, admin, 2)
    resp = admin.browser.get(f"{server.issuer}/admin/audit")
    page_rows = audit_rows(resp)
    tree = dom(resp)
    form = tree.one("form", id="audit-filter")
    assert form.attrs.get("method", "get").lower() == "get", form.attrs
    options = form.one("select", name="type").all("option")
    assert options[0].attrs.get("value") == "" and options[0].text().lower() == "any", options[0]
    assert [o.attrs.get("value") for o in options[1:]] == EVENT_TYPES
    form.one("input", name="actor")
    form.one("input", name="client_id")
    listed = [r.attrs["data-event-id"] for r in page_rows]
    assert listed and listed == ids(audit_page(admin, limit=len(listed))[0])


def test_console_audit_page_filters(server, admin):
    cid = busy_client(server, admin)
    base = f"{server.issuer}/admin/audit"
    rows = audit_rows(admin.browser.get(f"{base}?type=client.registered"))
    assert rows and all(r.one("td", cls="type").text() == "client.registered" for r in rows)
    rows = audit_rows(admin.browser.get(f"{base}?{urllib.parse.urlencode({'client_id': cid})}"))
    assert [r.attrs["data-event-id"] for r in rows] == ids(client_trail(admin, cid))
    assert all(cid in r.one("td", cls="client").text() for r in rows)
    assert [r.one("td", cls="via").text() for r in rows] == ["api"] * 4 + ["registration"]
    rows = audit_rows(admin.browser.get(f"{base}?{urllib.parse.urlencode({'actor': ADMIN_EMAIL})}"))
    assert rows and all(ADMIN_EMAIL in r.one("td", cls="actor").text() for r in rows)
    # Empty fields (the form's unused inputs) are no filter.
    assert audit_rows(admin.browser.get(f"{base}?type=&actor=&client_id="))
    for bad in ("type=client.nope", "limit=0", "colour=blue"):
        assert_page(admin.browser.get(f"{base}?{bad}"), 400)


def test_console_audit_page_has_a_next_page(server, admin):
    at_least(server, admin, 101)
    base = f"{server.issuer}/admin/audit"
    first = admin.browser.get(base)
    rows = audit_rows(first)
    link = dom(first).one("a", id="next-page")
    second = admin.browser.get(urllib.parse.urljoin(base, link.attrs["href"]))
    more = audit_rows(second)
    one = {r.attrs["data-event-id"] for r in rows}
    two = [r.attrs["data-event-id"] for r in more]
    assert two and not one & set(two), "the next page repeats the first"
    assert ids(audit_page(admin, limit=len(rows) + len(two))[0]) == [
        r.attrs["data-event-id"] for r in rows] + two


def test_every_console_page_links_the_audit_page(server, admin):
    for path in ("/admin", "/admin?view=pending", "/admin/settings", "/admin/users",
                 "/admin/audit"):
        url = f"{server.issuer}{path}"
        resp = admin.browser.get(url)
        assert_page(resp, 200)
        link = dom(resp).one("a", id="audit-link")
        assert urllib.parse.urljoin(url, link.attrs.get("href", "")) == f"{server.issuer}/admin/audit"


def test_console_audit_page_is_for_administrators(server, admin):
    url = f"{server.issuer}/admin/audit"
    resp = Browser(server).get(url)
    assert resp.status == 303, resp
    assert urllib.parse.urljoin(url, resp.location) == f"{server.issuer}/admin/signin"
    user = console_sign_in(server, USER_EMAIL, DEMO_USER_PASSWORD)
    refused = user.get(url)
    assert_page(refused, 403)
    assert not dom(refused).all("table", id="audit")
