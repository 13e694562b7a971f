//! Tenants, pending clients (dynamic registration and Client ID Metadata Documents) and the
//! pending cap.

use crate::support::{NOW, TTL, pending_client, quota, tenant, tid};
use gatehouse_core::domain::{ClientId, CreatedByType, DocumentState};
use gatehouse_core::store::{Store, StoreError};
use std::sync::Arc;

pub(crate) async fn tenants_are_created_once_and_replaced_by_put(store: Arc<dyn Store>) {
    let mut t = tenant("acme");
    assert_eq!(store.get_tenant(&t.id).await.expect("get"), None);
    store.create_tenant(&t).await.expect("create");
    assert!(matches!(
        store.create_tenant(&t).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.get_tenant(&t.id).await.expect("get"), Some(t.clone()));
    t.dcr.enabled = false;
    t.dcr.pending_client_cap = 7;
    store.put_tenant(&t).await.expect("put");
    assert_eq!(store.get_tenant(&t.id).await.expect("get"), Some(t));
}

pub(crate) async fn a_pending_client_round_trips_within_its_tenant_only(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let got = store
        .get_client(&c.tenant, &c.client_id, NOW + 1)
        .await
        .expect("get");
    assert_eq!(got, Some(c.clone()));
    let elsewhere = store
        .get_client(&tid("other"), &c.client_id, NOW + 1)
        .await
        .expect("get");
    assert_eq!(elsewhere, None, "a client is invisible from another tenant");
    let unknown = store
        .get_client(&c.tenant, &ClientId::generate(), NOW)
        .await
        .expect("get");
    assert_eq!(unknown, None);
}

pub(crate) async fn an_expired_pending_client_reads_as_absent(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let exp = NOW + TTL;
    assert!(
        store
            .get_client(&c.tenant, &c.client_id, exp - 1)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, exp)
            .await
            .expect("get"),
        None,
        "past expires_at the client is gone even though no sweeper removed it"
    );
    assert!(
        store
            .list_clients(&c.tenant, exp)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        store
            .approve_client(&c.tenant, &c.client_id, c.config_version, "admin-1", exp)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn a_duplicate_client_id_is_refused_and_not_counted(store: Arc<dyn Store>) {
    let a = pending_client("acme", NOW);
    store
        .create_pending_client(&a, quota(2), NOW)
        .await
        .expect("first");
    assert!(matches!(
        store.create_pending_client(&a, quota(2), NOW).await,
        Err(StoreError::AlreadyExists)
    ));
    // Had the failed duplicate been counted, the cap of 2 would refuse this one.
    let b = pending_client("acme", NOW);
    store
        .create_pending_client(&b, quota(2), NOW)
        .await
        .expect("the duplicate attempt wrote nothing");
}

pub(crate) async fn the_pending_cap_holds_across_the_current_and_previous_window(
    store: Arc<dyn Store>,
) {
    for _ in 0..3 {
        store
            .create_pending_client(&pending_client("acme", NOW), quota(3), NOW)
            .await
            .expect("under the cap");
    }
    assert!(matches!(
        store
            .create_pending_client(&pending_client("acme", NOW), quota(3), NOW)
            .await,
        Err(StoreError::PendingCapReached)
    ));
    // Another tenant has its own quota.
    store
        .create_pending_client(&pending_client("other", NOW), quota(3), NOW)
        .await
        .expect("separate tenant");
    // One window later the previous window's registrations still count.
    let next = NOW + TTL;
    assert!(matches!(
        store
            .create_pending_client(&pending_client("acme", next), quota(3), next)
            .await,
        Err(StoreError::PendingCapReached)
    ));
    // Two windows later nothing counted can still be alive.
    let later = NOW + 2 * TTL;
    store
        .create_pending_client(&pending_client("acme", later), quota(3), later)
        .await
        .expect("quota renewed");
}

pub(crate) async fn a_zero_cap_means_no_cap(store: Arc<dyn Store>) {
    for _ in 0..25 {
        store
            .create_pending_client(&pending_client("acme", NOW), quota(0), NOW)
            .await
            .expect("uncapped");
    }
    assert_eq!(
        store
            .list_clients(&tid("acme"), NOW)
            .await
            .expect("list")
            .len(),
        25
    );
}

pub(crate) async fn concurrent_registrations_never_exceed_the_cap(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let client = pending_client("acme", NOW);
            let result = store.create_pending_client(&client, quota(5), NOW).await;
            (result, client)
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            (Ok(()), client) => created.push(client),
            (Err(StoreError::PendingCapReached), client) => {
                // A refused registration wrote nothing.
                assert_eq!(
                    store
                        .get_client(&client.tenant, &client.client_id, NOW)
                        .await
                        .expect("get"),
                    None
                );
            }
            (Err(other), _) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created.len(), 5);
    // Consistent reads (the listing index is eventually consistent on DynamoDB).
    for client in created {
        assert_eq!(
            store
                .get_client(&client.tenant, &client.client_id, NOW)
                .await
                .expect("get"),
            Some(client)
        );
    }
}

pub(crate) async fn clients_list_oldest_first_and_per_tenant(store: Arc<dyn Store>) {
    let first = pending_client("acme", NOW);
    let second = pending_client("acme", NOW + 5);
    let foreign = pending_client("other", NOW + 1);
    for c in [&second, &foreign, &first] {
        store
            .create_pending_client(c, quota(0), c.created_at)
            .await
            .expect("create");
    }
    let listed: Vec<ClientId> = store
        .list_clients(&tid("acme"), NOW + 6)
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(listed, vec![first.client_id, second.client_id]);
}

/// A Client ID Metadata Document client: its URL id, document cache state and proposed
/// changes round-trip; the same URL can be recorded again once its pending record expired (the
/// TTL sweeper may not have removed it yet), while a live one is never overwritten; and the
/// cache write-back is an ordinary conditional edit.
pub(crate) async fn a_metadata_document_client_round_trips_and_comes_back_after_expiry(
    store: Arc<dyn Store>,
) {
    let mut c = pending_client("acme", NOW);
    let url = format!("https://agent.example/clients/{}.json", c.client_id);
    c.client_id = ClientId::parse(&url).expect("url id");
    c.created_by = CreatedByType::Cimd;
    c.secret_hash = None;
    c.registration_token_hash = None;
    c.document = Some(DocumentState {
        fetched_at: NOW,
        fresh_until: NOW + 300,
    });
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let read = store
        .get_client(&c.tenant, &c.client_id, NOW + 1)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(read, c);
    // Live: a second record for the same URL is refused.
    let mut again = c.clone();
    again.created_at = NOW + 10;
    assert!(matches!(
        store
            .create_pending_client(&again, quota(10), NOW + 10)
            .await,
        Err(StoreError::AlreadyExists)
    ));
    // Expired but not swept: the URL is recorded anew.
    let later = NOW + TTL + 5;
    let mut fresh = c.clone();
    fresh.created_at = later;
    fresh.expires_at = Some(later + TTL);
    store
        .create_pending_client(&fresh, quota(10), later)
        .await
        .expect("re-create after expiry");
    let read = store
        .get_client(&c.tenant, &c.client_id, later)
        .await
        .expect("get")
        .expect("live again");
    assert_eq!(read.created_at, later);
    // Approve, then write back a refreshed document with a proposed change.
    let approved = store
        .approve_client(
            &c.tenant,
            &c.client_id,
            c.config_version,
            "admin-1",
            later + 1,
        )
        .await
        .expect("approve");
    let mut proposed = approved.metadata.clone();
    proposed.client_name = "Agent v2".into();
    let mut refreshed = approved.clone();
    refreshed.document = Some(DocumentState {
        fetched_at: later + 600,
        fresh_until: later + 900,
    });
    refreshed.pending_changes = Some(proposed);
    store
        .update_client(&refreshed, later + 600)
        .await
        .expect("write back");
    let read = store
        .get_client(&c.tenant, &c.client_id, later + 601)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(read, refreshed);
    assert_eq!(read.metadata.client_name, "Agent");
}
