// Real-browser test of vendor trust (issue 17, deliverable 3: docs/admin-api.md, "Vendor trusts"
// and "Console"), through `gatehouse serve` and through the Lambda path.
//
// Run: tests/browser/run.sh, or `node --test tests/browser/vendor-trust.test.mjs` from the
// repository root. Needs a built `gatehouse` ($GATEHOUSE_BIN or target/debug/gatehouse, and for
// the Lambda path the function binaries next to it), Chromium ($CHROMIUM_PATH or
// /usr/bin/chromium) and, for the Lambda path, moto (GATEHOUSE_TEST_DYNAMODB_ENDPOINT, which
// tests/run sets).
//
// The application's redirect URIs are https on a DNS name under the reserved `.example` domain,
// which does not resolve. Playwright cannot route the target of a redirect (its route handler
// is only called for the first URL of a redirect chain), so the test does not answer for the
// application: it records every request the browser makes to the application's origin (the
// navigation then fails, as it would for an unreachable application), and reads the 303 that
// sent the browser there, and its Location, from that request's redirect chain.
//
// The numbered tests run in order and build on each other: an application registers (DCR, a
// confidential client with two https redirect URIs and a software_id) and is pending; a regular
// user asks an administrator for it; the administrator approves it from the console's pending
// queue with "trust" ticked; the trusts page lists the trust; a second registration of the same
// application (its redirect URIs in the other order) is approved at once and another regular
// user's browser connects through it (sign-in, consent page, Approve, a code that exchanges for
// tokens); a registration of the same name with a loopback redirect URI stays pending (the user
// meets "Administrator approval required"; the queue offers no trust, and a forged trust is
// refused); the administrator revokes the trust on the trusts page; a third matching
// registration is pending; the second client still works; the audit trail (console and API)
// holds vendor_trust.created, client.approved via vendor_trust and vendor_trust.revoked; nothing
// secret is in any event; on the Lambda path the client events were put on EventBridge (moto).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN,
  SUITE_TIMEOUT_MS,
  USER,
  consoleSignIn,
  jwtClaims,
  pkceAuthorization,
  signIn,
  submitAndLoad,
  tokenRequest,
} from './support.mjs';
import {
  assertAdminActor,
  auditRows,
  detailPath,
  eventsTestbed,
  nullPaths,
  ofType,
  queueRow,
  registerClient,
  safeJson,
  sleep,
  tag,
} from './events-support.mjs';

// ------------------------------------------------------------------ the suite

for (const via of ['serve', 'lambda']) {
describe(`vendor trust in a real browser (through ${via})`, { timeout: SUITE_TIMEOUT_MS }, () => {
  const lambda = via === 'lambda';
  /** The administrator's console context (test 3 on). */
  let admin;
  const {
    secrets,
    startedAt,
    start,
    stop,
    loggedEvents,
    waitForEvents,
    assertWellFormed,
    freshPage: freshTestbedPage,
    adminGoto,
    adminApi,
    rememberSessionSecrets,
    filterAudit,
    allAuditEvents,
    assertNothingSecret,
  } = eventsTestbed({ lambda, busPrefix: 'gatehouse-trust-test', admin: () => admin, adminTest: 'test 3' });
  let cb;
  let issuer;
  /** Lambda path only: the moto EventBridge bus and its queue. */
  let tap;

  // The application: https redirect URIs on a DNS name nobody resolves (the browser contexts
  // route it), a confidential client, a software_id.
  const APP_ORIGIN = `https://agent-${tag()}.example`;
  const APP_URIS = [`${APP_ORIGIN}/oauth/callback`, `${APP_ORIGIN}/oauth/return`];
  const APP_NAME = `Trusted Vendor Agent ${tag()}`;
  const SOFTWARE_ID = `com.example.trusted-agent-${tag()}`;
  const AUTH_METHOD = 'client_secret_basic';
  const appMetadata = (redirectUris) => ({
    client_name: APP_NAME,
    redirect_uris: redirectUris,
    token_endpoint_auth_method: AUTH_METHOD,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    software_id: SOFTWARE_ID,
    software_version: '1.0.0',
  });

  /** The registration approved from the queue with trust (it founds the trust). */
  let founding;
  /** The second registration of the same application (approved by the trust). */
  let second;
  /** The same name and software_id with a loopback redirect URI (stays pending). */
  let loopback;
  /** The third matching registration, after the trust was revoked (pending). */
  let third;
  /** The trust's id (64 hex). */
  let trustId;
  /** The regular user who asks for the founding client and meets the pending ones (test 2 on). */
  let asker;
  /** The regular user who connects through the second client (test 6 on). */
  let connector;
  /** Every URL a browser was sent to on the application's origin, in order. */
  const appHits = [];

  before(async () => {
    ({ cb, issuer, tap } = await start());
  });

  after(() => stop());

  // ---------------------------------------------------------------- checks and helpers

  /** spec: the client summary and console link on every client.* event (and on vendor_trust.created). */
  function assertAboutClient(e, client, redirectUris, status) {
    assert.equal(e.client_id, client.client_id, `client_id: ${safeJson(e)}`);
    assert.equal(e.client?.client_id, client.client_id, `client summary: ${safeJson(e)}`);
    assert.equal(e.client.client_name, APP_NAME);
    assert.deepEqual([...e.client.redirect_uris].sort(), [...redirectUris].sort());
    assert.equal(e.client.software_id, SOFTWARE_ID);
    assert.equal(e.client.createdByType, 'dcr');
    if (status) assert.equal(e.client.status, status, `client summary status: ${safeJson(e)}`);
    assert.equal(e.console_url, `${issuer}/admin/clients/${encodeURIComponent(client.client_id)}`, `console_url: ${e.console_url}`);
  }

  /** A fresh browser context whose requests to the application's origin are recorded in `appHits`. */
  async function freshPage() {
    const p = await freshTestbedPage();
    p.context.on('request', (r) => {
      if (r.url().startsWith(`${APP_ORIGIN}/`)) appHits.push(r.url());
    });
    return p;
  }

  /** The URL the browser was sent to on the application's origin for `auth.state` (exactly one). */
  function appHitFor(auth) {
    const mine = appHits.map((u) => new URL(u)).filter((u) => u.searchParams.get('state') === auth.state);
    assert.equal(mine.length, 1, `the application's origin got ${mine.length} requests for this state: ${safeJson(appHits)}`);
    return mine[0];
  }

  /**
   * Runs `act` (a click or a goto, and whatever it needs on the way) until the browser is sent to
   * the application's origin. Asserts that a redirect from Gatehouse (a 303 after a form) sent it
   * there, to the authorization's redirect URI with a code, `state` and `iss` (the redirect's
   * Location is the URL the browser asked for); resolves to the code.
   */
  async function codeAtApplication(page, auth, act) {
    const sent = page.waitForRequest((r) => r.url().startsWith(`${APP_ORIGIN}/`) && r.isNavigationRequest());
    sent.catch(() => {});
    // `act` may still be waiting for the application's page (a goto) when the request is sent:
    // what becomes of that request does not matter.
    const acted = act().then(() => undefined, (e) => e);
    const first = await Promise.race([sent.then(() => 'sent', () => 'sent'), acted.then(() => 'acted')]);
    if (first === 'acted') {
      const actError = await acted;
      // The only acceptable failure on the way: the application's unreachable origin.
      if (actError && !/net::ERR_/.test(String(actError))) throw actError;
    }
    let request;
    try {
      request = await sent;
    } catch (e) {
      assert.fail(`the browser was not sent to the application (${e}); it is at ${page.url()}: ${await page.locator('body').innerText().catch(() => '?')}`);
    }
    const from = request.redirectedFrom();
    assert.ok(from, `the application's redirect URI was not reached by a redirect: ${request.url()}`);
    assert.ok(from.url().startsWith(issuer), `the redirect came from ${from.url()}`);
    const redirect = await from.response();
    // After a form POST a 303 (the browser GETs the redirect URI); a GET may be answered 302.
    const allowed = from.method() === 'POST' ? [303] : [302, 303];
    assert.ok(allowed.includes(redirect?.status()), `the redirect to the application after ${from.method()} ${from.url()} was a ${redirect?.status()}`);
    const location = redirect.headers().location;
    assert.equal(location, request.url(), 'the redirect\'s Location is not where the browser went');
    const landed = appHitFor(auth);
    assert.equal(landed.href, location);
    assert.equal(`${landed.origin}${landed.pathname}`, auth.redirectUri);
    assert.equal(landed.searchParams.get('error'), null, `the authorization failed: ${landed.href}`);
    assert.equal(landed.searchParams.get('iss'), issuer);
    const code = landed.searchParams.get('code');
    assert.match(code ?? '', /^[A-Za-z0-9_-]{43}$/, `sent to ${landed.href}`);
    secrets.set(`the code for ${auth.state}`, code);
    return code;
  }

  /** Exchanges `code` at the token endpoint with `client`'s secret (client_secret_basic); resolves to the tokens. */
  async function exchange(client, auth, code) {
    const tokens = await tokenRequest(
      issuer,
      { grant_type: 'authorization_code', code, redirect_uri: auth.redirectUri, code_verifier: auth.verifier },
      { id: client.client_id, secret: client.client_secret },
    );
    assert.equal(tokens.status, 200, `code exchange: ${safeJson(tokens.body)}`);
    assert.equal(typeof tokens.body.access_token, 'string');
    assert.match(tokens.body.token_type ?? '', /^bearer$/i);
    assert.equal(jwtClaims(tokens.body.access_token).client_id, client.client_id, 'the access token names another client');
    secrets.set(`the access token for ${auth.state}`, tokens.body.access_token);
    if (tokens.body.refresh_token) secrets.set(`the refresh token for ${auth.state}`, tokens.body.refresh_token);
    return tokens.body;
  }

  /** A signed-in regular user's browser meets a pending client: the 403 "Administrator approval required" page. */
  async function assertNeedsAdmin(who, auth) {
    const { page, documents } = who;
    await page.goto(auth.url);
    await assert.doesNotReject(
      page.getByRole('heading', { level: 1, name: 'Administrator approval required' }).waitFor(),
      `expected "Administrator approval required", got ${page.url()}: ${await page.locator('body').innerText()}`,
    );
    assert.equal(documents.at(-1).status, 403, 'the "Administrator approval required" page is not a 403 page');
    assert.ok(page.url().startsWith(issuer), `left Gatehouse: ${page.url()}`);
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'a regular user was offered Approve');
    assert.equal(await page.locator('form#request-access').count(), 1, 'no "Ask an administrator" form');
  }

  async function apiClient(client) {
    const r = await adminApi(`/oauth-clients/${encodeURIComponent(client.client_id)}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  }

  async function apiTrusts() {
    const r = await adminApi('/vendor-trusts');
    assert.equal(r.status, 200, `GET /vendor-trusts answered ${r.status}: ${r.text}`);
    assert.ok(Array.isArray(r.body.data), `no data array: ${r.text}`);
    return r.body.data;
  }

  const trustRow = (page, id) => page.locator(`table#trusts tr[data-trust-id="${id}"]`);

  function rememberRegistrationSecrets(reg, what) {
    secrets.set(`${what}'s registration access token`, reg.registration_access_token);
    if (reg.client_secret) secrets.set(`${what}'s client secret`, reg.client_secret);
  }

  /** A pending client as the admin API shows it (no trust, an expiry). */
  async function assertPendingInApi(client, what) {
    const api = await apiClient(client);
    assert.equal(api.status, 'pending', `${what}: ${safeJson(api)}`);
    assert.equal(api.vendor_trust, undefined, `${what} carries a vendor_trust: ${safeJson(api)}`);
    assert.ok(Number.isInteger(api.expires_at), `${what} has no expires_at: ${safeJson(api)}`);
    assert.equal(api.approved_by, undefined, `${what}: ${safeJson(api)}`);
  }

  // ---------------------------------------------------------------- the flow

  test('1. the application registers (https redirect URIs on a DNS name, software_id): pending', async () => {
    founding = await registerClient(issuer, appMetadata(APP_URIS));
    rememberRegistrationSecrets(founding, 'the founding client');
    assert.equal(typeof founding.client_secret, 'string', 'a client_secret_basic registration got no secret');
    const [e] = await waitForEvents(ofType('client.registered', founding.client_id), 'client.registered of the founding client');
    assertWellFormed(e);
    assertAboutClient(e, founding, APP_URIS, 'pending');
    assert.deepEqual(e.actor, { type: 'anonymous' });
    assert.equal(e.detail?.vendor_trust, undefined, `a pending registration names a trust: ${safeJson(e)}`);
    // Nothing trusted yet.
    await waitForEvents(ofType('client.approved', founding.client_id), 'client.approved of the founding client', { n: 0 });
  });

  test('2. a regular user meets it and asks an administrator', async () => {
    assert.ok(founding, 'needs the client of test 1');
    asker = await freshPage();
    const { page, dialogs } = asker;
    const auth = pkceAuthorization(issuer, founding.client_id, APP_URIS[0]);
    await page.goto(auth.url);
    await signIn(page, USER);
    await assert.doesNotReject(
      page.getByRole('heading', { level: 1, name: 'Administrator approval required' }).waitFor(),
      `expected "Administrator approval required", got: ${await page.locator('body').innerText()}`,
    );
    assert.equal(asker.documents.at(-1).status, 403);
    const sent = await submitAndLoad(page, page.locator('form#request-access button[type=submit]'));
    assert.equal(sent.posted.status(), 200, `asking answered ${sent.posted.status()}: ${await page.locator('body').innerText()}`);
    await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Request sent' }).waitFor());
    assert.deepEqual(appHits, [], 'the pending application heard from the browser');
    assert.deepEqual(dialogs, []);
    await rememberSessionSecrets(asker.context, 'the asking user');
    const [asked] = await waitForEvents(ofType('client.access_requested', founding.client_id), 'client.access_requested');
    assertWellFormed(asked);
    assert.equal(asked.actor.email, USER.email);
  });

  test('3. the administrator approves it from the queue with "trust" ticked; the trust is created', async () => {
    assert.ok(founding, 'needs the client of test 1');
    admin = await freshPage();
    const { posted: signedIn } = await consoleSignIn(admin.page, issuer, ADMIN);
    assert.equal(signedIn.status(), 303, `console sign-in answered ${signedIn.status()}`);
    await rememberSessionSecrets(admin.context, 'the administrator');

    const page = await adminGoto('/admin?view=pending');
    const row = queueRow(page, founding.client_id);
    assert.equal(await row.count(), 1, `the queue does not list the application: ${await page.locator('body').innerText()}`);
    assert.equal((await row.locator('td.requested-by').innerText()).trim(), USER.email);
    // spec: the checkbox input[name=trust_vendor][type=checkbox][value=on] in form.approve, for
    // an eligible client; opt-in, so not ticked.
    const box = row.locator('form.approve input[name=trust_vendor]');
    assert.equal(await box.count(), 1, 'no trust checkbox in the queue row of an eligible client');
    assert.equal(await box.getAttribute('type'), 'checkbox');
    assert.equal(await box.getAttribute('value'), 'on');
    assert.equal(await box.isChecked(), false, 'the trust checkbox is ticked by default');
    secrets.set('the console csrf token', await row.locator('form.approve input[name=csrf]').inputValue());
    await box.check();
    const { posted, final, url } = await submitAndLoad(page, row.locator('form.approve button[type=submit]'));
    assert.equal(posted.status(), 303, `form.approve answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}/admin?view=pending`);
    assert.equal(final.status(), 200);
    assert.equal(await queueRow(page, founding.client_id).count(), 0, 'the approved client is still in the queue');
    assert.deepEqual(admin.dialogs, []);

    // The events: approved by the administrator in the console (who asked: the user), and the trust.
    const [approved] = await waitForEvents(ofType('client.approved', founding.client_id), 'client.approved of the founding client');
    assertWellFormed(approved);
    assertAboutClient(approved, founding, APP_URIS);
    assertAdminActor(approved);
    assert.equal(approved.via, 'console');
    assert.deepEqual(approved.access_requests?.map((r) => r.email), [USER.email]);
    const [created] = await waitForEvents(ofType('vendor_trust.created'), 'vendor_trust.created');
    assertWellFormed(created);
    assertAdminActor(created);
    assert.deepEqual(created.actor, approved.actor);
    assert.equal(created.via, 'console');
    trustId = created.detail?.vendor_trust;
    assert.match(trustId ?? '', /^[0-9a-f]{64}$/, `vendor_trust.created detail: ${safeJson(created.detail)}`);
    // spec: detail has the trust id, redirect_uris, auth method, software_id.
    const values = Object.values(created.detail);
    assert.ok(values.some((v) => safeJson(v) === safeJson([...APP_URIS].sort())), `the sorted redirect URIs are not in the detail: ${safeJson(created.detail)}`);
    assert.ok(values.includes(AUTH_METHOD), `the auth method is not in the detail: ${safeJson(created.detail)}`);
    assert.ok(values.includes(SOFTWARE_ID), `the software_id is not in the detail: ${safeJson(created.detail)}`);

    // The founding client is approved by the administrator, not by the trust.
    const api = await apiClient(founding);
    assert.equal(api.status, 'approved', safeJson(api));
    assert.equal(api.vendor_trust, undefined, `the founding client names the trust: ${safeJson(api)}`);
    assert.equal(api.expires_at, undefined);
  });

  test('4. the trusts page lists the trust (nav link, row, revoke form); the API too', async () => {
    assert.ok(trustId, 'needs the trust of test 3');
    const page = await adminGoto('/admin?view=pending');
    const link = page.locator('a#trusts-link');
    assert.equal(await link.count(), 1, 'no a#trusts-link on the console');
    await Promise.all([page.waitForURL(`${issuer}/admin/trusts`), link.click()]);
    const row = trustRow(page, trustId);
    assert.equal(await row.count(), 1, `table#trusts has no row for ${trustId}: ${await page.locator('body').innerText()}`);
    const uris = await row.locator('td.redirect-uris code').allInnerTexts();
    assert.deepEqual(uris.map((u) => u.trim()).sort(), [...APP_URIS].sort(), 'td.redirect-uris');
    assert.equal((await row.locator('td.auth-method').innerText()).trim(), AUTH_METHOD);
    assert.equal((await row.locator('td.software-id').innerText()).trim(), SOFTWARE_ID);
    assert.equal((await row.locator('td.status').innerText()).trim(), 'active');
    assert.ok((await row.innerText()).includes(APP_NAME), 'the row does not name the application');
    const form = row.locator('form.revoke');
    assert.equal(await form.count(), 1, 'no form.revoke on an active trust');
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post');
    assert.equal(new URL(await form.getAttribute('action'), page.url()).href, `${issuer}/admin/trusts`);
    assert.equal(await form.locator('input[type=hidden][name=action]').inputValue(), 'revoke');
    assert.equal(await form.locator('input[type=hidden][name=trust_id]').inputValue(), trustId);
    assert.ok((await form.locator('input[type=hidden][name=csrf]').inputValue()).length >= 32, 'form.revoke carries no csrf');
    assert.equal(await form.locator('button[type=submit], button:not([type])').count(), 1, 'form.revoke has no button');

    const trusts = await apiTrusts();
    const t = trusts.find((x) => x.id === trustId);
    assert.ok(t, `GET /vendor-trusts does not list ${trustId}: ${safeJson(trusts)}`);
    assert.equal(t.client_id, founding.client_id);
    assert.equal(t.client_name, APP_NAME);
    assert.deepEqual(t.redirect_uris, [...APP_URIS].sort(), 'redirect_uris (sorted)');
    assert.equal(t.token_endpoint_auth_method, AUTH_METHOD);
    assert.equal(t.software_id, SOFTWARE_ID);
    assert.equal(t.created_by?.email, ADMIN.email);
    assert.equal(typeof t.created_by?.id, 'string');
    assert.ok(Number.isInteger(t.created_at) && t.created_at >= startedAt - 5, `created_at: ${safeJson(t)}`);
    assert.equal(t.revoked_at, undefined, `an active trust has revoked_at: ${safeJson(t)}`);
    assert.deepEqual(nullPaths(t), [], `null fields in the trust: ${safeJson(t)}`);
  });

  test('5. a second registration of the same application (URIs in the other order) is approved at once by the trust', async () => {
    assert.ok(trustId, 'needs the trust of test 3');
    second = await registerClient(issuer, appMetadata([...APP_URIS].reverse()));
    rememberRegistrationSecrets(second, 'the second client');
    assert.notEqual(second.client_id, founding.client_id);
    assert.equal(typeof second.client_secret, 'string');

    const api = await apiClient(second);
    assert.equal(api.status, 'approved', `the second registration is not approved: ${safeJson(api)}`);
    assert.equal(api.vendor_trust, trustId);
    assert.equal(api.approved_by, `vendor-trust:${trustId}`);
    assert.ok(Number.isInteger(api.approved_at), `approved_at: ${safeJson(api)}`);
    assert.equal(api.expires_at, undefined, `a trusted client expires: ${safeJson(api)}`);

    const [registered] = await waitForEvents(ofType('client.registered', second.client_id), 'client.registered of the second client');
    assertWellFormed(registered);
    assertAboutClient(registered, second, APP_URIS, 'approved');
    assert.deepEqual(registered.actor, { type: 'anonymous' });
    assert.equal(registered.detail?.vendor_trust, trustId, `client.registered detail: ${safeJson(registered.detail)}`);
    const [approved] = await waitForEvents(ofType('client.approved', second.client_id), 'client.approved of the second client');
    assertWellFormed(approved);
    assertAboutClient(approved, second, APP_URIS, 'approved');
    assert.deepEqual(approved.actor, { type: 'system' });
    assert.equal(approved.via, 'vendor_trust');
    assert.deepEqual(approved.detail, { vendor_trust: trustId, config_version: 1 });
    assert.equal(approved.client.expires_at, undefined);

    // Not in the queue; its console page shows the trust, linking to the trusts page.
    const page = await adminGoto('/admin?view=pending');
    assert.equal(await queueRow(page, second.client_id).count(), 0, 'the trusted client is in the pending queue');
    await adminGoto(detailPath(second.client_id));
    const field = page.locator('[data-field=vendor_trust]');
    assert.equal(await field.count(), 1, 'the client page does not show the vendor trust');
    assert.ok((await field.innerText()).includes(trustId), `[data-field=vendor_trust]: ${await field.innerText()}`);
    const href = await field.locator('a').getAttribute('href');
    assert.ok(href, 'the vendor trust is not a link');
    const target = new URL(href, page.url());
    assert.equal(`${target.origin}${target.pathname}`, `${issuer}/admin/trusts`, `the vendor trust links to ${target.href}`);
    assert.equal(await page.locator('form#approve').count(), 0, 'an approved client offers Approve');
    // Following the link shows the trust (and its anchor, if the link has one).
    await Promise.all([page.waitForURL((u) => u.pathname === '/t/demo/admin/trusts'), field.locator('a').click()]);
    assert.equal(await trustRow(page, trustId).count(), 1, 'the linked trusts page does not list the trust');
    if (target.hash) assert.equal(await page.locator(target.hash).count(), 1, `nothing on the trusts page has the link's anchor ${target.hash}`);
  });

  test('6. another regular user connects through the second client at once: sign-in, consent page, Approve, a code, tokens', async () => {
    assert.ok(second, 'needs the client of test 5');
    connector = await freshPage();
    const { page, dialogs } = connector;
    const auth = pkceAuthorization(issuer, second.client_id, APP_URIS[1]);
    await page.goto(auth.url);
    await signIn(page, USER);
    await assert.doesNotReject(
      page.getByRole('heading', { name: `${APP_NAME} wants to access your` }).waitFor(),
      `expected the consent page, got ${page.url()}: ${await page.locator('body').innerText()}`,
    );
    assert.equal(await page.getByText('Administrator approval required').count(), 0);
    assert.equal(await page.getByText('New, unverified application').count(), 0, 'the trusted client is shown as unverified');
    assert.equal(await page.locator('input[name=trust_vendor]').count(), 0, 'a regular user is offered the trust checkbox');
    const code = await codeAtApplication(page, auth, () => page.getByRole('button', { name: 'Approve', exact: true }).click());
    await exchange(second, auth, code);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(connector.pageErrors, []);
    await rememberSessionSecrets(connector.context, 'the connecting user');
  });

  test('7. the same name with a loopback redirect URI stays pending: the user needs an administrator; no trust offered, a forged one refused', async () => {
    assert.ok(asker && trustId, 'needs the user of test 2 and the trust of test 3');
    loopback = await registerClient(issuer, appMetadata([cb.redirectUri]));
    rememberRegistrationSecrets(loopback, 'the loopback client');
    await assertPendingInApi(loopback, 'the loopback registration');
    const [registered] = await waitForEvents(ofType('client.registered', loopback.client_id), 'client.registered of the loopback client');
    assertAboutClient(registered, loopback, [cb.redirectUri], 'pending');
    assert.equal(registered.detail?.vendor_trust, undefined);
    await waitForEvents(ofType('client.approved', loopback.client_id), 'client.approved of the loopback client', { n: 0 });

    // The user meets it: approval required, nothing sent to the loopback listener.
    const auth = pkceAuthorization(issuer, loopback.client_id, cb.redirectUri);
    await assertNeedsAdmin(asker, auth);
    assert.deepEqual(cb.hitsFor(auth.state), [], 'the loopback client heard from the browser');

    // The queue lists it without a trust checkbox; so does its console page.
    const page = await adminGoto('/admin?view=pending');
    const row = queueRow(page, loopback.client_id);
    assert.equal(await row.count(), 1, 'the loopback client is not in the queue');
    assert.equal(await row.locator('form.approve').count(), 1);
    assert.equal(await row.locator('input[name=trust_vendor]').count(), 0, 'the queue offers to trust a loopback redirect URI');
    await adminGoto(detailPath(loopback.client_id));
    assert.equal(await page.locator('form#approve').count(), 1, 'no form#approve on the pending client\'s page');
    assert.equal(await page.locator('input[name=trust_vendor]').count(), 0, 'the client page offers to trust a loopback redirect URI');

    // A forged trust_vendor=on on the queue's form: spec, 400 and NOTHING approved.
    await adminGoto('/admin?view=pending');
    const form = queueRow(page, loopback.client_id).locator('form.approve');
    await form.evaluate((f) => {
      const i = document.createElement('input');
      i.type = 'hidden';
      i.name = 'trust_vendor';
      i.value = 'on';
      f.appendChild(i);
    });
    const forged = await submitAndLoad(page, form.locator('button[type=submit]'));
    assert.equal(forged.posted.status(), 400, `a forged trust on a loopback client answered ${forged.posted.status()}: ${await page.locator('body').innerText()}`);
    assert.match(await page.locator('body').innerText(), /trust/i, 'the 400 page does not explain why the application cannot be trusted');
    await assertPendingInApi(loopback, 'the loopback client after a refused trust');
    const trusts = await apiTrusts();
    assert.deepEqual(trusts.map((t) => t.id), [trustId], `a trust was created: ${safeJson(trusts)}`);
    await sleep(500);
    await waitForEvents(ofType('client.approved', loopback.client_id), 'client.approved of the loopback client', { n: 0 });
    await waitForEvents(ofType('vendor_trust.created'), 'vendor_trust.created', { n: 1 });
  });

  test('8. the administrator revokes the trust on the trusts page', async () => {
    assert.ok(trustId, 'needs the trust of test 3');
    const page = await adminGoto('/admin/trusts');
    const { posted, final, url } = await submitAndLoad(page, trustRow(page, trustId).locator('form.revoke button'));
    assert.equal(posted.status(), 303, `form.revoke answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}/admin/trusts`);
    assert.equal(final.status(), 200);
    const row = trustRow(page, trustId);
    assert.equal(await row.count(), 1, 'a revoked trust is no longer listed');
    assert.equal((await row.locator('td.status').innerText()).trim(), 'revoked');
    assert.equal(await row.locator('form.revoke').count(), 0, 'a revoked trust offers Revoke');

    const [t] = (await apiTrusts()).filter((x) => x.id === trustId);
    assert.ok(t, 'the revoked trust is not in GET /vendor-trusts');
    assert.ok(Number.isInteger(t.revoked_at) && t.revoked_at >= t.created_at, `revoked_at: ${safeJson(t)}`);

    const [revoked] = await waitForEvents(ofType('vendor_trust.revoked'), 'vendor_trust.revoked');
    assertWellFormed(revoked);
    assertAdminActor(revoked);
    assert.equal(revoked.via, 'console');
    assert.equal(revoked.detail?.vendor_trust, trustId, `vendor_trust.revoked detail: ${safeJson(revoked.detail)}`);

    // The clients it approved stay approved.
    const api = await apiClient(second);
    assert.equal(api.status, 'approved', `revoking the trust changed the second client: ${safeJson(api)}`);
    assert.equal(api.vendor_trust, trustId);
  });

  test('9. a third matching registration is pending now', async () => {
    assert.ok(asker && trustId, 'needs the user of test 2 and the revoked trust of test 8');
    third = await registerClient(issuer, appMetadata(APP_URIS));
    rememberRegistrationSecrets(third, 'the third client');
    await assertPendingInApi(third, 'a registration matching a revoked trust');
    const [registered] = await waitForEvents(ofType('client.registered', third.client_id), 'client.registered of the third client');
    assertAboutClient(registered, third, APP_URIS, 'pending');
    assert.equal(registered.detail?.vendor_trust, undefined);
    await waitForEvents(ofType('client.approved', third.client_id), 'client.approved of the third client', { n: 0 });

    const auth = pkceAuthorization(issuer, third.client_id, APP_URIS[0]);
    await assertNeedsAdmin(asker, auth);
    assert.equal(appHits.filter((u) => new URL(u).searchParams.get('state') === auth.state).length, 0);
    // In the queue, and (eligible) with the trust checkbox again.
    const page = await adminGoto('/admin?view=pending');
    const row = queueRow(page, third.client_id);
    assert.equal(await row.count(), 1, 'the third registration is not in the queue');
    assert.equal(await row.locator('form.approve input[name=trust_vendor]').count(), 1, 'an eligible pending client has no trust checkbox');
  });

  test('10. the second client still works after the revocation', async () => {
    assert.ok(connector, 'needs the user of test 6');
    const { page, dialogs } = connector;
    const auth = pkceAuthorization(issuer, second.client_id, APP_URIS[0]);
    const code = await codeAtApplication(page, auth, async () => {
      const resp = await page.goto(auth.url).catch((e) => e);
      if (resp instanceof Error || !page.url().startsWith(issuer)) return;
      // Consent is remembered for this user and client; should the page come anyway, approve.
      await assert.doesNotReject(
        page.getByRole('heading', { name: `${APP_NAME} wants to access your` }).waitFor(),
        `expected the application or its consent page, got ${page.url()}: ${await page.locator('body').innerText()}`,
      );
      await page.getByRole('button', { name: 'Approve', exact: true }).click();
    });
    const tokens = await exchange(second, auth, code);
    if (tokens.refresh_token) {
      const refreshed = await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { id: second.client_id, secret: second.client_secret });
      assert.equal(refreshed.status, 200, `refresh after the revocation: ${safeJson(refreshed.body)}`);
      secrets.set('a refreshed access token', refreshed.body.access_token);
      if (refreshed.body.refresh_token) secrets.set('a rotated refresh token', refreshed.body.refresh_token);
    }
    assert.deepEqual(dialogs, []);
  });

  test('11. the audit trail (console and API) has vendor_trust.created, client.approved via vendor_trust, vendor_trust.revoked', async () => {
    assert.ok(trustId && second, 'needs tests 3 to 8');
    const logged = loggedEvents();
    const created = logged.filter(ofType('vendor_trust.created'));
    const revoked = logged.filter(ofType('vendor_trust.revoked'));
    const byTrust = logged.filter((e) => e.type === 'client.approved' && e.via === 'vendor_trust');
    assert.equal(created.length, 1);
    assert.equal(revoked.length, 1);
    assert.deepEqual(byTrust.map((e) => e.client_id), [second.client_id], 'client.approved via vendor_trust for other clients');
    const secondEvents = logged.filter((e) => e.client_id === second.client_id);
    assert.deepEqual(secondEvents.map((e) => e.type).sort(), ['client.approved', 'client.registered']);

    // API: the same events as logged, by type and by client.
    const ids = (list) => list.map((e) => e.id).sort();
    const apiCreated = await allAuditEvents('type=vendor_trust.created');
    assert.deepEqual(apiCreated, created, 'GET /audit-events?type=vendor_trust.created');
    const apiRevoked = await allAuditEvents('type=vendor_trust.revoked');
    assert.deepEqual(apiRevoked, revoked, 'GET /audit-events?type=vendor_trust.revoked');
    const apiSecond = await allAuditEvents(`client_id=${encodeURIComponent(second.client_id)}`);
    assert.deepEqual(ids(apiSecond), ids(secondEvents), `GET /audit-events?client_id=<second>: ${safeJson(apiSecond)}`);
    for (const e of apiSecond) assert.deepEqual(e, secondEvents.find((x) => x.id === e.id));
    const apiApproved = await allAuditEvents('type=client.approved');
    const viaTrust = apiApproved.filter((e) => e.via === 'vendor_trust');
    assert.deepEqual(viaTrust, byTrust, 'client.approved via vendor_trust in the API');
    // Everything logged is in the API.
    const all = await allAuditEvents();
    const apiById = new Map(all.map((e) => [e.id, e]));
    for (const e of logged) assert.deepEqual(apiById.get(e.id), e, `the API's ${e.type} event ${e.id} differs from the logged one`);

    // Console: the audit page's filter lists the two new types; rows as logged.
    const page = await adminGoto('/admin/audit');
    for (const type of ['vendor_trust.created', 'vendor_trust.revoked']) {
      assert.equal(await page.locator(`form#audit-filter select[name=type] option[value="${type}"]`).count(), 1, `the type filter has no ${type}`);
    }
    const rows = await auditRows(page);
    const rowById = new Map(rows.map((r) => [r.id, r]));
    for (const e of [...created, ...revoked, ...secondEvents]) {
      const r = rowById.get(e.id);
      assert.ok(r, `the audit page has no row for the ${e.type} event ${e.id}: ${safeJson(rows)}`);
      assert.equal(r.type, e.type);
      if (e.via) assert.equal(r.via, e.via, `td.via of ${e.type}`);
      if (e.actor.email) assert.ok(r.actor.includes(e.actor.email), `td.actor of ${e.type}: ${safeJson(r)}`);
    }
    const rowsCreated = await auditRows(await filterAudit({ type: 'vendor_trust.created' }));
    assert.deepEqual(rowsCreated.map((r) => r.id), created.map((e) => e.id), `console rows for vendor_trust.created: ${safeJson(rowsCreated)}`);
    const rowsRevoked = await auditRows(await filterAudit({ type: 'vendor_trust.revoked' }));
    assert.deepEqual(rowsRevoked.map((r) => r.id), revoked.map((e) => e.id), `console rows for vendor_trust.revoked: ${safeJson(rowsRevoked)}`);
    const rowsSecond = await auditRows(await filterAudit({ client_id: second.client_id }));
    assert.deepEqual(rowsSecond.map((r) => r.id).sort(), ids(secondEvents), `console rows for the second client: ${safeJson(rowsSecond)}`);
    const approvedRow = rowsSecond.find((r) => r.type === 'client.approved');
    assert.equal(approvedRow?.via, 'vendor_trust', `the console does not say "by vendor trust": ${safeJson(approvedRow)}`);
  });

  test('12. nothing secret in any event (log, audit API)', async () => {
    await assertNothingSecret(12);
  });

  if (lambda) {
    test('13. EventBridge (moto): the client events were put on the bus, the trust events were not', async () => {
      assert.ok(tap, 'needs the moto bus');
      const logged = loggedEvents();
      const notifying = logged.filter((e) => e.type.startsWith('client.'));
      // Four registrations, one request, two approvals (console, vendor trust).
      assert.deepEqual(notifying.map((e) => e.type).sort(), [
        'client.access_requested',
        'client.approved',
        'client.approved',
        'client.registered',
        'client.registered',
        'client.registered',
        'client.registered',
      ]);
      const delivered = await tap.deliveries(notifying.length);
      assert.deepEqual(delivered.map((d) => d.detail?.id).sort(), notifying.map((e) => e.id).sort(),
        `EventBridge got: ${safeJson(delivered.map((d) => d['detail-type']))}`);
      for (const d of delivered) {
        const e = logged.find((x) => x.id === d.detail.id);
        assert.equal(d.source, 'gatehouse');
        assert.equal(d['detail-type'], e.type);
        assert.deepEqual(d.detail, e, `the ${e.type} event on the bus differs from the logged one`);
      }
      const viaTrust = delivered.find((d) => d.detail.via === 'vendor_trust');
      assert.equal(viaTrust?.detail.client_id, second.client_id, 'the approval by vendor trust was not put on the bus');
    });
  }
});
}
