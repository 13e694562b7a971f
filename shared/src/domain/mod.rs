//! Domain types. Values are parsed once at the edge into these types; code past the edge never
//! handles a raw `String` where a `TenantId`, `ClientId`, `RedirectUri` or `ScopeSet` is meant.

mod audit;
mod authz;
mod client;
mod grant;
mod ids;
mod redirect_uri;
mod scope;
mod tenant;
mod trust;
mod user;

pub use audit::{AccessRequest, Actor, AuditEvent, ClientSummary, EventType, Requester};
pub use authz::{AuthorizationCode, AuthorizationRequest, Consent, OpenIdParams, Session};
pub use client::{
    ApplicationType, Approval, AuthMethod, Client, ClientMetadata, ClientStatus, ConsentMethod,
    CreatedByType, DocumentState, GrantType, ResponseType,
};
pub use grant::{Grant, IssuedToUser, PublicSigningKey, RefreshToken, SigningAlg};
pub use ids::{ClientId, Email, MAX_URL_CLIENT_ID, TenantId};
pub use redirect_uri::RedirectUri;
pub use scope::{OFFLINE_ACCESS, ScopeSet, ScopeToken};
pub use tenant::{DcrSettings, Tenant};
pub use trust::{TrustCreator, VendorTrust};
pub use user::{ApiToken, Role, User};

/// Seconds since the Unix epoch. Every time-dependent decision takes `now` as an argument so
/// that expiry is testable without sleeping.
pub type UnixTime = i64;

pub fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
