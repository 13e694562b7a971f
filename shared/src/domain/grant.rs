//! What a redeemed authorization code becomes: a grant (one user's authorization of one client,
//! the "family" every token of it belongs to) and its rotating refresh tokens.

use super::{ClientId, ScopeSet, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub user_id: String,
    /// The user's email (the key of the user record): every use of the grant checks the user
    /// as stored now.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_email: Option<super::Email>,
    /// The user's `grant_epoch` when the grant began; disabling the user moves it on.
    #[serde(default)]
    pub user_epoch: u32,
    /// Scope as authorized. Later scope edits on the client do not change it: a scope
    /// change must not alter or cut off connections already made.
    pub scope: ScopeSet,
    pub resource: String,
    pub created_at: UnixTime,
    /// Absolute end of the grant: no token of it outlives this.
    pub expires_at: UnixTime,
    /// Set once, when the grant is revoked (revocation, code replay, refresh-token reuse).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revoked_at: Option<UnixTime>,
}

impl Grant {
    pub fn is_active(&self, now: UnixTime) -> bool {
        now < self.expires_at && self.revoked_at.is_none()
    }
}

/// A refresh token, keyed by the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub token_hash: String,
    pub tenant: TenantId,
    pub grant_id: String,
    pub client_id: ClientId,
    /// Copied from the grant so that a refresh needs no grant read: revocation is enforced by
    /// the rotation transaction's condition on the grant.
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_email: Option<super::Email>,
    /// The user's `grant_epoch` when the grant began; disabling the user moves it on.
    #[serde(default)]
    pub user_epoch: u32,
    pub scope: ScopeSet,
    pub resource: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Set when the token was exchanged for a successor. It stays usable for a short grace
    /// window after that, so that concurrent refreshes do not log the user out.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rotated_at: Option<UnixTime>,
}

impl RefreshToken {
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at
    }
}

/// The JWS algorithms Gatehouse signs with (RFC 7518 §3.1): ES256 for access tokens, and
/// RS256 (the OpenID Connect default) or ES256 for ID tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256. Keys stored before RS256 existed carry no `alg`: this.
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::ES256, SigningAlg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// The public half of a signing key, as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicSigningKey {
    pub kid: String,
    #[serde(default)]
    pub alg: SigningAlg,
    /// ES256: the P-256 coordinates, base64url.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub y: String,
    /// RS256: modulus and public exponent, base64url big-endian (RFC 7518 §6.3.1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub n: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
    pub created_at: UnixTime,
}

/// A record issued on a user's authority (a code, a grant, a refresh token): who, found by which
/// email, in which of the user's grant epochs. Every use re-reads the user by that email.
pub trait IssuedToUser {
    fn user_id(&self) -> &str;
    fn user_email(&self) -> Option<&super::Email>;
    fn user_epoch(&self) -> u32;
}

macro_rules! issued_to_user {
    ($($record:ty),*) => {$(
        impl IssuedToUser for $record {
            fn user_id(&self) -> &str {
                &self.user_id
            }
            fn user_email(&self) -> Option<&super::Email> {
                self.user_email.as_ref()
            }
            fn user_epoch(&self) -> u32 {
                self.user_epoch
            }
        }
    )*};
}

issued_to_user!(Grant, RefreshToken, super::AuthorizationCode);
