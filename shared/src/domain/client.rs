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

/// How a client came to exist (`createdByType` in the admin API and its list filter).
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

/// The client's consent method: `Required` asks each user once per client configuration;
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
/// are judged by their own shape, never by this declaration: clients often omit it (it then
/// defaults to `web`) or declare it wrongly, and enforcing it would refuse working native apps.
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
    /// OpenID Connect Registration §2: how ID tokens for this client are signed; `None` is
    /// RS256.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id_token_signed_response_alg: Option<super::SigningAlg>,
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
    /// The configuration the client asked for (RFC 7592 update, changed metadata document)
    /// while approved, where it differs from the approved `metadata` in what people judge a
    /// client by. Used only once an administrator approves it ([`Client::approve_changes`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pending_changes: Option<ClientMetadata>,
    /// Client ID Metadata Document clients: the fetched document's cache state. `None` for
    /// every other client.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document: Option<DocumentState>,
    /// The vendor trust that approved this client at its registration (its id); such a client
    /// has no approval record until an administrator changes it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vendor_trust: Option<String>,
}

/// What Gatehouse knows of a CIMD client's metadata document (the storage-layer cache).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    /// When the document was last fetched and validated.
    pub fetched_at: UnixTime,
    /// Until when that copy may be used without fetching again (HTTP caching, bounded).
    pub fresh_until: UnixTime,
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

/// What an administrator approved, stored apart from the client's own record (DynamoDB:
/// `APPROVAL#…`, which only the admin function's role may write). A client record that claims
/// approval is believed only while it agrees with this ([`Client::agrees_with`]): code that may
/// rewrite client records (registration, RFC 7592, metadata-document caching) cannot approve a
/// client or change its approved configuration, even by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub config_version: u32,
    pub consent_method: ConsentMethod,
    pub metadata: ClientMetadata,
}

impl Approval {
    /// The approval of `client` as it is now (written with every approval and admin edit).
    pub fn of(client: &Client) -> Approval {
        Approval {
            config_version: client.config_version,
            consent_method: client.consent_method,
            metadata: client.metadata.clone(),
        }
    }
}

impl ClientMetadata {
    /// The judged metadata without its redirect URIs (compared on their own: a client may drop
    /// approved ones).
    fn judged_except_redirects(&self) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: Vec::new(),
            ..self.judged()
        }
    }

    /// The metadata without the fields nobody decides on when approving a client: the software
    /// version (a new release of the same application) and the contact addresses.
    fn judged(&self) -> ClientMetadata {
        ClientMetadata {
            software_version: None,
            contacts: Vec::new(),
            ..self.clone()
        }
    }
}

impl Client {
    /// The one way a client's own configuration changes (an RFC 7592 update, a re-fetched
    /// metadata document). A pending client takes `requested` as it is: nothing was approved
    /// yet; a changed configuration gets a new version, so an approval decided on the old one
    /// fails. An approved client keeps the approved configuration: it may drop redirect URIs
    /// (narrowing never reaches anyone new) and change its software version and contacts at
    /// once, and everything else people judge it by (name, redirect URIs, displayed URLs,
    /// scope, grant types) waits in `pending_changes` for an administrator.
    pub fn propose(mut self, requested: ClientMetadata) -> Client {
        match self.status {
            ClientStatus::Pending => {
                if requested != self.metadata {
                    self.config_version = self.config_version.saturating_add(1);
                    self.metadata = requested;
                }
                self.pending_changes = None;
            }
            ClientStatus::Approved => {
                self.metadata
                    .redirect_uris
                    .retain(|u| requested.redirect_uris.contains(u));
                self.metadata.software_version = requested.software_version.clone();
                self.metadata.contacts = requested.contacts.clone();
                self.pending_changes =
                    (requested.judged() != self.metadata.judged()).then_some(requested);
            }
        }
        self
    }

    /// An administrator approves the pending changes: they become the configuration in force,
    /// under a new version, so every user consents again. `None` when nothing is pending.
    pub fn approve_changes(mut self) -> Option<Client> {
        self.metadata = self.pending_changes.take()?;
        self.config_version = self.config_version.saturating_add(1);
        Some(self)
    }

    /// A digest of everything an administrator approves: the configuration in force with its
    /// version, and any pending changes. A console page carries it in its approval forms, and
    /// the approval goes through only while the client still has the same one — what was
    /// shown is what is approved.
    pub fn approval_digest(&self) -> String {
        let shown = serde_json::json!({
            "version": self.config_version,
            "metadata": self.metadata,
            "pending_changes": self.pending_changes,
        });
        crate::crypto::hash_secret(&shown.to_string())
    }

    /// Whether this record of an approved client agrees with its approval: the same version,
    /// consent method and judged configuration, and no redirect URI the administrator did not
    /// approve. What a client may change on its own (dropping redirect URIs, its software
    /// version and contacts, `pending_changes`) does not matter.
    pub fn agrees_with(&self, approval: &Approval) -> bool {
        self.config_version == approval.config_version
            && self.consent_method == approval.consent_method
            && self.metadata.judged_except_redirects()
                == approval.metadata.judged_except_redirects()
            && self
                .metadata
                .redirect_uris
                .iter()
                .all(|u| approval.metadata.redirect_uris.contains(u))
    }

    /// Whether the client exists at `now`: a pending client past its expiry is treated as
    /// deleted even while DynamoDB's lazy TTL sweeper has not removed it yet.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
    }
}
