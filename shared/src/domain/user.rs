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
