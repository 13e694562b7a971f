//! Administration, served by the admin function: the JSON admin API (`{issuer}/api/v1/…`), the
//! console (`{issuer}/admin…`) and the approval decision (`approval.rs`). Both interfaces use
//! one authentication step ([`authenticate`]), one set of operations ([`service`]) and one
//! validation layer ([`manage`], [`settings`]); each only reads its own requests (JSON bodies
//! through [`body`], forms) and renders its own answers.
//!
//! Credentials (see `docs/admin-api.md`): the hosted session cookie of an administrator (writes
//! need the session's CSRF token), or an admin API token `gha_{tenant}_{secret}`. Every request
//! re-reads the user, so a demoted or disabled administrator loses access at once.

pub mod api;
mod api_body;
pub mod audit;
pub mod body;
pub mod console;
mod console_audit;
mod console_pages;
mod console_signin;
mod console_trusts;
pub mod filter;
pub mod manage;
pub mod service;
pub mod settings;
pub mod trusts;

use crate::app::App;
use crate::crypto;
use crate::domain::{ApiToken, Role, Tenant, TenantId, UnixTime, User};
use crate::error::OAuthError;
use crate::hosted::cookie_value;
use crate::http::Request;
use crate::signin::{SESSION_COOKIE, session_csrf};
use crate::store::StoreError;
use ::http::header::AUTHORIZATION;

/// Prefix of admin API tokens: `gha_{tenant}_{secret}`.
pub const API_TOKEN_PREFIX: &str = "gha_";

/// An authenticated administrator.
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: User,
    pub via: Via,
    /// Which interface the request came through (`api` or `console`), for the audit trail.
    pub door: &'static str,
}

#[derive(Debug, Clone)]
pub enum Via {
    /// The session cookie; writes must present this CSRF token.
    Session { csrf: String },
    /// An admin API token, by its hash.
    Token { hash: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credential. `presented`: a credential was sent but is not valid.
    #[error("authentication required")]
    Unauthenticated { presented: bool },
    /// A valid admin API token of another tenant: answered like an unknown resource.
    #[error("credential of another tenant")]
    ForeignTenant,
    /// A signed-in user who is not an administrator.
    #[error("administrator role required")]
    NotAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues a new admin API token for an administrator; returns the record and the token (shown
/// once, stored only as its SHA-256).
pub fn new_api_token(
    tenant: &TenantId,
    user: &User,
    name: &str,
    lifetime_secs: i64,
    now: UnixTime,
) -> (ApiToken, String) {
    let token = format!("{API_TOKEN_PREFIX}{tenant}_{}", crypto::new_secret());
    let record = ApiToken {
        token_hash: crypto::hash_secret(&token),
        tenant: tenant.clone(),
        email: user.email.clone(),
        name: name.to_owned(),
        created_at: now,
        expires_at: now.saturating_add(lifetime_secs),
    };
    (record, token)
}

/// The tenant an admin API token names (`gha_{tenant}_…`), if it has that shape.
fn token_tenant(token: &str) -> Option<TenantId> {
    let rest = token.strip_prefix(API_TOKEN_PREFIX)?;
    let (tenant, secret) = rest.split_once('_')?;
    (!secret.is_empty()).then_some(())?;
    TenantId::parse(tenant)
}

/// `None`: no `Authorization` header; `Some(None)`: one that holds no usable bearer token.
fn bearer(req: &Request) -> Option<Option<&str>> {
    req.headers()
        .contains_key(AUTHORIZATION)
        .then(|| crate::http::bearer_token(req, 256))
}

/// Who is calling: an enabled administrator of `tenant`, or why not.
pub async fn authenticate(
    app: &App,
    tenant: &Tenant,
    req: &Request,
    now: UnixTime,
) -> Result<Admin, AuthError> {
    if let Some(presented) = bearer(req) {
        let token = presented.ok_or(AuthError::Unauthenticated { presented: true })?;
        return by_token(app, tenant, token, now).await;
    }
    authenticate_session(app, tenant, req, now).await
}

/// The session cookie only (the console: a bearer token is not a browser credential).
pub async fn authenticate_session(
    app: &App,
    tenant: &Tenant,
    req: &Request,
    now: UnixTime,
) -> Result<Admin, AuthError> {
    let Some(session_id) = cookie_value(req, SESSION_COOKIE) else {
        return Err(AuthError::Unauthenticated { presented: false });
    };
    let session = app
        .store
        .get_session(&tenant.id, &crypto::hash_secret(&session_id), now)
        .await?
        .ok_or(AuthError::Unauthenticated { presented: true })?;
    let user = app
        .store
        .get_user(&tenant.id, &session.email)
        .await?
        .filter(|u| u.holds_session(&session.user_id, session.epoch))
        .ok_or(AuthError::Unauthenticated { presented: true })?;
    if user.role != Role::Admin {
        return Err(AuthError::NotAdmin);
    }
    Ok(Admin {
        user,
        via: Via::Session {
            csrf: session_csrf(&session_id),
        },
        door: "api",
    })
}

async fn by_token(
    app: &App,
    tenant: &Tenant,
    token: &str,
    now: UnixTime,
) -> Result<Admin, AuthError> {
    let invalid = AuthError::Unauthenticated { presented: true };
    let Some(named) = token_tenant(token) else {
        return Err(invalid);
    };
    let hash = crypto::hash_secret(token);
    if named != tenant.id {
        // Tell a real token of another tenant (404: the resource "does not exist" for it)
        // from garbage (401).
        let real = app.store.get_api_token(&named, &hash, now).await?.is_some();
        return Err(if real {
            AuthError::ForeignTenant
        } else {
            invalid
        });
    }
    let record = app
        .store
        .get_api_token(&tenant.id, &hash, now)
        .await?
        .ok_or(AuthError::Unauthenticated { presented: true })?;
    let user = app
        .store
        .get_user(&tenant.id, &record.email)
        .await?
        .filter(|u| !u.disabled && u.role == Role::Admin)
        .ok_or(invalid)?;
    Ok(Admin {
        user,
        via: Via::Token { hash },
        door: "api",
    })
}

impl Admin {
    /// The administrator as the actor of an audit event.
    pub fn actor(&self) -> crate::domain::Actor {
        crate::domain::Actor::user(&self.user)
    }

    /// Whether a state-changing request carries what it must: nothing for a bearer token (not
    /// an ambient credential), the session's CSRF token for the cookie.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        match &self.via {
            Via::Token { .. } => true,
            Via::Session { csrf } => presented.is_some_and(|p| crypto::constant_time_eq(p, csrf)),
        }
    }
}

/// A `next_cursor` of a paged listing (the admin API and the console's "next page" links):
/// the store's cursor in base64url, opaque to callers.
pub fn encode_cursor(store_cursor: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(store_cursor)
}

/// A `cursor` parameter: an earlier page's `next_cursor`, back to the store's
/// `{time, 12 digits}#{id}` with an id `id_ok` accepts; anything else is `400`.
pub fn decode_cursor(raw: &str, id_ok: impl Fn(&str) -> bool) -> Result<String, OAuthError> {
    use base64::Engine;
    let bad =
        || OAuthError::invalid_request("cursor is malformed; use next_cursor from a previous page");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once('#').ok_or_else(bad)?;
    let shaped = time.len() == 12 && time.bytes().all(|b| b.is_ascii_digit()) && id_ok(id);
    if shaped { Ok(text) } else { Err(bad()) }
}
