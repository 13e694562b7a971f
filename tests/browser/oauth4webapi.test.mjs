// End to end with a spec-strict client: oauth4webapi (pinned in package.json) drives discovery,
// dynamic registration, the token, refresh, revocation and introspection endpoints, and headless
// Chromium plays the user (the administrator signs in and approves the new client).
//
// Run: tests/browser/run.sh. One scenario per client type, each a chain of steps that build on
// each other: a confidential client (client_secret_basic: code, JWT access token checked by hand
// and by the library, refresh with rotation, introspection, revocation) and a public client (none:
// asks for offline_access and must get neither it nor a refresh token). Nothing here works around
// the library: when it rejects what Gatehouse answers, the test fails with the library's error
// (code and message).
//
// oauth4webapi refuses plain-http endpoints unless each call carries its `allowInsecureRequests`
// option; the local server is http://127.0.0.1, so every call below does.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { SUITE_TIMEOUT_MS, browserTestbed, decodeJwtPart } from './support.mjs';

const INSECURE = { [oauth.allowInsecureRequests]: true };

// ------------------------------------------------------------------ helpers

/** A library error with its code, message and cause (a response body, claims, …) for a failure message. */
function describeError(e) {
  const parts = [`${e?.name}${e?.code ? ` [${e.code}]` : ''}: ${e?.message}`];
  if (e instanceof oauth.ResponseBodyError) parts.push(`status ${e.status}, body ${JSON.stringify(e.cause)}`);
  else if (e instanceof oauth.WWWAuthenticateChallengeError) parts.push(`status ${e.status}, challenges ${JSON.stringify(e.cause)}`);
  else if (e?.cause !== undefined) {
    const c = e.cause;
    parts.push(`cause ${c instanceof Response ? `Response ${c.status} ${c.url}` : safeJson(c)}`);
  }
  return parts.join('; ');
}

function safeJson(v) {
  try {
    return JSON.stringify(v, (_k, x) => (x instanceof Headers ? Object.fromEntries(x) : x instanceof URLSearchParams ? x.toString() : x));
  } catch {
    return String(v);
  }
}

/** Runs a library step; a rejection becomes an assertion failure naming the step and the library's error. */
async function lib(step, fn) {
  try {
    return await fn();
  } catch (e) {
    assert.fail(`oauth4webapi rejected ${step}: ${describeError(e)}`);
  }
}

/**
 * Verifies `token` as an RFC 9068 access token by hand: header typ at+jwt, ES256, a kid of the
 * JWKS, an ECDSA P-256 / SHA-256 signature (WebCrypto, the JWKS key imported as published), and
 * the claims. Returns the header and the claims.
 */
async function verifyAccessToken(token, { as, audience, clientId }) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'the access token is not a compact JWS');
  const [h, p, s] = parts;
  const header = decodeJwtPart(h);
  const claims = decodeJwtPart(p);
  assert.equal(header.typ, 'at+jwt', `header typ: ${JSON.stringify(header)}`);
  assert.equal(header.alg, 'ES256', `header alg: ${JSON.stringify(header)}`);
  assert.equal(typeof header.kid, 'string', `header kid: ${JSON.stringify(header)}`);

  const jwksResp = await fetch(as.jwks_uri);
  assert.equal(jwksResp.status, 200);
  const jwks = await jwksResp.json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is not in the JWKS: ${JSON.stringify(jwks)}`);
  assert.equal(jwk.d, undefined, 'the JWKS publishes a private key');
  const key = await webcrypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const signature = Buffer.from(s, 'base64url');
  assert.equal(signature.length, 64, 'an ES256 signature is 64 bytes (r || s)');
  const signed = Buffer.from(`${h}.${p}`, 'ascii');
  const algo = { name: 'ECDSA', hash: 'SHA-256' };
  assert.equal(await webcrypto.subtle.verify(algo, key, signature, signed), true, 'the signature does not verify');
  // Negative control: the same key rejects a token with its claims changed.
  const tampered = Buffer.from(`${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}`);
  assert.equal(await webcrypto.subtle.verify(algo, key, signature, tampered), false, 'a tampered token verifies');

  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.iss, as.issuer);
  assert.deepEqual([claims.aud].flat(), [audience], `aud: ${JSON.stringify(claims.aud)}`);
  assert.equal(claims.client_id, clientId);
  assert.equal(typeof claims.exp, 'number');
  assert.ok(claims.exp > now, `exp ${claims.exp} is not after now ${now}`);
  assert.ok(typeof claims.iat === 'number' && claims.iat <= now + 5, `iat: ${claims.iat}`);
  for (const c of ['sub', 'jti', 'sid', 'scope']) assert.equal(typeof claims[c], 'string', `claim ${c}: ${JSON.stringify(claims)}`);
  return { header, claims };
}

/** The library's own resource-server check (RFC 6750 + RFC 9068) of a bearer access token. */
async function libraryValidatesAccessToken(as, token, audience) {
  const request = new Request(`${as.issuer}/mcp`, { headers: { authorization: `Bearer ${token}` } });
  return lib('the access token (validateJwtAccessToken)', () =>
    oauth.validateJwtAccessToken(as, request, audience, { ...INSECURE, signingAlgorithms: ['ES256'] }),
  );
}

// ------------------------------------------------------------------ the suite

describe('oauth4webapi against Gatehouse, with Chromium for the user', { timeout: SUITE_TIMEOUT_MS }, () => {
  const bed = browserTestbed();
  let gh;
  let cb;
  let issuer;
  let audience;
  /** @type {oauth.AuthorizationServer} */
  let as;

  before(async () => {
    ({ gh, cb } = await bed.start());
    issuer = `${gh.base}/t/demo`;
    audience = `${issuer}/mcp`;
  });

  after(() => bed.stop());

  test('discovery: RFC 8414 metadata by path insertion, issuer byte for byte', async () => {
    const issuerUrl = new URL(issuer);
    const resp = await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...INSECURE });
    assert.equal(resp.url, `${gh.base}/.well-known/oauth-authorization-server/t/demo`);
    as = await lib('the discovery response', () => oauth.processDiscoveryResponse(issuerUrl, resp));
    assert.equal(as.issuer, issuer);
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    for (const ep of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint']) {
      assert.ok(as[ep]?.startsWith(`${issuer}/`), `${ep}: ${as[ep]}`);
    }
  });

  /**
   * Registers a client with oauth4webapi, runs the authorization request in a fresh browser
   * context (the admin signs in and approves the new client), checks the response with
   * validateAuthResponse and redeems the code. `authFor(registration)` gives the client
   * authentication, `scopeFor(registration)` the scope to request. Returns what later steps need.
   */
  async function registerAndAuthorize({ authMethod, clientName, authFor, scopeFor }) {
    assert.ok(as, 'needs the metadata of the discovery step');
    const reg = await lib('the registration response', async () =>
      oauth.processDynamicClientRegistrationResponse(
        await oauth.dynamicClientRegistrationRequest(
          as,
          {
            redirect_uris: [cb.redirectUri],
            grant_types: ['authorization_code', 'refresh_token'],
            token_endpoint_auth_method: authMethod,
            client_name: clientName,
          },
          INSECURE,
        ),
      ),
    );
    assert.equal(typeof reg.client_id, 'string');
    assert.equal(reg.client_name, clientName);
    assert.equal(reg.token_endpoint_auth_method, authMethod);
    assert.deepEqual(reg.redirect_uris, [cb.redirectUri]);
    /** @type {oauth.Client} */
    const client = { client_id: reg.client_id, token_endpoint_auth_method: authMethod };
    const auth = authFor(reg);

    // Authorization request: PKCE S256, state and scope.
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
    const state = oauth.generateRandomState();
    const authUrl = new URL(as.authorization_endpoint);
    authUrl.searchParams.set('response_type', 'code');
    authUrl.searchParams.set('client_id', client.client_id);
    authUrl.searchParams.set('redirect_uri', cb.redirectUri);
    authUrl.searchParams.set('code_challenge', codeChallenge);
    authUrl.searchParams.set('code_challenge_method', 'S256');
    authUrl.searchParams.set('state', state);
    authUrl.searchParams.set('scope', scopeFor(reg));

    const landed = await bed.approveAsAdmin(authUrl.href);

    // The callback URL as the client's server received it (RFC 9207: it carries iss).
    const callbackUrl = cb.callbackUrlFor(state);
    assert.equal(callbackUrl.href, landed.href);
    assert.equal(callbackUrl.searchParams.get('iss'), issuer);
    const params = await lib('the authorization response (validateAuthResponse)', () =>
      oauth.validateAuthResponse(as, client, callbackUrl, state),
    );
    assert.match(params.get('code') ?? '', /^[A-Za-z0-9_-]{43}$/);

    const tokens = await lib('the authorization code token response', async () =>
      oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, auth, params, cb.redirectUri, codeVerifier, INSECURE),
      ),
    );
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(typeof tokens.access_token, 'string');
    assert.ok(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, `expires_in: ${tokens.expires_in}`);
    return { reg, client, auth, tokens };
  }

  describe('confidential client (client_secret_basic)', () => {
    let client;
    let auth;
    let first;
    let refreshed;

    test('registration, browser approval by the admin, code exchange with PKCE', async () => {
      const r = await registerAndAuthorize({
        authMethod: 'client_secret_basic',
        clientName: `oauth4webapi confidential ${randomBytes(4).toString('base64url')}`,
        authFor: (reg) => {
          assert.equal(typeof reg.client_secret, 'string', 'a confidential client got no client_secret');
          return oauth.ClientSecretBasic(reg.client_secret);
        },
        // What it was registered with (the tenant's default, offline_access included).
        scopeFor: (reg) => {
          assert.match(reg.scope ?? '', /\boffline_access\b/, `registered scope: ${reg.scope}`);
          return reg.scope;
        },
      });
      ({ client, auth, tokens: first } = r);
    });

    test('the access token is an RFC 9068 JWT (WebCrypto and validateJwtAccessToken)', async () => {
      assert.ok(first, 'needs the tokens of the previous step');
      const { claims } = await verifyAccessToken(first.access_token, { as, audience, clientId: client.client_id });
      const libClaims = await libraryValidatesAccessToken(as, first.access_token, audience);
      assert.equal(libClaims.jti, claims.jti);
      assert.equal(typeof first.refresh_token, 'string', `no refresh_token for a confidential client: ${JSON.stringify(first)}`);
      assert.match(first.scope ?? claims.scope, /\boffline_access\b/);
    });

    test('refresh: a new access token and a rotated refresh token', async () => {
      assert.ok(first?.refresh_token, 'needs the refresh token of the first step');
      refreshed = await lib('the refresh token response', async () =>
        oauth.processRefreshTokenResponse(
          as,
          client,
          await oauth.refreshTokenGrantRequest(as, client, auth, first.refresh_token, INSECURE),
        ),
      );
      assert.equal(refreshed.token_type, 'bearer');
      assert.equal(typeof refreshed.access_token, 'string');
      assert.equal(typeof refreshed.refresh_token, 'string', `no new refresh_token: ${JSON.stringify(refreshed)}`);
      assert.notEqual(refreshed.access_token, first.access_token);
      assert.notEqual(refreshed.refresh_token, first.refresh_token, 'the refresh token did not rotate');
      const { claims } = await verifyAccessToken(refreshed.access_token, { as, audience, clientId: client.client_id });
      const firstClaims = decodeJwtPart(first.access_token.split('.')[1]);
      assert.equal(claims.sid, firstClaims.sid, 'the refreshed token belongs to another grant');
      assert.equal(claims.sub, firstClaims.sub);
      await libraryValidatesAccessToken(as, refreshed.access_token, audience);
    });

    test('introspection says active; revoking the refresh token ends the grant', async () => {
      assert.ok(refreshed, 'needs the tokens of the refresh step');
      const introspect = (token) =>
        lib('the introspection response', async () =>
          oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, token, INSECURE)),
        );

      const active = await introspect(refreshed.access_token);
      assert.equal(active.active, true, `introspection before revocation: ${JSON.stringify(active)}`);
      if (active.client_id !== undefined) assert.equal(active.client_id, client.client_id);

      await lib('the revocation response', async () =>
        oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, INSECURE)),
      );

      const latest = await introspect(refreshed.access_token);
      assert.equal(latest.active, false, `latest access token after revocation: ${JSON.stringify(latest)}`);
      const earliest = await introspect(first.access_token);
      assert.equal(earliest.active, false, `first access token after revocation: ${JSON.stringify(earliest)}`);

      // The revoked refresh token no longer refreshes: an RFC 6749 error that the library parses.
      const resp = await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, INSECURE);
      await assert.rejects(oauth.processRefreshTokenResponse(as, client, resp), (e) => {
        assert.ok(e instanceof oauth.ResponseBodyError, `expected a ResponseBodyError, got ${describeError(e)}`);
        assert.equal(e.error, 'invalid_grant', describeError(e));
        assert.equal(e.status, 400);
        return true;
      });
    });
  });

  describe('public client (none)', () => {
    test('registration, browser approval by the admin in a fresh context, code exchange: no refresh token', async () => {
      const { reg, client, tokens } = await registerAndAuthorize({
        authMethod: 'none',
        clientName: `oauth4webapi public ${randomBytes(4).toString('base64url')}`,
        authFor: (r) => {
          assert.equal(r.client_secret, undefined, 'a public client got a client_secret');
          return oauth.None();
        },
        // It asks for offline_access anyway; the server may narrow the scope (RFC 6749 §3.3).
        scopeFor: (r) => `${r.scope ?? ''} offline_access`.trim(),
      });
      assert.doesNotMatch(reg.scope ?? '', /\boffline_access\b/, `a public client was registered with offline_access: ${reg.scope}`);
      assert.equal(tokens.refresh_token, undefined, `a public client got a refresh_token: ${JSON.stringify(tokens)}`);
      assert.equal(typeof tokens.scope, 'string', 'a narrowed scope must be in the token response (RFC 6749 §5.1)');
      assert.doesNotMatch(tokens.scope, /\boffline_access\b/, `granted scope: ${tokens.scope}`);
      const { claims } = await verifyAccessToken(tokens.access_token, { as, audience, clientId: client.client_id });
      assert.equal(claims.scope, tokens.scope);
      await libraryValidatesAccessToken(as, tokens.access_token, audience);
    });
  });
});
