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
use crate::domain::{
    AuthorizationCode, Client, Email, Grant, RefreshToken, ScopeSet, Tenant, UnixTime,
};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::params::Params;
use crate::policy;
use crate::store::StoreError;
use crate::tokens::{self, AccessClaims};
use ::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn invalid_grant(d: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidGrant, d)
}

/// Token-endpoint requests are `application/x-www-form-urlencoded` (RFC 6749 §4.1.3) with no
/// repeated parameter.
fn check_form(req: &Request) -> Result<Params, OAuthError> {
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

fn param<'a>(form: &'a Params, name: &'static str) -> Result<Option<&'a str>, OAuthError> {
    form.single(name)
        .map_err(|e| OAuthError::invalid_request(e.describe()))
}

fn required<'a>(form: &'a Params, name: &'static str) -> Result<&'a str, OAuthError> {
    param(form, name)?.ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// RFC 8707 at the token endpoint: a `resource`, when sent, must be the one authorized.
fn check_resource(form: &Params, granted: &str) -> Result<(), OAuthError> {
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
struct Authenticated {
    form: Params,
    issuer: String,
    now: UnixTime,
    client: Client,
}

async fn authenticated(ctx: &Ctx<'_>, req: &Request) -> Result<Authenticated, OAuthError> {
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
    match param(&form, "grant_type")? {
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
    }
}

async fn load_code(
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
fn check_pkce(verifier: Option<&str>, challenge: &str) -> Result<(), OAuthError> {
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

async fn authorization_code(
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
    if !user_stands(
        app,
        tenant,
        &code.user_id,
        code.user_email.as_ref(),
        code.user_epoch,
    )
    .await?
    {
        return Err(user_gone());
    }

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
    match app
        .store
        .redeem_code(&code, &grant, refresh.as_ref().map(|(t, _)| t), now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            // Lost a race with a concurrent redemption of the same code: that is a replay.
            if let Some(c) = app.store.get_code(&tenant.id, &code.code_hash, now).await?
                && let Some(g) = c.redeemed_grant
            {
                app.store.revoke_grant(&tenant.id, &g, now).await?;
            }
            return Err(invalid_grant("the authorization code was already used"));
        }
        Err(StoreError::NotFound) => {
            return Err(invalid_grant(
                "the authorization code is invalid or expired",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "code redeemed");
    token_response(
        app,
        issuer,
        client,
        &grant,
        &grant.scope,
        refresh.map(|(_, v)| v),
        now,
    )
    .await
}

fn new_refresh(grant: &Grant, now: UnixTime) -> (RefreshToken, String) {
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

async fn refresh_token(
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
    if !user_stands(
        app,
        tenant,
        &old.user_id,
        old.user_email.as_ref(),
        old.user_epoch,
    )
    .await?
    {
        return Err(user_gone());
    }
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
    let scope = match param(form, "scope")? {
        None => grant.scope.clone(),
        Some(raw) => {
            let requested = ScopeSet::parse(raw).map_err(|bad| {
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidScope,
                    format!("scope token {bad:?} is malformed"),
                )
            })?;
            if let Some(extra) = requested.not_in(&grant.scope).next() {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidScope,
                    format!("scope {:?} was not granted", extra.as_str()),
                ));
            }
            requested
        }
    };
    let (new, value) = new_refresh(&grant, now);
    match app
        .store
        .rotate_refresh_token(&old, &new, app.config.refresh_grace_secs, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            // Reuse after the grace window: the token leaked or was replayed. Revoke the family.
            app.store.revoke_grant(&tenant.id, &grant.id, now).await?;
            tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, "refresh token reused; grant revoked");
            return Err(invalid_grant("the refresh token was already used"));
        }
        Err(StoreError::NotFound) => return Err(invalid_grant("the refresh token was revoked")),
        Err(other) => return Err(other.into()),
    }
    token_response(app, issuer, client, &grant, &scope, Some(value), now).await
}

async fn token_response(
    app: &App,
    issuer: &str,
    client: &Client,
    grant: &Grant,
    scope: &ScopeSet,
    refresh: Option<String>,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let key = app
        .keys
        .signing_key(app.store.as_ref(), now)
        .await
        .map_err(token_error)?;
    let lifetime = app
        .config
        .access_token_ttl_secs
        .min(grant.expires_at - now)
        .max(1);
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: grant.user_id.clone(),
        aud: grant.resource.clone(),
        client_id: client.client_id.to_string(),
        scope: scope.to_string(),
        iat: now,
        exp: now + lifetime,
        jti: crypto::new_id(),
        sid: grant.id.clone(),
    };
    let access = tokens::sign_access_token(&key, &claims).map_err(token_error)?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope.to_string(),
    });
    if let (Some(r), Value::Object(map)) = (refresh, &mut body) {
        map.insert("refresh_token".into(), r.into());
    }
    Ok(http::json_response(StatusCode::OK, &body, Cache::NoStore))
}

fn token_error(e: tokens::TokenError) -> OAuthError {
    match e {
        tokens::TokenError::Store(s) => s.into(),
        other => {
            tracing::error!(error = %other, "signing failed");
            OAuthError::server_error()
        }
    }
}

/// What a presented token is, if it is ours, unexpired and (for a refresh token) not rotated
/// past its grace window. Its grant is not read yet.
enum Presented {
    Access(AccessClaims),
    Refresh(RefreshToken),
}

impl Presented {
    fn grant_id(&self) -> &str {
        match self {
            Self::Access(c) => &c.sid,
            Self::Refresh(t) => &t.grant_id,
        }
    }

    fn client_id(&self) -> &str {
        match self {
            Self::Access(c) => &c.client_id,
            Self::Refresh(t) => t.client_id.as_str(),
        }
    }
}

/// A presented token whose grant is live (with the grant, where the answer needs it).
enum Found {
    Access(AccessClaims, Grant),
    Refresh(RefreshToken, Grant),
}

impl Found {
    /// The client the token was issued to.
    fn client_id(&self) -> &str {
        match self {
            Self::Access(claims, _) => claims.client_id.as_str(),
            Self::Refresh(token, _) => token.client_id.as_str(),
        }
    }

    /// Whether the user behind the token still stands behind it, as stored now.
    async fn user_stands(&self, app: &App, tenant: &Tenant) -> Result<bool, OAuthError> {
        let grant = match self {
            Self::Access(_, grant) | Self::Refresh(_, grant) => grant,
        };
        user_stands(
            app,
            tenant,
            &grant.user_id,
            grant.user_email.as_ref(),
            grant.user_epoch,
        )
        .await
    }
}

/// Whether the user who authorized a code or token (issued in the user's grant epoch `epoch`)
/// still stands behind it, read now: not disabled, not deleted, not disabled and enabled again
/// since (disabling moves the epoch on). Records without the user's email predate this check
/// and are refused: their user signs in again once.
async fn user_stands(
    app: &App,
    tenant: &Tenant,
    user_id: &str,
    email: Option<&Email>,
    epoch: u32,
) -> Result<bool, OAuthError> {
    let Some(email) = email else {
        return Ok(false);
    };
    Ok(app
        .store
        .get_user(&tenant.id, email)
        .await?
        .is_some_and(|u| u.holds_grant(user_id, epoch)))
}

fn user_gone() -> OAuthError {
    invalid_grant("the user who authorized this is disabled, or no longer exists")
}

async fn recognise(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    token: &str,
    now: UnixTime,
) -> Result<Option<Presented>, OAuthError> {
    if tokens::token_kid(token).is_some() {
        let mut keys = app
            .keys
            .key_set(app.store.as_ref(), false)
            .await
            .map_err(token_error)?;
        if tokens::token_kid(token).is_some_and(|kid| !keys.public.iter().any(|k| k.kid == kid)) {
            keys = app
                .keys
                .key_set(app.store.as_ref(), true)
                .await
                .map_err(token_error)?;
        }
        let Ok(claims) = tokens::verify_access_token(token, &keys, issuer, None) else {
            return Ok(None);
        };
        // We issued it: no clock-skew leeway applies to our own expiry.
        return Ok((claims.exp > now).then_some(Presented::Access(claims)));
    }
    let Some(refresh) = app
        .store
        .get_refresh_token(&tenant.id, &crypto::hash_secret(token), now)
        .await?
    else {
        return Ok(None);
    };
    let usable = refresh
        .rotated_at
        .is_none_or(|at| now - at < app.config.refresh_grace_secs);
    Ok(usable.then_some(Presented::Refresh(refresh)))
}

async fn find_token(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    token: &str,
    now: UnixTime,
) -> Result<Option<Found>, OAuthError> {
    let Some(presented) = recognise(app, tenant, issuer, token, now).await? else {
        return Ok(None);
    };
    let Some(grant) = app
        .store
        .get_grant(&tenant.id, presented.grant_id())
        .await?
        .filter(|g| g.is_active(now))
    else {
        return Ok(None);
    };
    Ok(Some(match presented {
        Presented::Access(c) => Found::Access(c, grant),
        Presented::Refresh(t) => Found::Refresh(t, grant),
    }))
}

/// RFC 7009: revoking either kind of token revokes its grant. Unknown tokens, and tokens of
/// other clients, get the same `200` (no oracle).
pub async fn revoke(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant) = (ctx.app, ctx.tenant);
    let Authenticated {
        form,
        issuer,
        now,
        client,
    } = authenticated(ctx, req).await?;
    let token = required(&form, "token")?;
    // Revocation needs no grant read: the token names its grant and client, and revoking an
    // already revoked grant is a no-op.
    let presented = recognise(app, tenant, &issuer, token, now).await?;
    if let Some(p) = presented.filter(|p| p.client_id() == client.client_id.as_str()) {
        app.store
            .revoke_grant(&tenant.id, p.grant_id(), now)
            .await?;
        tracing::info!(client_id = %client.client_id, grant_id = %p.grant_id(), "grant revoked");
    }
    Ok(http::json_response(
        StatusCode::OK,
        &json!({}),
        Cache::NoStore,
    ))
}

/// RFC 7662. The caller must be an authenticated confidential client of the tenant, and it
/// learns only about its own tokens (RFC 7662 §4: a client must not be able to learn who holds
/// another client's tokens or what they may do). Anything unknown, expired, revoked or issued
/// to another client is `{"active": false}`, so the answer reveals nothing more.
pub async fn introspect(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant) = (ctx.app, ctx.tenant);
    let Authenticated {
        form,
        issuer,
        now,
        client: caller,
    } = authenticated(ctx, req).await?;
    if caller.secret_hash.is_none() {
        return Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            "introspection requires a confidential client (a resource server with a secret)",
        ));
    }
    let token = required(&form, "token")?;
    let found = find_token(app, tenant, &issuer, token, now)
        .await?
        .filter(|found| found.client_id() == caller.client_id.as_str());
    let found = match found {
        Some(f) if f.user_stands(app, tenant).await? => Some(f),
        _ => None,
    };
    let body = match found {
        Some(Found::Access(c, _)) => json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
        }),
        Some(Found::Refresh(t, g)) => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": g.scope.to_string(),
            "client_id": t.client_id.to_string(),
            "sub": g.user_id,
            "aud": g.resource,
            "iss": issuer,
            "exp": t.expires_at,
            "iat": t.created_at,
        }),
        None => json!({"active": false}),
    };
    Ok(http::json_response(StatusCode::OK, &body, Cache::NoStore))
}

/// The JWKS (public keys only). Served by the discovery function, which cannot create keys:
/// before the first token is issued the set may be empty.
pub async fn jwks(ctx: &Ctx<'_>) -> Result<Response, OAuthError> {
    let app = ctx.app;
    let keys = app
        .keys
        .key_set(app.store.as_ref(), false)
        .await
        .map_err(token_error)?;
    Ok(http::json_response(
        StatusCode::OK,
        &keys.jwks(),
        Cache::Public(300),
    ))
}
