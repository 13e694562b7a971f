// End to end with the official MCP TypeScript SDK (@modelcontextprotocol/sdk, pinned in
// package.json) as the client of Gatehouse's demo MCP endpoint `{base}/t/demo/mcp`. The SDK runs
// the whole OAuth flow itself: the MCP endpoint's 401 and its WWW-Authenticate challenge, RFC 9728
// protected resource metadata, RFC 8414 authorization server metadata, dynamic client
// registration, the authorization request with PKCE and `resource`, the code exchange, and the
// refresh. Headless Chromium plays the user: the OAuthClientProvider below opens the authorization
// URL in a fresh browser context, the administrator signs in and approves the new client, and the
// code comes back through the loopback callback server.
//
// Run: tests/browser/run.sh. Two scenarios, each a chain of steps that build on each other:
// a public client (none: no client_secret, no refresh token) and a confidential one
// (client_secret_basic with the refresh_token grant: a refresh token, then two refreshes, one by
// the transport's own 401 handling and one through the SDK's auth()). Nothing here works around
// the SDK: when it rejects what Gatehouse does, the test fails with the SDK's error and the HTTP
// exchanges that led to it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { SUITE_TIMEOUT_MS, browserTestbed, describeError, jwtClaims, recordingFetch, sdk } from './support.mjs';

const CLIENT_INFO = { name: 'gatehouse-browser-tests', version: '0.0.0' };
const MCP_SCOPE = 'user_default mcp:execute';

// ------------------------------------------------------------------ helpers

/**
 * The SDK's OAuthClientProvider, state in memory. `redirectToAuthorization(url)` starts the user's
 * part in Chromium (fresh context: the admin signs in and approves the new client) and exposes
 * the code the callback server receives as `nextCode()`.
 */
class BrowserOAuthProvider {
  constructor({ bed, issuer, clientMetadata }) {
    this.bed = bed;
    this.cb = bed.cb;
    this.issuer = issuer;
    this._clientMetadata = { redirect_uris: [this.cb.redirectUri], response_types: ['code'], ...clientMetadata };
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    /** Every authorization URL the SDK sent the user to, and every token set it saved, in order. */
    this.authorizationUrls = [];
    this.savedTokens = [];
    this.invalidated = [];
    this._pending = undefined;
  }

  get redirectUrl() {
    return this.cb.redirectUri;
  }

  get clientMetadata() {
    return this._clientMetadata;
  }

  state() {
    return randomBytes(16).toString('base64url');
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.savedTokens.push(tokens);
  }

  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }

  codeVerifier() {
    assert.ok(this._codeVerifier, 'the SDK asked for a code verifier it never saved');
    return this._codeVerifier;
  }

  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }

  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    const approval = this._approve(new URL(url));
    approval.catch(() => {}); // awaited through nextCode(); no unhandled rejection meanwhile
    this._pending = approval;
  }

  /** The code of the last authorization the SDK started (after the admin approved it). */
  nextCode() {
    assert.ok(this._pending, 'the SDK never called redirectToAuthorization');
    return this._pending;
  }

  async _approve(url) {
    const state = url.searchParams.get('state');
    assert.ok(state, `the SDK's authorization URL has no state: ${url.href}`);
    await this.bed.approveAsAdmin(url.href);
    const callback = this.cb.callbackUrlFor(state);
    const p = callback.searchParams;
    assert.equal(p.get('error'), null, `the authorization failed: ${callback.href}`);
    assert.equal(p.get('iss'), this.issuer, `callback: ${callback.href}`);
    const code = p.get('code');
    assert.match(code ?? '', /^[A-Za-z0-9_-]{43}$/, `callback: ${callback.href}`);
    return code;
  }
}

// ------------------------------------------------------------------ the suite

describe('the MCP TypeScript SDK against Gatehouse\'s demo MCP endpoint, with Chromium for the user', { timeout: SUITE_TIMEOUT_MS }, () => {
  const bed = browserTestbed();
  let gh;
  let cb;
  const openClients = [];
  let issuer;
  let mcpUrl;

  before(async () => {
    ({ gh, cb } = await bed.start());
    issuer = `${gh.base}/t/demo`;
    mcpUrl = `${issuer}/mcp`;
  });

  after(async () => {
    for (const c of openClients) await c.close().catch(() => {});
    await bed.stop();
  });

  function newClient(provider, fetchFn) {
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
    const client = new Client(CLIENT_INFO);
    openClients.push(client);
    return { transport, client };
  }

  /**
   * The SDK's interactive flow: connect → 401 → discovery, registration, redirect (the admin
   * approves in Chromium) → UnauthorizedError; finishAuth(code) exchanges the code; a new
   * transport and client connect with the tokens. Checks the order of the HTTP exchanges and
   * the authorization URL. Returns the connected client.
   */
  async function authorizeAndConnect(provider, rec) {
    const first = newClient(provider, rec.fetchFn);
    await assert.rejects(first.client.connect(first.transport), (e) => {
      assert.ok(e instanceof UnauthorizedError, `connect() should end in UnauthorizedError after the redirect, got:\n${describeError(e, rec.log)}`);
      return true;
    });
    await first.client.close();

    // What the SDK did before redirecting: the endpoint's 401, then discovery from its challenge.
    const [probe, prm, asMeta, reg] = rec.log;
    assert.deepEqual(
      { method: probe.method, url: probe.url, rpc: probe.rpc, status: probe.status },
      { method: 'POST', url: mcpUrl, rpc: 'initialize', status: 401 },
    );
    assert.equal(
      probe.wwwAuthenticate,
      `Bearer resource_metadata="${gh.base}/.well-known/oauth-protected-resource/t/demo/mcp", scope="${MCP_SCOPE}"`,
    );
    assert.deepEqual([prm.method, prm.url, prm.status], ['GET', `${gh.base}/.well-known/oauth-protected-resource/t/demo/mcp`, 200]);
    assert.deepEqual([asMeta.method, asMeta.url, asMeta.status], ['GET', `${gh.base}/.well-known/oauth-authorization-server/t/demo`, 200]);
    assert.deepEqual([reg.method, reg.url, reg.status], ['POST', `${issuer}/oauth/register`, 201], `registration: ${JSON.stringify(reg)}`);
    // SEP-835: the SDK registers with the challenge's scope (it overrides clientMetadata.scope).
    assert.equal(reg.scope, MCP_SCOPE);

    // The registration the SDK saved, stamped with the authorization server it came from.
    const info = provider.clientInformation();
    assert.equal(typeof info?.client_id, 'string', `client information: ${JSON.stringify(info)}`);
    assert.equal(info.issuer, issuer);
    assert.equal(info.token_endpoint_auth_method, provider.clientMetadata.token_endpoint_auth_method);
    assert.deepEqual(info.redirect_uris, [cb.redirectUri]);

    // The authorization request: PKCE S256, state, the challenge's scope, RFC 8707 resource.
    assert.equal(provider.authorizationUrls.length, 1, 'the SDK redirected more than once');
    const authUrl = provider.authorizationUrls[0];
    assert.equal(`${authUrl.origin}${authUrl.pathname}`, `${issuer}/oauth/authorize`);
    const q = authUrl.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), info.client_id);
    assert.equal(q.get('redirect_uri'), cb.redirectUri);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get('scope'), MCP_SCOPE);
    assert.equal(q.get('resource'), mcpUrl);

    const code = await provider.nextCode();
    await sdk('finishAuth (the code exchange)', rec.log, () => first.transport.finishAuth(code));
    const exchange = rec.log.at(-1);
    assert.deepEqual(
      [exchange.method, exchange.url, exchange.grantType, exchange.resource, exchange.status],
      ['POST', `${issuer}/oauth/token`, 'authorization_code', mcpUrl, 200],
    );
    const tokens = provider.tokens();
    assert.equal(typeof tokens?.access_token, 'string', `tokens: ${JSON.stringify(tokens)}`);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.issuer, issuer);
    const claims = jwtClaims(tokens.access_token);
    assert.equal(claims.iss, issuer);
    assert.deepEqual([claims.aud].flat(), [mcpUrl]);
    assert.equal(claims.client_id, info.client_id);

    const second = newClient(provider, rec.fetchFn);
    const before = rec.log.length;
    await sdk('connect with the new tokens', rec.log, () => second.client.connect(second.transport));
    const init = rec.log[before];
    assert.deepEqual([init.rpc, init.auth, init.status], ['initialize', 'Bearer', 200]);
    assert.equal(second.client.getServerVersion()?.name, 'gatehouse-demo-mcp');
    assert.equal(provider.authorizationUrls.length, 1, 'the SDK started a second authorization');
    return { client: second.client, transport: second.transport, info, tokens, code };
  }

  async function expectWhoami(client, log, info) {
    const { tools } = await sdk('tools/list', log, () => client.listTools());
    assert.ok(tools.some((t) => t.name === 'whoami'), `tools: ${JSON.stringify(tools)}`);
    const result = await sdk('tools/call whoami', log, () => client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(result.isError, false, `whoami: ${JSON.stringify(result)}`);
    const text = result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    assert.ok(text.includes(info.client_id), `whoami does not name the client ${info.client_id}: ${text}`);
    assert.match(text, /mcp:execute/, `whoami: ${text}`);
    return text;
  }

  /** A BrowserOAuthProvider in this suite's testbed for a client registered with `clientMetadata`. */
  function newProvider(clientMetadata) {
    return new BrowserOAuthProvider({ bed, issuer, clientMetadata });
  }

  describe('public client (none)', () => {
    const rec = recordingFetch();
    let provider;
    let connected;

    test('connect → 401 → discovery, registration, browser approval; finishAuth; a new client connects', async () => {
      provider = newProvider({
        client_name: `MCP SDK public ${randomBytes(4).toString('base64url')}`,
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
      });
      connected = await authorizeAndConnect(provider, rec);
      assert.equal(connected.info.client_secret, undefined, `a public client got a client_secret: ${JSON.stringify(connected.info)}`);
      assert.equal(connected.tokens.refresh_token, undefined, `a public client got a refresh_token: ${JSON.stringify(connected.tokens)}`);
      const exchange = rec.log.find((x) => x.grantType === 'authorization_code');
      assert.equal(exchange.auth, undefined, 'a public client sent client authentication');
    });

    test('tools/list has whoami; tools/call whoami names the client', async () => {
      assert.ok(connected, 'needs the connected client of the previous step');
      await expectWhoami(connected.client, rec.log, connected.info);
      assert.deepEqual(provider.invalidated, []);
    });
  });

  describe('confidential client (client_secret_basic, refresh_token grant)', () => {
    const rec = recordingFetch();
    let provider;
    let connected;

    test('connect → 401 → discovery, registration, browser approval in a fresh context; finishAuth; a new client connects', async () => {
      provider = newProvider({
        client_name: `MCP SDK confidential ${randomBytes(4).toString('base64url')}`,
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      connected = await authorizeAndConnect(provider, rec);
      assert.equal(typeof connected.info.client_secret, 'string', `a confidential client got no client_secret: ${JSON.stringify(connected.info)}`);
      const exchange = rec.log.find((x) => x.grantType === 'authorization_code');
      assert.equal(exchange.auth, 'Basic', 'the SDK did not use client_secret_basic');
      assert.equal(
        typeof connected.tokens.refresh_token,
        'string',
        `no refresh_token for a confidential client registered with the refresh_token grant (the SDK registered and ` +
          `authorized with the challenge's scope "${MCP_SCOPE}", which has no offline_access): tokens ${JSON.stringify({ ...connected.tokens, access_token: '…' })}, registration ${JSON.stringify({ ...connected.info, client_secret: '…' })}`,
      );
    });

    test('tools/list and tools/call whoami', async () => {
      assert.ok(connected, 'needs the connected client of the previous step');
      await expectWhoami(connected.client, rec.log, connected.info);
    });

    test('an invalid access token: the transport gets 401 invalid_token, refreshes, and tools/list works with a new token', async () => {
      assert.ok(connected?.tokens.refresh_token, 'needs the refresh token of the first step');
      const old = provider.tokens();
      provider._tokens = { ...old, access_token: `${old.access_token.slice(0, -4)}AAAA` };
      const before = rec.log.length;
      const { tools } = await sdk('tools/list after the access token went bad', rec.log, () => connected.client.listTools());
      assert.ok(tools.some((t) => t.name === 'whoami'));

      const exchanges = rec.log.slice(before);
      const [rejected] = exchanges;
      assert.deepEqual([rejected.rpc, rejected.status], ['tools/list', 401], JSON.stringify(exchanges));
      assert.match(rejected.wwwAuthenticate ?? '', /error="invalid_token"/);
      const refresh = exchanges.find((x) => x.grantType === 'refresh_token');
      assert.ok(refresh, `the SDK did not refresh: ${JSON.stringify(exchanges)}`);
      assert.deepEqual([refresh.url, refresh.auth, refresh.resource, refresh.status], [`${issuer}/oauth/token`, 'Basic', mcpUrl, 200]);
      assert.deepEqual([exchanges.at(-1).rpc, exchanges.at(-1).status], ['tools/list', 200]);

      const now = provider.tokens();
      assert.notEqual(now.access_token, old.access_token, 'the access token did not change');
      assert.notEqual(now.access_token, `${old.access_token.slice(0, -4)}AAAA`, 'the transport kept the bad access token');
      assert.equal(typeof now.refresh_token, 'string');
      assert.notEqual(now.refresh_token, old.refresh_token, 'the refresh token did not rotate');
      assert.equal(now.issuer, issuer);
      const [a, b] = [jwtClaims(old.access_token), jwtClaims(now.access_token)];
      assert.equal(b.sid, a.sid, 'the refreshed token belongs to another grant');
      assert.equal(b.client_id, connected.info.client_id);
      assert.equal(provider.authorizationUrls.length, 1, 'the SDK sent the user to the browser again instead of refreshing');
      assert.deepEqual(provider.invalidated, []);
    });

    test("the SDK's auth() refreshes with the stored refresh token; tools/call works with the new token", async () => {
      const old = provider.tokens();
      assert.ok(old?.refresh_token, 'needs the tokens of the previous step');
      const result = await sdk('auth() with a refresh token', rec.log, () =>
        auth(provider, { serverUrl: new URL(mcpUrl), fetchFn: rec.fetchFn }),
      );
      assert.equal(result, 'AUTHORIZED');
      const refresh = rec.log.at(-1);
      assert.deepEqual([refresh.grantType, refresh.auth, refresh.status], ['refresh_token', 'Basic', 200]);
      const now = provider.tokens();
      assert.notEqual(now.access_token, old.access_token, 'the access token did not change');
      assert.notEqual(now.refresh_token, old.refresh_token, 'the refresh token did not rotate');

      const before = rec.log.length;
      const text = await expectWhoami(connected.client, rec.log, connected.info);
      assert.ok(rec.log.slice(before).every((x) => x.status === 200), JSON.stringify(rec.log.slice(before)));
      assert.ok(text.includes(jwtClaims(now.access_token).sub), `whoami does not name the subject: ${text}`);
      assert.equal(provider.authorizationUrls.length, 1);
    });
  });
});
