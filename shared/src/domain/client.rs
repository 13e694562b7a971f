use super::{ClientId, RedirectUri, ScopeSet, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    /// Registered, not yet approved by an administrator; deleted at `expires_at`.
    Pending,
    Approved,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
        }
    }
}

/// Seed 002's `createdByType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedByType {
    Dcr,
    User,
    Service,
    /// Identified by a Client ID Metadata Document URL, recorded on its first authorization
    /// request.
    Cimd,
}

/// Seed 002's consent method: `Required` asks each user once per client configuration;
/// `Trusted` skips the consent page. Every DCR client starts `Required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentMethod {
    Required,
    Trusted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    #[serde(rename = "none")]
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::None,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    /// Confidential clients receive a secret; `none` marks a public client (PKCE only).
    pub fn is_confidential(self) -> bool {
        !matches!(self, Self::None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    Code,
}

/// RFC 7591 / OpenID Connect Registration `application_type`. Stored and echoed; redirect URIs
/// are judged by their own shape, never by this declaration (hazard 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    Web,
    Native,
}

/// The client metadata of RFC 7591 §2 that Gatehouse accepts, after validation.
/// Optional fields are skipped when absent: a registration response never carries `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    pub token_endpoint_auth_method: AuthMethod,
    pub scope: ScopeSet,
    pub application_type: ApplicationType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub software_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub contacts: Vec<String>,
}

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub tenant: TenantId,
    pub client_id: ClientId,
    /// SHA-256 of the client secret (hex); `None` for public clients.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret_hash: Option<String>,
    pub status: ClientStatus,
    pub created_by: CreatedByType,
    pub consent_method: ConsentMethod,
    pub created_at: UnixTime,
    /// When an unapproved client stops existing. `None` once approved.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_at: Option<UnixTime>,
    /// Who approved the client (the administrator's user id) and when.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approved_at: Option<UnixTime>,
    /// SHA-256 (hex) of the RFC 7592 registration access token; `None` for clients created by
    /// an administrator (they are managed through the admin API instead).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registration_token_hash: Option<String>,
    /// Bumped whenever the client's configuration changes in a way users must re-consent to.
    pub config_version: u32,
    /// For the approved client: the metadata in force (for a CIMD client, as approved).
    pub metadata: ClientMetadata,
    /// Client ID Metadata Document clients: the fetched document's cache state and any change
    /// awaiting re-approval. `None` for every other client.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document: Option<DocumentState>,
}

/// What Gatehouse knows of a CIMD client's metadata document (the storage-layer cache).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    /// When the document was last fetched and validated.
    pub fetched_at: UnixTime,
    /// Until when that copy may be used without fetching again (HTTP caching, bounded).
    pub fresh_until: UnixTime,
    /// Metadata of a changed document that differs from the approved metadata (new redirect
    /// URIs, a new name...): an administrator must approve it before it is used.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proposed: Option<ClientMetadata>,
}

impl DocumentState {
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        now < self.fresh_until
    }
}

impl CreatedByType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dcr => "dcr",
            Self::User => "user",
            Self::Service => "service",
            Self::Cimd => "cimd",
        }
    }
}

impl ConsentMethod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "required" => Some(Self::Required),
            "trusted" => Some(Self::Trusted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Trusted => "trusted",
        }
    }
}

impl Client {
    /// Whether the client exists at `now`: a pending client past its expiry is treated as
    /// deleted even while DynamoDB's lazy TTL sweeper has not removed it yet.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
    }
}
