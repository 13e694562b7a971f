//! What happened in a tenant, and who asked for what: audit events (also the notifications an
//! administrator receives, `docs/events.md`) and users' requests for an administrator's approval
//! of a pending client.

use super::{Client, ClientId, TenantId, UnixTime};
use serde::{Deserialize, Serialize};

/// The kinds of audit event. Their names are the `type` of the audit API and the EventBridge
/// `DetailType` (`docs/events.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "client.registered")]
    ClientRegistered,
    #[serde(rename = "client.created")]
    ClientCreated,
    #[serde(rename = "client.access_requested")]
    AccessRequested,
    #[serde(rename = "client.approved")]
    ClientApproved,
    #[serde(rename = "client.changes_approved")]
    ChangesApproved,
    #[serde(rename = "client.rejected")]
    ClientRejected,
    #[serde(rename = "client.expired")]
    ClientExpired,
    #[serde(rename = "client.deleted")]
    ClientDeleted,
    #[serde(rename = "client.edited")]
    ClientEdited,
    #[serde(rename = "settings.changed")]
    SettingsChanged,
    #[serde(rename = "user.added")]
    UserAdded,
    #[serde(rename = "user.changed")]
    UserChanged,
    #[serde(rename = "api_token.created")]
    ApiTokenCreated,
    #[serde(rename = "api_token.revoked")]
    ApiTokenRevoked,
    #[serde(rename = "keys.rotated")]
    KeysRotated,
    #[serde(rename = "signin.succeeded")]
    SignInSucceeded,
    #[serde(rename = "signin.failed")]
    SignInFailed,
    #[serde(rename = "vendor_trust.created")]
    TrustCreated,
    #[serde(rename = "vendor_trust.revoked")]
    TrustRevoked,
}

impl EventType {
    pub const ALL: [EventType; 19] = [
        Self::ClientRegistered,
        Self::ClientCreated,
        Self::AccessRequested,
        Self::ClientApproved,
        Self::ChangesApproved,
        Self::ClientRejected,
        Self::ClientExpired,
        Self::ClientDeleted,
        Self::ClientEdited,
        Self::SettingsChanged,
        Self::UserAdded,
        Self::UserChanged,
        Self::ApiTokenCreated,
        Self::ApiTokenRevoked,
        Self::KeysRotated,
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::TrustCreated,
        Self::TrustRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientRegistered => "client.registered",
            Self::ClientCreated => "client.created",
            Self::AccessRequested => "client.access_requested",
            Self::ClientApproved => "client.approved",
            Self::ChangesApproved => "client.changes_approved",
            Self::ClientRejected => "client.rejected",
            Self::ClientExpired => "client.expired",
            Self::ClientDeleted => "client.deleted",
            Self::ClientEdited => "client.edited",
            Self::SettingsChanged => "settings.changed",
            Self::UserAdded => "user.added",
            Self::UserChanged => "user.changed",
            Self::ApiTokenCreated => "api_token.created",
            Self::ApiTokenRevoked => "api_token.revoked",
            Self::KeysRotated => "keys.rotated",
            Self::SignInSucceeded => "signin.succeeded",
            Self::SignInFailed => "signin.failed",
            Self::TrustCreated => "vendor_trust.created",
            Self::TrustRevoked => "vendor_trust.revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Whether administrators are notified of it (EventBridge): the life of a pending client,
    /// which nobody would otherwise see before it expires.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            Self::ClientRegistered
                | Self::AccessRequested
                | Self::ClientApproved
                | Self::ClientRejected
                | Self::ClientExpired
                | Self::ClientDeleted
        )
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Actor {
    /// A signed-in user or administrator of the tenant.
    User { id: String, email: String },
    /// An unauthenticated caller (a registrant; a failed sign-in names the address typed, when
    /// it is one).
    Anonymous {
        #[serde(skip_serializing_if = "Option::is_none", default)]
        email: Option<String>,
    },
    /// A client acting on its own registration (RFC 7592).
    Client { id: String },
    /// The operator CLI, with direct table access.
    Operator,
    /// Gatehouse itself (an expiry observed).
    System,
}

impl Actor {
    /// Whether a filter value names this actor: a user id, or an email (case-insensitively).
    pub fn matches(&self, wanted: &str) -> bool {
        match self {
            Self::User { id, email } => id == wanted || email.eq_ignore_ascii_case(wanted),
            Self::Anonymous { email } => email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(wanted)),
            Self::Client { id } => id == wanted,
            Self::Operator => wanted == "operator",
            Self::System => wanted == "system",
        }
    }
}

/// What an event says about the client it concerns: enough to decide without opening the
/// console (never a secret or a hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSummary {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub software_id: Option<String>,
    #[serde(rename = "createdByType")]
    pub created_by: super::CreatedByType,
    pub status: super::ClientStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_at: Option<UnixTime>,
}

impl ClientSummary {
    pub fn of(client: &Client) -> Self {
        Self {
            client_id: client.client_id.to_string(),
            client_name: client.metadata.client_name.clone(),
            redirect_uris: client
                .metadata
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            software_id: client.metadata.software_id.clone(),
            created_by: client.created_by,
            status: client.status,
            expires_at: client.expires_at,
        }
    }
}

/// Who asked an administrator to approve a pending client, and when (as events and the admin
/// API show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub user_id: String,
    pub email: String,
    pub requested_at: UnixTime,
}

/// One user's request that an administrator approve a pending client, as stored: it lives as
/// long as the pending client would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub requester: Requester,
    /// The pending client's expiry.
    pub expires_at: UnixTime,
}

/// One audit event (`docs/events.md`). Optional fields are absent, never `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 128 bits, hex: time-ordered within a second, then random (`crate::events`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: UnixTime,
    pub tenant: TenantId,
    pub actor: Actor,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client: Option<ClientSummary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub console_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub access_requests: Vec<Requester>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty", default)]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// When the stored copy is deleted (the tenant's retention); not part of the event.
    #[serde(skip)]
    pub expires_at: UnixTime,
}

impl AuditEvent {
    /// The listing order and pagination cursor: time, then id; newest first.
    pub fn sort_key(&self) -> String {
        format!("{:012}#{}", self.occurred_at.max(0), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::Value::String(t.as_str().to_owned()));
        }
        assert_eq!(EventType::parse("client"), None);
    }

    #[test]
    fn actors_match_by_id_or_email() {
        let a = Actor::User {
            id: "u1".into(),
            email: "Ann@demo.test".into(),
        };
        assert!(a.matches("u1") && a.matches("ann@demo.test"));
        assert!(!a.matches("u2"));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["type"], "user");
        let anon = serde_json::to_value(Actor::Anonymous { email: None }).unwrap();
        assert_eq!(anon, serde_json::json!({"type": "anonymous"}));
    }
}
