//! Vendor trusts: kept per tenant, revoked once; a client approved by one is created only
//! while it is active, counted against the registration quota, and believed on every read
//! only while the trust admits it.

use crate::support::{NOW, pending_client, quota, tenant};
use gatehouse_core::domain::{Client, ClientStatus, RedirectUri, TrustCreator, VendorTrust};
use gatehouse_core::store::{Store, StoreError};
use std::sync::Arc;

fn creator() -> TrustCreator {
    TrustCreator {
        id: "admin-1".into(),
        email: "admin@acme.test".into(),
    }
}

/// A trust founded on a pending client of `tenant`, and a later registration of the same
/// application, approved by it.
pub(crate) fn trusted_pair(tenant_id: &str) -> (VendorTrust, Client) {
    let founder = pending_client(tenant_id, NOW);
    let trust = VendorTrust::of(&founder, creator(), NOW);
    let later = pending_client(tenant_id, NOW + 10);
    let client = Client {
        status: ClientStatus::Approved,
        expires_at: None,
        approved_at: Some(NOW + 10),
        approved_by: Some(format!("vendor-trust:{}", trust.id)),
        vendor_trust: Some(trust.id.clone()),
        ..later
    };
    (trust, client)
}

pub(crate) async fn trusts_are_kept_per_tenant_and_revoked_once(store: Arc<dyn Store>) {
    let (trust, _) = trusted_pair("acme");
    store.put_trust(&trust).await.expect("put");
    let acme = tenant("acme").id;
    assert_eq!(
        store.get_trust(&acme, &trust.id).await.expect("get"),
        Some(trust.clone())
    );
    assert_eq!(
        store
            .get_trust(&tenant("other").id, &trust.id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store.list_trusts(&acme).await.expect("list"),
        vec![trust.clone()]
    );
    store
        .revoke_trust(&acme, &trust.id, NOW + 5)
        .await
        .expect("revoke");
    store
        .revoke_trust(&acme, &trust.id, NOW + 9)
        .await
        .expect("again");
    let revoked = store
        .get_trust(&acme, &trust.id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(
        revoked.revoked_at,
        Some(NOW + 5),
        "the first revocation time stays"
    );
    assert!(matches!(
        store.revoke_trust(&acme, &"0".repeat(64), NOW).await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn a_trusted_client_is_created_only_while_its_trust_is_active(
    store: Arc<dyn Store>,
) {
    let (trust, client) = trusted_pair("acme");
    assert!(
        matches!(
            store
                .create_trusted_client(&client, quota(10), NOW + 10)
                .await,
            Err(StoreError::Conflict)
        ),
        "no trust, no client"
    );
    store.put_trust(&trust).await.expect("put");
    store
        .create_trusted_client(&client, quota(10), NOW + 10)
        .await
        .expect("create");
    let read = store
        .get_client(&client.tenant, &client.client_id, NOW + 100_000)
        .await
        .expect("get")
        .expect("approved, never expiring");
    assert_eq!(read, client);
    assert!(matches!(
        store
            .create_trusted_client(&client, quota(10), NOW + 11)
            .await,
        Err(StoreError::AlreadyExists)
    ));
    // Revoked: no new client; the one it approved before stays believed.
    store
        .revoke_trust(&client.tenant, &trust.id, NOW + 20)
        .await
        .expect("revoke");
    let (_, another) = trusted_pair("acme");
    let another = Client {
        vendor_trust: Some(trust.id.clone()),
        ..another
    };
    assert!(matches!(
        store
            .create_trusted_client(&another, quota(10), NOW + 21)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_client(&another.tenant, &another.client_id, NOW + 22)
            .await
            .expect("get"),
        None
    );
    assert!(
        store
            .get_client(&client.tenant, &client.client_id, NOW + 22)
            .await
            .expect("still believed")
            .is_some()
    );
    let listed = store
        .list_clients(&client.tenant, NOW + 22)
        .await
        .expect("list");
    assert!(listed.iter().any(|c| c.client_id == client.client_id));
}

pub(crate) async fn trusted_registrations_count_against_the_quota(store: Arc<dyn Store>) {
    let (trust, first) = trusted_pair("acme");
    store.put_trust(&trust).await.expect("put");
    store
        .create_trusted_client(&first, quota(1), NOW + 10)
        .await
        .expect("first");
    let (_, second) = trusted_pair("acme");
    assert!(matches!(
        store
            .create_trusted_client(&second, quota(1), NOW + 11)
            .await,
        Err(StoreError::PendingCapReached)
    ));
    assert_eq!(
        store
            .get_client(&second.tenant, &second.client_id, NOW + 12)
            .await
            .expect("get"),
        None
    );
}

pub(crate) async fn a_client_its_trust_does_not_admit_is_refused(store: Arc<dyn Store>) {
    let (trust, client) = trusted_pair("acme");
    store.put_trust(&trust).await.expect("put");
    // A record naming the trust with another redirect URI: what a compromised writer without
    // the admin function's role could store. Every read refuses it.
    let mut other = client.clone();
    other.metadata.redirect_uris =
        vec![RedirectUri::parse("https://evil.example/cb").expect("uri")];
    store
        .create_trusted_client(&other, quota(10), NOW + 10)
        .await
        .expect("the write itself only checks the trust is active");
    assert!(matches!(
        store
            .get_client(&other.tenant, &other.client_id, NOW + 11)
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(pending_client("acme", NOW).vendor_trust.is_none());
}
