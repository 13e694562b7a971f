//! The audit trail (newest first, per tenant, expiring with the tenant's retention), users'
//! requests for an administrator's approval (once per user, only while the client is pending)
//! and rejection (only of a pending client).

use crate::support::{NOW, TTL, pending_client, quota, tenant};
use gatehouse_core::domain::{AccessRequest, Actor, AuditEvent, Client, EventType, Requester};
use gatehouse_core::store::{Store, StoreError};
use std::sync::Arc;

fn event(tenant_id: &str, at: i64, kind: EventType) -> AuditEvent {
    let mut e = AuditEvent::new(
        &tenant(tenant_id),
        kind,
        Actor::User {
            id: "u1".into(),
            email: "ann@acme.test".into(),
        },
        at,
    )
    .via("api")
    .detail("changed", vec!["scope"]);
    e.source_ip = Some("192.0.2.7".into());
    e
}

pub(crate) async fn audit_events_page_newest_first_per_tenant_and_expire(store: Arc<dyn Store>) {
    let mut written = Vec::new();
    for i in 0..5 {
        let e = event("acme", NOW + i, EventType::ClientEdited);
        store.put_audit_event(&e).await.expect("put");
        written.push(e);
    }
    store
        .put_audit_event(&event("other", NOW + 2, EventType::UserAdded))
        .await
        .expect("put other tenant");
    let mut expired = event("acme", NOW + 3, EventType::SignInFailed);
    expired.expires_at = NOW + 5;
    store.put_audit_event(&expired).await.expect("put expired");

    let acme = tenant("acme").id;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = store
            .list_audit_events(&acme, cursor.as_deref(), 2, NOW + 10)
            .await
            .expect("list");
        assert!(page.len() <= 2);
        seen.extend(page);
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    written.reverse();
    assert_eq!(
        seen, written,
        "every live event once, newest first, as written"
    );
    // Before its expiry the short-lived event is listed too.
    let (all, next) = store
        .list_audit_events(&acme, None, 100, NOW + 4)
        .await
        .expect("list");
    assert_eq!(all.len(), 6);
    assert_eq!(next, None);
    assert!(all.contains(&expired));
    let (none, _) = store
        .list_audit_events(&tenant("nobody").id, None, 10, NOW)
        .await
        .expect("list");
    assert!(none.is_empty());
}

fn ask(client: &Client, user: &str, at: i64) -> AccessRequest {
    AccessRequest {
        tenant: client.tenant.clone(),
        client_id: client.client_id.clone(),
        requester: Requester {
            user_id: user.into(),
            email: format!("{user}@acme.test"),
            requested_at: at,
        },
        expires_at: client.expires_at.unwrap_or(at),
    }
}

pub(crate) async fn access_requests_are_recorded_once_while_pending(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    assert!(
        store
            .request_access(&ask(&c, "u1", NOW + 1), NOW + 1)
            .await
            .expect("ask")
    );
    assert!(
        !store
            .request_access(&ask(&c, "u1", NOW + 2), NOW + 2)
            .await
            .expect("again")
    );
    assert!(
        store
            .request_access(&ask(&c, "u2", NOW + 3), NOW + 3)
            .await
            .expect("ask")
    );
    let listed = store
        .list_access_requests(&c.tenant, Some(&c.client_id), NOW + 4)
        .await
        .expect("list");
    assert_eq!(listed, vec![ask(&c, "u1", NOW + 1), ask(&c, "u2", NOW + 3)]);
    let other = pending_client("acme", NOW);
    store
        .create_pending_client(&other, quota(10), NOW)
        .await
        .expect("create");
    assert!(
        store
            .request_access(&ask(&other, "u1", NOW + 5), NOW + 5)
            .await
            .expect("ask")
    );
    let tenant_wide = store
        .list_access_requests(&c.tenant, None, NOW + 6)
        .await
        .expect("list");
    assert_eq!(tenant_wide.len(), 3);
    assert!(
        store
            .list_access_requests(&tenant("other").id, None, NOW + 6)
            .await
            .expect("list")
            .is_empty()
    );
    // Requests go with the pending client's expiry.
    assert!(
        store
            .list_access_requests(&c.tenant, None, NOW + TTL + 1)
            .await
            .expect("list")
            .is_empty()
    );
    nothing_to_ask_for_once_approved_or_gone(&store, &c, &other).await;
}

/// Approved or gone: nothing to ask for.
async fn nothing_to_ask_for_once_approved_or_gone(
    store: &Arc<dyn Store>,
    c: &Client,
    other: &Client,
) {
    store
        .approve_client(&c.tenant, &c.client_id, c.config_version, "admin", NOW + 7)
        .await
        .expect("approve");
    assert!(matches!(
        store.request_access(&ask(c, "u3", NOW + 8), NOW + 8).await,
        Err(StoreError::NotFound)
    ));
    let unknown = pending_client("acme", NOW);
    assert!(matches!(
        store
            .request_access(&ask(&unknown, "u1", NOW + 8), NOW + 8)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .request_access(&ask(other, "u9", NOW + TTL + 1), NOW + TTL + 1)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn concurrent_requests_of_one_user_record_one(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, request) = (store.clone(), ask(&c, "u1", NOW + 1));
            tokio::spawn(async move { store.request_access(&request, NOW + 1).await })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        if t.await.expect("join").expect("ask") {
            new += 1;
        }
    }
    assert_eq!(new, 1, "one request recorded, the others found it");
}

pub(crate) async fn a_rejection_deletes_only_a_pending_client(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    store
        .reject_client(&c.tenant, &c.client_id, NOW + 1)
        .await
        .expect("reject");
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, NOW + 2)
            .await
            .expect("get"),
        None
    );
    assert!(matches!(
        store.reject_client(&c.tenant, &c.client_id, NOW + 2).await,
        Err(StoreError::NotFound)
    ));
    let approved = pending_client("acme", NOW);
    store
        .create_pending_client(&approved, quota(10), NOW)
        .await
        .expect("create");
    store
        .approve_client(&approved.tenant, &approved.client_id, 1, "admin", NOW + 1)
        .await
        .expect("approve");
    assert!(matches!(
        store
            .reject_client(&approved.tenant, &approved.client_id, NOW + 2)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .get_client(&approved.tenant, &approved.client_id, NOW + 3)
            .await
            .expect("get")
            .is_some()
    );
    let expired = pending_client("acme", NOW);
    store
        .create_pending_client(&expired, quota(10), NOW)
        .await
        .expect("create");
    assert!(matches!(
        store
            .reject_client(&expired.tenant, &expired.client_id, NOW + TTL + 1)
            .await,
        Err(StoreError::NotFound)
    ));
}
