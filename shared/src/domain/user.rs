use super::{Email, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
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
