//! Password sign-in, shared by the authorization flow's sign-in form and the admin console:
//! rate-limited per IP (in process) and by failures per account (in the store), one answer for
//! every failure, and the same argon2 work whether or not the account exists (no user
//! enumeration by timing).

use crate::app::App;
use crate::context::Ctx;
use crate::crypto;
use crate::defaults::{SESSION_TTL_SECS, SIGNIN_FAILURES_PER_ACCOUNT, SIGNIN_WINDOW_SECS};
use crate::domain::{Actor, Email, EventType, Session, UnixTime, User};
use crate::store::StoreError;
use std::sync::OnceLock;

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

/// Checks an email and password; the user on success. Every outcome but a store failure is an
/// audit event (`signin.succeeded`, `signin.failed`) naming `page` (`authorize`, `console`),
/// the source address and, for a failure, the address typed when it is one (never the
/// password).
pub async fn check_password(
    ctx: &Ctx<'_>,
    page: &'static str,
    email_raw: &str,
    password: &str,
) -> Result<User, SignInError> {
    let result = verify(ctx, email_raw, password).await;
    let event = match &result {
        Ok(user) => ctx.event(EventType::SignInSucceeded, Actor::user(user)),
        Err(SignInError::Store(_)) => return result,
        Err(e) => {
            let email = Email::parse(email_raw).map(|e| e.as_str().to_owned());
            let reason = match e {
                SignInError::Throttled => "throttled",
                _ => "invalid",
            };
            ctx.event(EventType::SignInFailed, Actor::Anonymous { email })
                .detail("reason", reason)
        }
    };
    ctx.record(event.detail("page", page)).await;
    result
}

async fn verify(ctx: &Ctx<'_>, email_raw: &str, password: &str) -> Result<User, SignInError> {
    let (app, tenant, now) = (ctx.app, ctx.tenant, ctx.now);
    if !app.signin_rate_ok(ctx.ip) {
        return Err(SignInError::Throttled);
    }
    // Attempts per account, counted in the store before the password is checked: the same
    // count for every process, so neither concurrent guesses, nor spreading them over Lambda
    // containers, nor a flood of other accounts gets more than the limit per window. A
    // success is taken back below: only failures count.
    let account = crypto::hash_secret(&email_raw.trim().to_lowercase());
    let window = now.div_euclid(SIGNIN_WINDOW_SECS);
    let window_end = (window + 1).saturating_mul(SIGNIN_WINDOW_SECS);
    let attempts = app
        .store
        .count_signin_attempt(&tenant.id, &account, window, window_end, now)
        .await?;
    if attempts > SIGNIN_FAILURES_PER_ACCOUNT {
        tracing::info!("sign-in refused: too many failures for the account");
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
        Some(user) => {
            app.store
                .uncount_signin_attempt(&tenant.id, &account, window)
                .await?;
            Ok(user)
        }
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
        epoch: user.session_epoch,
        grant_epoch: user.grant_epoch,
        created_at: now,
        expires_at: now + SESSION_TTL_SECS,
    };
    app.store.create_session(&session).await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok((session, session_id))
}

/// A session as it stands now: only while its user exists, is enabled and has not ended their
/// sessions since (disabled, new password), and with the role stored now — never the role of
/// sign-in time. `None` is treated exactly like no session at all.
pub async fn current_session(
    app: &App,
    session: Option<Session>,
) -> Result<Option<Session>, StoreError> {
    let Some(mut session) = session else {
        return Ok(None);
    };
    let user = app.store.get_user(&session.tenant, &session.email).await?;
    Ok(user
        .filter(|u| u.holds_session(&session.user_id, session.epoch))
        .map(|u| {
            session.role = u.role;
            session.grant_epoch = u.grant_epoch;
            session
        }))
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
