use super::{Email, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "user" => Some(Self::User),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

/// A tenant user who signs in on the hosted pages. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable opaque identifier: the `sub` of this user's tokens (emails can change).
    pub id: String,
    pub tenant: TenantId,
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixTime,
    /// Sessions carry the epoch they were opened in; disabling the user or resetting the
    /// password moves it on, which ends every open session at once.
    #[serde(default)]
    pub session_epoch: u32,
    /// Codes, grants and tokens carry the epoch they were issued in; disabling the user moves
    /// it on, so everything issued before stays dead, also after the user is enabled again.
    #[serde(default)]
    pub grant_epoch: u32,
    /// The user's full name, as an administrator entered it: the OpenID Connect `name` claim
    /// (Core §5.1) released by the `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

impl User {
    /// Whether this user, as stored now, still stands behind a session opened as
    /// `session_user_id` in `epoch`.
    pub fn holds_session(&self, session_user_id: &str, epoch: u32) -> bool {
        !self.disabled && self.id == session_user_id && self.session_epoch == epoch
    }

    /// Whether this user, as stored now, still stands behind a code or token of theirs issued
    /// in grant epoch `epoch`.
    pub fn holds_grant(&self, user_id: &str, epoch: u32) -> bool {
        !self.disabled && self.id == user_id && self.grant_epoch == epoch
    }

    /// Ends every session and every grant of the user (disabling).
    pub fn revoke_everything(&mut self) {
        self.end_sessions();
        self.grant_epoch = self.grant_epoch.wrapping_add(1);
    }

    /// Ends every open session of the user (disabling, a new password).
    pub fn end_sessions(&mut self) {
        self.session_epoch = self.session_epoch.wrapping_add(1);
    }
}

/// An admin API bearer token (`gha_{tenant}_{secret}`), stored by the SHA-256 of the whole
/// token. It acts for `email` only while that user is an enabled administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub token_hash: String,
    pub tenant: TenantId,
    pub email: Email,
    pub name: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl ApiToken {
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at
    }
}
