//! Per-source shares of a tenant's pending quota (`PendingQuota::source`): one network
//! address cannot use up a tenant's registrations for everyone else, and a refused
//! registration stores nothing.

use crate::support::{NOW, TTL, pending_client, quota, tid};
use crate::trust::trusted_pair;
use gatehouse_core::domain::UnixTime;
use gatehouse_core::store::{PendingQuota, Store, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

fn from(cap: u32, source: &str, limit: u32) -> PendingQuota {
    let ip: IpAddr = source.parse().expect("an address");
    PendingQuota {
        source: Some((ip, limit)),
        ..quota(cap)
    }
}

async fn register(
    store: &Arc<dyn Store>,
    tenant: &str,
    quota: PendingQuota,
    now: UnixTime,
) -> Result<(), StoreError> {
    let client = pending_client(tenant, now);
    let result = store.create_pending_client(&client, quota, now).await;
    if result.is_err() {
        let stored = store
            .get_client(&client.tenant, &client.client_id, now)
            .await
            .expect("get");
        assert_eq!(stored, None, "a refused registration stored its client");
    }
    result
}

pub(crate) async fn one_source_uses_only_its_share_of_the_tenant_cap(store: Arc<dyn Store>) {
    let (a, b, c) = ("198.51.100.7", "2001:db8:1:2::", "203.0.113.9");
    for _ in 0..2 {
        register(&store, "acme", from(4, a, 2), NOW)
            .await
            .expect("within the source's share");
    }
    assert!(matches!(
        register(&store, "acme", from(4, a, 2), NOW + 1).await,
        Err(StoreError::SourceCapReached)
    ));
    // Other sources keep the rest of the tenant's cap, and the same source has its own share
    // with another tenant.
    for _ in 0..2 {
        register(&store, "acme", from(4, b, 2), NOW + 2)
            .await
            .expect("another source");
    }
    register(&store, "other", from(4, a, 2), NOW + 3)
        .await
        .expect("another tenant");
    // The tenant's cap still holds over all sources.
    assert!(matches!(
        register(&store, "acme", from(4, c, 2), NOW + 4).await,
        Err(StoreError::PendingCapReached)
    ));
    // A refused attempt was not counted: the tenant has exactly its four.
    let listed = store
        .list_clients(&tid("acme"), NOW + 5)
        .await
        .expect("list");
    assert_eq!(listed.len(), 4);
    // Two windows later (nothing counted can be alive) the source may register again.
    register(&store, "acme", from(4, a, 2), NOW + 2 * TTL)
        .await
        .expect("a new window");
}

pub(crate) async fn a_source_share_counts_only_the_current_window(store: Arc<dyn Store>) {
    let a = "198.51.100.8";
    register(&store, "acme", from(100, a, 1), NOW)
        .await
        .expect("first");
    assert!(matches!(
        register(&store, "acme", from(100, a, 1), NOW + TTL - 1).await,
        Err(StoreError::SourceCapReached)
    ));
    // The window of `quota(..)` is TTL seconds: the next one starts with a fresh share.
    let next = (NOW / TTL + 1) * TTL;
    register(&store, "acme", from(100, a, 1), next)
        .await
        .expect("the next window");
}

pub(crate) async fn concurrent_registrations_of_one_source_never_exceed_its_share(
    store: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            register(&store, "acme", from(100, "192.0.2.44", 3), NOW).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(()) => created += 1,
            Err(StoreError::SourceCapReached) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3);
    let listed = store.list_clients(&tid("acme"), NOW).await.expect("list");
    assert_eq!(listed.len(), 3);
}

pub(crate) async fn trusted_registrations_count_against_their_source(store: Arc<dyn Store>) {
    let (trust, first) = trusted_pair("acme");
    store.put_trust(&trust).await.expect("put");
    let q = from(100, "198.51.100.9", 1);
    store
        .create_trusted_client(&first, q, NOW + 10)
        .await
        .expect("first");
    let (_, second) = trusted_pair("acme");
    assert!(matches!(
        store.create_trusted_client(&second, q, NOW + 11).await,
        Err(StoreError::SourceCapReached)
    ));
    assert_eq!(
        store
            .get_client(&second.tenant, &second.client_id, NOW + 12)
            .await
            .expect("get"),
        None
    );
}
