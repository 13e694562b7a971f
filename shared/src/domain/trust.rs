//! Vendor trust: an administrator's standing approval of one application's future
//! registrations. A registration is that application when its redirect URIs are exactly the
//! trusted set (all `https` on a DNS name: nobody else can receive codes there, unlike a
//! loopback or private-use-scheme URI that any local program can listen on), with the same
//! `token_endpoint_auth_method` and `software_id`. Only the admin function writes trust
//! records; the register function creates a client approved only in a transaction that checks
//! the trust is active, and every read of such a client checks it against the trust
//! (`crate::store::verified`).

use super::{AuthMethod, Client, ClientMetadata, ClientStatus, CreatedByType, TenantId, UnixTime};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Who created a trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustCreator {
    pub id: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTrust {
    #[serde(skip)]
    pub tenant: Option<TenantId>,
    /// The digest of what a registration must match ([`VendorTrust::id_of`]).
    pub id: String,
    pub created_at: UnixTime,
    pub created_by: TrustCreator,
    /// The approved client the trust was created with.
    pub client_id: String,
    pub client_name: String,
    /// Sorted.
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revoked_at: Option<UnixTime>,
}

/// The fields a registration must match, in a canonical order.
fn shape(metadata: &ClientMetadata) -> (Vec<String>, AuthMethod, Option<String>) {
    let mut uris: Vec<String> = metadata
        .redirect_uris
        .iter()
        .map(|u| u.as_str().to_owned())
        .collect();
    uris.sort();
    uris.dedup();
    (
        uris,
        metadata.token_endpoint_auth_method,
        metadata.software_id.clone(),
    )
}

/// Why a redirect URI cannot be trusted, if it cannot.
fn untrustable(raw: &str) -> Option<&'static str> {
    let Ok(url) = Url::parse(raw) else {
        return Some("a redirect URI does not parse");
    };
    if url.scheme() != "https" {
        return Some(
            "every redirect URI must be https: a loopback or private-use-scheme address can be received by any program on the user's device",
        );
    }
    match url.host() {
        Some(Host::Domain(d)) if d != "localhost" && !d.ends_with(".localhost") => None,
        _ => Some("every redirect URI must name a DNS host (not localhost or an IP address)"),
    }
}

impl VendorTrust {
    /// The trust id a registration with `metadata` would match: SHA-256 (hex) of its shape.
    pub fn id_of(metadata: &ClientMetadata) -> String {
        let json = serde_json::to_string(&shape(metadata)).unwrap_or_default();
        crate::crypto::hash_secret(&json)
    }

    /// Whether `client` may found a trust: a pending client registered through DCR whose
    /// redirect URIs all are `https` on a DNS name.
    pub fn eligibility(client: &Client) -> Result<(), &'static str> {
        if client.created_by != CreatedByType::Dcr {
            return Err(
                "only clients that registered themselves (createdByType dcr) can found a vendor trust",
            );
        }
        if client.metadata.redirect_uris.is_empty() {
            return Err("the client has no redirect URI");
        }
        match client
            .metadata
            .redirect_uris
            .iter()
            .find_map(|u| untrustable(u.as_str()))
        {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// A trust in `client`'s application, created now by an administrator.
    pub fn of(client: &Client, creator: TrustCreator, now: UnixTime) -> Self {
        let (redirect_uris, method, software_id) = shape(&client.metadata);
        Self {
            tenant: Some(client.tenant.clone()),
            id: Self::id_of(&client.metadata),
            created_at: now,
            created_by: creator,
            client_id: client.client_id.to_string(),
            client_name: client.metadata.client_name.clone(),
            redirect_uris,
            token_endpoint_auth_method: method,
            software_id,
            revoked_at: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether this trust stands behind `client` as an approval: the client says it was
    /// approved by this trust, is unchanged since (configuration version 1), has the trusted
    /// authentication method and software id and only trusted redirect URIs (RFC 7592 lets an
    /// approved client drop some at once, as for any approval), and was approved no later than
    /// any revocation (the creating transaction checked the trust was active then; seconds are
    /// this coarse, so a registration and a revocation in the same second both stand).
    pub fn admits(&self, client: &Client) -> bool {
        let (uris, method, software_id) = shape(&client.metadata);
        client.status == ClientStatus::Approved
            && client.vendor_trust.as_deref() == Some(self.id.as_str())
            && client.config_version == 1
            && client.created_by == CreatedByType::Dcr
            && !uris.is_empty()
            && uris.iter().all(|u| self.redirect_uris.contains(u))
            && method == self.token_endpoint_auth_method
            && software_id == self.software_id
            && client
                .approved_at
                .is_some_and(|at| self.revoked_at.is_none_or(|r| at <= r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApplicationType, ClientId, ConsentMethod, RedirectUri, ScopeSet};

    fn client(uris: &[&str], now: UnixTime) -> Client {
        Client {
            tenant: TenantId::parse("acme").unwrap(),
            client_id: ClientId::generate(),
            secret_hash: None,
            status: ClientStatus::Pending,
            created_by: CreatedByType::Dcr,
            consent_method: ConsentMethod::Required,
            created_at: now,
            expires_at: Some(now + 3600),
            approved_by: None,
            approved_at: None,
            registration_token_hash: None,
            config_version: 1,
            metadata: ClientMetadata {
                client_name: "Agent".into(),
                redirect_uris: uris
                    .iter()
                    .map(|u| RedirectUri::parse(u).unwrap())
                    .collect(),
                grant_types: Vec::new(),
                response_types: Vec::new(),
                token_endpoint_auth_method: AuthMethod::None,
                scope: ScopeSet::default(),
                application_type: ApplicationType::Web,
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
                software_id: Some("agent".into()),
                software_version: None,
                contacts: Vec::new(),
                id_token_signed_response_alg: None,
            },
            pending_changes: None,
            document: None,
            vendor_trust: None,
        }
    }

    fn approved_by(trust: &VendorTrust, mut c: Client, at: UnixTime) -> Client {
        c.status = ClientStatus::Approved;
        c.expires_at = None;
        c.approved_at = Some(at);
        c.vendor_trust = Some(trust.id.clone());
        c
    }

    fn creator() -> TrustCreator {
        TrustCreator {
            id: "a".into(),
            email: "a@acme.test".into(),
        }
    }

    #[test]
    fn only_https_on_dns_names_can_be_trusted() {
        let ok = client(&["https://app.example/cb", "https://app.example/cb2"], 0);
        assert!(VendorTrust::eligibility(&ok).is_ok());
        for bad in [
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "https://localhost/cb",
            "https://dev.localhost/cb",
            "https://10.0.0.1/cb",
            "https://[::1]/cb",
            "com.example.app:/cb",
        ] {
            let c = client(&["https://app.example/cb", bad], 0);
            assert!(VendorTrust::eligibility(&c).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_trust_id_ignores_order_and_admits_the_same_application_only() {
        let founder = client(&["https://app.example/a", "https://app.example/b"], 0);
        let trust = VendorTrust::of(&founder, creator(), 0);
        let same = client(&["https://app.example/b", "https://app.example/a"], 5);
        assert_eq!(VendorTrust::id_of(&same.metadata), trust.id);
        assert!(trust.admits(&approved_by(&trust, same.clone(), 5)));
        // A dropped redirect URI (RFC 7592) still stands; a new one does not.
        let fewer = client(&["https://app.example/a"], 5);
        assert!(trust.admits(&approved_by(&trust, fewer, 5)));
        let more = client(&["https://app.example/a", "https://evil.example/x"], 5);
        assert!(!trust.admits(&approved_by(&trust, more, 5)));
        let mut other_method = approved_by(&trust, same.clone(), 5);
        other_method.metadata.token_endpoint_auth_method = AuthMethod::ClientSecretBasic;
        assert!(!trust.admits(&other_method));
        let mut changed = approved_by(&trust, same.clone(), 5);
        changed.config_version = 2;
        assert!(
            !trust.admits(&changed),
            "changed since: needs an approval record"
        );
        // Approved no later than the revocation (same second included); not after.
        let revoked = VendorTrust {
            revoked_at: Some(5),
            ..trust.clone()
        };
        assert!(revoked.admits(&approved_by(&trust, same.clone(), 5)));
        assert!(!revoked.admits(&approved_by(&trust, same, 6)));
    }
}
