// Real-browser tests of Gatehouse's admin console `{issuer}/admin` (docs/admin-api.md, "Console"
// and its "Page structure"), written against the spec's stable hooks.
//
// Run: tests/browser/run.sh, or `node --test tests/browser/console.test.mjs` from the repository
// root. Needs a built `gatehouse` ($GATEHOUSE_BIN or target/debug/gatehouse) and Chromium
// ($CHROMIUM_PATH or /usr/bin/chromium).
//
// One `gatehouse serve` (embedded store, demo tenant) for the file, a loopback callback server
// that plays the clients' redirect URI, and a fresh browser context per actor. The administrator
// signs in on the console once and keeps that context for every step (argon2 is slow in debug
// builds). The numbered tests run in order and build on each other: a DCR public client is
// pending → approved through its first connection → consented by the user → made trusted and
// required again → narrowed (new configuration version) → deleted (its tokens stop working);
// then the security checks, the settings page, the users page, and the CSP of every console page
// the suite saw.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ADMIN,
  SUITE_TIMEOUT_MS,
  USER,
  browserTestbed,
  consoleSignIn,
  decideAndLand,
  jwtClaims,
  mcpCall,
  pkceAuthorization,
  signIn,
  submitAndLoad,
  tokenRequest,
} from './support.mjs';

const HOSTILE_NAME = '<img src=x onerror=alert(1)><script>alert(2)</script>';
const TIME_LEFT = /^(\d+) min left$|^under a minute left$/;

function tag() {
  return randomBytes(4).toString('base64url');
}

/** RFC 7591 registration over fetch; asserts 201 and returns the registration. */
async function registerClient(issuer, metadata) {
  const { status, body } = await postRegistration(issuer, metadata);
  assert.equal(status, 201, `registration failed: ${JSON.stringify(body)}`);
  assert.ok(body.client_id, 'registration answered no client_id');
  return body;
}

async function postRegistration(issuer, metadata) {
  const resp = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(metadata),
  });
  const text = await resp.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: resp.status, body };
}

/** The trimmed text of `[data-field=name]` on the client detail page. */
async function field(page, name) {
  return (await page.locator(`#client-detail [data-field="${name}"]`).innerText()).trim();
}

/** The CSP header of a recorded document response must forbid every framing ancestor. */
function assertFrameAncestorsNone(doc) {
  const csp = doc.headers['content-security-policy'] ?? '';
  assert.match(
    csp,
    /(^|;)\s*frame-ancestors 'none'\s*(;|$)/,
    `${doc.method} ${doc.url} (${doc.status}): CSP lacks frame-ancestors 'none': ${JSON.stringify(csp)}`,
  );
}

// ------------------------------------------------------------------ the suite

describe('admin console in a real browser', { timeout: SUITE_TIMEOUT_MS }, () => {
  const bed = browserTestbed();
  let gh;
  let cb;
  let issuer;
  /** Every document response of every page this suite opened (for the CSP check at the end). */
  const allDocuments = [];
  /** The regular user's browser, signed in through the hosted flow (test 4 on). */
  let userSession;

  before(async () => {
    ({ gh, cb } = await bed.start());
    issuer = `${gh.base}/t/demo`;
  });

  after(() => bed.stop());

  async function freshPage() {
    const p = await bed.freshPage();
    allDocuments.push(p.documents);
    p.pageErrors = [];
    p.page.on('pageerror', (e) => p.pageErrors.push(String(e)));
    return p;
  }

  // The administrator's console context: signed in once (test 1), reused by every later step.
  let admin;
  async function adminConsole() {
    if (admin) return admin;
    const p = await freshPage();
    const { posted, final, url } = await consoleSignIn(p.page, issuer, ADMIN);
    assert.equal(posted.status(), 303, `POST /admin/signin as the administrator answered ${posted.status()}`);
    assert.equal(url, `${issuer}/admin`, 'the console sign-in did not land on the clients page');
    assert.equal(final.status(), 200);
    // spec: the clients page is recognised by its a#pending-link; with no approved client yet it
    // may render no table#clients at all.
    await p.page.locator('a#pending-link').waitFor();
    const session = (await p.context.cookies(`${issuer}/admin`)).find((c) => c.name === 'gh_session');
    assert.ok(session, 'no gh_session cookie after the console sign-in');
    assert.equal(session.path, '/t/demo');
    assert.equal(session.httpOnly, true);
    admin = p;
    return admin;
  }

  /** Opens a console page in the administrator's context; asserts 200. */
  async function adminGoto(pathAndQuery) {
    const { page } = await adminConsole();
    const resp = await page.goto(`${issuer}${pathAndQuery}`);
    assert.equal(resp?.status(), 200, `GET ${pathAndQuery} answered ${resp?.status()}: ${await page.locator('body').innerText()}`);
    return page;
  }

  const detailPath = (id) => `/admin/clients/${encodeURIComponent(id)}`;

  /** Submits form#edit on the detail page with the given changes; asserts 303 back to the detail page. */
  async function editClient(id, { consentMethod, scope, clientName }) {
    const page = await adminGoto(detailPath(id));
    const form = page.locator('form#edit');
    if (consentMethod !== undefined) await form.locator('select[name=consent_method]').selectOption(consentMethod);
    if (scope !== undefined) await form.locator('input[name=scope]').fill(scope);
    if (clientName !== undefined) await form.locator('input[name=client_name]').fill(clientName);
    const { posted, final, url } = await submitAndLoad(page, form.locator('button[type=submit]'));
    assert.equal(posted.status(), 303, `form#edit answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}${detailPath(id)}`, 'form#edit did not come back to the detail page');
    assert.equal(final.status(), 200);
    return page;
  }

  /** Submits form#delete on the detail page; asserts 303 to {issuer}/admin and that the row is gone. */
  async function deleteClient(id) {
    const page = await adminGoto(detailPath(id));
    const { posted, final, url } = await submitAndLoad(page, page.locator('form#delete button[type=submit]'));
    assert.equal(posted.status(), 303, `form#delete answered ${posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(url, `${issuer}/admin`, 'form#delete did not land on the clients page');
    assert.equal(final.status(), 200);
    await page.locator('a#pending-link').waitFor();
    assert.equal(await page.locator(`table#clients tr[data-client-id="${id}"]`).count(), 0, 'the deleted client is still listed');
    const gone = await page.goto(`${issuer}${detailPath(id)}`);
    assert.equal(gone?.status(), 404, 'the detail page of a deleted client is not a 404 page');
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

  /** The page must be on the callback (it answered "done"). */
  async function assertLanded(page, what) {
    assert.ok(
      page.url().startsWith(cb.redirectUri),
      `${what}: expected to land on the redirect URI, got ${page.url()}: ${await page.locator('body').innerText()}`,
    );
    assert.equal(await page.locator('body').innerText(), 'done');
  }

  /** The hosted consent page for `clientName` (not the pending notice) must be showing. */
  async function assertConsentPage(page, clientName, what) {
    await assert.doesNotReject(
      page.getByRole('heading', { name: `${clientName} wants to access your` }).waitFor(),
      `${what}: expected the consent page, got ${page.url()}: ${await page.locator('body').innerText()}`,
    );
    assert.equal(await page.getByText('New, unverified application').count(), 0, `${what}: an approved client shown as unverified`);
  }

  /**
   * The administrator approves a pending client through a first connection in the console's own
   * context: the console session is "the same session as the consent pages" (no second sign-in).
   */
  async function approveWithConsoleSession(auth) {
    const { page } = await adminConsole();
    await page.goto(auth.url);
    await assert.doesNotReject(
      page.getByText('New, unverified application').waitFor(),
      `expected the administrator's consent page for a pending client, got: ${await page.locator('body').innerText()}`,
    );
    await decideAndLand(page, 'Approve', cb.redirectUri);
    return codeFor(auth);
  }

  // ---------------------------------------------------------------- the client's life

  describe('a DCR public client from pending to deleted', () => {
    const clientName = `Console Agent ${tag()}`;
    let client;

    test('1. a freshly registered client is in the pending queue with its time left, not among the clients', async () => {
      client = await registerClient(issuer, {
        client_name: clientName,
        redirect_uris: [cb.redirectUri],
        token_endpoint_auth_method: 'none',
      });
      const scopes = client.scope.split(' ');
      assert.ok(scopes.includes('user_default') && scopes.length >= 2, `registered scope: ${client.scope}`);

      const { page } = await adminConsole();
      // The clients page links to the pending queue.
      await Promise.all([page.waitForURL(`${issuer}/admin?view=pending`), page.locator('a#pending-link').click()]);
      const row = page.locator(`table#pending tr[data-client-id="${client.client_id}"]`);
      assert.equal(await row.count(), 1, `the pending queue does not list the client: ${await page.locator('body').innerText()}`);
      assert.ok((await row.innerText()).includes(clientName), 'the pending row does not name the client');
      const left = (await row.locator('td.time-left').innerText()).trim();
      assert.match(left, TIME_LEFT);
      // spec: the default pending lifetime is 3600 s (README), so a client registered a moment ago
      // has 55–60 whole minutes left, however the page rounds.
      const minutes = Number(TIME_LEFT.exec(left)[1]);
      assert.ok(minutes >= 55 && minutes <= 60, `time left of a brand-new pending client: ${left}`);

      await adminGoto('/admin');
      await page.locator('a#pending-link').waitFor();
      assert.equal(await page.locator(`table#clients tr[data-client-id="${client.client_id}"]`).count(), 0, 'a pending client is listed among the clients');
      for (const t of await page.locator('table#clients').all()) {
        assert.ok(!(await t.innerText()).includes(clientName), 'table#clients names the pending client');
      }
    });

    test('2. the administrator approves it through its first connection; it moves to the clients table (dcr, Required)', async () => {
      assert.ok(client, 'needs the client of test 1');
      const auth = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      await bed.approveAsAdmin(auth.url);
      codeFor(auth);

      const page = await adminGoto('/admin');
      const row = page.locator(`table#clients tr[data-client-id="${client.client_id}"]`);
      assert.equal(await row.count(), 1, `the approved client is not in table#clients: ${await page.locator('body').innerText()}`);
      assert.equal((await row.locator('td.created-by').innerText()).trim(), 'dcr');
      assert.equal((await row.locator('td.consent-method').innerText()).trim(), 'Required');
      assert.equal(await row.locator('a.client-link').count(), 1);

      await adminGoto('/admin?view=pending');
      assert.equal(await page.locator(`table#pending tr[data-client-id="${client.client_id}"]`).count(), 0, 'the approved client is still pending');
    });

    test('3. the regular user connects: consent page, consents, gets a code', async () => {
      assert.ok(client, 'needs the client of test 1');
      // spec: consent counts for the scopes it was given to (the authorization endpoint asks again
      // for scopes not covered). The user consents here to `user_default` only, so that in test 4
      // a request for the client's whole scope tells "trusted skips the page" apart from
      // "consent remembered".
      const auth = pkceAuthorization(issuer, client.client_id, cb.redirectUri, { scope: 'user_default' });
      const { page, dialogs } = await freshPage();
      await page.goto(auth.url);
      await signIn(page, USER);
      await assertConsentPage(page, clientName, 'first connection of the user');
      await decideAndLand(page, 'Approve', cb.redirectUri);
      await assertLanded(page, 'after consenting');
      codeFor(auth);
      assert.deepEqual(dialogs, []);
    });

    test('4. consent method trusted skips the consent page; back to required asks for it again', async () => {
      assert.ok(client, 'needs the client of test 1');
      const page = await adminGoto('/admin');
      const row = page.locator(`table#clients tr[data-client-id="${client.client_id}"]`);
      await Promise.all([page.waitForURL(`${issuer}${detailPath(client.client_id)}`), row.locator('a.client-link').click()]);
      assert.equal(await field(page, 'client_id'), client.client_id);
      assert.equal(await field(page, 'client_name'), clientName);
      assert.equal(await field(page, 'consentMethod'), 'required');
      assert.equal(await field(page, 'status'), 'approved');
      assert.equal(await field(page, 'scope'), client.scope);
      assert.ok((await field(page, 'redirect_uris')).includes(cb.redirectUri));
      assert.match(await field(page, 'config_version'), /^\d+$/);
      // The edit form starts from the client's current values.
      assert.equal(await page.locator('form#edit input[name=action]').inputValue(), 'update');
      assert.equal(await page.locator('form#edit select[name=consent_method]').inputValue(), 'required');
      assert.equal(await page.locator('form#edit input[name=scope]').inputValue(), client.scope);
      assert.equal(await page.locator('form#edit input[name=client_name]').inputValue(), clientName);

      await editClient(client.client_id, { consentMethod: 'trusted' });
      assert.equal(await field(page, 'consentMethod'), 'trusted');
      await adminGoto('/admin');
      assert.equal((await row.locator('td.consent-method').innerText()).trim(), 'Trusted');

      // Trusted: the user (fresh context) asks for the whole scope, which she never consented
      // to, and lands on the redirect URI with a code, no consent page.
      const trusted = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      const u1 = await freshPage();
      await u1.page.goto(trusted.url);
      await signIn(u1.page, USER);
      await assertLanded(u1.page, 'trusted client');
      codeFor(trusted);

      await editClient(client.client_id, { consentMethod: 'required' });
      assert.equal(await field(page, 'consentMethod'), 'required');

      // Required again: a new context, sign in, the consent page is back.
      // spec: an authorization that a trusted client got without asking records no consent.
      const required = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      const u2 = await freshPage();
      await u2.page.goto(required.url);
      await signIn(u2.page, USER);
      await assertConsentPage(u2.page, clientName, 'client switched back to required');
      await decideAndLand(u2.page, 'Approve', cb.redirectUri);
      codeFor(required);
      userSession = u2;
      assert.deepEqual([...u1.dialogs, ...u2.dialogs], []);
    });

    test('5. a narrower scope bumps config_version and the user who had consented sees the consent page again', async () => {
      assert.ok(userSession, 'needs the user of test 4 (signed in, consented to the current configuration)');
      // Control: the same browser goes straight through while the configuration is unchanged.
      const before = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      await userSession.page.goto(before.url);
      await assertLanded(userSession.page, 'consent on record, configuration unchanged');
      codeFor(before);

      const page = await adminGoto(detailPath(client.client_id));
      const v0 = Number(await field(page, 'config_version'));

      // Bad input: an unknown scope → 400 page naming the problem, nothing changed.
      await page.locator('form#edit input[name=scope]').fill('user_default no_such_scope');
      const bad = await submitAndLoad(page, page.locator('form#edit button[type=submit]'));
      assert.equal(bad.posted.status(), 400, 'an unknown scope was not refused with a 400 page');
      // spec: "naming the problem": the page mentions the scope (the field or the bad token).
      assert.match(await page.locator('body').innerText(), /scope/i);
      await adminGoto(detailPath(client.client_id));
      assert.equal(await field(page, 'scope'), client.scope, 'a refused edit changed the scope');
      assert.equal(Number(await field(page, 'config_version')), v0, 'a refused edit bumped config_version');

      await editClient(client.client_id, { scope: 'user_default' });
      assert.equal(await field(page, 'scope'), 'user_default');
      const v1 = Number(await field(page, 'config_version'));
      // spec: "bumps": strictly greater (not necessarily v0 + 1).
      assert.ok(v1 > v0, `config_version did not increase: ${v0} → ${v1}`);

      // Same browser, same session: the consent page again, for the new configuration.
      const after = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      await userSession.page.goto(after.url);
      await assertConsentPage(userSession.page, clientName, 'after the scope change');
      await decideAndLand(userSession.page, 'Approve', cb.redirectUri);
      codeFor(after);
      assert.deepEqual(userSession.dialogs, []);
    });

    test('6. deleting clients in the console revokes their refresh and access tokens', async () => {
      assert.ok(userSession, 'needs the user of test 5');
      const mcpWorks = async (token, what) => {
        const r = await mcpCall(issuer, token, 'tools/list');
        assert.equal(r.status, 200, `${what}: tools/list answered ${r.status}: ${JSON.stringify(r.body)}`);
      };

      // The public client: an access token (code exchanged with client_id only, PKCE S256) and
      // one more code left unredeemed.
      const a = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      await userSession.page.goto(a.url);
      await assertLanded(userSession.page, 'consented user');
      const exchanged = await tokenRequest(issuer, {
        grant_type: 'authorization_code',
        code: codeFor(a),
        redirect_uri: cb.redirectUri,
        code_verifier: a.verifier,
        client_id: client.client_id,
      });
      assert.equal(exchanged.status, 200, `code exchange: ${JSON.stringify(exchanged.body)}`);
      const publicAccess = exchanged.body.access_token;
      const claims = jwtClaims(publicAccess);
      assert.equal(claims.client_id, client.client_id);
      assert.equal(claims.scope, 'user_default', 'the token does not carry the narrowed scope');
      await mcpWorks(publicAccess, 'public client before deletion');
      const b = pkceAuthorization(issuer, client.client_id, cb.redirectUri);
      await userSession.page.goto(b.url);
      await assertLanded(userSession.page, 'consented user, second code');
      const unredeemed = codeFor(b);

      // spec: public clients (`none`) never get offline_access nor a refresh token (README,
      // "Registration" and "Tokens"), so the refresh-token half of this check needs a client
      // that can hold one: a confidential DCR client with the refresh_token grant.
      const confName = `Console Refreshing Agent ${tag()}`;
      const conf = await registerClient(issuer, {
        client_name: confName,
        redirect_uris: [cb.redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
      });
      assert.equal(typeof conf.client_secret, 'string');
      const basic = { id: conf.client_id, secret: conf.client_secret };
      const c = pkceAuthorization(issuer, conf.client_id, cb.redirectUri);
      const confCode = await approveWithConsoleSession(c);
      const first = await tokenRequest(
        issuer,
        { grant_type: 'authorization_code', code: confCode, redirect_uri: cb.redirectUri, code_verifier: c.verifier },
        basic,
      );
      assert.equal(first.status, 200, `confidential code exchange: ${JSON.stringify(first.body)}`);
      assert.equal(typeof first.body.refresh_token, 'string', `no refresh token: ${JSON.stringify({ ...first.body, access_token: '…' })}`);
      // Control: the refresh token works (and rotates) before the deletion.
      const refreshed = await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token }, basic);
      assert.equal(refreshed.status, 200, `refresh before deletion: ${JSON.stringify(refreshed.body)}`);
      const confRefresh = refreshed.body.refresh_token;
      const confAccess = refreshed.body.access_token;
      assert.equal(typeof confRefresh, 'string');
      await mcpWorks(confAccess, 'confidential client before deletion');

      await deleteClient(client.client_id);
      await deleteClient(conf.client_id);

      const rejected = (r, what) => {
        assert.ok([400, 401].includes(r.status), `${what} after deletion answered ${r.status}: ${JSON.stringify(r.body)}`);
        assert.ok(['invalid_grant', 'invalid_client'].includes(r.body?.error), `${what}: ${JSON.stringify(r.body)}`);
      };
      rejected(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: confRefresh }, basic), 'the refresh token');
      rejected(
        await tokenRequest(issuer, {
          grant_type: 'authorization_code',
          code: unredeemed,
          redirect_uri: cb.redirectUri,
          code_verifier: b.verifier,
          client_id: client.client_id,
        }),
        "the public client's unredeemed code",
      );
      for (const [token, what] of [
        [publicAccess, "the public client's access token"],
        [confAccess, "the confidential client's access token"],
      ]) {
        const r = await mcpCall(issuer, token, 'tools/list');
        assert.equal(r.status, 401, `${what} at the MCP endpoint after deletion answered ${r.status}: ${JSON.stringify(r.body)}`);
      }
    });
  });

  // ---------------------------------------------------------------- security

  describe('security', () => {
    test('7a. a hostile client name is listed and rendered as text; no inline script runs', async () => {
      const hostile = await registerClient(issuer, {
        client_name: HOSTILE_NAME,
        redirect_uris: [cb.redirectUri],
        token_endpoint_auth_method: 'none',
      });
      const { page, dialogs, pageErrors } = await adminConsole();
      const noMarkup = async (locator, what) => {
        assert.equal(await locator.locator('img').count(), 0, `${what}: the name became an <img>`);
        assert.equal(await locator.locator('script').count(), 0, `${what}: the name became a <script>`);
      };

      // Pending queue.
      await adminGoto('/admin?view=pending');
      const pendingRow = page.locator(`table#pending tr[data-client-id="${hostile.client_id}"]`);
      assert.equal(await pendingRow.count(), 1, 'the pending queue does not list the hostile client');
      assert.ok((await pendingRow.innerText()).includes(HOSTILE_NAME), `pending row: ${await pendingRow.innerText()}`);
      await noMarkup(pendingRow, 'pending row');

      // Clients table, once approved.
      await approveWithConsoleSession(pkceAuthorization(issuer, hostile.client_id, cb.redirectUri));
      await adminGoto('/admin');
      const row = page.locator(`table#clients tr[data-client-id="${hostile.client_id}"]`);
      assert.equal(await row.count(), 1, 'the clients table does not list the hostile client');
      assert.ok((await row.innerText()).includes(HOSTILE_NAME), `clients row: ${await row.innerText()}`);
      await noMarkup(row, 'clients row');

      // Detail page: the text, the form field's value, no markup.
      await adminGoto(detailPath(hostile.client_id));
      assert.equal(await field(page, 'client_name'), HOSTILE_NAME);
      assert.equal(await page.locator('form#edit input[name=client_name]').inputValue(), HOSTILE_NAME);
      await noMarkup(page.locator('#client-detail'), 'detail page');

      // The page's CSP (nonce-based) keeps inline script and inline handlers from running.
      // No fixed pause: the probe waits for positive signals that each attempt has had its
      // chance: the <img> fired its error/load event (its inline handler, registered first,
      // would have run before our listener), and the CSP violation report for the <script>
      // arrived (an inline script that ran would have run synchronously, at appendChild).
      const probe = await page.evaluate(async () => {
        const violations = [];
        document.addEventListener('securitypolicyviolation', (e) => violations.push(e.effectiveDirective || e.violatedDirective));
        window.__ghInline = false;
        window.__ghHandler = false;
        const s = document.createElement('script');
        s.textContent = 'window.__ghInline = true;';
        document.body.appendChild(s);
        const inlineAtOnce = window.__ghInline;
        const d = document.createElement('div');
        d.innerHTML = '<img src="data:," onerror="window.__ghHandler = true">';
        const img = d.querySelector('img');
        const imgEvent = new Promise((resolve) => {
          img.addEventListener('error', () => resolve({ event: 'error', handler: window.__ghHandler }));
          img.addEventListener('load', () => resolve({ event: 'load', handler: window.__ghHandler }));
        });
        document.body.appendChild(d);
        const bounded = (p, ms, what) => Promise.race([p, new Promise((r) => setTimeout(() => r({ event: `no ${what} within ${ms} ms` }), ms))]);
        const img_ = await bounded(imgEvent, 10_000, 'img event');
        const scriptReported = new Promise((resolve) => {
          const poll = () => (violations.some((v) => v.startsWith('script-src')) ? resolve(true) : setTimeout(poll, 10));
          poll();
        });
        const reported = await bounded(scriptReported, 10_000, 'script violation');
        return { inline: window.__ghInline, inlineAtOnce, handler: window.__ghHandler, img: img_, reported, violations };
      });
      assert.ok(['error', 'load'].includes(probe.img.event), `the probe <img> never finished loading: ${JSON.stringify(probe)}`);
      assert.equal(probe.reported, true, `no CSP violation was reported for the inline <script>: ${JSON.stringify(probe)}`);
      assert.equal(probe.inline, false, 'an inline <script> without the nonce ran on a console page');
      assert.equal(probe.inlineAtOnce, false, 'an inline <script> without the nonce ran on a console page');
      assert.equal(probe.handler, false, 'an inline event handler ran on a console page');
      assert.equal(probe.img.handler, false, 'an inline event handler ran on a console page');
      assert.ok(probe.violations.length >= 1, `no CSP violation was reported: ${JSON.stringify(probe)}`);

      // A dialog blocks the page's script until it is dismissed, so one opened by the probe was
      // recorded before page.evaluate returned.
      assert.deepEqual(dialogs, [], 'a dialog fired on a console page');
      assert.deepEqual(pageErrors, []);
    });

    test('7b. a console POST without the right csrf field is refused with 403 and changes nothing', async () => {
      const name = `Console CSRF Target ${tag()}`;
      const target = await registerClient(issuer, {
        client_name: name,
        redirect_uris: [cb.redirectUri],
        token_endpoint_auth_method: 'none',
      });
      await approveWithConsoleSession(pkceAuthorization(issuer, target.client_id, cb.redirectUri));
      const page = await adminGoto(detailPath(target.client_id));
      assert.equal(await field(page, 'consentMethod'), 'required');
      const csrf = await page.locator('form#edit input[name=csrf]').inputValue();
      assert.ok(csrf.length >= 32, `form#edit carries no usable csrf field: ${JSON.stringify(csrf)}`);
      assert.equal(await page.locator('form#delete input[name=csrf]').inputValue(), csrf);

      // Requests with the console context's cookies (page.request: the page's own CSP may forbid
      // fetch/XHR from the page, which is fine), redirects not followed.
      const post = async (form) => {
        const r = await page.request.post(`${issuer}${detailPath(target.client_id)}`, { form, maxRedirects: 0 });
        return { status: r.status(), location: r.headers().location };
      };
      const update = { action: 'update', consent_method: 'trusted', scope: target.scope, client_name: 'Renamed by CSRF' };
      assert.equal((await post(update)).status, 403, 'an update without csrf was not refused with 403');
      assert.equal((await post({ ...update, csrf: '0'.repeat(64) })).status, 403, 'an update with a wrong csrf was not refused with 403');
      assert.equal((await post({ ...update, csrf: '' })).status, 403, 'an update with an empty csrf was not refused with 403');
      assert.equal((await post({ action: 'delete' })).status, 403, 'a delete without csrf was not refused with 403');

      await adminGoto(detailPath(target.client_id));
      assert.equal(await field(page, 'consentMethod'), 'required', 'a refused POST changed the consent method');
      assert.equal(await field(page, 'client_name'), name, 'a refused POST changed the name');
      await adminGoto('/admin');
      assert.equal(await page.locator(`table#clients tr[data-client-id="${target.client_id}"]`).count(), 1, 'a refused delete removed the client');

      // Control: the same update with the session's csrf goes through (303 back).
      await adminGoto(detailPath(target.client_id));
      const ok = await post({ ...update, csrf });
      assert.equal(ok.status, 303, `the update with the right csrf: ${JSON.stringify(ok)}`);
      assert.equal(new URL(ok.location ?? '', `${issuer}${detailPath(target.client_id)}`).href, `${issuer}${detailPath(target.client_id)}`);
      await adminGoto(detailPath(target.client_id));
      assert.equal(await field(page, 'consentMethod'), 'trusted');
      assert.equal(await field(page, 'client_name'), 'Renamed by CSRF');
    });

    test('7c. without a session the console answers 303 to the sign-in page', async () => {
      const { page } = await freshPage();
      const resp = await page.goto(`${issuer}/admin`);
      const redirected = resp.request().redirectedFrom();
      assert.ok(redirected, `GET /admin without a session was not redirected (status ${resp.status()})`);
      const first = await redirected.response();
      assert.equal(first.status(), 303);
      const landed = new URL(page.url());
      // spec: "303 to {issuer}/admin/signin"; a query (e.g. where to go back to) is tolerated.
      assert.equal(`${landed.origin}${landed.pathname}`, `${issuer}/admin/signin`);
      assert.equal(resp.status(), 200);
      await page.locator('form#signin').waitFor();
      assert.equal(await page.locator('form#signin input[name=email]').count(), 1);
      assert.equal(await page.locator('form#signin input[name=password]').count(), 1);
      assert.equal(await page.locator('form#signin input[type=hidden][name=csrf]').count(), 1);
      assert.equal(await page.locator('table#clients').count(), 0);

      for (const p of ['/admin?view=pending', '/admin/settings', '/admin/users', '/admin/clients/anything']) {
        const r = await fetch(`${issuer}${p}`, { redirect: 'manual' });
        assert.equal(r.status, 303, `GET ${p} without a session answered ${r.status}`);
        const to = new URL(r.headers.get('location') ?? '', `${issuer}${p}`);
        assert.equal(`${to.origin}${to.pathname}`, `${issuer}/admin/signin`, `GET ${p}: Location ${r.headers.get('location')}`);
      }
    });

    test('7d. a regular user gets a 403 page', async () => {
      // Signed in through the console's own sign-in page.
      const { page } = await freshPage();
      const { final } = await consoleSignIn(page, issuer, USER);
      // spec: whether the sign-in POST answers the 403 page itself or redirects (303) to
      // {issuer}/admin which answers it, the page the user ends on is a 403 page.
      assert.equal(final.status(), 403, `a regular user on the console got ${final.status()} at ${page.url()}`);
      assert.equal(await page.getByText('Incorrect email or password.').count(), 0, "the regular user's correct password was refused");
      assert.equal(await page.locator('table#clients').count(), 0, 'a regular user sees the clients table');

      // Signed in through the hosted flow (the same session, role user): every console page is a
      // 403 page.
      assert.ok(userSession, 'needs the user signed in through the hosted flow in test 4');
      const u = userSession.page;
      for (const p of ['/admin', '/admin?view=pending', '/admin/settings', '/admin/users']) {
        const r = await u.goto(`${issuer}${p}`);
        assert.equal(r?.status(), 403, `GET ${p} as a signed-in regular user answered ${r?.status()} at ${u.url()}`);
        assert.equal(
          await u.locator('table#clients, table#pending, table#users, form#settings').count(),
          0,
          `GET ${p}: a regular user sees console content`,
        );
      }
    });
  });

  // ---------------------------------------------------------------- settings and users

  test('8. settings: require_client_uri on → registration without client_uri is refused; off again', async () => {
    const page = await adminGoto('/admin/settings');
    const form = page.locator('form#settings');
    await form.waitFor();
    assert.equal(await form.locator('input[type=hidden][name=csrf]').count(), 1);
    const snapshot = () =>
      form.evaluate((f) =>
        [...f.elements]
          .filter((e) => e.name && e.name !== 'csrf' && e.type !== 'submit')
          .map((e) => [e.name, e.type, e.value, e.type === 'checkbox' ? e.checked : null]),
      );
    const original = await snapshot();
    const checkbox = form.locator('input[name=require_client_uri]');
    assert.equal(await checkbox.isChecked(), false, 'require_client_uri is on by default (registrations without client_uri passed earlier)');

    const save = async (on) => {
      await adminGoto('/admin/settings');
      await checkbox.setChecked(on);
      const { posted, url } = await submitAndLoad(page, form.locator('button[type=submit]'));
      assert.equal(posted.status(), 303, `form#settings answered ${posted.status()}: ${await page.locator('body').innerText()}`);
      assert.equal(url, `${issuer}/admin/settings`);
      assert.equal(await checkbox.isChecked(), on, 'the saved setting is not shown');
    };
    const register = (extra) =>
      postRegistration(issuer, {
        client_name: `Console Settings Agent ${tag()}`,
        redirect_uris: [cb.redirectUri],
        token_endpoint_auth_method: 'none',
        ...extra,
      });

    await save(true);
    const refused = await register({});
    assert.equal(refused.status, 400, `registration without client_uri: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.error, 'invalid_client_metadata');
    assert.match(refused.body.error_description ?? '', /client_uri/);
    const withUri = await register({ client_uri: 'https://agent.example.com/' });
    assert.equal(withUri.status, 201, `registration with client_uri: ${JSON.stringify(withUri.body)}`);

    await save(false);
    const accepted = await register({});
    assert.equal(accepted.status, 201, `registration without client_uri after switching it off: ${JSON.stringify(accepted.body)}`);
    await adminGoto('/admin/settings');
    assert.deepEqual(await snapshot(), original, 'saving the form changed other settings');
  });

  test('9. users: add a user, disable it; the disabled user cannot sign in', async () => {
    const page = await adminGoto('/admin/users');
    await page.locator('table#users').waitFor();
    const rowOf = (email) => page.locator(`table#users tr[data-email="${email}"]`);
    assert.equal((await rowOf(ADMIN.email).locator('td.role').innerText()).trim(), 'admin');
    assert.equal((await rowOf(ADMIN.email).locator('td.status').innerText()).trim(), 'active');
    assert.equal((await rowOf(USER.email).locator('td.role').innerText()).trim(), 'user');

    // An administrator, so that a working sign-in lands on the clients page (an unambiguous control).
    const added = { email: `console-${tag().toLowerCase().replace(/[^a-z0-9]/g, 'x')}@demo.test`, password: `added-pass-${tag()}-123` };
    const form = page.locator('form#add-user');
    assert.equal(await form.locator('input[type=hidden][name=csrf]').count(), 1);
    await form.locator('input[name=email]').fill(added.email);
    await form.locator('input[name=password]').fill(added.password);
    await form.locator('select[name=role]').selectOption('admin');
    const add = await submitAndLoad(page, form.locator('button[type=submit]'));
    assert.equal(add.posted.status(), 303, `form#add-user answered ${add.posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(add.url, `${issuer}/admin/users`);
    const row = rowOf(added.email);
    assert.equal(await row.count(), 1, 'the added user is not listed');
    assert.equal((await row.locator('td.status').innerText()).trim(), 'active');
    assert.equal((await row.locator('td.role').innerText()).trim(), 'admin');

    // Control: the new administrator can sign in on the console.
    const other = await freshPage();
    const okSignIn = await consoleSignIn(other.page, issuer, added);
    assert.equal(okSignIn.url, `${issuer}/admin`, `the added user could not sign in: ${await other.page.locator('body').innerText()}`);
    await other.page.locator('a#pending-link').waitFor();

    // Disable.
    const disable = row.locator('form.user-action button[name=action][value=disable]');
    assert.equal(await disable.count(), 1, 'no disable button in the added user\'s row');
    const off = await submitAndLoad(page, disable);
    assert.equal(off.posted.status(), 303, `disable answered ${off.posted.status()}: ${await page.locator('body').innerText()}`);
    assert.equal(off.url, `${issuer}/admin/users`);
    assert.equal((await row.locator('td.status').innerText()).trim(), 'disabled');

    // The disabled user cannot sign in any more.
    const again = await freshPage();
    const refused = await consoleSignIn(again.page, issuer, added);
    // spec: a disabled account gets the same answer as wrong credentials: 401 with the form again.
    assert.equal(refused.final.status(), 401, `a disabled user's sign-in answered ${refused.final.status()}`);
    await assert.doesNotReject(again.page.getByText('Incorrect email or password.').waitFor());
    assert.equal(await again.page.locator('form#signin').count(), 1);

    // And the session it had loses access at once ("every request re-reads the user").
    const stale = await other.page.goto(`${issuer}/admin`);
    // spec: a disabled administrator's old session either counts as signed out (303 to the
    // sign-in page) or as not an administrator (403); either way no console content.
    const staleUrl = new URL(other.page.url());
    assert.ok(
      stale?.status() === 403 || `${staleUrl.origin}${staleUrl.pathname}` === `${issuer}/admin/signin`,
      `a disabled administrator's session still opens the console (${stale?.status()} at ${other.page.url()})`,
    );
    assert.equal(await other.page.locator('table#clients').count(), 0);
  });

  test('10. every console page response carries a CSP with frame-ancestors \'none\'', async () => {
    // spec: "every console page response" = every document under {issuer}/admin that is a page;
    // 3xx redirects (to the next page) carry no page and are not checked.
    const consoleDocs = allDocuments
      .flat()
      .filter((d) => d.url.startsWith(`${issuer}/admin`) && !(d.status >= 300 && d.status < 400));
    const seen = new Set(consoleDocs.map((d) => `${new URL(d.url).pathname.replace(/\/clients\/[^/]+$/, '/clients/{id}')} ${d.status}`));
    // The suite saw the main pages and the error pages (unless an earlier step failed first).
    for (const expected of [
      '/t/demo/admin/signin 200',
      '/t/demo/admin 200',
      '/t/demo/admin/clients/{id} 200',
      '/t/demo/admin/clients/{id} 404',
      '/t/demo/admin/settings 200',
      '/t/demo/admin/users 200',
      '/t/demo/admin 403',
      '/t/demo/admin/signin 401',
    ]) {
      assert.ok(seen.has(expected), `no ${expected} response was recorded; seen: ${[...seen].join(', ')}`);
    }
    for (const d of consoleDocs) assertFrameAncestorsNone(d);
  });
});
