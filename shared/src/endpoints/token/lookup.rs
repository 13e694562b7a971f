//! Recognising a presented token (an access token JWT or an opaque refresh token), the live
//! grant behind it, and whether its user still stands behind it.

use super::*;
use crate::app::App;
use crate::crypto;
use crate::domain::{Grant, IssuedToUser, RefreshToken, Tenant, UnixTime, User};
use crate::error::OAuthError;
use crate::tokens::{self, AccessClaims};

/// What a presented token is, if it is ours, unexpired and (for a refresh token) not rotated
/// past its grace window. Its grant is not read yet.
pub(super) enum Presented {
    Access(AccessClaims),
    Refresh(RefreshToken),
}

impl Presented {
    pub(super) fn grant_id(&self) -> &str {
        match self {
            Self::Access(c) => &c.sid,
            Self::Refresh(t) => &t.grant_id,
        }
    }

    pub(super) fn client_id(&self) -> &str {
        match self {
            Self::Access(c) => &c.client_id,
            Self::Refresh(t) => t.client_id.as_str(),
        }
    }
}

/// A presented token whose grant is live (with the grant, where the answer needs it).
pub(super) enum Found {
    Access(AccessClaims, Grant),
    Refresh(RefreshToken, Grant),
}

impl Found {
    /// The client the token was issued to.
    pub(super) fn client_id(&self) -> &str {
        match self {
            Self::Access(claims, _) => claims.client_id.as_str(),
            Self::Refresh(token, _) => token.client_id.as_str(),
        }
    }

    /// Whether the user behind the token still stands behind it, as stored now.
    pub(super) async fn user_stands(&self, app: &App, tenant: &Tenant) -> Result<bool, OAuthError> {
        let grant = match self {
            Self::Access(_, grant) | Self::Refresh(_, grant) => grant,
        };
        user_stands(app, tenant, grant).await
    }
}

/// Whether the user who authorized a code or token (issued in the user's grant epoch `epoch`)
/// still stands behind it, read now: not disabled, not deleted, not disabled and enabled again
/// since (disabling moves the epoch on). Records without the user's email predate this check
/// and are refused: their user signs in again once.
pub(super) async fn user_stands(
    app: &App,
    tenant: &Tenant,
    record: &impl IssuedToUser,
) -> Result<bool, OAuthError> {
    Ok(standing_user(app, tenant, record).await?.is_some())
}

/// The user record behind a code or token when [`user_stands`]; `None` otherwise.
pub(super) async fn standing_user(
    app: &App,
    tenant: &Tenant,
    record: &impl IssuedToUser,
) -> Result<Option<User>, OAuthError> {
    let Some(email) = record.user_email() else {
        return Ok(None);
    };
    Ok(app
        .store
        .get_user(&tenant.id, email)
        .await?
        .filter(|u| u.holds_grant(record.user_id(), record.user_epoch())))
}

/// [`standing_user`], or `invalid_grant` saying the user is gone.
pub(super) async fn require_user(
    app: &App,
    tenant: &Tenant,
    record: &impl IssuedToUser,
) -> Result<User, OAuthError> {
    standing_user(app, tenant, record)
        .await?
        .ok_or_else(user_gone)
}

pub(super) fn user_gone() -> OAuthError {
    invalid_grant("the user who authorized this is disabled, or no longer exists")
}

pub(super) async fn recognise(
    app: &App,
    tenant: &Tenant,
    issuer: &str,
    token: &str,
    now: UnixTime,
) -> Result<Option<Presented>, OAuthError> {
    if tokens::token_kid(token).is_some() {
        let keys = app
            .keys
            .key_set_for(app.store.as_ref(), &tenant.id, token, now)
            .await
            .map_err(token_error)?;
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

pub(super) async fn find_token(
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
