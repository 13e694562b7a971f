// Shared helpers of the browser tests: start `gatehouse serve` on a free loopback port, a loopback
// callback server that plays the client's redirect URI, headless Chromium, and the hosted sign-in.
// Not a test file itself (`node --test tests/browser/` only runs *.test.mjs).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
export async function startGatehouse() {
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
  });
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
  return {
    base: `http://127.0.0.1:${port}`,
    output: () => output,
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
