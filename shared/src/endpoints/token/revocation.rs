//! Revocation (RFC 7009) and introspection (RFC 7662).

use super::lookup::*;
use super::*;
use crate::context::Ctx;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use ::http::StatusCode;
use serde_json::json;

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
