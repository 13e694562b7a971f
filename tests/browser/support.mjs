// Shared helpers of the browser tests: start `gatehouse serve` on a free loopback port, a loopback
// callback server that plays the client's redirect URI, headless Chromium (and a testbed of all
// three for a suite's before/after), the hosted sign-in, the administrator's approval, JWT claims.
// Not a test file itself (`node --test tests/browser/` only runs *.test.mjs).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const OUT = path.join(HERE, 'out');
export const GATEHOUSE_BIN = process.env.GATEHOUSE_BIN || path.join(REPO, 'target', 'debug', 'gatehouse');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const ADMIN = { email: 'admin@demo.test', password: 'admin-pass-123' };
export const USER = { email: 'user@demo.test', password: 'user-pass-123' };
// Debug builds hash passwords (argon2) slowly; leave room for that on a 2-core machine.
export const STEP_TIMEOUT_MS = 30_000;
/** The `timeout` of each test file's top-level describe. */
export const SUITE_TIMEOUT_MS = 300_000;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `gatehouse serve` (embedded store, demo tenant, the demo passwords above, no per-IP
 * registration limit) and resolves once it prints "Gatehouse listening on".
 */
/** `gatehouse serve` on a free port; `extraEnv` adds settings (e.g. the development-only CIMD ones). */
export async function startGatehouse(extraEnv = {}) {
  const port = await freePort();
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GATEHOUSE_') && !k.startsWith('AWS_')) env[k] = v;
  }
  Object.assign(env, {
    GATEHOUSE_ADDR: `127.0.0.1:${port}`,
    GATEHOUSE_DEMO_ADMIN_PASSWORD: ADMIN.password,
    GATEHOUSE_DEMO_USER_PASSWORD: USER.password,
    GATEHOUSE_REGISTRATION_RATE_LIMIT: '0',
  }, extraEnv);
  const child = spawn(GATEHOUSE_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`gatehouse did not start within 60 s; output so far:\n${output}`));
    }, 60_000);
    const onData = (chunk) => {
      output += chunk;
      if (output.includes('Gatehouse listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${GATEHOUSE_BIN}: ${e.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse exited early (code ${code}, signal ${signal}):\n${output}`));
    });
  });
  return running(child, exited, `http://127.0.0.1:${port}`, () => output);
}

/**
 * The client's redirect URI: records every `GET /callback` (its full URL as received, and its
 * query as an object) and answers "done". `extraRoutes(req, res, url)` may answer other paths
 * (return true when it did).
 */
export async function startCallbackServer(extraRoutes = () => false) {
  const hits = [];
  let origin;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, origin);
    if (req.method === 'GET' && url.pathname === '/callback') {
      hits.push({ ...Object.fromEntries(url.searchParams), [FULL_URL]: url.href });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('done');
    } else if (extraRoutes(req, res, url)) {
      // answered
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(404);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    hits,
    hitsFor: (state) => hits.filter((h) => h.state === state),
    /** The full callback URL the client's server received for `state` (exactly one expected). */
    callbackUrlFor(state) {
      const mine = hits.filter((h) => h.state === state);
      assert.equal(mine.length, 1, `callback server got ${mine.length} hits for this state`);
      return new URL(mine[0][FULL_URL]);
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
const FULL_URL = Symbol('full callback URL');

/**
 * A page in a fresh browser context (its own cookies), tracked in `contexts` for closing. Every
 * dialog (alert, confirm, …) is recorded and dismissed; every document response is recorded.
 */
export async function freshPage(browser, contexts) {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  const documents = [];
  page.on('response', (r) => {
    if (r.request().resourceType() === 'document') {
      documents.push({ url: r.url(), status: r.status(), method: r.request().method(), headers: r.headers() });
    }
  });
  return { context, page, dialogs, documents };
}

/** Fills in and submits the hosted sign-in page; resolves when the next document has loaded. */
export async function signIn(page, who) {
  await assert.doesNotReject(
    page.getByRole('heading', { name: /Sign in to/ }).waitFor(),
    'the sign-in page did not appear',
  );
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** Clicks a consent button and waits until the browser is at `redirectUri`. */
export async function decideAndLand(page, button, redirectUri) {
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(redirectUri)),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
  await page.waitForLoadState('load');
  return new URL(page.url());
}

/**
 * Opens `url` in a fresh page; the administrator signs in, is shown the consent page of a pending
 * (unverified) client, approves it and lands on `redirectUri`, which answers "done" (no dialog on
 * the way). Returns the URL the browser landed on.
 */
export async function approveAsAdmin(browser, contexts, url, redirectUri) {
  const { page, dialogs } = await freshPage(browser, contexts);
  await page.goto(url);
  await signIn(page, ADMIN);
  await assert.doesNotReject(
    page.getByText('New, unverified application').waitFor(),
    `expected the admin's consent page for a pending client, got: ${await page.locator('body').innerText()}`,
  );
  const landed = await decideAndLand(page, 'Approve', redirectUri);
  assert.equal(await page.locator('body').innerText(), 'done');
  assert.deepEqual(dialogs, []);
  return landed;
}

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * What a suite runs against: the callback server (`cb`, with `extraRoutes` as in
 * startCallbackServer), `gatehouse serve` (`gh`) and Chromium (`browser`), plus the browser
 * contexts its pages opened (`contexts`). `start()` (in `before`) starts them one at a time and
 * resolves to the testbed, so that `stop()` (in `after`) stops whatever did start when a later
 * step fails.
 */
export function browserTestbed(extraRoutes, extraEnv = {}, { lambda = false } = {}) {
  const bed = {
    cb: undefined,
    gh: undefined,
    /** @type {import('playwright-core').Browser | undefined} */
    browser: undefined,
    contexts: [],
    async start() {
      bed.cb = await startCallbackServer(extraRoutes);
      bed.gh = lambda ? await startLambdaGateway(extraEnv) : await startGatehouse(extraEnv);
      bed.browser = await launchChromium();
      return bed;
    },
    async stop() {
      for (const c of bed.contexts) await c.close().catch(() => {});
      await bed.browser?.close().catch(() => {});
      await bed.cb?.stop();
      await bed.gh?.stop();
    },
    /** freshPage in this testbed's browser. */
    freshPage: () => freshPage(bed.browser, bed.contexts),
    /** approveAsAdmin in this testbed's browser, landing on its callback server. */
    approveAsAdmin: (url) => approveAsAdmin(bed.browser, bed.contexts, url, bed.cb.redirectUri),
  };
  return bed;
}

/** Decodes one base64url part of a compact JWS (header or claims). */
export function decodeJwtPart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The claims of a compact-JWS access token (asserts it has three parts). */
export function jwtClaims(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'the access token is not a compact JWS');
  return decodeJwtPart(parts[1]);
}

// ------------------------------------------------------------------ client side of OAuth, and the console

// (An import declaration is hoisted; kept here so that the helpers above stay untouched.)
import { createHash, randomBytes } from 'node:crypto';

/**
 * A fresh authorization request to `{issuer}/oauth/authorize`: PKCE S256 over a random verifier,
 * a random state, and any `extra` parameters (e.g. `{ scope: 'user_default' }`).
 */
export function pkceAuthorization(issuer, clientId, redirectUri, extra = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  return { url: `${issuer}/oauth/authorize?${q}`, state, verifier, redirectUri };
}

async function readBody(resp) {
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * POSTs `params` as a form to `{issuer}/oauth/token`, with client_secret_basic when `basic`
 * (`{ id, secret }`) is given. Resolves to `{ status, body, headers }` (body parsed when JSON).
 */
export async function tokenRequest(issuer, params, basic) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) {
    const pair = `${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }
  const resp = await fetch(`${issuer}/oauth/token`, { method: 'POST', headers, body: new URLSearchParams(params) });
  return { status: resp.status, body: await readBody(resp), headers: resp.headers };
}

/** One JSON-RPC request to the tenant's demo MCP endpoint `{issuer}/mcp` with a bearer token. */
export async function mcpCall(issuer, accessToken, method, params = {}) {
  const resp = await fetch(`${issuer}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${accessToken}`,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return { status: resp.status, body: await readBody(resp), headers: resp.headers };
}

/**
 * Clicks a form's submit button and waits for the next document to load. Resolves to
 * `{ posted, final, url }`: the response to the submission itself (e.g. a 303), the response of
 * the document the browser ended on (the same one when there was no redirect), and its URL.
 */
export async function submitAndLoad(page, button) {
  const [final] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
  assert.ok(final, 'the form submission did not load a document');
  let first = final.request();
  while (first.redirectedFrom()) first = first.redirectedFrom();
  return { posted: await first.response(), final, url: page.url() };
}

/**
 * Signs in on the admin console's own page `{issuer}/admin/signin` (`form#signin`): opens it,
 * fills in `who`'s email and password and submits. Resolves as submitAndLoad does.
 */
export async function consoleSignIn(page, issuer, who) {
  const resp = await page.goto(`${issuer}/admin/signin`);
  assert.equal(resp?.status(), 200, `GET ${issuer}/admin/signin answered ${resp?.status()}`);
  const form = page.locator('form#signin');
  await form.locator('input[name=email]').fill(who.email);
  await form.locator('input[name=password]').fill(who.password);
  return submitAndLoad(page, form.locator('button[type=submit]'));
}

// ------------------------------------------------------------------ MCP SDK tests

/**
 * A fetch that records every request the SDK makes (method, URL, JSON-RPC method or grant type,
 * client authentication, status, WWW-Authenticate, and the body of error responses), so that a
 * failure can show the exchange and the tests can check the order of the flow.
 */
export function recordingFetch() {
  const log = [];
  const fetchFn = async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const entry = { method: (init.method ?? 'GET').toUpperCase(), url };
    const authz = headers.get('authorization');
    if (authz) entry.auth = authz.split(' ')[0];
    if (typeof init.body === 'string' && init.body.startsWith('{')) {
      try {
        const msg = JSON.parse(init.body);
        if (msg.method) entry.rpc = msg.method;
        if (typeof msg.scope === 'string') entry.scope = msg.scope; // a registration request
      } catch {
        // not JSON-RPC
      }
    } else if (init.body instanceof URLSearchParams) {
      entry.grantType = init.body.get('grant_type') ?? undefined;
      entry.clientId = init.body.get('client_id') ?? undefined;
      entry.resource = init.body.get('resource') ?? undefined;
      entry.scope = init.body.get('scope') ?? undefined;
    }
    log.push(entry);
    try {
      const resp = await fetch(input, init);
      entry.status = resp.status;
      const challenge = resp.headers.get('www-authenticate');
      if (challenge) entry.wwwAuthenticate = challenge;
      if (resp.status >= 400 && resp.status !== 405) entry.body = await resp.clone().text().catch((e) => `<unreadable: ${e}>`);
      return resp;
    } catch (e) {
      entry.error = String(e);
      throw e;
    }
  };
  return { log, fetchFn };
}

/** An SDK error with its class, message, cause and the recent HTTP exchanges, for a failure message. */
export function describeError(e, log) {
  const parts = [`${e?.constructor?.name ?? typeof e}${e?.code !== undefined ? ` [${e.code}]` : ''}: ${e?.message ?? e}`];
  if (e?.cause !== undefined) parts.push(`cause: ${e.cause?.message ?? JSON.stringify(e.cause)}`);
  if (log?.length) parts.push(`HTTP exchanges (last 8):\n${log.slice(-8).map((x) => `  ${JSON.stringify(x)}`).join('\n')}`);
  return parts.join('\n');
}

/** Runs an SDK step; a rejection becomes an assertion failure naming the step, the SDK's error and the exchanges. */
export async function sdk(step, log, fn) {
  try {
    return await fn();
  } catch (e) {
    assert.fail(`the MCP SDK failed at ${step}:\n${describeError(e, log)}`);
  }
}

// ------------------------------------------------------------------ "nothing else happened", positively

/**
 * Instead of "wait a moment, then see that nothing happened": waits until `page` has settled
 * (its load event, then Playwright's `networkidle`: every request the page made was answered
 * and none has started for 500 ms), then asserts that nothing can still move it on. The browser
 * is still at `origin`; the last document (`documents`, from freshPage) is the page shown and
 * carries no `Refresh` header; the page has no `<meta http-equiv=refresh>`; and its CSP lets no
 * script run (`default-src 'none'`, no `script-src`), so no timer or auto-submitted form can
 * navigate later. Resolves to that document's record.
 */
export async function assertSettledAt(page, origin, documents, what) {
  await page.waitForLoadState('load');
  await page.waitForLoadState('networkidle');
  assert.ok(page.url().startsWith(origin), `${what}: the browser left ${origin} for ${page.url()}`);
  const doc = documents.at(-1);
  assert.ok(doc, `${what}: no document response recorded`);
  assert.equal(doc.url, page.url(), `${what}: the last document loaded is not the page shown`);
  assert.equal(doc.headers.refresh, undefined, `${what}: a Refresh header would navigate later`);
  const metaRefresh = await page.evaluate(
    () => [...document.querySelectorAll('meta')].filter((m) => (m.httpEquiv || '').toLowerCase() === 'refresh').length,
  );
  assert.equal(metaRefresh, 0, `${what}: a <meta http-equiv=refresh> would navigate later`);
  const csp = (doc.headers['content-security-policy'] ?? '').split(';').map((d) => d.trim().toLowerCase());
  assert.ok(csp.includes("default-src 'none'"), `${what}: CSP without default-src 'none': ${csp.join('; ')}`);
  assert.ok(!csp.some((d) => d.startsWith('script-src')), `${what}: CSP allows some script: ${csp.join('; ')}`);
  return doc;
}

/**
 * The Lambda path instead of `gatehouse serve`: tests/lambda_gateway.py runs every function
 * binary (next to GATEHOUSE_BIN) under a Lambda Runtime API emulator behind a local API Gateway
 * (payload 2.0 events, routes from infra/template.yaml), on a fresh DynamoDB table in moto
 * (GATEHOUSE_TEST_DYNAMODB_ENDPOINT, which tests/run sets). Same interface as startGatehouse.
 */
export async function startLambdaGateway(extraEnv = {}) {
  const endpoint = process.env.GATEHOUSE_TEST_DYNAMODB_ENDPOINT;
  assert.ok(endpoint, 'the Lambda path needs moto: set GATEHOUSE_TEST_DYNAMODB_ENDPOINT (tests/run does)');
  const port = await freePort();
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GATEHOUSE_') && !k.startsWith('AWS_')) env[k] = v;
  }
  Object.assign(env, {
    GATEHOUSE_TEST_DYNAMODB_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    GATEHOUSE_DEMO_ADMIN_PASSWORD: ADMIN.password,
    GATEHOUSE_DEMO_USER_PASSWORD: USER.password,
    GATEHOUSE_REGISTRATION_RATE_LIMIT: '0',
  }, extraEnv);
  const logDir = path.join(OUT, `lambda-${port}`);
  const python = process.env.GATEHOUSE_PYTHON || 'python3';
  const child = spawn(python, [path.join(REPO, 'tests', 'lambda_gateway.py'), '--port', String(port),
    '--bin-dir', path.dirname(GATEHOUSE_BIN), '--log-dir', logDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Lambda gateway did not start within 90 s:\n${output}`)), 90_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('lambda gateway ready on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the Lambda gateway exited early (code ${code}, signal ${signal}):\n${output}`));
    });
  });
  return running(child, exited, `http://127.0.0.1:${port}`, () => output);
}

/** A started server process: its base URL, its output so far, and `stop()` (TERM, then KILL). */
function running(child, exited, base, output) {
  return {
    base,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
