// End to end with the official MCP TypeScript SDK (@modelcontextprotocol/sdk, pinned in
// package.json) using a Client ID Metadata Document instead of registration: the provider has a
// `clientMetadataUrl`, Gatehouse advertises `client_id_metadata_document_supported`, so the SDK
// sends that URL as its client_id and never calls the registration endpoint. The document is
// served over HTTPS from loopback with a throwaway test CA (tests/devca.py), which the server
// trusts through its development-only settings.
//
// The chain: discovery from a bare 401 → the administrator approves the new, unverified
// application in Chromium → token → tools/list and whoami; then a regular user connects through
// the same client id after one consent. No registration request at any point, one client in the
// admin API, and one fetch of the document (it is cached).
//
// Run: tests/browser/run.sh (needs the test venv's Python for the CA: `.venv/bin/python`, or
// `GATEHOUSE_PYTHON`, or a `python3` with the `cryptography` package).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ADMIN, REPO, SUITE_TIMEOUT_MS, USER, browserTestbed, decideAndLand, describeError, jwtClaims, recordingFetch, sdk, signIn } from './support.mjs';

const CLIENT_INFO = { name: 'gatehouse-cimd-tests', version: '0.0.0' };

// ------------------------------------------------------------------ the test CA and document server

function python() {
  if (process.env.GATEHOUSE_PYTHON) return process.env.GATEHOUSE_PYTHON;
  const venv = process.env.GATEHOUSE_VENV ? path.join(process.env.GATEHOUSE_VENV, 'bin', 'python') : path.join(REPO, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** A fresh test CA and a `localhost` certificate signed by it. */
function testCa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cimd-ca-'));
  execFileSync(python(), [path.join(REPO, 'tests', 'devca.py'), dir], { stdio: 'inherit' });
  return dir;
}

/** HTTPS on 127.0.0.1 serving JSON documents by path, counting requests per path. */
async function startDocServer(caDir) {
  const docs = new Map();
  const hits = new Map();
  const server = https.createServer(
    { key: fs.readFileSync(path.join(caDir, 'leaf.key')), cert: fs.readFileSync(path.join(caDir, 'leaf.pem')) },
    (req, res) => {
      hits.set(req.url, (hits.get(req.url) ?? 0) + 1);
      const doc = docs.get(req.url);
      if (!doc) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
      res.end(JSON.stringify(doc));
    },
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://localhost:${server.address().port}`;
  return {
    url: (p) => `${origin}${p}`,
    serve: (p, doc) => docs.set(p, doc),
    hits: (p) => hits.get(p) ?? 0,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// ------------------------------------------------------------------ the SDK's side

/**
 * An OAuthClientProvider with a client metadata URL and nothing stored. `redirectToAuthorization`
 * plays the user in a fresh Chromium context: `who` signs in and approves (the administrator on
 * the approval page of a new application, a regular user on the ordinary consent page).
 */
class MetadataUrlProvider {
  constructor({ bed, issuer, documentUrl, who }) {
    this.bed = bed;
    this.issuer = issuer;
    this.documentUrl = documentUrl;
    this.who = who;
    this._info = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this.authorizationUrls = [];
    this.pages = [];
    this._pending = undefined;
  }

  get clientMetadataUrl() {
    return this.documentUrl;
  }

  get redirectUrl() {
    return this.bed.cb.redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: 'Gatehouse CIMD SDK test',
      redirect_uris: [this.bed.cb.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    return randomBytes(16).toString('base64url');
  }

  clientInformation() {
    return this._info;
  }

  saveClientInformation(info) {
    this._info = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(v) {
    this._verifier = v;
  }

  codeVerifier() {
    return this._verifier;
  }

  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    this._pending = this._decide(new URL(url));
    this._pending.catch(() => {});
  }

  nextCode() {
    assert.ok(this._pending, 'the SDK never sent the user to the authorization endpoint');
    return this._pending;
  }

  async _decide(url) {
    const { page } = await this.bed.freshPage();
    await page.goto(url.href);
    await signIn(page, this.who);
    const text = await page.locator('body').innerText();
    this.pages.push(text);
    if (this.who === ADMIN) {
      assert.match(text, /New, unverified application/, `the administrator's page: ${text}`);
      assert.ok(text.includes(this.documentUrl), `the approval page does not show the document URL: ${text}`);
      assert.ok(text.includes('Gatehouse CIMD SDK test'), `the approval page does not show the document's name: ${text}`);
      assert.equal(await page.locator('form[action$="/admin/approve"]').count(), 1, 'approval posts to the admin function');
    } else {
      assert.doesNotMatch(text, /New, unverified application/, `a regular user must see the ordinary consent page: ${text}`);
      assert.equal(await page.locator(`form[action="${this.issuer}/oauth/authorize"]`).count(), 1, `the consent form: ${text}`);
    }
    const landed = await decideAndLand(page, 'Approve', this.bed.cb.redirectUri);
    assert.equal(landed.searchParams.get('iss'), this.issuer);
    const code = landed.searchParams.get('code');
    assert.match(code ?? '', /^[A-Za-z0-9_-]{43}$/, `landed on ${landed.href}`);
    return code;
  }
}

// ------------------------------------------------------------------ the suite

describe('the MCP TypeScript SDK with a client metadata URL (Client ID Metadata Document)', { timeout: SUITE_TIMEOUT_MS }, () => {
  const caDir = testCa();
  const bed = browserTestbed(undefined, {
    GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE: path.join(caDir, 'ca.pem'),
    GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK: 'true',
  });
  const docPath = `/clients/${randomBytes(6).toString('hex')}/mcp-client.json`;
  let docs;
  let documentUrl;
  let issuer;
  let mcpUrl;
  const open = [];

  before(async () => {
    await bed.start();
    issuer = `${bed.gh.base}/t/demo`;
    mcpUrl = `${issuer}/mcp`;
    docs = await startDocServer(caDir);
    documentUrl = docs.url(docPath);
    docs.serve(docPath, {
      client_id: documentUrl,
      client_name: 'Gatehouse CIMD SDK test',
      redirect_uris: [bed.cb.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'user_default mcp:execute',
    });
  });

  after(async () => {
    for (const c of open) await c.close().catch(() => {});
    await docs?.stop();
    await bed.stop();
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  function connectWith(provider, fetchFn) {
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
    const client = new Client(CLIENT_INFO);
    open.push(client);
    return { transport, client };
  }

  /** The SDK's whole interactive flow for `who`; returns the connected client and the log. */
  async function connectAs(who) {
    const rec = recordingFetch();
    const provider = new MetadataUrlProvider({ bed, issuer, documentUrl, who });
    const first = connectWith(provider, rec.fetchFn);
    await assert.rejects(first.client.connect(first.transport), (e) => {
      assert.ok(e instanceof UnauthorizedError, `expected UnauthorizedError after the redirect, got:\n${describeError(e, rec.log)}`);
      return true;
    });
    await first.client.close();
    assert.deepEqual(provider.clientInformation(), { client_id: documentUrl, issuer });
    assert.equal(provider.authorizationUrls.length, 1);
    const q = provider.authorizationUrls[0].searchParams;
    assert.equal(q.get('client_id'), documentUrl, 'the SDK sends the document URL as its client_id');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('resource'), mcpUrl);

    const code = await provider.nextCode();
    await sdk('finishAuth (the code exchange)', rec.log, () => first.transport.finishAuth(code));
    const exchange = rec.log.find((x) => x.grantType === 'authorization_code');
    assert.deepEqual([exchange.url, exchange.clientId, exchange.auth, exchange.status], [`${issuer}/oauth/token`, documentUrl, undefined, 200]);
    const claims = jwtClaims(provider.tokens().access_token);
    assert.equal(claims.client_id, documentUrl);
    assert.deepEqual([claims.aud].flat(), [mcpUrl]);

    const second = connectWith(provider, rec.fetchFn);
    await sdk('connect with the tokens', rec.log, () => second.client.connect(second.transport));
    const { tools } = await sdk('tools/list', rec.log, () => second.client.listTools());
    assert.ok(tools.some((t) => t.name === 'whoami'), JSON.stringify(tools));
    const result = await sdk('tools/call whoami', rec.log, () => second.client.callTool({ name: 'whoami', arguments: {} }));
    const text = result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    assert.ok(text.includes(documentUrl), `whoami names the client: ${text}`);

    const registrations = rec.log.filter((x) => x.url.includes('/oauth/register'));
    assert.deepEqual(registrations, [], 'no dynamic registration with a metadata URL');
    return { provider, rec, text, claims };
  }

  test('the authorization server metadata advertises client_id_metadata_document_supported', async () => {
    const meta = await (await fetch(`${bed.gh.base}/.well-known/oauth-authorization-server/t/demo`)).json();
    assert.equal(meta.client_id_metadata_document_supported, true, JSON.stringify(meta));
  });

  let adminClaims;
  test('discovery → the administrator approves the new application in the browser → token → tools/list', async () => {
    const { claims } = await connectAs(ADMIN);
    adminClaims = claims;
    assert.equal(docs.hits(docPath), 1, 'the document was fetched once');
  });

  test('a regular user then connects through the same client id after one consent, with no registration', async () => {
    assert.ok(adminClaims, 'needs the approval of the previous step');
    const { claims, text } = await connectAs(USER);
    assert.notEqual(claims.sub, adminClaims.sub, 'a different user');
    assert.ok(text.includes(USER.email) || text.includes(claims.sub), `whoami: ${text}`);
    assert.equal(docs.hits(docPath), 1, 'the cached document served the second connection');
  });

  test('the admin API shows one metadata-document client, approved, with its URL and fetched metadata', async () => {
    const { page } = await bed.freshPage();
    await page.goto(`${issuer}/admin/signin`);
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password').fill(ADMIN.password);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()]);
    const filter = encodeURIComponent('createdByType eq "cimd"');
    const list = await page.request.get(`${issuer}/api/v1/oauth-clients?filter=${filter}`);
    assert.equal(list.status(), 200, await list.text());
    const { data } = await list.json();
    assert.deepEqual(data.map((c) => [c.client_id, c.status, c.createdByType]), [[documentUrl, 'approved', 'cimd']]);
    assert.equal(data[0].client_name, 'Gatehouse CIMD SDK test');
    assert.equal(data[0].metadata_document.url, documentUrl);
    // The console's client page shows the document.
    await page.goto(`${issuer}/admin/clients/${encodeURIComponent(documentUrl)}`);
    const text = await page.locator('body').innerText();
    assert.ok(text.includes(documentUrl) && text.includes('Metadata document'), text);
  });
});
