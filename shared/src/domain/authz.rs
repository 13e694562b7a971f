//! Records of the authorization flow: pending authorization requests, sign-in sessions,
//! per-user consent, and authorization codes. Secrets among them (session ids, codes, the
//! browser binding) are stored only as SHA-256 hashes.

use super::{ClientId, RedirectUri, ScopeSet, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

/// An authorization request that passed client and redirect URI validation, parked while the
/// user signs in and decides (10 minutes by default). Its id travels in the hosted forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub id: String,
    pub tenant: TenantId,
    pub client_id: ClientId,
    /// The redirect URI as presented (it matched a registered one; loopback ports vary).
    pub redirect_uri: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: ScopeSet,
    pub resource: String,
    /// Form token embedded in every page of this request (compared in constant time).
    pub csrf_token: String,
    /// SHA-256 of the browser-binding cookie of the browser that started the request.
    pub browser_hash: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    #[serde(default, skip_serializing_if = "OpenIdParams::is_empty")]
    pub openid: OpenIdParams,
}

/// The OpenID Connect parameters of an authorization request (Core §3.1.2.1). They apply to
/// every request, `openid` scope or not: `prompt` and `max_age` say when the user must sign in
/// or consent again, which matters as much to an OAuth client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdParams {
    /// Returned unchanged in the ID token (replay defence for the client).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// The longest time, in seconds, since the user last signed in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_age: Option<u64>,
    /// `prompt=login` (or `select_account`): sign in for this request, whatever session exists.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub login: bool,
    /// `prompt=consent`: ask for consent even when it is on record (or the client is trusted).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub consent: bool,
    /// Prefills the sign-in form's email field; nothing else trusts it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub login_hint: Option<String>,
    /// The hash of the session this request found and refused (`prompt=login`, or a sign-in
    /// older than `max_age`): it may not answer the request's forms; a new sign-in must.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stale_session: Option<String>,
}

impl OpenIdParams {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a session that already existed when the request arrived, begun at
    /// `signed_in_at`, may answer it: not when the request asks for a fresh sign-in
    /// (`prompt=login`, or `max_age=0`, which Core §3.1.2.1 makes the same), nor when the sign-in
    /// is older than `max_age`.
    pub fn accepts_existing_session(&self, signed_in_at: UnixTime, now: UnixTime) -> bool {
        let age = u64::try_from(now.saturating_sub(signed_in_at)).unwrap_or(0);
        !self.login && self.max_age.is_none_or(|max| max > 0 && age <= max)
    }
}

/// A signed-in user, per tenant. The cookie carries the random session id; the store keeps its
/// SHA-256 as the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id_hash: String,
    pub tenant: TenantId,
    pub user_id: String,
    pub email: super::Email,
    /// The role at sign-in. Decisions never use it as it is: the hosted flow re-reads the
    /// user and overwrites it with the role stored now (`signin::current_session`).
    pub role: super::Role,
    /// The user's `session_epoch` at sign-in; a different one ends the session.
    #[serde(default)]
    pub epoch: u32,
    /// The user's `grant_epoch`, like `role` refreshed from the user stored now; codes issued
    /// through this session carry it.
    #[serde(default)]
    pub grant_epoch: u32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A user's consent to a client, for one configuration version of that client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub user_id: String,
    pub config_version: u32,
    pub scope: ScopeSet,
    pub granted_at: UnixTime,
}

/// An issued authorization code, keyed by the SHA-256 of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub user_id: String,
    /// The user's email (the key of the user record), so the token endpoint can check the
    /// user as stored now before the code becomes tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_email: Option<super::Email>,
    /// The user's `grant_epoch` when the code was issued.
    #[serde(default)]
    pub user_epoch: u32,
    /// When the user signed in (the session's start): the ID token's `auth_time`.
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    /// The authorization request's `nonce`, for the ID token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// The grant this code became, once redeemed; a second redemption revokes it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub redeemed_grant: Option<String>,
}

impl AuthorizationRequest {
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at
    }

    /// Whether the redirect URI is a registered one of the client (used by stored requests to
    /// guard against clients whose URIs changed in the meantime).
    pub fn redirect_still_registered(&self, uris: &[RedirectUri]) -> bool {
        uris.iter().any(|u| u.matches(&self.redirect_uri))
    }
}

impl Session {
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at
    }
}

impl AuthorizationCode {
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::OpenIdParams;

    #[test]
    fn an_existing_session_answers_unless_a_fresh_or_younger_sign_in_is_asked_for() {
        let plain = OpenIdParams::default();
        assert!(plain.accepts_existing_session(100, 10_000));
        let login = OpenIdParams {
            login: true,
            ..OpenIdParams::default()
        };
        assert!(!login.accepts_existing_session(10_000, 10_000));
        let max_age = |max| OpenIdParams {
            max_age: Some(max),
            ..OpenIdParams::default()
        };
        assert!(!max_age(0).accepts_existing_session(10_000, 10_000));
        assert!(max_age(60).accepts_existing_session(9_940, 10_000));
        assert!(!max_age(60).accepts_existing_session(9_939, 10_000));
    }
}
