//! The compact form the embedded store keeps clients in. A flood of registrations leaves up to
//! rate × lifetime pending clients in memory, so each costs what it must: one shared key
//! (`tenant/client_id`, also the index entry) and one JSON document of the rest, with the
//! fields the store decides on (expiry, status, version) beside it. A `Client` value with its
//! dozen small allocations is rebuilt only when one is read, as the DynamoDB adapter does from
//! its `doc` attribute.

use super::expiry::Expires;
use crate::domain::{
    Client, ClientId, ClientMetadata, ClientStatus, ConsentMethod, CreatedByType, DocumentState,
    TenantId, UnixTime,
};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::sync::Arc;

/// `tenant/client_id` (a tenant id holds no `/`), shared by the map and its expiry index.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct ClientKey(Arc<str>);

impl ClientKey {
    pub(super) fn new(tenant: &TenantId, id: &ClientId) -> Self {
        Self(Self::text(tenant, id).into())
    }

    /// The key as looked up (one allocation, no reference count).
    pub(super) fn text(tenant: &TenantId, id: &ClientId) -> String {
        format!("{tenant}/{id}")
    }

    pub(super) fn of(client: &Client) -> Self {
        Self::new(&client.tenant, &client.client_id)
    }

    pub(super) fn tenant_is(&self, tenant: &TenantId) -> bool {
        self.0
            .split_once('/')
            .is_some_and(|(t, _)| t == tenant.as_str())
    }

    fn parts(&self) -> Result<(TenantId, ClientId), StoreError> {
        self.0
            .split_once('/')
            .and_then(|(t, id)| Some((TenantId::parse(t)?, ClientId::parse(id)?)))
            .ok_or_else(|| StoreError::Corrupt(format!("bad client key {:?}", self.0)))
    }
}

impl Borrow<str> for ClientKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub(super) struct StoredClient {
    pub(super) expires_at: Option<UnixTime>,
    pub(super) status: ClientStatus,
    pub(super) config_version: u32,
    doc: Box<str>,
}

impl Expires for StoredClient {
    fn expiry(&self) -> Option<UnixTime> {
        self.expires_at
    }
}

impl StoredClient {
    pub(super) fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
    }

    pub(super) fn encode(client: &Client) -> Result<Self, StoreError> {
        let Client {
            tenant: _,
            client_id: _,
            secret_hash,
            status,
            created_by,
            consent_method,
            created_at,
            expires_at,
            approved_by,
            approved_at,
            registration_token_hash,
            config_version,
            metadata,
            pending_changes,
            document,
            vendor_trust,
        } = client;
        let doc = DocRef {
            secret_hash: secret_hash.as_deref(),
            created_by: *created_by,
            consent_method: *consent_method,
            created_at: *created_at,
            approved_by: approved_by.as_deref(),
            approved_at: *approved_at,
            registration_token_hash: registration_token_hash.as_deref(),
            metadata,
            pending_changes: pending_changes.as_ref(),
            document: document.as_ref(),
            vendor_trust: vendor_trust.as_deref(),
        };
        let doc = serde_json::to_string(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self {
            expires_at: *expires_at,
            status: *status,
            config_version: *config_version,
            doc: doc.into_boxed_str(),
        })
    }

    pub(super) fn decode(&self, key: &ClientKey) -> Result<Client, StoreError> {
        let (tenant, client_id) = key.parts()?;
        let doc: Doc =
            serde_json::from_str(&self.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Client {
            tenant,
            client_id,
            secret_hash: doc.secret_hash,
            status: self.status,
            created_by: doc.created_by,
            consent_method: doc.consent_method,
            created_at: doc.created_at,
            expires_at: self.expires_at,
            approved_by: doc.approved_by,
            approved_at: doc.approved_at,
            registration_token_hash: doc.registration_token_hash,
            config_version: self.config_version,
            metadata: doc.metadata,
            pending_changes: doc.pending_changes,
            document: doc.document,
            vendor_trust: doc.vendor_trust,
        })
    }
}

/// The rest of a client as written; names are short because there is one per client held.
#[derive(Serialize)]
struct DocRef<'a> {
    #[serde(rename = "s", skip_serializing_if = "Option::is_none")]
    secret_hash: Option<&'a str>,
    #[serde(rename = "b")]
    created_by: CreatedByType,
    #[serde(rename = "c")]
    consent_method: ConsentMethod,
    #[serde(rename = "t")]
    created_at: UnixTime,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    #[serde(rename = "at", skip_serializing_if = "Option::is_none")]
    approved_at: Option<UnixTime>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    registration_token_hash: Option<&'a str>,
    #[serde(rename = "m")]
    metadata: &'a ClientMetadata,
    #[serde(rename = "p", skip_serializing_if = "Option::is_none")]
    pending_changes: Option<&'a ClientMetadata>,
    #[serde(rename = "d", skip_serializing_if = "Option::is_none")]
    document: Option<&'a DocumentState>,
    #[serde(rename = "v", skip_serializing_if = "Option::is_none")]
    vendor_trust: Option<&'a str>,
}

/// [`DocRef`] as read back.
#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "s", default)]
    secret_hash: Option<String>,
    #[serde(rename = "b")]
    created_by: CreatedByType,
    #[serde(rename = "c")]
    consent_method: ConsentMethod,
    #[serde(rename = "t")]
    created_at: UnixTime,
    #[serde(rename = "a", default)]
    approved_by: Option<String>,
    #[serde(rename = "at", default)]
    approved_at: Option<UnixTime>,
    #[serde(rename = "r", default)]
    registration_token_hash: Option<String>,
    #[serde(rename = "m")]
    metadata: ClientMetadata,
    #[serde(rename = "p", default)]
    pending_changes: Option<ClientMetadata>,
    #[serde(rename = "d", default)]
    document: Option<DocumentState>,
    #[serde(rename = "v", default)]
    vendor_trust: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApplicationType, AuthMethod, GrantType, ResponseType, ScopeSet};

    fn metadata(name: &str) -> ClientMetadata {
        ClientMetadata {
            client_name: name.into(),
            redirect_uris: vec![
                crate::domain::RedirectUri::parse("https://client.example/cb")
                    .unwrap_or_else(|e| panic!("{e:?}")),
            ],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            response_types: vec![ResponseType::Code],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            scope: ScopeSet::default(),
            application_type: ApplicationType::Web,
            client_uri: Some("https://client.example".into()),
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            software_id: Some("agent".into()),
            software_version: Some("1.0".into()),
            contacts: vec!["ops@client.example".into()],
            id_token_signed_response_alg: None,
        }
    }

    fn client(id: &str) -> Client {
        Client {
            tenant: TenantId::parse("demo").unwrap_or_else(|| panic!()),
            client_id: ClientId::parse(id).unwrap_or_else(|| panic!()),
            secret_hash: Some("ab".repeat(32)),
            status: ClientStatus::Approved,
            created_by: CreatedByType::Cimd,
            consent_method: ConsentMethod::Trusted,
            created_at: 100,
            expires_at: None,
            approved_by: Some("admin".into()),
            approved_at: Some(150),
            registration_token_hash: None,
            config_version: 7,
            metadata: metadata("a"),
            pending_changes: Some(metadata("b")),
            vendor_trust: Some("ab".repeat(32)),
            document: Some(DocumentState {
                fetched_at: 1,
                fresh_until: 2,
            }),
        }
    }

    #[test]
    fn a_client_reads_back_as_written() {
        for id in ["0123abcd", "https://client.example/meta/doc.json?x=1"] {
            let full = client(id);
            let bare = Client {
                secret_hash: None,
                status: ClientStatus::Pending,
                expires_at: Some(500),
                approved_by: None,
                approved_at: None,
                registration_token_hash: Some("cd".repeat(32)),
                pending_changes: None,
                vendor_trust: None,
                document: None,
                ..full.clone()
            };
            for c in [full, bare] {
                let key = ClientKey::of(&c);
                let stored = StoredClient::encode(&c).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(stored.decode(&key).unwrap_or_else(|e| panic!("{e}")), c);
                assert!(key.tenant_is(&c.tenant));
            }
        }
    }
}
