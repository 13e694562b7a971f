//! Password sign-in, shared by the authorization flow's sign-in form and the admin console:
//! rate-limited per IP and per account, one answer for every failure, and the same argon2 work
//! whether or not the account exists (no user enumeration by timing).

use crate::app::App;
use crate::crypto;
use crate::defaults::SESSION_TTL_SECS;
use crate::domain::{Email, Session, Tenant, UnixTime, User};
use crate::http::{ClientIp, Request};
use crate::store::StoreError;
use std::sync::OnceLock;
use std::time::Instant;

pub const SESSION_COOKIE: &str = "gh_session";
pub const BROWSER_COOKIE: &str = "gh_browser";

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many sign-in attempts")]
    Throttled,
    /// Unknown account, wrong password or disabled account: deliberately indistinguishable.
    #[error("incorrect email or password")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an email and password; the user on success.
pub async fn check_password(
    app: &App,
    tenant: &Tenant,
    req: &Request,
    email_raw: &str,
    password: &str,
) -> Result<User, SignInError> {
    let now = Instant::now();
    let ip_ok = req
        .extensions()
        .get::<ClientIp>()
        .is_none_or(|ClientIp(ip)| app.signin_ip_limiter.allow(*ip, now));
    let account_ok = app.signin_account_limiter.allow(
        (tenant.id.clone(), email_raw.trim().to_ascii_lowercase()),
        now,
    );
    if !(ip_ok && account_ok) {
        return Err(SignInError::Throttled);
    }
    let user = match Email::parse(email_raw) {
        Some(email) => app.store.get_user(&tenant.id, &email).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map_or_else(|| dummy_hash().as_str(), |u| u.password_hash.as_str());
    let password_ok = crypto::verify_password(password, hash);
    match user.filter(|u| password_ok && !u.disabled) {
        Some(user) => Ok(user),
        None => {
            tracing::info!("sign-in failed");
            Err(SignInError::Invalid)
        }
    }
}

/// Opens a server-side session for a signed-in user; returns it and the cookie value (the
/// session id, stored only as its SHA-256).
pub async fn start_session(
    app: &App,
    user: &User,
    now: UnixTime,
) -> Result<(Session, String), StoreError> {
    let session_id = crypto::new_secret();
    let session = Session {
        id_hash: crypto::hash_secret(&session_id),
        tenant: user.tenant.clone(),
        user_id: user.id.clone(),
        email: user.email.clone(),
        role: user.role,
        created_at: now,
        expires_at: now + SESSION_TTL_SECS,
    };
    app.store.create_session(&session).await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok((session, session_id))
}

/// The CSRF token of a session: derived from the secret session id, so only a page served to
/// that browser (or a caller holding the cookie) can know it.
pub fn session_csrf(session_id: &str) -> String {
    crypto::hash_secret(&format!("gatehouse-csrf:{session_id}"))
}

/// A valid argon2id hash of a random password, verified against when the account does not
/// exist so that sign-in takes the same time either way.
fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| crypto::hash_password(&crypto::new_secret()))
}
