// End to end with an OpenID Connect relying party: openid-client (pinned in package.json) drives
// OpenID Connect Discovery, the code flow with PKCE and nonce, ID token validation, UserInfo and
// refresh, and headless Chromium plays the people (the administrator approves each new client,
// the user signs in and consents).
//
// Run: tests/browser/run.sh. The suite first turns OpenID Connect on for the demo tenant through
// the admin API (`openid_enabled`), then runs four scenarios, each a chain of steps that build
// on each other:
//   1. a confidential client (client_secret_basic, RS256 ID tokens): code + nonce, ID token,
//      UserInfo (and its 401), refresh without a new ID token;
//   2. prompt=none: login_required without a session, a code without any page once consented,
//      a token without `openid` refused by UserInfo (403), consent_required for a client the
//      user never consented to;
//   3. a public client (none) registered with id_token_signed_response_alg ES256;
//   4. prompt=login and max_age=0 (with login_hint) show the sign-in page again to a signed-in
//      user, and the new auth_time says so; prompt=consent shows the consent page again.
// Nothing here works around the library: when it rejects what Gatehouse answers, the test fails
// with the library's error (class, code, message, cause).
//
// openid-client refuses plain-http endpoints unless the configuration is given
// `allowInsecureRequests`; the local server is http://127.0.0.1, so every configuration is.
// Every configuration also runs `enableNonRepudiationChecks`: the library then verifies the ID
// token's signature against the JWKS (in the code flow it otherwise relies on TLS, Core
// §3.1.3.7), and the test verifies it once more by hand with WebCrypto.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import * as client from 'openid-client';
import { ADMIN, SUITE_TIMEOUT_MS, USER, browserTestbed, consoleSignIn, decideAndLand, decodeJwtPart, jwtClaims, signIn } from './support.mjs';

const OPENID_SCOPES = ['openid', 'profile', 'email'];

// ------------------------------------------------------------------ helpers

function safeJson(v) {
  try {
    return JSON.stringify(v, (_k, x) =>
      x instanceof Headers ? Object.fromEntries(x) : x instanceof URLSearchParams ? x.toString() : x instanceof Response ? `Response ${x.status} ${x.url}` : x,
    );
  } catch {
    return String(v);
  }
}

/** A library error with its class, code, message and cause (response body, claims, …) for a failure message. */
function describeError(e) {
  const parts = [`${e?.name ?? e?.constructor?.name}${e?.code ? ` [${e.code}]` : ''}: ${e?.message ?? e}`];
  if (e instanceof client.AuthorizationResponseError) parts.push(`error ${e.error}, description ${e.error_description}, parameters ${e.cause}`);
  else if (e instanceof client.ResponseBodyError) parts.push(`status ${e.status}, body ${safeJson(e.cause)}`);
  else if (e instanceof client.WWWAuthenticateChallengeError) parts.push(`status ${e.status}, challenges ${safeJson(e.cause)}`);
  else if (e?.cause !== undefined) {
    const c = e.cause;
    parts.push(`cause ${c instanceof Error ? `${c.name} [${c.code}]: ${c.message} ${safeJson(c.cause)}` : safeJson(c)}`);
  }
  return parts.join('; ');
}

/** The HTTP exchanges of the library (method, URL, status), recorded by its customFetch. */
const httpLog = [];
async function recordingFetch(url, options) {
  const entry = { method: options.method, url };
  httpLog.push(entry);
  const resp = await fetch(url, options);
  entry.status = resp.status;
  if (resp.status >= 400) entry.body = await resp.clone().text().catch(() => '<unreadable>');
  return resp;
}
const recentExchanges = () => httpLog.slice(-6).map((x) => `  ${safeJson(x)}`).join('\n');

/** Runs a library step; a rejection becomes an assertion failure naming the step, the library's error and the exchanges. */
async function lib(step, fn) {
  try {
    return await fn();
  } catch (e) {
    assert.fail(`openid-client rejected ${step}: ${describeError(e)}\nHTTP exchanges (last 6):\n${recentExchanges()}`);
  }
}

/** Runs a library step that must fail with `Class`; returns the error (the step's result in the message otherwise). */
async function libRejects(step, Class, fn) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    assert.ok(e instanceof Class, `${step}: expected a ${Class.name}, got ${describeError(e)}`);
    return e;
  }
  assert.fail(`${step}: openid-client accepted it: ${safeJson(result)}`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Core §3.1.3.6: the left half of SHA-256 of the access token, base64url (RS256 and ES256 alike). */
function atHash(accessToken) {
  return b64url(createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16));
}

const WEBCRYPTO_ALG = {
  RS256: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verify: { name: 'RSASSA-PKCS1-v1_5' }, kty: 'RSA' },
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' }, kty: 'EC' },
};

/**
 * Checks an ID token by hand, beyond what the library did: header `typ: JWT`, the expected
 * `alg`, a `kid` of the published JWKS (a public key of the right type), a signature that
 * verifies with WebCrypto (and fails on tampered claims), and Core §2 claims. Returns the
 * header and claims.
 */
async function checkIdToken(idToken, { jwksUri, issuer, clientId, alg, nonce, accessToken, email, startedAt }) {
  assert.equal(typeof idToken, 'string', 'no id_token in the token response');
  const parts = idToken.split('.');
  assert.equal(parts.length, 3, 'the ID token is not a compact JWS');
  const [h, p, s] = parts;
  const header = decodeJwtPart(h);
  const claims = decodeJwtPart(p);
  assert.equal(header.alg, alg, `ID token header alg: ${safeJson(header)}`);
  assert.equal(header.typ, 'JWT', `ID token header typ: ${safeJson(header)}`);
  assert.equal(typeof header.kid, 'string', `ID token header kid: ${safeJson(header)}`);

  const jwksResp = await fetch(jwksUri);
  assert.equal(jwksResp.status, 200);
  const jwks = await jwksResp.json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is not in the JWKS: ${safeJson(jwks)}`);
  assert.equal(jwk.kty, WEBCRYPTO_ALG[alg].kty, `the JWKS key of kid ${header.kid}: ${safeJson(jwk)}`);
  assert.equal(jwk.d, undefined, 'the JWKS publishes a private key');
  if (jwk.alg !== undefined) assert.equal(jwk.alg, alg, `the JWKS key's alg: ${safeJson(jwk)}`);
  const key = await webcrypto.subtle.importKey('jwk', jwk, WEBCRYPTO_ALG[alg].import, false, ['verify']);
  const signature = Buffer.from(s, 'base64url');
  const verify = (signed) => webcrypto.subtle.verify(WEBCRYPTO_ALG[alg].verify, key, signature, Buffer.from(signed, 'ascii'));
  assert.equal(await verify(`${h}.${p}`), true, 'the ID token signature does not verify with the JWKS key');
  // Negative control: the same key rejects the token with its claims changed.
  assert.equal(await verify(`${h}.${b64url(JSON.stringify({ ...claims, sub: 'someone-else' }))}`), false, 'a tampered ID token verifies');

  const t = now();
  assert.equal(claims.iss, issuer);
  assert.deepEqual([claims.aud].flat(), [clientId], `aud: ${safeJson(claims.aud)}`);
  if (Array.isArray(claims.aud) || claims.azp !== undefined) assert.equal(claims.azp, clientId);
  assert.ok(typeof claims.sub === 'string' && claims.sub.length > 0, `sub: ${safeJson(claims.sub)}`);
  assert.ok(Number.isInteger(claims.iat) && claims.iat <= t + 5 && claims.iat >= startedAt - 5, `iat ${claims.iat}, now ${t}, request started ${startedAt}`);
  assert.ok(Number.isInteger(claims.exp) && claims.exp > t, `exp ${claims.exp} is not after now ${t}`);
  assert.ok(Number.isInteger(claims.auth_time) && claims.auth_time <= t + 5, `auth_time ${claims.auth_time}, now ${t}`);
  assert.ok(claims.auth_time <= claims.iat, `auth_time ${claims.auth_time} is after iat ${claims.iat}`);
  if (nonce === undefined) assert.equal(claims.nonce, undefined, `nonce without one sent: ${claims.nonce}`);
  else assert.equal(claims.nonce, nonce);
  assert.equal(claims.at_hash, atHash(accessToken), 'at_hash does not match the access token (Core §3.1.3.6)');
  assert.deepEqual(claims.amr, ['pwd'], `amr: ${safeJson(claims.amr)}`);
  assert.equal(claims.email, email);
  assert.equal(typeof claims.email_verified, 'boolean', `email_verified: ${safeJson(claims.email_verified)}`);
  return { header, claims };
}

/** Waits for `locator`; a failure names `what` and shows where the browser is and what it shows. */
async function expectShown(page, locator, what) {
  try {
    await locator.waitFor();
  } catch {
    const body = await page.locator('body').innerText().catch((e) => `<unreadable: ${e}>`);
    assert.fail(`${what}; the browser is at ${page.url()} showing: ${body.slice(0, 600)}`);
  }
}

/**
 * Follows `url` in `page` and asserts that the browser reached the callback without any page on
 * the way: every response before the callback's was a redirect. Returns the callback URL as the
 * client's server received it.
 */
async function landWithoutAPage(page, url, cb, state) {
  const resp = await page.goto(url);
  assert.ok(
    page.url().startsWith(cb.redirectUri),
    `expected to land on the callback without a page, got ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 400)}`,
  );
  const chain = [];
  for (let r = resp.request().redirectedFrom(); r; r = r.redirectedFrom()) chain.unshift(r);
  assert.ok(chain.length >= 1, 'the callback was not reached by a redirect');
  assert.equal(chain[0].url(), url, 'the chain does not start at the authorization request');
  for (const r of chain) {
    const status = (await r.response())?.status();
    assert.ok(status >= 300 && status < 400, `${r.url()} answered ${status}, not a redirect`);
  }
  assert.equal(await page.locator('body').innerText(), 'done');
  return cb.callbackUrlFor(state);
}

// ------------------------------------------------------------------ the suite

// The whole suite runs twice: against `gatehouse serve`, and through the Lambda path (the real
// function binaries behind tests/lambda_gateway.py, a local API Gateway built from the SAM
// template, over DynamoDB: moto, from GATEHOUSE_TEST_DYNAMODB_ENDPOINT).
for (const path of ['serve', 'lambda']) {
describe(`openid-client against Gatehouse (OpenID Connect, through ${path}), with Chromium for the people`, { timeout: SUITE_TIMEOUT_MS }, () => {
  const bed = browserTestbed(undefined, {}, { lambda: path === 'lambda' });
  let gh;
  let cb;
  let issuer;
  let adminToken;
  /** The user's browser page (signed in during scenario 1, consented to its client). */
  let userPage;
  /** The ID token claims the user got in scenario 1. */
  let userClaims;
  /** Scenario 1's confidential client: its registration and openid-client Configuration. */
  let reg;
  let config;
  /** Where each Configuration's own HTTP exchanges start in httpLog. */
  const configStart = new WeakMap();

  before(async () => {
    ({ gh, cb } = await bed.start());
    issuer = `${gh.base}/t/demo`;
  });

  after(() => bed.stop());

  /** One admin API request with the admin bearer token; resolves to { status, body }. */
  async function adminApi(method, path, body) {
    assert.ok(adminToken, 'needs the admin API token of the first step');
    const resp = await fetch(`${issuer}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await resp.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: resp.status, body: parsed };
  }

  async function openidConfiguration() {
    const resp = await fetch(`${issuer}/.well-known/openid-configuration`);
    assert.equal(resp.status, 200, `GET ${issuer}/.well-known/openid-configuration answered ${resp.status}`);
    assert.match(resp.headers.get('content-type') ?? '', /^application\/json\b/);
    return resp.json();
  }

  /** RFC 7591 registration at `{issuer}/oauth/register` (a plain POST); the 201 body. */
  async function register(metadata) {
    const resp = await fetch(`${issuer}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [cb.redirectUri], ...metadata }),
    });
    const body = await resp.json().catch(() => undefined);
    assert.equal(resp.status, 201, `registration failed: ${resp.status} ${safeJson(body)}`);
    assert.equal(typeof body.client_id, 'string');
    assert.deepEqual(body.redirect_uris, [cb.redirectUri]);
    return body;
  }

  /**
   * openid-client's Discovery (`{issuer}/.well-known/openid-configuration`, checked in the
   * log) into a Configuration for `clientId`.
   */
  async function discover(clientId, metadata, auth) {
    const from = httpLog.length;
    const config = await lib('discovery', () =>
      client.discovery(new URL(issuer), clientId, metadata, auth, {
        execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
        [client.customFetch]: recordingFetch,
      }),
    );
    assert.deepEqual(
      httpLog.slice(from).map((x) => [x.method, x.url, x.status]),
      [['GET', `${issuer}/.well-known/openid-configuration`, 200]],
      'discovery did not read the OpenID Connect Discovery document',
    );
    assert.equal(config.serverMetadata().issuer, issuer);
    assert.equal(config.serverMetadata().supportsPKCE(), true);
    configStart.set(config, httpLog.length);
    return config;
  }

  /** A fresh authorization request built by openid-client: PKCE S256, state, nonce (unless `nonce: false`). */
  async function authRequest(config, { scope, nonce = true, ...extra }) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const params = {
      redirect_uri: cb.redirectUri,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      ...extra,
    };
    const expectedNonce = nonce ? client.randomNonce() : undefined;
    if (expectedNonce) params.nonce = expectedNonce;
    const url = client.buildAuthorizationUrl(config, params);
    assert.equal(`${url.origin}${url.pathname}`, `${issuer}/oauth/authorize`);
    assert.equal(url.searchParams.get('response_type'), 'code');
    return { url: url.href, pkceCodeVerifier, state, expectedNonce, startedAt: now() };
  }

  /** authorizationCodeGrant on the callback URL the client's server received for `req`. */
  /** checkIdToken on a token response to `req` made with `config` (its JWKS, this issuer). */
  function checkResponse(config, req, tokens, { clientId, email, alg = 'RS256' }) {
    return checkIdToken(tokens.id_token, {
      jwksUri: config.serverMetadata().jwks_uri,
      issuer,
      clientId,
      alg,
      nonce: req.expectedNonce,
      accessToken: tokens.access_token,
      email,
      startedAt: req.startedAt,
    });
  }

  async function exchange(config, req, checks = {}) {
    const callbackUrl = cb.callbackUrlFor(req.state);
    assert.equal(callbackUrl.searchParams.get('iss'), issuer, 'the authorization response carries no iss (RFC 9207)');
    assert.equal(callbackUrl.searchParams.get('error'), null, `an error reached the callback: ${callbackUrl.search}`);
    return lib('the authorization code grant (authorizationCodeGrant)', () =>
      client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: req.pkceCodeVerifier,
        expectedState: req.state,
        ...(req.expectedNonce ? { expectedNonce: req.expectedNonce } : {}),
        ...checks,
      }),
    );
  }

  /** That openid-client fetched the JWKS for `config` (it checked the ID token signature itself). */
  function assertLibraryFetchedJwks(config) {
    const jwksUri = config.serverMetadata().jwks_uri;
    assert.ok(
      httpLog.slice(configStart.get(config)).some((x) => x.method === 'GET' && x.url === jwksUri && x.status === 200),
      `openid-client never fetched ${jwksUri}: it did not verify the ID token signature`,
    );
  }

  test('setup: the Discovery document with OpenID Connect off, then on (openid_enabled through the admin API)', async () => {
    // An admin API token, minted from an administrator's console session.
    const { page } = await bed.freshPage();
    const { posted } = await consoleSignIn(page, issuer, ADMIN);
    assert.equal(posted.status(), 303, 'the administrator could not sign in to the console');
    const session = await page.request.get(`${issuer}/api/v1/session`);
    assert.equal(session.status(), 200, await session.text());
    const { csrf_token: csrf } = await session.json();
    const minted = await page.request.post(`${issuer}/api/v1/tokens`, {
      headers: { 'x-csrf-token': csrf },
      data: { name: `openid-client test ${b64url(randomBytes(4))}` },
    });
    assert.equal(minted.status(), 201, await minted.text());
    adminToken = (await minted.json()).token;
    assert.equal(typeof adminToken, 'string');

    // Off by default, and the Discovery document is published anyway (without the OpenID scopes).
    const before = await adminApi('GET', '/settings');
    assert.equal(before.status, 200, safeJson(before));
    assert.equal(before.body.openid_enabled, false, `openid_enabled is not off by default: ${safeJson(before.body)}`);
    const off = await openidConfiguration();
    assert.equal(off.issuer, issuer);
    for (const s of OPENID_SCOPES) assert.ok(!off.scopes_supported.includes(s), `scopes_supported lists ${s} while off: ${off.scopes_supported}`);

    const patched = await adminApi('PATCH', '/settings', { openid_enabled: true });
    assert.equal(patched.status, 200, safeJson(patched));
    assert.equal(patched.body.openid_enabled, true, safeJson(patched.body));
    assert.equal((await adminApi('GET', '/settings')).body.openid_enabled, true);

    // Each process keeps the tenant it read for up to 10 s (TENANT_CACHE_TTL_SECS in
    // shared/src/defaults.rs): `serve` is one process, but on the Lambda path the discovery
    // function read the tenant above, before the admin function changed it. Wait for it; every
    // other function's copy (none older than the discovery function's) has turned over then.
    let doc = await openidConfiguration();
    for (let waited = 0; !doc.scopes_supported.includes('openid') && waited < 15_000; waited += 500) {
      await new Promise((r) => setTimeout(r, 500));
      doc = await openidConfiguration();
    }
    assert.equal(doc.issuer, issuer);
    assert.equal(doc.authorization_endpoint, `${issuer}/oauth/authorize`);
    assert.equal(doc.token_endpoint, `${issuer}/oauth/token`);
    assert.equal(doc.userinfo_endpoint, `${issuer}/oauth/userinfo`);
    assert.equal(doc.registration_endpoint, `${issuer}/oauth/register`);
    assert.ok(doc.jwks_uri?.startsWith(`${issuer}/`), `jwks_uri: ${doc.jwks_uri}`);
    for (const s of [...OPENID_SCOPES, 'offline_access']) assert.ok(doc.scopes_supported.includes(s), `scopes_supported lacks ${s}: ${doc.scopes_supported}`);
    assert.deepEqual(doc.response_types_supported, ['code']);
    assert.deepEqual(doc.subject_types_supported, ['public']);
    assert.deepEqual([...doc.id_token_signing_alg_values_supported].sort(), ['ES256', 'RS256']);
    assert.deepEqual(doc.code_challenge_methods_supported, ['S256']);
    for (const c of ['sub', 'email', 'email_verified', 'auth_time', 'nonce']) assert.ok(doc.claims_supported?.includes(c), `claims_supported lacks ${c}: ${doc.claims_supported}`);
    for (const v of ['none', 'login', 'consent', 'select_account']) assert.ok(doc.prompt_values_supported?.includes(v), `prompt_values_supported lacks ${v}: ${doc.prompt_values_supported}`);
    // The RFC 8414 document says the same about what both describe.
    const rfc8414 = await (await fetch(`${gh.base}/.well-known/oauth-authorization-server/t/demo`)).json();
    for (const k of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'registration_endpoint', 'scopes_supported', 'code_challenge_methods_supported']) {
      assert.deepEqual(doc[k], rfc8414[k], `${k} differs between the OpenID and RFC 8414 documents`);
    }
  });

  describe('1. confidential client (client_secret_basic), RS256 ID tokens', () => {
    let userTokens;

    test('registration without scope gets the OpenID scopes; openid-client discovers the configuration', async () => {
      assert.ok(adminToken, 'needs OpenID Connect on (the setup step)');
      reg = await register({
        client_name: `openid-client confidential ${b64url(randomBytes(4))}`,
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      assert.equal(typeof reg.client_secret, 'string', 'a confidential client got no client_secret');
      for (const s of [...OPENID_SCOPES, 'offline_access']) assert.match(reg.scope ?? '', new RegExp(`(^| )${s}( |$)`), `registered scope lacks ${s}: ${reg.scope}`);
      if (reg.id_token_signed_response_alg !== undefined) assert.equal(reg.id_token_signed_response_alg, 'RS256');
      config = await discover(reg.client_id, { token_endpoint_auth_method: 'client_secret_basic' }, client.ClientSecretBasic(reg.client_secret));
      assert.equal(config.serverMetadata().userinfo_endpoint, `${issuer}/oauth/userinfo`);
    });

    test('the administrator approves in Chromium; the code becomes an ID token for the administrator', async () => {
      assert.ok(config, 'needs the configuration of the previous step');
      const req = await authRequest(config, { scope: 'openid email' });
      await bed.approveAsAdmin(req.url);
      const tokens = await exchange(config, req);
      assertLibraryFetchedJwks(config);
      assert.equal(tokens.token_type, 'bearer');
      const { claims } = await checkResponse(config, req, tokens, { clientId: reg.client_id, email: ADMIN.email });
      assert.deepEqual(tokens.claims(), claims, 'the library validated other claims than the ID token carries');
      assert.ok(claims.auth_time >= req.startedAt, `the administrator signed in during this request, yet auth_time ${claims.auth_time} < ${req.startedAt}`);
    });

    test('the user signs in (second browser context) and consents; authorizationCodeGrant validates the ID token', async () => {
      assert.ok(config, 'needs the configuration of the first step');
      const req = await authRequest(config, { scope: 'openid profile email offline_access' });
      const { page, dialogs } = await bed.freshPage();
      await page.goto(req.url);
      await signIn(page, USER);
      await expectShown(page, page.getByRole('button', { name: 'Approve', exact: true }), "expected the user's consent page");
      assert.equal(await page.getByRole('button', { name: 'Deny', exact: true }).count(), 1);
      assert.equal(await page.getByText('New, unverified application').count(), 0, 'the approved client is still shown as unverified');
      await decideAndLand(page, 'Approve', cb.redirectUri);
      assert.deepEqual(dialogs, []);
      userPage = page;

      userTokens = await exchange(config, req);
      assertLibraryFetchedJwks(config);
      const granted = (userTokens.scope ?? '').split(' ');
      for (const s of ['openid', 'email', 'offline_access']) assert.ok(granted.includes(s), `granted scope lacks ${s}: ${userTokens.scope}`);
      assert.equal(typeof userTokens.refresh_token, 'string', `no refresh_token: ${safeJson(userTokens)}`);
      const { header, claims } = await checkResponse(config, req, userTokens, { clientId: reg.client_id, email: USER.email });
      assert.equal(header.alg, 'RS256');
      const libClaims = userTokens.claims();
      assert.ok(libClaims, 'openid-client has no ID token claims');
      assert.equal(libClaims.sub, claims.sub);
      assert.equal(libClaims.email, USER.email);
      assert.equal(libClaims.nonce, req.expectedNonce);
      assert.equal(typeof libClaims.auth_time, 'number');
      assert.ok(libClaims.auth_time >= req.startedAt, `the user signed in during this request, yet auth_time ${libClaims.auth_time} < ${req.startedAt}`);
      // The access token is still the RFC 9068 JWT, about the same person.
      assert.ok(jwtClaims(userTokens.access_token).scope.split(' ').includes('openid'));
      userClaims = libClaims;
    });

    test('UserInfo (fetchUserInfo): sub, email, email_verified; a bad token gets 401 invalid_token', async () => {
      assert.ok(userTokens, 'needs the tokens of the previous step');
      const info = await lib('the UserInfo response (fetchUserInfo)', () => client.fetchUserInfo(config, userTokens.access_token, userClaims.sub));
      assert.equal(info.sub, userClaims.sub);
      assert.equal(info.email, USER.email);
      assert.equal(info.email_verified, userClaims.email_verified);

      const e = await libRejects('UserInfo with a bad token', client.WWWAuthenticateChallengeError, () =>
        client.fetchUserInfo(config, 'not-a-gatehouse-access-token', client.skipSubjectCheck),
      );
      assert.equal(e.status, 401, describeError(e));
      const bearer = e.cause.find((c) => c.scheme === 'bearer');
      assert.ok(bearer, `no Bearer challenge: ${describeError(e)}`);
      assert.equal(bearer.parameters.error, 'invalid_token', describeError(e));
    });

    test('refreshTokenGrant: a new access token that UserInfo accepts, and no ID token', async () => {
      assert.ok(userTokens?.refresh_token, 'needs the refresh token of the code exchange');
      const refreshed = await lib('the refresh token grant (refreshTokenGrant)', () => client.refreshTokenGrant(config, userTokens.refresh_token));
      assert.equal(refreshed.token_type, 'bearer');
      assert.notEqual(refreshed.access_token, userTokens.access_token);
      assert.equal(refreshed.id_token, undefined, `a refresh returned an id_token: ${safeJson(refreshed)}`);
      assert.equal(refreshed.claims(), undefined);
      const info = await lib('UserInfo with the refreshed access token', () => client.fetchUserInfo(config, refreshed.access_token, userClaims.sub));
      assert.equal(info.email, USER.email);
    });
  });

  describe('2. prompt=none', () => {
    test('without a session: error=login_required (with state and iss) at the callback, no page', async () => {
      assert.ok(config, 'needs the configuration of scenario 1');
      const req = await authRequest(config, { scope: 'openid email', prompt: 'none' });
      const { page, dialogs } = await bed.freshPage();
      const callbackUrl = await landWithoutAPage(page, req.url, cb, req.state);
      assert.equal(callbackUrl.searchParams.get('error'), 'login_required', callbackUrl.search);
      assert.equal(callbackUrl.searchParams.get('state'), req.state);
      assert.equal(callbackUrl.searchParams.get('iss'), issuer);
      assert.equal(callbackUrl.searchParams.get('code'), null);
      const e = await libRejects('the login_required response', client.AuthorizationResponseError, () =>
        client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: req.pkceCodeVerifier, expectedState: req.state, expectedNonce: req.expectedNonce }),
      );
      assert.equal(e.error, 'login_required', describeError(e));
      assert.deepEqual(dialogs, []);
    });

    test('signed in and consented: a code without any page, and an ID token for the same sign-in', async () => {
      assert.ok(userPage && userClaims, 'needs the user of scenario 1');
      const req = await authRequest(config, { scope: 'openid email', prompt: 'none' });
      const callbackUrl = await landWithoutAPage(userPage, req.url, cb, req.state);
      assert.match(callbackUrl.searchParams.get('code') ?? '', /^[A-Za-z0-9_-]{43}$/, callbackUrl.search);
      const tokens = await exchange(config, req);
      const claims = tokens.claims();
      assert.ok(claims, 'no ID token');
      assert.equal(claims.sub, userClaims.sub);
      assert.equal(claims.email, USER.email);
      assert.equal(claims.nonce, req.expectedNonce);
      assert.equal(claims.auth_time, userClaims.auth_time, 'the session did not carry its sign-in time');
      await checkResponse(config, req, tokens, { clientId: reg.client_id, email: USER.email });
    });

    test('a code without openid: no ID token, and UserInfo answers 403 insufficient_scope', async () => {
      assert.ok(userPage, 'needs the user of scenario 1');
      // Within what the user consented to in scenario 1 (consent is per scope), but not openid.
      const req = await authRequest(config, { scope: 'email', prompt: 'none', nonce: false });
      await landWithoutAPage(userPage, req.url, cb, req.state);
      const tokens = await exchange(config, req);
      assert.equal(tokens.id_token, undefined, `an id_token without the openid scope: ${safeJson(tokens)}`);
      assert.ok(!jwtClaims(tokens.access_token).scope.split(' ').includes('openid'));
      const e = await libRejects('UserInfo with a token without openid', client.WWWAuthenticateChallengeError, () =>
        client.fetchUserInfo(config, tokens.access_token, userClaims.sub),
      );
      assert.equal(e.status, 403, describeError(e));
      assert.equal(e.cause.find((c) => c.scheme === 'bearer')?.parameters.error, 'insufficient_scope', describeError(e));
    });

    test('signed in, but a client the user never consented to: error=consent_required', async () => {
      assert.ok(userPage, 'needs the user of scenario 1');
      const other = await register({ client_name: `openid-client unconsented ${b64url(randomBytes(4))}`, token_endpoint_auth_method: 'none' });
      const otherConfig = await discover(other.client_id, { token_endpoint_auth_method: 'none' }, client.None());
      await bed.approveAsAdmin((await authRequest(otherConfig, { scope: 'openid email' })).url);

      const req = await authRequest(otherConfig, { scope: 'openid email', prompt: 'none' });
      const callbackUrl = await landWithoutAPage(userPage, req.url, cb, req.state);
      assert.equal(callbackUrl.searchParams.get('error'), 'consent_required', callbackUrl.search);
      assert.equal(callbackUrl.searchParams.get('code'), null);
      const e = await libRejects('the consent_required response', client.AuthorizationResponseError, () =>
        client.authorizationCodeGrant(otherConfig, callbackUrl, { pkceCodeVerifier: req.pkceCodeVerifier, expectedState: req.state, expectedNonce: req.expectedNonce }),
      );
      assert.equal(e.error, 'consent_required', describeError(e));
    });
  });

  describe('3. public client (none), ES256 ID tokens', () => {
    test('registration with id_token_signed_response_alg ES256; approval, consent; the ES256 ID token validates', async () => {
      assert.ok(adminToken, 'needs OpenID Connect on (the setup step)');
      assert.ok(userPage && userClaims, 'needs the signed-in user of scenario 1');
      const reg = await register({
        client_name: `openid-client public ES256 ${b64url(randomBytes(4))}`,
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
      });
      assert.equal(reg.client_secret, undefined, 'a public client got a client_secret');
      assert.equal(reg.id_token_signed_response_alg, 'ES256', `the registration response lacks the registered id_token_signed_response_alg: ${safeJson(reg)}`);
      for (const s of ['openid', 'email']) assert.match(reg.scope ?? '', new RegExp(`(^| )${s}( |$)`), `registered scope lacks ${s}: ${reg.scope}`);
      // The client's metadata tells the library to accept ES256 only.
      const config = await discover(reg.client_id, { token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'ES256' }, client.None());
      await bed.approveAsAdmin((await authRequest(config, { scope: 'openid email' })).url);

      const req = await authRequest(config, { scope: 'openid email' });
      await userPage.goto(req.url);
      await expectShown(userPage, userPage.getByRole('button', { name: 'Approve', exact: true }), "expected the user's consent page");
      await decideAndLand(userPage, 'Approve', cb.redirectUri);
      const tokens = await exchange(config, req);
      assertLibraryFetchedJwks(config);
      assert.equal(tokens.refresh_token, undefined, 'a public client got a refresh_token');
      const { header, claims } = await checkResponse(config, req, tokens, { clientId: reg.client_id, email: USER.email, alg: 'ES256' });
      assert.equal(header.alg, 'ES256');
      assert.equal(tokens.claims().sub, userClaims.sub, 'subject_types_supported is public: the same sub for every client');
      assert.equal(claims.email, USER.email);
      const info = await lib('UserInfo for the public client', () => client.fetchUserInfo(config, tokens.access_token, userClaims.sub));
      assert.equal(info.email, USER.email);
    });
  });

  describe('4. re-authentication of a signed-in user', () => {
    /** auth_time of the latest sign-in (max_age=0). */
    let lastAuthTime;
    /** Waits until the clock is past `t` (whole seconds), so that an old sign-in time is told apart. */
    async function pastSecond(t) {
      while (now() <= t) await new Promise((r) => setTimeout(r, 100));
    }

    test('prompt=login shows the sign-in page again; the new auth_time is from this request', async () => {
      assert.ok(userPage && userClaims, 'needs the user of scenario 1');
      await pastSecond(userClaims.auth_time);
      const req = await authRequest(config, { scope: 'openid email', prompt: 'login' });
      await userPage.goto(req.url);
      await expectShown(userPage, userPage.getByLabel('Email'), 'prompt=login did not show the sign-in page');
      assert.ok(userPage.url().startsWith(gh.base), `left Gatehouse: ${userPage.url()}`);
      assert.deepEqual(cb.hitsFor(req.state), [], 'the client heard before the user signed in again');
      await signIn(userPage, USER);
      assert.ok(userPage.url().startsWith(cb.redirectUri), `after signing in (consent on record): ${userPage.url()}`);
      const tokens = await exchange(config, req);
      const claims = tokens.claims();
      assert.equal(claims.sub, userClaims.sub);
      assert.ok(claims.auth_time >= req.startedAt, `auth_time ${claims.auth_time} is before the request (${req.startedAt}): the old sign-in was reused`);
      assert.ok(claims.auth_time > userClaims.auth_time, `auth_time ${claims.auth_time} is not after the first sign-in's ${userClaims.auth_time}`);
    });

    test('max_age=0 with login_hint: the sign-in page, its Email field prefilled; auth_time checked by the library', async () => {
      assert.ok(userPage && userClaims, 'needs the user of scenario 1');
      const hint = ADMIN.email; // another address than the signed-in user's: the prefill can only come from the hint
      const req = await authRequest(config, { scope: 'openid email', max_age: '0', login_hint: hint });
      await pastSecond(req.startedAt);
      await userPage.goto(req.url);
      await expectShown(userPage, userPage.getByLabel('Email'), 'max_age=0 did not show the sign-in page');
      assert.equal(await userPage.getByLabel('Email').inputValue(), hint, 'login_hint did not prefill the Email field');
      assert.deepEqual(cb.hitsFor(req.state), [], 'the client heard before the user signed in again');
      await signIn(userPage, USER);
      assert.ok(userPage.url().startsWith(cb.redirectUri), `after signing in (consent on record): ${userPage.url()}`);
      // maxAge: the library requires auth_time and checks it against max_age.
      const tokens = await exchange(config, req, { maxAge: 0 });
      const claims = tokens.claims();
      assert.equal(claims.sub, userClaims.sub);
      assert.equal(claims.email, USER.email);
      assert.ok(claims.auth_time > req.startedAt, `auth_time ${claims.auth_time} is not after the request started (${req.startedAt})`);
      lastAuthTime = claims.auth_time;
    });

    test('prompt=consent asks again although consent is on record, without a new sign-in', async () => {
      assert.ok(userPage && lastAuthTime, 'needs the sign-in of the previous step');
      const req = await authRequest(config, { scope: 'openid email', prompt: 'consent' });
      await userPage.goto(req.url);
      await expectShown(userPage, userPage.getByRole('button', { name: 'Approve', exact: true }), 'prompt=consent did not show the consent page');
      assert.equal(await userPage.getByLabel('Password').count(), 0, 'prompt=consent asked for a sign-in');
      assert.deepEqual(cb.hitsFor(req.state), [], 'the client heard before the user consented again');
      await decideAndLand(userPage, 'Approve', cb.redirectUri);
      const claims = (await exchange(config, req)).claims();
      assert.equal(claims.sub, userClaims.sub);
      assert.equal(claims.auth_time, lastAuthTime, 'the session of the previous sign-in was not the one used');
    });
  });
});
}
