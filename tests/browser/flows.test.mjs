// Real-browser tests of Gatehouse's hosted sign-in, consent and administrator-approval pages.
//
// Run: tests/browser/run.sh (installs Chromium from Debian and the pinned playwright-core, then
// `node --test tests/browser/`). Needs a built `gatehouse` binary: $GATEHOUSE_BIN or
// target/debug/gatehouse. Chromium: $CHROMIUM_PATH or /usr/bin/chromium. The screenshot of the
// administrator's consent page goes to tests/browser/out/consent.png (git-ignored).
//
// The suite starts one `gatehouse serve` on a free loopback port (embedded store, demo
// tenant) and a tiny loopback HTTP server that plays the client's redirect URI. The tests in the
// "authorization flow" suite run in order and build on each other (register → refused to a
// user → approved by the admin → consented by the user → remembered).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ADMIN, OUT, SUITE_TIMEOUT_MS, USER, assertSettledAt, browserTestbed, decideAndLand, signIn, submitAndLoad } from './support.mjs';

const HOSTILE_NAME = '<img src=x onerror=alert(1)><script>alert(1)</script>';

// ------------------------------------------------------------------ helpers

/**
 * Extra routes of the callback server, for the clickjacking test: `GET /frame?src=…` answers a
 * page that frames `src`, and `GET /frameable` a page with a "Sign in" button that may be framed.
 */
function framingRoutes(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/frame') {
    const src = url.searchParams.get('src') ?? '';
    const attr = src.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    // The iframe counts its load events (data-loads): the test's signal that the frame is done.
    res.end(`<!doctype html><title>framer</title><iframe id="victim" src="${attr}" width="600" height="600" data-loads="0" onload="this.dataset.loads = String(Number(this.dataset.loads) + 1)"></iframe>`);
    return true;
  }
  if (req.method === 'GET' && url.pathname === '/frameable') {
    // A page that allows framing: the positive control of the clickjacking test.
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>frameable</title><button>Sign in</button>');
    return true;
  }
  return false;
}

function b64url(buf) {
  return buf.toString('base64url');
}

async function registerClient(base, redirectUri, clientName) {
  const resp = await fetch(`${base}/t/demo/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
    }),
  });
  const body = await resp.json();
  assert.equal(resp.status, 201, `registration failed: ${JSON.stringify(body)}`);
  assert.equal(body.client_name, clientName);
  assert.ok(body.client_id, 'registration answered no client_id');
  return body;
}

/** A fresh authorization request: PKCE S256 over a random verifier and a random state. */
function authorizationUrl(base, clientId, redirectUri) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  });
  return { url: `${base}/t/demo/oauth/authorize?${q}`, state, verifier };
}

// ------------------------------------------------------------------ the suite

describe('hosted pages in a real browser', { timeout: SUITE_TIMEOUT_MS }, () => {
  const bed = browserTestbed(framingRoutes);
  let gh;
  let cb;
  const { freshPage } = bed;

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    ({ gh, cb } = await bed.start());
  });

  after(() => bed.stop());

  function assertCallbackWithCode(landed, state) {
    const q = landed.searchParams;
    assert.equal(`${landed.origin}${landed.pathname}`, cb.redirectUri);
    assert.equal(q.get('error'), null, `unexpected error at the callback: ${landed.search}`);
    assert.match(q.get('code') ?? '', /^[A-Za-z0-9_-]{43}$/, `code is not 43 base64url characters: ${landed.search}`);
    assert.equal(q.get('state'), state);
    assert.equal(q.get('iss'), `${gh.base}/t/demo`);
    // The client's server really received it (the browser did not just stop at the URL).
    const hits = cb.hitsFor(state);
    assert.equal(hits.length, 1, `callback server got ${hits.length} hits for this state`);
    assert.equal(hits[0].code, q.get('code'));
  }

  function assertPageHeaders(doc, what) {
    assert.ok(doc, `no document response recorded for ${what}`);
    const csp = doc.headers['content-security-policy'] ?? '';
    assert.match(csp, /(^|;)\s*frame-ancestors 'none'\s*(;|$)/, `${what}: CSP lacks frame-ancestors 'none': ${csp}`);
    assert.equal((doc.headers['x-frame-options'] ?? '').toUpperCase(), 'DENY', `${what}: X-Frame-Options`);
    assert.match(doc.headers['cache-control'] ?? '', /no-store/, `${what}: Cache-Control`);
  }

  describe('authorization flow with administrator approval', () => {
    const clientName = `Browser Test Agent ${b64url(randomBytes(4))}`;
    let client;

    test('1. a freshly registered (pending) client is refused to a non-admin user', async () => {
      client = await registerClient(gh.base, cb.redirectUri, clientName);
      const { url, state } = authorizationUrl(gh.base, client.client_id, cb.redirectUri);
      const { page, dialogs, documents } = await freshPage();

      await page.goto(url);
      await assert.doesNotReject(page.getByText(clientName).first().waitFor(), 'sign-in page does not name the client');
      await signIn(page, USER);

      await assert.doesNotReject(
        page.getByRole('heading', { name: 'Administrator approval required' }).waitFor(),
        `expected the refusal page, got: ${await page.locator('body').innerText()}`,
      );
      assert.ok(page.url().startsWith(gh.base), `left Gatehouse: ${page.url()}`);
      assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'a non-admin was offered Approve');
      const last = documents.at(-1);
      assert.equal(last.status, 403);
      assertPageHeaders(last, 'the refusal page');
      // The page settled at Gatehouse and nothing on it can redirect later; the client heard nothing.
      await assertSettledAt(page, gh.base, documents, 'the refusal page');
      assert.ok(!documents.some((d) => d.url.startsWith(cb.origin)), `the browser reached the client: ${JSON.stringify(documents.map((d) => d.url))}`);
      assert.deepEqual(cb.hitsFor(state), []);
      assert.deepEqual(cb.hits.filter((h) => h.state === state || h.code), []);
      assert.deepEqual(dialogs, []);
    });

    test('2. the administrator sees the unverified notice, approves, and the client gets a code', async () => {
      assert.ok(client, 'needs the client of test 1');
      const { url, state } = authorizationUrl(gh.base, client.client_id, cb.redirectUri);
      const { page, dialogs, documents } = await freshPage();

      await page.goto(url);
      await signIn(page, ADMIN);

      await assert.doesNotReject(page.getByText('New, unverified application').waitFor(), 'no unverified notice for the admin');
      await assert.doesNotReject(
        page.getByRole('heading', { name: `${clientName} wants to access your` }).waitFor(),
        'consent page does not name the client',
      );
      assert.equal(await page.getByRole('button', { name: 'Approve', exact: true }).count(), 1);
      assert.equal(await page.getByRole('button', { name: 'Deny', exact: true }).count(), 1);
      assertPageHeaders(documents.at(-1), 'the consent page');
      await page.screenshot({ path: path.join(OUT, 'consent.png'), fullPage: true });

      const landed = await decideAndLand(page, 'Approve', cb.redirectUri);
      assertCallbackWithCode(landed, state);
      assert.equal(await page.locator('body').innerText(), 'done');
      assert.deepEqual(dialogs, []);
    });

    test('3. once approved, a user consents without the notice; consent and session are remembered', async () => {
      assert.ok(client, 'needs the client of test 1');
      const first = authorizationUrl(gh.base, client.client_id, cb.redirectUri);
      const { page, dialogs } = await freshPage();

      await page.goto(first.url);
      await signIn(page, USER);
      await assert.doesNotReject(
        page.getByRole('heading', { name: `${clientName} wants to access your` }).waitFor(),
        `expected the consent page, got: ${await page.locator('body').innerText()}`,
      );
      assert.equal(await page.getByText('New, unverified application').count(), 0, 'approved client still shown as unverified');
      assert.equal(await page.getByText('Administrator approval required').count(), 0);
      await assert.doesNotReject(page.getByText(`Signed in as ${USER.email}`).waitFor());
      assertCallbackWithCode(await decideAndLand(page, 'Approve', cb.redirectUri), first.state);

      // Same browser, new request: still signed in, consent remembered → straight to the client.
      const second = authorizationUrl(gh.base, client.client_id, cb.redirectUri);
      const resp = await page.goto(second.url);
      const landed = new URL(page.url());
      assert.ok(
        page.url().startsWith(cb.redirectUri),
        `expected to land on the callback directly, got ${page.url()}: ${await page.locator('body').innerText()}`,
      );
      assert.equal(resp.status(), 200);
      assert.equal(resp.request().redirectedFrom()?.url(), second.url, 'the callback was not reached by a redirect from authorize');
      assertCallbackWithCode(landed, second.state);
      assert.notEqual(landed.searchParams.get('code'), cb.hitsFor(first.state)[0].code, 'the same code was issued twice');
      assert.deepEqual(dialogs, []);
    });
  });

  test('4. the administrator denies a new client: a page at Gatehouse, nothing sent to the client', async () => {
    const denied = await registerClient(gh.base, cb.redirectUri, `Denied Agent ${b64url(randomBytes(4))}`);
    const { url, state } = authorizationUrl(gh.base, denied.client_id, cb.redirectUri);
    const { page, dialogs, documents } = await freshPage();

    await page.goto(url);
    await signIn(page, ADMIN);
    await assert.doesNotReject(page.getByText('New, unverified application').waitFor());
    // An unapproved client's redirect URI is only its registrant's claim: Deny ends here.
    const { posted, url: landed } = await submitAndLoad(page, page.getByRole('button', { name: 'Deny', exact: true }));
    assert.equal(posted.status(), 200);
    assert.ok(landed.startsWith(gh.base), `left Gatehouse: ${landed}`);
    await assert.doesNotReject(
      page.getByRole('heading', { name: 'Application not approved' }).waitFor(),
      `expected the denial page, got: ${await page.locator('body').innerText()}`,
    );
    assertPageHeaders(documents.at(-1), 'the denial page');
    await assertSettledAt(page, gh.base, documents, 'the denial page');
    assert.ok(!documents.some((d) => d.url.startsWith(cb.origin)), `the browser reached the client: ${JSON.stringify(documents.map((d) => d.url))}`);
    assert.deepEqual(cb.hitsFor(state), [], 'the denied client heard from the browser');
    assert.deepEqual(dialogs, []);
  });

  test('5. a hostile client name is shown as text and never runs', async () => {
    const hostile = await registerClient(gh.base, cb.redirectUri, HOSTILE_NAME);
    const { url } = authorizationUrl(gh.base, hostile.client_id, cb.redirectUri);
    const { page, dialogs, documents } = await freshPage();
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));

    await page.goto(url);
    // The sign-in page names the client too.
    await assert.doesNotReject(page.getByText(HOSTILE_NAME).first().waitFor(), 'sign-in page does not show the name as text');
    await signIn(page, ADMIN);

    await assert.doesNotReject(page.getByText('New, unverified application').waitFor());
    const heading = page.getByRole('heading', { level: 1 });
    assert.equal(await heading.innerText(), `${HOSTILE_NAME} wants to access your ${await tenantName(page)} account`);
    assert.ok((await page.getByText('<script>', { exact: false }).count()) >= 1, 'the literal "<script>" text is not on the page');
    assert.ok((await page.getByText('<img src=x onerror=alert(1)>', { exact: false }).count()) >= 1);
    // Nothing from the name became markup.
    const injected = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      imgs: [...document.querySelectorAll('img')].map((i) => i.getAttribute('src')),
      title: document.title,
    }));
    assert.equal(injected.scripts, 0, 'a <script> element exists in the consent page');
    assert.deepEqual(injected.imgs, [], 'an <img> element exists in the consent page');
    assert.ok(injected.title.includes('<script>'), `title does not carry the name as text: ${injected.title}`);
    await page.screenshot({ path: path.join(OUT, 'hostile-name.png'), fullPage: true });
    // Every load the page started has ended (an <img> that failed would have run its handler by
    // then) and its CSP lets no script run at all: a dialog could only have fired already.
    await assertSettledAt(page, gh.base, documents, 'the consent page');
    assert.deepEqual(dialogs, [], 'a dialog fired');
    assert.deepEqual(consoleErrors, []);
  });

  test('6. sign-in and consent pages forbid framing (CSP frame-ancestors, X-Frame-Options)', async () => {
    const framed = await registerClient(gh.base, cb.redirectUri, `Frame Agent ${b64url(randomBytes(4))}`);
    const { url } = authorizationUrl(gh.base, framed.client_id, cb.redirectUri);

    // Headers as the browser received them, on the sign-in page and the consent page.
    const { page, documents } = await freshPage();
    await page.goto(url);
    const signinDoc = documents.find((d) => d.method === 'GET' && d.url.startsWith(`${gh.base}/t/demo/oauth/authorize`));
    assertPageHeaders(signinDoc, 'the sign-in page');
    await signIn(page, ADMIN);
    await assert.doesNotReject(page.getByRole('button', { name: 'Approve' }).waitFor());
    const consentDoc = documents.at(-1);
    assert.ok(consentDoc.url.startsWith(gh.base) && consentDoc.status === 200, `consent page: ${JSON.stringify(consentDoc)}`);
    assertPageHeaders(consentDoc, 'the consent page');

    // And the browser really refuses to show it in a frame on another origin.
    const { page: attacker, dialogs } = await freshPage();
    const signInButtonsInFrame = async (src) => {
      // Positive signals before counting: the framed document was requested and answered, and
      // the <iframe> element fired its load event (the framer page counts them in data-loads).
      const answered = attacker.waitForResponse((r) => r.url() === src && r.request().frame() !== attacker.mainFrame());
      await attacker.goto(`${cb.origin}/frame?src=${encodeURIComponent(src)}`);
      const resp = await answered;
      assert.equal(resp.status(), 200, `the framed document ${src} answered ${resp.status()}`);
      await attacker.waitForFunction(() => Number(document.getElementById('victim')?.dataset.loads ?? 0) >= 1);
      const frame = attacker.frames().find((f) => f !== attacker.mainFrame());
      assert.ok(frame, 'the iframe is missing');
      await frame.waitForLoadState('load');
      return { count: await frame.getByRole('button', { name: 'Sign in' }).count(), url: frame.url(), headers: await resp.allHeaders() };
    };
    // Positive control: a frameable page on another origin (localhost vs 127.0.0.1) does show.
    const control = await signInButtonsInFrame(`${cb.origin.replace('127.0.0.1', 'localhost')}/frameable`);
    assert.equal(control.count, 1, `control page did not render in the frame (${control.url})`);
    const victim = authorizationUrl(gh.base, framed.client_id, cb.redirectUri);
    const framedPage = await signInButtonsInFrame(victim.url);
    assert.equal(framedPage.count, 0, `the sign-in form rendered inside a cross-origin frame (${framedPage.url})`);
    assert.equal((framedPage.headers['x-frame-options'] ?? '').toUpperCase(), 'DENY', 'the framed answer was not the protected page');
    assert.deepEqual(dialogs, []);
  });
});

/** The tenant's display name as the page shows it (from the title "… · {tenant}"). */
async function tenantName(page) {
  const title = await page.title();
  return title.slice(title.lastIndexOf(' · ') + 3);
}
