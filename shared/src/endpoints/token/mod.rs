//! The token endpoint (RFC 6749 §3.2, OAuth 2.1), revocation (RFC 7009) and introspection
//! (RFC 7662).
//!
//! `authorization_code`: [`check_form`] → client authentication → [`load_code`] → PKCE,
//! redirect URI, resource → one transaction that redeems the code and stores the grant (and its
//! first refresh token) → tokens. A replayed code revokes the grant it produced.
//! `refresh_token`: [`check_form`] → client authentication → token lookup → one transaction
//! that rotates it (grace window for concurrent refreshes; reuse after it revokes the grant).

use crate::app::App;
use crate::client_auth;
use crate::context::Ctx;
use crate::crypto;
use crate::domain::{AuthorizationCode, Client, Grant, RefreshToken, ScopeSet, Tenant, UnixTime};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::metrics::Metric;
use crate::params::Params;
use crate::policy;
use crate::store::StoreError;
use crate::tokens::{self, AccessClaims};
use ::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

mod lookup;
pub mod openid;
mod revocation;

use lookup::*;
pub use revocation::{introspect, revoke};

pub(super) fn invalid_grant(d: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidGrant, d)
}

/// Token-endpoint requests are `application/x-www-form-urlencoded` (RFC 6749 §4.1.3) with no
/// repeated parameter.
pub(super) fn check_form(req: &Request) -> Result<Params, OAuthError> {
    let is_form = http::is_form(req.headers());
    if !is_form {
        return Err(OAuthError::invalid_request(
            "send the request as application/x-www-form-urlencoded (RFC 6749 §4.1.3), not JSON",
        ));
    }
    let form = Params::parse(req.body()).map_err(|e| OAuthError::invalid_request(e.describe()))?;
    if let Some(name) = form.first_repeated().filter(|n| *n != "resource") {
        return Err(OAuthError::invalid_request(format!(
            "the {name} parameter is repeated"
        )));
    }
    Ok(form)
}

pub(super) fn param<'a>(
    form: &'a Params,
    name: &'static str,
) -> Result<Option<&'a str>, OAuthError> {
    form.single(name)
        .map_err(|e| OAuthError::invalid_request(e.describe()))
}

pub(super) fn required<'a>(form: &'a Params, name: &'static str) -> Result<&'a str, OAuthError> {
    param(form, name)?.ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// RFC 8707 at the token endpoint: a `resource`, when sent, must be the one authorized.
pub(super) fn check_resource(form: &Params, granted: &str) -> Result<(), OAuthError> {
    match form.all("resource").as_slice() {
        [] => Ok(()),
        [one] if *one == granted => Ok(()),
        _ => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidTarget,
            format!("the authorized resource is {granted}; a token for another cannot be issued"),
        )),
    }
}

/// What every token-side endpoint starts with: a well-formed form and an authenticated client.
pub(super) struct Authenticated {
    form: Params,
    issuer: String,
    now: UnixTime,
    client: Client,
}

pub(super) async fn authenticated(
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Authenticated, OAuthError> {
    let (app, tenant, now) = (ctx.app, ctx.tenant, ctx.now);
    let form = check_form(req)?;
    let issuer = ctx.issuer.clone();
    let presented = client_auth::presented(req, &form, &issuer)?;
    let client = client_auth::authenticate(app, tenant, &issuer, &presented, now).await?;
    Ok(Authenticated {
        form,
        issuer,
        now,
        client,
    })
}

pub async fn token(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant) = (ctx.app, ctx.tenant);
    let Authenticated {
        form,
        issuer,
        now,
        client,
    } = authenticated(ctx, req).await?;
    let issued = match param(&form, "grant_type")? {
        Some("authorization_code") => {
            authorization_code(app, tenant, &issuer, &client, &form, now).await
        }
        Some("refresh_token") => refresh_token(app, tenant, &issuer, &client, &form, now).await,
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type {other:?} is not supported; use authorization_code or refresh_token"
            ),
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    };
    if issued.is_ok() {
        crate::metrics::count(Metric::TokensIssued, &tenant.id);
    }
    issued
}

pub(super) async fn load_code(
    app: &App,
    tenant: &Tenant,
    client: &Client,
    raw: &str,
    now: UnixTime,
) -> Result<AuthorizationCode, OAuthError> {
    let code = app
        .store
        .get_code(&tenant.id, &crypto::hash_secret(raw), now)
        .await?
        .ok_or_else(|| invalid_grant("the authorization code is invalid or expired"))?;
    if code.client_id != client.client_id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if let Some(grant) = &code.redeemed_grant {
        // RFC 6749 §4.1.2 / RFC 9700 §4.5: a replayed code revokes what it issued.
        app.store.revoke_grant(&tenant.id, grant, now).await?;
        tracing::warn!(client_id = %client.client_id, "authorization code replayed; grant revoked");
        return Err(invalid_grant("the authorization code was already used"));
    }
    Ok(code)
}

/// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
pub(super) fn check_pkce(verifier: Option<&str>, challenge: &str) -> Result<(), OAuthError> {
    let verifier =
        verifier.ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let shape_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !shape_ok {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if crypto::constant_time_eq(&computed, challenge) {
        Ok(())
    } else {
        Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ))
    }
}

pub(super) async fn authorization_code(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    client: &Client,
    form: &Params,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let code = load_code(app, tenant, client, required(form, "code")?, now).await?;
    if let Some(uri) = param(form, "redirect_uri")?
        && uri != code.redirect_uri
    {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(param(form, "code_verifier")?, &code.code_challenge)?;
    check_resource(form, &code.resource)?;
    let user = require_user(app, tenant, &code).await?;
    // The signing keys before the code is spent: a key that cannot be read now is a `503` the
    // client may retry with the same code, not a redeemed code and no tokens.
    let access = access_key(app, tenant, now).await?;
    let id = openid::id_token_key(app, tenant, client, &code.scope, now).await?;

    let grant = Grant {
        id: crypto::new_id(),
        tenant: tenant.id.clone(),
        client_id: client.client_id.clone(),
        user_id: code.user_id.clone(),
        user_email: code.user_email.clone(),
        user_epoch: code.user_epoch,
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        created_at: now,
        expires_at: policy::grant_expiry(client, app.config.access_token_ttl_secs, now),
        revoked_at: None,
    };
    let refresh = policy::gets_refresh_token(client).then(|| new_refresh(&grant, now));
    redeem(
        app,
        tenant,
        &code,
        &grant,
        refresh.as_ref().map(|(t, _)| t),
        now,
    )
    .await?;
    tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "code redeemed");
    let refresh = refresh.map(|(_, v)| v);
    let mut response = token_response(app, &access, issuer, &grant, &grant.scope, refresh, now)?;
    if let Some(key) = id {
        let authentication = openid::Authentication {
            user: &user,
            auth_time: code.auth_time,
            nonce: code.nonce.as_deref(),
        };
        openid::add_id_token(
            &key,
            issuer,
            client,
            &grant.scope,
            &authentication,
            &mut response,
            now,
        )?;
    }
    Ok(response.into_response())
}

/// Redeems the code into the grant (and its first refresh token) in one transaction, exactly
/// once.
async fn redeem(
    app: &App,
    tenant: &Tenant,
    code: &AuthorizationCode,
    grant: &Grant,
    refresh: Option<&RefreshToken>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    match app.store.redeem_code(code, grant, refresh, now).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => {
            // Lost a race with a concurrent redemption of the same code: that is a replay.
            if let Some(c) = app.store.get_code(&tenant.id, &code.code_hash, now).await?
                && let Some(g) = c.redeemed_grant
            {
                app.store.revoke_grant(&tenant.id, &g, now).await?;
            }
            Err(invalid_grant("the authorization code was already used"))
        }
        Err(StoreError::NotFound) => Err(invalid_grant(
            "the authorization code is invalid or expired",
        )),
        Err(other) => Err(other.into()),
    }
}

pub(super) fn new_refresh(grant: &Grant, now: UnixTime) -> (RefreshToken, String) {
    let value = crypto::new_secret();
    (
        RefreshToken {
            token_hash: crypto::hash_secret(&value),
            tenant: grant.tenant.clone(),
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            user_email: grant.user_email.clone(),
            user_epoch: grant.user_epoch,
            scope: grant.scope.clone(),
            resource: grant.resource.clone(),
            created_at: now,
            expires_at: grant.expires_at,
            rotated_at: None,
        },
        value,
    )
}

pub(super) async fn refresh_token(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    client: &Client,
    form: &Params,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let raw = required(form, "refresh_token")?;
    let old = app
        .store
        .get_refresh_token(&tenant.id, &crypto::hash_secret(raw), now)
        .await?
        .ok_or_else(|| invalid_grant("the refresh token is invalid or expired"))?;
    if old.client_id != client.client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    require_user(app, tenant, &old).await?;
    // The grant as the token carries it; whether it was revoked is checked atomically by the
    // rotation transaction, so a refresh costs no extra read.
    let grant = Grant {
        id: old.grant_id.clone(),
        tenant: tenant.id.clone(),
        client_id: old.client_id.clone(),
        user_id: old.user_id.clone(),
        user_email: old.user_email.clone(),
        user_epoch: old.user_epoch,
        scope: old.scope.clone(),
        resource: old.resource.clone(),
        created_at: old.created_at,
        expires_at: old.expires_at,
        revoked_at: None,
    };
    check_resource(form, &grant.resource)?;
    let scope = policy::refresh_scope(&grant.scope, param(form, "scope")?)?;
    let (new, value) = new_refresh(&grant, now);
    let key = access_key(app, tenant, now).await?;
    match app
        .store
        .rotate_refresh_token(&old, &new, app.config.refresh_grace_secs, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            // Reuse after the grace window: the token leaked or was replayed. Revoke the family.
            app.store.revoke_grant(&tenant.id, &grant.id, now).await?;
            crate::metrics::count(Metric::RefreshTokenReuseDetected, &tenant.id);
            tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "refresh token reused; grant revoked");
            return Err(invalid_grant("the refresh token was already used"));
        }
        Err(StoreError::NotFound) => return Err(invalid_grant("the refresh token was revoked")),
        Err(other) => return Err(other.into()),
    }
    token_response(app, &key, issuer, &grant, &scope, Some(value), now)
        .map(TokenResponse::into_response)
}

/// The tenant's access-token signing key (cached per process; `crate::keycache::KeyCache`).
pub(super) async fn access_key(
    app: &App,
    tenant: &Tenant,
    now: UnixTime,
) -> Result<Arc<tokens::SigningKey>, OAuthError> {
    app.keys
        .signing_key(
            app.signing_keys(),
            &tenant.id,
            tenant.access_token_signing_alg,
            now,
        )
        .await
        .map_err(token_error)
}

/// A successful token response (RFC 6749 §5.1) before it is sent: the access token, kept apart
/// until then for the ID token's `at_hash`, and the rest of the body.
pub(super) struct TokenResponse {
    body: serde_json::Map<String, Value>,
    access_token: String,
    lifetime: i64,
}

impl TokenResponse {
    fn into_response(mut self) -> Response {
        self.body
            .insert("access_token".into(), self.access_token.into());
        http::json_response(StatusCode::OK, &Value::Object(self.body), Cache::NoStore)
    }
}

/// The access token (signed with `key`, the tenant's access-token key) and the response around
/// it; the client is the grant's.
pub(super) fn token_response(
    app: &App,
    key: &tokens::SigningKey,
    issuer: &str,
    grant: &Grant,
    scope: &ScopeSet,
    refresh: Option<String>,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let lifetime = app
        .config
        .access_token_ttl_secs
        .min(grant.expires_at - now)
        .max(1);
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: grant.user_id.clone(),
        aud: grant.resource.clone(),
        client_id: grant.client_id.to_string(),
        scope: scope.to_string(),
        iat: now,
        exp: now + lifetime,
        jti: crypto::new_id(),
        sid: grant.id.clone(),
    };
    let access = tokens::sign_access_token(key, &claims).map_err(token_error)?;
    let mut body = serde_json::Map::new();
    body.insert("token_type".into(), "Bearer".into());
    body.insert("expires_in".into(), lifetime.into());
    body.insert("scope".into(), scope.to_string().into());
    if let Some(r) = refresh {
        body.insert("refresh_token".into(), r.into());
    }
    Ok(TokenResponse {
        body,
        access_token: access,
        lifetime,
    })
}

pub(super) fn token_error(e: tokens::TokenError) -> OAuthError {
    match e {
        tokens::TokenError::Store(s) => s.into(),
        other => {
            tracing::error!(error = %other, "signing failed");
            OAuthError::server_error()
        }
    }
}

/// How long a JWKS may be reused: well inside the activation delay of a rotated-in key
/// (`crate::defaults::KEY_ACTIVATION_DELAY_SECS`), so every cache knows a key before it signs.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The JWKS (public keys only). Served by the discovery function, which cannot create keys:
/// before the first token is issued the set may be empty.
pub async fn jwks(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let app = ctx.app;
    let keys = app
        .keys
        .key_set(app.store.as_ref(), &ctx.tenant.id, false, ctx.now)
        .await
        .map_err(token_error)?;
    Ok(keys.document.respond(req, JWKS_MAX_AGE_SECS))
}
