//! Approval: exactly once, only of the configuration shown, recorded apart from the client's
//! own record; edits keep the status.

use crate::support::{NOW, TTL, authorization_request, code_for, pending_client, quota};
use gatehouse_core::domain::{
    Client, ClientId, ClientMetadata, ClientStatus, ConsentMethod, RedirectUri, UnixTime,
};
use gatehouse_core::store::{Finish, FlowKeys, Store, StoreError};
use std::sync::Arc;

pub(crate) async fn approval_happens_exactly_once_and_ends_expiry(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let approved = store
        .approve_client(
            &c.tenant,
            &c.client_id,
            c.config_version,
            "admin-1",
            NOW + 10,
        )
        .await
        .expect("approve");
    assert_eq!(approved.status, ClientStatus::Approved);
    assert_eq!(approved.expires_at, None);
    assert_eq!(approved.approved_by.as_deref(), Some("admin-1"));
    assert_eq!(approved.approved_at, Some(NOW + 10));
    assert!(matches!(
        store
            .approve_client(
                &c.tenant,
                &c.client_id,
                c.config_version,
                "admin-2",
                NOW + 11
            )
            .await,
        Err(StoreError::Conflict)
    ));
    // Long after the pending lifetime the approved client is still there.
    let much_later = NOW + 10 * TTL;
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, much_later)
            .await
            .expect("get"),
        Some(approved)
    );
    assert!(matches!(
        store
            .approve_client(&c.tenant, &ClientId::generate(), 1, "admin-1", NOW)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn concurrent_approvals_have_one_winner(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let (t, id, v) = (c.tenant.clone(), c.client_id.clone(), c.config_version);
        tasks.push(tokio::spawn(async move {
            store.approve_client(&t, &id, v, "admin-1", NOW + 5).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => winners += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners, 1);
}

pub(crate) async fn edits_keep_status_and_never_resurrect(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let mut renamed = c.clone();
    renamed.metadata.client_name = "Renamed".into();
    store
        .update_client(&renamed, NOW + 1)
        .await
        .expect("edit a pending client");
    let approved = store
        .approve_client(&c.tenant, &c.client_id, c.config_version, "admin", NOW + 2)
        .await
        .expect("approve");
    assert_eq!(approved.metadata.client_name, "Renamed");
    // A stale pending copy cannot undo the approval.
    assert!(matches!(
        store.update_client(&renamed, NOW + 3).await,
        Err(StoreError::Conflict)
    ));
    let mut trusted = approved.clone();
    trusted.consent_method = ConsentMethod::Trusted;
    trusted.config_version = 2;
    store
        .update_approved_client(&trusted, NOW + 4)
        .await
        .expect("edit");
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, NOW + 5)
            .await
            .expect("get"),
        Some(trusted.clone())
    );
    store
        .delete_client(&c.tenant, &c.client_id, NOW + 6)
        .await
        .expect("delete");
    assert!(matches!(
        store.update_client(&trusted, NOW + 7).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, NOW + 7)
            .await
            .expect("get"),
        None
    );
    // An expired pending client cannot be edited back to life.
    let late = pending_client("acme", NOW);
    store
        .create_pending_client(&late, quota(10), NOW)
        .await
        .expect("create");
    assert!(matches!(
        store.update_client(&late, NOW + TTL + 1).await,
        Err(StoreError::NotFound)
    ));
}

/// An approval approves the configuration the administrator saw: once the client changed
/// itself (a new configuration version), neither approval path writes anything.
pub(crate) async fn approval_is_conditional_on_the_configuration_version(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let shown = c.clone();
    let mut changed = c.clone();
    changed.metadata.client_name = "Renamed".into();
    changed.config_version += 1;
    store
        .update_client(&changed, NOW + 1)
        .await
        .expect("update");

    let result = store
        .approve_client(
            &c.tenant,
            &c.client_id,
            shown.config_version,
            "admin-1",
            NOW + 2,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");

    let mut req = authorization_request("acme", NOW + 2);
    req.client_id = c.client_id.clone();
    store
        .put_authorization_request(&req)
        .await
        .expect("request");
    let mut code = code_for("acme", NOW + 3);
    code.client_id = c.client_id.clone();
    let result = store
        .finish_authorization(
            Finish {
                request: Some(&req),
                code: &code,
                consent: None,
                approve: Some((&shown, "admin-1")),
            },
            NOW + 3,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    let read = store
        .get_client(&c.tenant, &c.client_id, NOW + 4)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(read, changed, "still pending, as changed");
    assert!(
        store
            .get_authorization_request(&req.tenant, &req.id, NOW + 4)
            .await
            .expect("get")
            .is_some(),
        "the request was not consumed"
    );

    // The current version approves, in that configuration.
    let approved = store
        .approve_client(
            &c.tenant,
            &c.client_id,
            changed.config_version,
            "admin-1",
            NOW + 5,
        )
        .await
        .expect("approve");
    assert_eq!(approved.metadata.client_name, "Renamed");
    assert_eq!(approved.status, ClientStatus::Approved);
}

/// Only an administrator's write (an approval, `update_approved_client`, `create_client`)
/// changes what is approved. A client's own record that claims more — another configuration,
/// a redirect URI nobody approved, or approval itself — is refused as corrupt, on every read.
pub(crate) async fn approval_lives_in_its_own_record(store: Arc<dyn Store>) {
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let approved = store
        .approve_client(&c.tenant, &c.client_id, c.config_version, "admin", NOW + 1)
        .await
        .expect("approve");
    let read = |now: UnixTime| {
        let (store, t, id) = (Arc::clone(&store), c.tenant.clone(), c.client_id.clone());
        async move { store.get_client(&t, &id, now).await }
    };

    // What a client may change on its own: fine.
    let mut own = approved.clone();
    own.metadata.software_version = Some("2.0".into());
    own.metadata.redirect_uris.clear();
    let mut proposal = approved.metadata.clone();
    proposal.client_name = "Proposed".into();
    own.pending_changes = Some(proposal);
    store.update_client(&own, NOW + 2).await.expect("own edit");
    assert_eq!(read(NOW + 3).await.expect("read"), Some(own.clone()));

    // A record rewritten to change what was approved: refused on every read.
    for forged in [
        Client {
            metadata: ClientMetadata {
                client_name: "Forged".into(),
                ..own.metadata.clone()
            },
            ..own.clone()
        },
        Client {
            metadata: ClientMetadata {
                redirect_uris: vec![RedirectUri::parse("https://evil.example/cb").expect("uri")],
                ..own.metadata.clone()
            },
            ..own.clone()
        },
        Client {
            consent_method: ConsentMethod::Trusted,
            ..own.clone()
        },
    ] {
        store.update_client(&forged, NOW + 4).await.expect("write");
        assert!(matches!(read(NOW + 5).await, Err(StoreError::Corrupt(_))));
        let flow = store
            .load_flow(
                FlowKeys {
                    tenant: &c.tenant,
                    request_id: None,
                    client_id: Some(&c.client_id),
                    session_hash: None,
                },
                NOW + 5,
            )
            .await;
        assert!(matches!(flow, Err(StoreError::Corrupt(_))));
        assert!(matches!(
            store.list_clients(&c.tenant, NOW + 5).await,
            Err(StoreError::Corrupt(_))
        ));
        // An administrator's write puts it right (and records the approval).
        store
            .update_approved_client(&own, NOW + 6)
            .await
            .expect("admin edit");
        assert_eq!(read(NOW + 7).await.expect("read"), Some(own.clone()));
    }
    a_pending_record_claiming_approval_is_refused(&store).await;
}

/// A pending client's record claiming approval, with no approval record: refused.
async fn a_pending_record_claiming_approval_is_refused(store: &Arc<dyn Store>) {
    let p = pending_client("acme", NOW);
    store
        .create_pending_client(&p, quota(10), NOW)
        .await
        .expect("create");
    let mut claims = p.clone();
    claims.status = ClientStatus::Approved;
    assert!(matches!(
        store.update_client(&claims, NOW + 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_client(&p.tenant, &p.client_id, NOW + 2)
            .await
            .expect("read")
            .map(|c| c.status),
        Some(ClientStatus::Pending)
    );
}
