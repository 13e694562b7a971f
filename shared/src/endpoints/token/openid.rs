//! OpenID Connect at the token side: the ID token a code grant yields when `openid` was granted
//! (Core §2, §3.1.3.3), and the UserInfo endpoint (Core §5.3), both with claims read from the
//! user record as stored when the token is issued or the claims are asked for.

use super::lookup::{Found, find_token, standing_user};
use super::{TokenResponse, token_error};
use crate::app::App;
use crate::context::Ctx;
use crate::domain::{Client, ScopeSet, SigningAlg, Tenant, UnixTime, User};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::tokens::{self, SigningKey};
use ::http::StatusCode;
use ::http::header::WWW_AUTHENTICATE;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const OPENID: &str = "openid";

/// How the user signed in for the code being redeemed.
pub struct Authentication<'a> {
    pub user: &'a User,
    /// When the user signed in (the session's start).
    pub auth_time: UnixTime,
    pub nonce: Option<&'a str>,
}

/// The user's claims that `scope` releases (Core §5.4): `email` releases the address and
/// whether it is verified. Gatehouse never verifies ownership of an address (administrators
/// enter them), so it says `false`. `profile` releases `name` when the user record has one
/// (the other profile claims are not stored).
fn user_claims(user: &User, scope: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), user.id.clone().into());
    if let Some(name) = user.name.as_deref().filter(|_| scope.contains("profile")) {
        claims.insert("name".into(), name.into());
    }
    if scope.contains("email") {
        claims.insert("email".into(), user.email.as_str().into());
        claims.insert("email_verified".into(), false.into());
    }
    claims
}

/// `at_hash` (Core §3.1.3.6): the left half of the SHA-256 of the access token, base64url. Both
/// algorithms Gatehouse signs ID tokens with hash with SHA-256.
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The key an ID token for `client` is signed with (Core §3.1.3.3), when the code was granted
/// `openid` on a tenant that has OpenID Connect on (turning it off stops ID tokens at once):
/// the algorithm the client registered, RS256 when it named none. `None`: no ID token.
pub(super) async fn id_token_key(
    app: &App,
    tenant: &Tenant,
    client: &Client,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<Option<Arc<SigningKey>>, OAuthError> {
    if !tenant.openid_enabled || !scope.contains(OPENID) {
        return Ok(None);
    }
    let alg = client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or(SigningAlg::RS256);
    app.keys
        .signing_key(app.signing_keys(), &tenant.id, alg, now)
        .await
        .map(Some)
        .map_err(token_error)
}

/// Adds `id_token`, signed with `key` ([`id_token_key`]), to a code grant's token response;
/// valid as long as the access token.
pub(super) fn add_id_token(
    key: &SigningKey,
    issuer: &str,
    client: &Client,
    scope: &ScopeSet,
    authentication: &Authentication<'_>,
    response: &mut TokenResponse,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let mut claims = user_claims(authentication.user, scope);
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), client.client_id.as_str().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + response.lifetime).into());
    claims.insert("auth_time".into(), authentication.auth_time.into());
    // RFC 8176: a password was the one authentication method.
    claims.insert("amr".into(), json!(["pwd"]));
    claims.insert("at_hash".into(), at_hash(&response.access_token).into());
    if let Some(nonce) = authentication.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    let token = tokens::sign_id_token(key, &Value::Object(claims)).map_err(token_error)?;
    response.body.insert("id_token".into(), token.into());
    Ok(())
}

/// The UserInfo endpoint (Core §5.3): the claims of the user behind a live access token that
/// holds `openid`. The grant and the user are read now, so a revoked grant or a disabled user
/// gets `invalid_token` at once rather than at the token's expiry.
pub async fn userinfo(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant) = (ctx.app, ctx.tenant);
    let token = http::authorization(req, "bearer").ok_or_else(|| {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "a bearer access token is required (Authorization: Bearer)",
        )
        .with_header(WWW_AUTHENTICATE, "Bearer".to_owned())
    })?;
    let invalid = || {
        let description = "the access token is invalid, expired or revoked";
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        )
        .with_header(
            WWW_AUTHENTICATE,
            format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
        )
    };
    let Some(Found::Access(claims, grant)) =
        find_token(app, tenant, &ctx.issuer, token, ctx.now).await?
    else {
        return Err(invalid());
    };
    let user = standing_user(app, tenant, &grant)
        .await?
        .ok_or_else(invalid)?;
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if !tenant.openid_enabled || !scope.contains(OPENID) {
        let description = "the access token was not granted the openid scope";
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientScope,
            description,
        )
        .with_header(
            WWW_AUTHENTICATE,
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"openid\", error_description=\"{description}\""
            ),
        ));
    }
    Ok(http::json_response(
        StatusCode::OK,
        &Value::Object(user_claims(&user, &scope)),
        Cache::NoStore,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Core §3.1.3.6's construction: SHA-256, the left 128 bits, base64url without padding.
    #[test]
    fn at_hash_is_the_left_half_of_sha_256() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let digest = Sha256::digest(token.as_bytes());
        let decoded = URL_SAFE_NO_PAD.decode(at_hash(token)).unwrap();
        assert_eq!(decoded.as_slice(), &digest[..16]);
        assert_eq!(at_hash(token).len(), 22);
    }
}
