// Real-browser test of "ask an administrator", the console's pending queue (approve, reject) and
// the audit trail (issue 17: docs/events.md; docs/admin-api.md, "Console").
//
// Run: tests/browser/run.sh, or `node --test tests/browser/access-requests.test.mjs` from the
// repository root. Needs a built `gatehouse` ($GATEHOUSE_BIN or target/debug/gatehouse, and for
// the Lambda path the function binaries next to it), Chromium ($CHROMIUM_PATH or
// /usr/bin/chromium) and, for the Lambda path, moto (GATEHOUSE_TEST_DYNAMODB_ENDPOINT, which
// tests/run sets).
//
// The whole suite runs twice: against `gatehouse serve` (GATEHOUSE_LOG_FORMAT=json: the events
// are read from its output), and through the Lambda path (the function binaries behind
// tests/lambda_gateway.py, whose logs are files in tests/browser/out/lambda-{port}/; EventBridge
// is moto's too, with a rule on the test's bus that forwards every event to an SQS queue the test
// reads).
//
// The numbered tests run in order and build on each other. Two DCR public clients are pending; the
// regular user meets the first one, asks an administrator (once: a second request records
// nothing), and a forged request for the second one is refused; the administrator (another browser
// context) signs in on the console after one wrong password, sees who asked in the pending queue,
// approves the first client there and rejects the second; the user connects to the first and its
// code exchanges for tokens, the second is gone; every step is in the audit trail, in the console
// (with its filters) and from GET {issuer}/api/v1/audit-events, as the log lines said, and nothing
// secret is in any event.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN,
  SUITE_TIMEOUT_MS,
  USER,
  consoleSignIn,
  decideAndLand,
  pkceAuthorization,
  signIn,
  submitAndLoad,
  tokenRequest,
} from './support.mjs';
import {
  ACTOR_TYPES,
  assertAdminActor,
  auditRows,
  detailPath,
  eventsTestbed,
  ofType,
  queueRow,
  registerClient,
  safeJson,
  sleep,
  tag,
} from './events-support.mjs';

const TIME_LEFT = /^(\d+) min left$|^under a minute left$/;

// ------------------------------------------------------------------ the suite

for (const via of ['serve', 'lambda']) {
describe(`ask an administrator, the pending queue and the audit trail in a real browser (through ${via})`, { timeout: SUITE_TIMEOUT_MS }, () => {
  const lambda = via === 'lambda';
  /** The administrator's console context (signed in in test 4). */
  let admin;
  const {
    secrets,
    startedAt,
    start,
    stop,
    loggedEvents,
    waitForEvents,
    assertWellFormed,
    freshPage,
    adminGoto,
    adminApi,
    rememberSessionSecrets,
    filterAudit: filterAuditPage,
    allAuditEvents,
    assertNothingSecret,
  } = eventsTestbed({ lambda, busPrefix: 'gatehouse-test', admin: () => admin, adminTest: 'test 4', eventLevel: 'INFO', actorTypes: ACTOR_TYPES });
  let cb;
  let issuer;
  /** Lambda path only: the moto EventBridge bus and its queue. */
  let tap;

  // The two clients: `granted` is asked for, approved from the queue and used; `refused` is
  // rejected from the queue.
  const grantedName = `Access Request Agent ${tag()}`;
  const refusedName = `Rejected Agent ${tag()}`;
  let granted;
  let refused;
  /** The regular user's browser (signed in through the hosted flow in test 2). */
  let user;

  before(async () => {
    ({ cb, issuer, tap } = await start());
  });

  after(() => stop());

  // ---------------------------------------------------------------- checks and helpers

  /** spec: the client summary and console link on every client.* event. */
  function assertAboutClient(e, client, name, status) {
    assert.equal(e.client_id, client.client_id);
    assert.equal(e.client?.client_id, client.client_id, `client summary: ${safeJson(e)}`);
    assert.equal(e.client.client_name, name);
    assert.deepEqual(e.client.redirect_uris, [cb.redirectUri]);
    assert.equal(e.client.createdByType, 'dcr');
    if (status) assert.equal(e.client.status, status, `client summary status: ${safeJson(e)}`);
    const prefix = `${issuer}/admin/clients/`;
    assert.ok(e.console_url?.startsWith(prefix), `console_url: ${e.console_url}`);
    const encoded = e.console_url.slice(prefix.length);
    assert.ok(!encoded.includes('/') && !encoded.includes('?'), `console_url is not one path segment: ${e.console_url}`);
    assert.equal(decodeURIComponent(encoded), client.client_id, `console_url does not name the client: ${e.console_url}`);
  }

  /** The code the callback server received for `auth.state` (exactly one hit, no error). */
  function codeFor(auth) {
    const landed = cb.callbackUrlFor(auth.state);
    assert.equal(landed.searchParams.get('error'), null, `the authorization failed: ${landed.href}`);
    assert.equal(landed.searchParams.get('iss'), issuer);
    const code = landed.searchParams.get('code');
    assert.match(code ?? '', /^[A-Za-z0-9_-]{43}$/, `callback: ${landed.href}`);
    return code;
  }

  /** The audit filter form submitted with `values` (select type, actor, client_id); resolves to the page, whose URL carries them. */
  async function filterAudit(values) {
    const page = await filterAuditPage(values);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, `${issuer}/admin/audit`, `the audit filter went to ${page.url()}`);
    for (const [k, v] of Object.entries(values)) {
      assert.equal(landed.searchParams.get(k), v, `the filter's ${k} is not in the URL ${page.url()}`);
    }
    return page;
  }

  // ---------------------------------------------------------------- the flow

  test('1. two DCR registrations: two pending clients, each a client.registered event', async () => {
    granted = await registerClient(issuer, { client_name: grantedName, redirect_uris: [cb.redirectUri], token_endpoint_auth_method: 'none' });
    refused = await registerClient(issuer, { client_name: refusedName, redirect_uris: [cb.redirectUri], token_endpoint_auth_method: 'none' });
    secrets.set('a registration access token', granted.registration_access_token);
    secrets.set('the other registration access token', refused.registration_access_token);

    for (const [client, name] of [[granted, grantedName], [refused, refusedName]]) {
      const [e] = await waitForEvents(ofType('client.registered', client.client_id), `client.registered of ${name}`);
      assertWellFormed(e);
      assertAboutClient(e, client, name, 'pending');
      // spec: an unauthenticated caller (the DCR registrant) is an anonymous actor, no id/email.
      assert.deepEqual(e.actor, { type: 'anonymous' }, `actor of a DCR registration: ${safeJson(e.actor)}`);
      assert.ok(Number.isInteger(e.client.expires_at) && e.client.expires_at > e.occurred_at, `the summary's expires_at: ${safeJson(e.client)}`);
      assert.equal(e.access_requests, undefined, 'a new registration carries access_requests');
    }
  });

  test('2. the regular user meets the pending client, asks an administrator, and sees "Request sent"', async () => {
    assert.ok(granted, 'needs the clients of test 1');
    user = await freshPage();
    const { page, documents, dialogs } = user;
    const auth = pkceAuthorization(issuer, granted.client_id, cb.redirectUri);
    await page.goto(auth.url);
    await signIn(page, USER);
    await assert.doesNotReject(
      page.getByRole('heading', { level: 1, name: 'Administrator approval required' }).waitFor(),
      `expected the "Administrator approval required" page, got: ${await page.locator('body').innerText()}`,
    );
    assert.equal(documents.at(-1).status, 403, 'the "Administrator approval required" page is not a 403 page');
    const title = await page.title();
    const tenantName = title.slice(title.lastIndexOf(' · ') + 3);
    assert.ok(tenantName.length > 0, `no tenant name in the title ${JSON.stringify(title)}`);

    // spec: form#request-access, method post, action {issuer}/oauth/authorize, hidden action,
    // request_id, client_id, csrf_token, and the "Ask an administrator" submit button.
    const form = page.locator('form#request-access');
    assert.equal(await form.count(), 1, `no form#request-access: ${await page.locator('body').innerText()}`);
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post');
    assert.equal(new URL(await form.getAttribute('action'), page.url()).href, `${issuer}/oauth/authorize`);
    const hidden = (name) => form.locator(`input[type=hidden][name=${name}]`);
    assert.equal(await hidden('action').inputValue(), 'request_access');
    assert.equal(await hidden('client_id').inputValue(), granted.client_id);
    assert.ok((await hidden('request_id').inputValue()).length > 0, 'empty request_id');
    assert.ok((await hidden('csrf_token').inputValue()).length > 0, 'empty csrf_token');
    const ask = form.locator('button[type=submit]');
    assert.equal((await ask.innerText()).trim(), 'Ask an administrator');
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'a regular user was offered Approve');

    const sent = await submitAndLoad(page, ask);
    assert.equal(sent.posted.status(), 200, `asking answered ${sent.posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(sent.final.request().redirectedFrom(), null, 'asking redirected instead of answering the page');
    await assert.doesNotReject(
      page.getByRole('heading', { level: 1, name: 'Request sent' }).waitFor(),
      `expected the "Request sent" page, got: ${await page.locator('body').innerText()}`,
    );
    assert.equal(await page.locator('#access-requested').count(), 1, 'no #access-requested element');
    const text = await page.locator('body').innerText();
    assert.ok(text.includes(grantedName), `the "Request sent" page does not name the client: ${text}`);
    assert.ok(text.includes(tenantName), `the "Request sent" page does not name the tenant ${tenantName}: ${text}`);
    assert.match(text, /connect/i, `the "Request sent" page does not say to connect again: ${text}`);
    assert.match(text, /again/i, `the "Request sent" page does not say to connect again: ${text}`);
    assert.ok(page.url().startsWith(issuer), `left Gatehouse: ${page.url()}`);
    assert.deepEqual(cb.hitsFor(auth.state), [], 'the pending client heard from the browser');
    assert.deepEqual(dialogs, []);
    assert.deepEqual(user.pageErrors, []);
    await rememberSessionSecrets(user.context, 'the user');

    // The event: the user asked, with every request so far (this one).
    const [signin] = await waitForEvents((e) => e.type === 'signin.succeeded' && e.actor?.email === USER.email, 'signin.succeeded of the user');
    assertWellFormed(signin);
    assert.equal(signin.actor.type, 'user');
    assert.equal(signin.detail?.page, 'authorize', `sign-in detail: ${safeJson(signin)}`);
    assert.equal(signin.source_ip, '127.0.0.1');
    const [asked] = await waitForEvents(ofType('client.access_requested', granted.client_id), 'client.access_requested');
    assertWellFormed(asked);
    assertAboutClient(asked, granted, grantedName, 'pending');
    assert.deepEqual(asked.actor, { type: 'user', id: signin.actor.id, email: USER.email }, `actor: ${safeJson(asked.actor)}`);
    assert.equal(asked.access_requests?.length, 1, `access_requests: ${safeJson(asked.access_requests)}`);
    const [request] = asked.access_requests;
    assert.deepEqual(Object.keys(request).sort(), ['email', 'requested_at', 'user_id']);
    assert.equal(request.user_id, signin.actor.id);
    assert.equal(request.email, USER.email);
    assert.ok(request.requested_at >= startedAt - 5 && request.requested_at <= asked.occurred_at + 1, `requested_at: ${safeJson(request)}`);
  });

  test('3. asking again records nothing new; a forged request (wrong csrf_token) is refused and records nothing', async () => {
    assert.ok(user, 'needs the user of test 2');
    const { page, documents } = user;

    // Same user, same client, a new authorization: the page again, the same answer, no event.
    const again = pkceAuthorization(issuer, granted.client_id, cb.redirectUri);
    await page.goto(again.url);
    const form = page.locator('form#request-access');
    await assert.doesNotReject(form.waitFor(), `no form#request-access the second time: ${await page.locator('body').innerText()}`);
    const second = await submitAndLoad(page, form.locator('button[type=submit]'));
    assert.equal(second.posted.status(), 200, `asking again answered ${second.posted.status()}`);
    await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Request sent' }).waitFor());
    assert.equal(await page.locator('#access-requested').count(), 1);

    // A forged request for the other client (the page's own form, csrf_token replaced): a 403
    // page, nothing recorded.
    const forged = pkceAuthorization(issuer, refused.client_id, cb.redirectUri);
    await page.goto(forged.url);
    const other = page.locator('form#request-access');
    await assert.doesNotReject(other.waitFor(), `no form#request-access for the second client: ${await page.locator('body').innerText()}`);
    assert.equal(await other.locator('input[name=client_id]').inputValue(), refused.client_id);
    await other.locator('input[name=csrf_token]').evaluate((i) => {
      i.value = 'A'.repeat(i.value.length || 43);
    });
    const refusedPost = await submitAndLoad(page, other.locator('button[type=submit]'));
    assert.equal(refusedPost.posted.status(), 403, `a forged request answered ${refusedPost.posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(await page.locator('#access-requested').count(), 0, 'a forged request shows "Request sent"');
    assert.equal(documents.at(-1).status, 403);

    // Control for "nothing": let any late line arrive, then count.
    await sleep(1_000);
    await waitForEvents(ofType('client.access_requested', granted.client_id), 'client.access_requested of the first client (after asking twice)');
    await waitForEvents(ofType('client.access_requested', refused.client_id), 'client.access_requested of the second client (forged)', { n: 0 });
  });

  test('4. the administrator (one wrong password first) signs in on the console and sees who asked in the pending queue', async () => {
    assert.ok(granted && refused, 'needs the clients of test 1');
    admin = await freshPage();
    const wrong = `not-the-password-${tag()}`;
    secrets.set('a wrong password', wrong);
    const failed = await consoleSignIn(admin.page, issuer, { email: ADMIN.email, password: wrong });
    assert.equal(failed.final.status(), 401, `a wrong password answered ${failed.final.status()}`);
    const [bad] = await waitForEvents(ofType('signin.failed'), 'signin.failed');
    assertWellFormed(bad);
    assert.deepEqual(bad.actor, { type: 'anonymous', email: ADMIN.email }, `signin.failed actor: ${safeJson(bad.actor)}`);
    assert.equal(bad.detail?.page, 'console');
    assert.equal(bad.detail?.reason, 'invalid');
    assert.equal(bad.source_ip, '127.0.0.1');

    const { posted, url } = await consoleSignIn(admin.page, issuer, ADMIN);
    assert.equal(posted.status(), 303, `POST /admin/signin as the administrator answered ${posted.status()}`);
    assert.equal(url, `${issuer}/admin`);
    await rememberSessionSecrets(admin.context, 'the administrator');
    const [signin] = await waitForEvents((e) => e.type === 'signin.succeeded' && e.actor?.email === ADMIN.email, 'signin.succeeded of the administrator');
    assertWellFormed(signin);
    assertAdminActor(signin);
    assert.equal(signin.detail?.page, 'console');
    assert.equal(signin.source_ip, '127.0.0.1');

    const page = admin.page;
    assert.equal(await page.locator('a#audit-link').count(), 1, 'no a#audit-link on the clients page');
    await Promise.all([page.waitForURL(`${issuer}/admin?view=pending`), page.locator('a#pending-link').click()]);
    const row = queueRow(page, granted.client_id);
    assert.equal(await row.count(), 1, `the pending queue does not list the client: ${await page.locator('body').innerText()}`);
    assert.equal((await row.locator('td.requested-by').innerText()).trim(), USER.email, 'td.requested-by does not name the user who asked');
    const left = (await row.locator('td.time-left').innerText()).trim();
    assert.match(left, TIME_LEFT);
    const minutes = Number(TIME_LEFT.exec(left)[1]);
    assert.ok(minutes >= 55 && minutes <= 60, `time left of a client registered a moment ago: ${left}`);
    const other = queueRow(page, refused.client_id);
    assert.equal(await other.count(), 1, 'the second pending client is not in the queue');
    assert.equal((await other.locator('td.requested-by').innerText()).trim(), '—', 'nobody asked for the second client (the forged request was refused)');

    // spec: per row form.approve (action=approve, csrf, shown, from=queue) and form.reject
    // (action=reject, csrf), both posting to {issuer}/admin/clients/{percent-encoded id}.
    for (const [cls, action] of [['approve', 'approve'], ['reject', 'reject']]) {
      const f = row.locator(`form.${cls}`);
      assert.equal(await f.count(), 1, `no form.${cls} in the row`);
      assert.equal((await f.getAttribute('method'))?.toLowerCase(), 'post');
      const target = new URL(await f.getAttribute('action'), page.url());
      assert.equal(decodeURIComponent(target.pathname), `/t/demo/admin/clients/${granted.client_id}`);
      assert.equal(target.origin, new URL(issuer).origin, `form.${cls} posts elsewhere: ${target.href}`);
      assert.equal(target.search, '', `form.${cls} action carries a query: ${target.href}`);
      assert.equal(await f.locator('input[type=hidden][name=action]').inputValue(), action);
      assert.ok((await f.locator('input[type=hidden][name=csrf]').inputValue()).length >= 32, `form.${cls} carries no csrf`);
      assert.equal((await f.locator('button[type=submit]').innerText()).trim(), cls === 'approve' ? 'Approve' : 'Reject');
    }
    assert.equal(await row.locator('form.approve input[type=hidden][name=from]').inputValue(), 'queue');
    assert.equal(await row.locator('form.approve input[type=hidden][name=shown]').count(), 1);
    secrets.set('the console csrf token', await row.locator('form.approve input[name=csrf]').inputValue());

    // The detail page and the admin API say the same.
    await adminGoto(detailPath(granted.client_id));
    assert.ok((await page.locator('[data-field=access_requests]').innerText()).includes(USER.email), 'the detail page does not list who asked');
    assert.equal(await page.locator('form#reject').count(), 1, 'no form#reject on a pending client\'s detail page');
    const api = await adminApi(`/oauth-clients/${encodeURIComponent(granted.client_id)}`);
    assert.equal(api.status, 200, api.text);
    assert.equal(api.body.status, 'pending');
    assert.equal(api.body.access_requests?.length, 1, `access_requests in the admin API: ${api.text}`);
    assert.equal(api.body.access_requests[0].email, USER.email);
    const [asked] = await waitForEvents(ofType('client.access_requested', granted.client_id), 'client.access_requested');
    assert.deepEqual(api.body.access_requests, asked.access_requests, 'the admin API and the event disagree on who asked');
    const none = await adminApi(`/oauth-clients/${encodeURIComponent(refused.client_id)}`);
    assert.equal(none.status, 200, none.text);
    assert.equal(none.body.access_requests, undefined, `a client nobody asked for carries access_requests: ${none.text}`);
    // The list of pending clients carries the same representation.
    const list = await adminApi(`/oauth-clients?filter=${encodeURIComponent('status eq "pending"')}`);
    assert.equal(list.status, 200, list.text);
    const listed = new Map(list.body.data.map((c) => [c.client_id, c]));
    assert.deepEqual(listed.get(granted.client_id)?.access_requests, asked.access_requests, `the pending list: ${list.text}`);
    assert.ok(listed.has(refused.client_id), `the pending list lacks the second client: ${list.text}`);
    assert.equal(listed.get(refused.client_id).access_requests, undefined, `the pending list: ${list.text}`);
  });

  test('5. Approve in the queue: the client leaves it, and client.approved names the user who asked', async () => {
    assert.ok(admin, 'needs the administrator of test 4');
    const page = await adminGoto('/admin?view=pending');
    const { posted, final, url } = await submitAndLoad(page, queueRow(page, granted.client_id).locator('form.approve button'));
    assert.equal(posted.status(), 303, `form.approve answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}/admin?view=pending`, 'approving from the queue did not come back to the queue');
    assert.equal(final.status(), 200);
    assert.equal(await queueRow(page, granted.client_id).count(), 0, 'the approved client is still in the queue');
    assert.equal(await queueRow(page, refused.client_id).count(), 1, 'the other pending client left the queue');

    const [asked] = await waitForEvents(ofType('client.access_requested', granted.client_id), 'client.access_requested');
    const [approved] = await waitForEvents(ofType('client.approved', granted.client_id), 'client.approved');
    assertWellFormed(approved);
    assertAboutClient(approved, granted, grantedName);
    assertAdminActor(approved);
    assert.equal(approved.via, 'console');
    assert.deepEqual(approved.access_requests, asked.access_requests, 'client.approved does not carry who asked');
    assert.ok(Number.isInteger(approved.detail?.config_version), `detail: ${safeJson(approved.detail)}`);

    const api = await adminApi(`/oauth-clients/${encodeURIComponent(granted.client_id)}`);
    assert.equal(api.status, 200, api.text);
    assert.equal(api.body.status, 'approved');
    assert.equal(api.body.access_requests, undefined, `an approved client still carries access_requests: ${api.text}`);
  });

  test('6. the user connects now: consent page, Approve, a code that exchanges for tokens', async () => {
    assert.ok(user, 'needs the user of test 2');
    const { page, dialogs } = user;
    const auth = pkceAuthorization(issuer, granted.client_id, cb.redirectUri);
    await page.goto(auth.url);
    await assert.doesNotReject(
      page.getByRole('heading', { name: `${grantedName} wants to access your` }).waitFor(),
      `expected the consent page, got ${page.url()}: ${await page.locator('body').innerText()}`,
    );
    assert.equal(await page.getByText('Administrator approval required').count(), 0);
    await decideAndLand(page, 'Approve', cb.redirectUri);
    assert.equal(await page.locator('body').innerText(), 'done');
    const code = codeFor(auth);
    secrets.set('the authorization code', code);
    const tokens = await tokenRequest(issuer, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: cb.redirectUri,
      code_verifier: auth.verifier,
      client_id: granted.client_id,
    });
    assert.equal(tokens.status, 200, `code exchange: ${safeJson(tokens.body)}`);
    assert.equal(typeof tokens.body.access_token, 'string');
    assert.match(tokens.body.token_type ?? '', /^bearer$/i);
    secrets.set('the access token', tokens.body.access_token);
    if (tokens.body.refresh_token) secrets.set('the refresh token', tokens.body.refresh_token);
    assert.deepEqual(dialogs, []);
  });

  test('7. Reject in the queue: the second client leaves it and is gone; its authorization URL shows an error page', async () => {
    assert.ok(admin, 'needs the administrator of test 4');
    const page = await adminGoto('/admin?view=pending');
    const row = queueRow(page, refused.client_id);
    assert.equal(await row.count(), 1, 'the second client is not in the queue');
    const { posted, final, url } = await submitAndLoad(page, row.locator('form.reject button'));
    assert.equal(posted.status(), 303, `form.reject answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}/admin?view=pending`, 'rejecting from the queue did not come back to the queue');
    assert.equal(final.status(), 200);
    assert.equal(await queueRow(page, refused.client_id).count(), 0, 'the rejected client is still in the queue');

    const [rejected] = await waitForEvents(ofType('client.rejected', refused.client_id), 'client.rejected');
    assertWellFormed(rejected);
    assertAboutClient(rejected, refused, refusedName);
    assertAdminActor(rejected);
    assert.equal(rejected.via, 'console');

    // Deleted: the API does not know it, the console's detail page is a 404 page.
    const api = await adminApi(`/oauth-clients/${encodeURIComponent(refused.client_id)}`);
    assert.equal(api.status, 404, `the rejected client in the admin API: ${api.status} ${api.text}`);
    await adminGoto(detailPath(refused.client_id), 404);

    // Its authorization URL: an error page at Gatehouse, nothing sent to its redirect URI.
    const { page: p, documents, dialogs } = await freshPage();
    const auth = pkceAuthorization(issuer, refused.client_id, cb.redirectUri);
    await p.goto(auth.url);
    await p.waitForLoadState('load');
    assert.ok(p.url().startsWith(issuer), `the rejected client's authorization left Gatehouse: ${p.url()}`);
    const last = documents.at(-1);
    assert.ok(last.status >= 400 && last.status < 500, `the rejected client's authorization answered ${last.status}: ${await p.locator('body').innerText()}`);
    assert.equal(await p.locator('input[name=password]').count(), 0, 'the rejected client\'s authorization offers a sign-in');
    assert.equal(await p.getByRole('button', { name: 'Approve' }).count(), 0);
    assert.deepEqual(cb.hitsFor(auth.state), [], 'the rejected client heard from the browser');
    assert.deepEqual(dialogs, []);
  });

  test('8. the console\'s audit page lists every step; its filters narrow it', async () => {
    assert.ok(admin, 'needs the administrator of test 4');
    const logged = loggedEvents();
    for (const type of ['client.registered', 'client.access_requested', 'client.approved', 'client.rejected', 'signin.succeeded', 'signin.failed']) {
      assert.ok(logged.some((e) => e.type === type), `no ${type} event was logged`);
    }

    // Through the nav link.
    const page = await adminGoto('/admin?view=pending');
    const link = page.locator('a#audit-link');
    assert.equal(await link.count(), 1, 'no a#audit-link on the pending queue');
    await Promise.all([page.waitForURL((u) => u.pathname === '/t/demo/admin/audit'), link.click()]);
    const rows = await auditRows(page);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const e of logged) {
      const r = byId.get(e.id);
      assert.ok(r, `the audit page has no row for the logged ${e.type} event ${e.id}; rows: ${safeJson(rows)}`);
      assert.equal(r.type, e.type, `td.type of ${e.id}`);
      assert.ok(r.when.length > 0, `empty td.when: ${safeJson(r)}`);
      if (e.actor.email) assert.ok(r.actor.includes(e.actor.email), `td.actor of ${e.type}: ${safeJson(r)}`);
      if (e.client_id) {
        assert.ok(r.client.includes(e.client_id) || r.client.includes(e.client.client_name), `td.client of ${e.type}: ${safeJson(r)}`);
      }
      if (e.via) assert.equal(r.via, e.via, `td.via of ${e.type}`);
      if (e.source_ip) assert.equal(r.sourceIp, e.source_ip, `td.source-ip of ${e.type}`);
    }
    // Newest first: the rows of the logged events come in the reverse of the log's order
    // (occurred_at in whole seconds: compare the times, not the order within one second).
    const when = new Map(logged.map((e) => [e.id, e.occurred_at]));
    const times = rows.filter((r) => when.has(r.id)).map((r) => when.get(r.id));
    for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] >= times[i], `the audit page is not newest first: ${times}`);

    // Filter by type.
    const approvedIds = logged.filter((e) => e.type === 'client.approved').map((e) => e.id);
    const byType = await auditRows(await filterAudit({ type: 'client.approved', actor: '', client_id: '' }));
    assert.deepEqual(byType.map((r) => r.id).sort(), [...approvedIds].sort(), `rows for type client.approved: ${safeJson(byType)}`);
    for (const r of byType) assert.equal(r.type, 'client.approved');
    // The selected filter is shown in the form.
    assert.equal(await page.locator('form#audit-filter select[name=type]').inputValue(), 'client.approved');

    // Filter by actor (the user's email, in capitals: case-insensitive).
    const userIds = logged.filter((e) => e.actor.email === USER.email).map((e) => e.id);
    assert.ok(userIds.length >= 2, 'the user should have signed in and asked');
    const byActor = await auditRows(await filterAudit({ type: '', actor: USER.email.toUpperCase(), client_id: '' }));
    assert.deepEqual(byActor.map((r) => r.id).sort(), [...userIds].sort(), `rows for actor ${USER.email}: ${safeJson(byActor)}`);

    // Filter by client.
    const clientIds = logged.filter((e) => e.client_id === granted.client_id).map((e) => e.id);
    const byClient = await auditRows(await filterAudit({ type: '', actor: '', client_id: granted.client_id }));
    assert.deepEqual(byClient.map((r) => r.id).sort(), [...clientIds].sort(), `rows for client ${granted.client_id}: ${safeJson(byClient)}`);
    assert.deepEqual([...new Set(byClient.map((r) => r.type))].sort(), ['client.access_requested', 'client.approved', 'client.registered']);

    // The "any" option and a bad filter.
    assert.equal(await page.locator('form#audit-filter select[name=type] option[value=""]').count(), 1, 'no empty "any" option');
    await adminGoto('/admin/audit?type=no.such.type', 400);
  });

  test('9. GET {issuer}/api/v1/audit-events serves the same events as logged, with filters and cursors', async () => {
    assert.ok(admin, 'needs the administrator of test 4');
    const logged = loggedEvents();
    const all = await allAuditEvents();
    const byId = new Map(all.map((e) => [e.id, e]));
    for (const e of logged) {
      assert.deepEqual(byId.get(e.id), e, `the API's ${e.type} event ${e.id} differs from the logged one`);
    }
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].occurred_at >= all[i].occurred_at, 'the API is not newest first');
    for (const e of all) assertWellFormed(e);

    // Filters.
    const ids = (list) => list.map((e) => e.id).sort();
    const want = (pred) => ids(logged.filter(pred));
    assert.deepEqual(ids(await allAuditEvents('type=client.registered')), want((e) => e.type === 'client.registered'));
    assert.deepEqual(ids(await allAuditEvents('type=client.rejected')), want((e) => e.type === 'client.rejected'));
    assert.deepEqual(ids(await allAuditEvents(`client_id=${encodeURIComponent(granted.client_id)}`)), want((e) => e.client_id === granted.client_id));
    assert.deepEqual(ids(await allAuditEvents(`actor=${encodeURIComponent(USER.email.toUpperCase())}`)), want((e) => e.actor.email === USER.email));
    const userId = logged.find((e) => e.type === 'client.access_requested').actor.id;
    assert.deepEqual(ids(await allAuditEvents(`actor=${encodeURIComponent(userId)}`)), want((e) => e.actor.id === userId));

    // Cursor pages of one: the same events, in the same order.
    const first = await adminApi('/audit-events?limit=1');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.data.length, 1);
    assert.deepEqual(first.body.data[0], all[0]);
    assert.equal(typeof first.body.next_cursor, 'string', 'no next_cursor with more events left');
    const second = await adminApi(`/audit-events?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body.data, [all[1]]);

    // Bad requests name the parameter; writes are refused.
    for (const [q, name] of [['type=no.such.type', 'type'], ['limit=0', 'limit'], ['limit=101', 'limit'], ['cursor=%21%21', 'cursor'], ['type=client.approved&type=client.rejected', 'type'], ['colour=red', 'colour']]) {
      const r = await adminApi(`/audit-events?${q}`);
      assert.equal(r.status, 400, `?${q} answered ${r.status}: ${r.text}`);
      assert.equal(r.body.error, 'invalid_request', `?${q}: ${r.text}`);
      assert.ok((r.body.error_description ?? '').includes(name), `?${q}: the description does not name ${name}: ${r.text}`);
    }
    const post = await adminApi('/audit-events', { method: 'POST' });
    assert.equal(post.status, 405, `POST /audit-events answered ${post.status}: ${post.text}`);
    // A regular user cannot read the trail.
    const asUser = await user.context.request.get(`${issuer}/api/v1/audit-events`);
    assert.equal(asUser.status(), 403, `the regular user's session read the audit trail: ${asUser.status()}`);
  });

  test('10. nothing secret in any event (log, audit API)', async () => {
    await assertNothingSecret(8);
  });

  if (lambda) {
    test('11. EventBridge (moto): exactly the notifying events were put on the bus, each the logged representation', async () => {
      assert.ok(tap, 'needs the moto bus');
      const logged = loggedEvents();
      const notifying = logged.filter((e) => e.type.startsWith('client.'));
      // spec: N types only; here two registrations, one request, one approval, one rejection.
      assert.deepEqual(notifying.map((e) => e.type).sort(), ['client.access_requested', 'client.approved', 'client.registered', 'client.registered', 'client.rejected']);
      const delivered = await tap.deliveries(notifying.length);
      assert.equal(delivered.length, notifying.length, `EventBridge got ${delivered.length} events: ${safeJson(delivered.map((d) => d['detail-type']))}`);
      for (const d of delivered) {
        assert.equal(d.source, 'gatehouse');
        const e = logged.find((x) => x.id === d.detail?.id);
        assert.ok(e, `an event on the bus was not logged: ${safeJson(d)}`);
        assert.equal(d['detail-type'], e.type);
        assert.deepEqual(d.detail, e, `the ${e.type} event on the bus differs from the logged one`);
      }
    });
  }
});
}
