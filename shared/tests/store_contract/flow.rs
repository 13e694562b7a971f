//! The authorization flow: parked requests, sessions, consents, codes, one-call flow reads and
//! the atomic finish.

use crate::support::{NOW, TTL, authorization_request, code_for, pending_client, quota, tid};
use gatehouse_core::crypto;
use gatehouse_core::domain::{
    AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus, Consent, Email, Role,
    ScopeSet, Session,
};
use gatehouse_core::store::{Finish, FlowKeys, Store, StoreError};
use std::sync::Arc;

pub(crate) async fn authorization_requests_expire_and_are_taken_exactly_once(
    store: Arc<dyn Store>,
) {
    let r = authorization_request("acme", NOW);
    store.put_authorization_request(&r).await.expect("put");
    assert_eq!(
        store
            .get_authorization_request(&r.tenant, &r.id, NOW + 1)
            .await
            .expect("get"),
        Some(r.clone())
    );
    assert_eq!(
        store
            .get_authorization_request(&tid("other"), &r.id, NOW + 1)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .get_authorization_request(&r.tenant, &r.id, NOW + 600)
            .await
            .expect("get"),
        None,
        "expired requests read as absent"
    );
    assert_eq!(
        store
            .take_authorization_request(&r.tenant, &r.id, NOW + 600)
            .await
            .expect("take"),
        None,
        "an expired request cannot be taken"
    );
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&store);
        let (t, id) = (r.tenant.clone(), r.id.clone());
        tasks.push(tokio::spawn(async move {
            store.take_authorization_request(&t, &id, NOW + 2).await
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if let Some(got) = t.await.expect("join").expect("take") {
            assert_eq!(got, r);
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "one consent form submission wins");
    assert_eq!(
        store
            .get_authorization_request(&r.tenant, &r.id, NOW + 2)
            .await
            .expect("get"),
        None
    );
}

pub(crate) async fn sessions_are_tenant_scoped_and_expire(store: Arc<dyn Store>) {
    let s = Session {
        id_hash: crypto::hash_secret(&crypto::new_secret()),
        tenant: tid("acme"),
        user_id: "u1".into(),
        email: Email::parse("a@acme.test").expect("email"),
        role: Role::Admin,
        epoch: 0,
        grant_epoch: 0,
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_session(&s).await.expect("create");
    assert!(matches!(
        store.create_session(&s).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .get_session(&s.tenant, &s.id_hash, NOW + 99)
            .await
            .expect("get"),
        Some(s.clone())
    );
    assert_eq!(
        store
            .get_session(&tid("other"), &s.id_hash, NOW)
            .await
            .expect("get"),
        None,
        "a session from another tenant is not a session here"
    );
    assert_eq!(
        store
            .get_session(&s.tenant, &s.id_hash, NOW + 100)
            .await
            .expect("get"),
        None
    );
}

pub(crate) async fn consents_and_codes_round_trip(store: Arc<dyn Store>) {
    let client = ClientId::generate();
    let consent = Consent {
        tenant: tid("acme"),
        client_id: client.clone(),
        user_id: "u1".into(),
        config_version: 1,
        scope: ScopeSet::parse("mcp:execute").expect("scope"),
        granted_at: NOW,
    };
    assert_eq!(
        store
            .get_consent(&consent.tenant, &client, "u1")
            .await
            .expect("get"),
        None
    );
    store.put_consent(&consent).await.expect("put");
    let mut newer = consent.clone();
    newer.config_version = 2;
    store.put_consent(&newer).await.expect("replace");
    assert_eq!(
        store
            .get_consent(&consent.tenant, &client, "u1")
            .await
            .expect("get"),
        Some(newer)
    );
    assert_eq!(
        store
            .get_consent(&consent.tenant, &client, "u2")
            .await
            .expect("get"),
        None
    );

    let code = AuthorizationCode {
        code_hash: crypto::hash_secret(&crypto::new_secret()),
        tenant: tid("acme"),
        client_id: client,
        redirect_uri: "https://agent.example/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: ScopeSet::parse("mcp:execute").expect("scope"),
        resource: "https://mcp.example/mcp".into(),
        user_id: "u1".into(),
        user_email: None,
        user_epoch: 0,
        auth_time: NOW,
        expires_at: NOW + 300,
        redeemed_grant: None,
        nonce: None,
    };
    store.create_code(&code).await.expect("create");
    assert!(matches!(
        store.create_code(&code).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .get_code(&code.tenant, &code.code_hash, NOW + 299)
            .await
            .expect("get"),
        Some(code.clone())
    );
    assert_eq!(
        store
            .get_code(&code.tenant, &code.code_hash, NOW + 300)
            .await
            .expect("get"),
        None
    );
}

pub(crate) async fn a_flow_step_reads_request_client_and_session_in_one_call(
    store: Arc<dyn Store>,
) {
    let client = pending_client("acme", NOW);
    store
        .create_pending_client(&client, quota(0), NOW)
        .await
        .expect("client");
    let mut areq = authorization_request("acme", NOW);
    areq.client_id = client.client_id.clone();
    store
        .put_authorization_request(&areq)
        .await
        .expect("request");
    let session = Session {
        id_hash: crypto::hash_secret("session"),
        tenant: tid("acme"),
        user_id: "u1".into(),
        email: Email::parse("a@acme.test").expect("email"),
        role: Role::Admin,
        epoch: 0,
        grant_epoch: 0,
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_session(&session).await.expect("session");
    let all = store
        .load_flow(
            FlowKeys {
                tenant: &tid("acme"),
                request_id: Some(&areq.id),
                client_id: Some(&client.client_id),
                session_hash: Some(&session.id_hash),
            },
            NOW + 1,
        )
        .await
        .expect("load");
    assert_eq!(all.request, Some(areq.clone()));
    assert_eq!(all.client, Some(client.clone()));
    assert_eq!(all.session, Some(session.clone()));
    // Expired items and other tenants read as absent; keys not asked for are not read.
    let later = store
        .load_flow(
            FlowKeys {
                tenant: &tid("acme"),
                request_id: Some(&areq.id),
                client_id: Some(&client.client_id),
                session_hash: None,
            },
            NOW + 600,
        )
        .await
        .expect("load");
    assert_eq!((later.request, later.session), (None, None));
    assert_eq!(later.client, Some(client.clone()));
    let elsewhere = store
        .load_flow(
            FlowKeys {
                tenant: &tid("other"),
                request_id: Some(&areq.id),
                client_id: Some(&client.client_id),
                session_hash: Some(&session.id_hash),
            },
            NOW + 1,
        )
        .await
        .expect("load");
    assert!(
        elsewhere.request.is_none() && elsewhere.client.is_none() && elsewhere.session.is_none()
    );
}

pub(crate) async fn finishing_an_authorization_is_one_atomic_step(store: Arc<dyn Store>) {
    let client = pending_client("acme", NOW);
    store
        .create_pending_client(&client, quota(0), NOW)
        .await
        .expect("client");
    let mut areq = authorization_request("acme", NOW);
    areq.client_id = client.client_id.clone();
    store
        .put_authorization_request(&areq)
        .await
        .expect("request");
    let code_for_client = |now| {
        let mut code = code_for("acme", now);
        code.client_id = client.client_id.clone();
        code
    };
    let consent = Consent {
        tenant: tid("acme"),
        client_id: client.client_id.clone(),
        user_id: "admin-1".into(),
        config_version: 1,
        scope: areq.scope.clone(),
        granted_at: NOW + 5,
    };

    // Concurrent approvals of one parked request: exactly one finishes.
    let codes = (0..6).map(|_| code_for_client(NOW + 5)).collect();
    let issued = finish_concurrently(&store, &areq, &client, &consent, codes).await;
    assert_eq!(issued.len(), 1);
    let approved = store
        .get_client(&client.tenant, &client.client_id, NOW + 10 * TTL)
        .await
        .expect("get")
        .expect("approved clients do not expire");
    assert_eq!(approved.status, ClientStatus::Approved);
    assert_eq!(approved.approved_by.as_deref(), Some("admin-1"));
    assert_eq!(
        store
            .get_consent(&tid("acme"), &client.client_id, "admin-1")
            .await
            .expect("get"),
        Some(consent)
    );
    assert_eq!(
        store
            .get_authorization_request(&areq.tenant, &areq.id, NOW + 6)
            .await
            .expect("get"),
        None
    );
    assert!(
        store
            .get_code(&tid("acme"), &issued[0].code_hash, NOW + 6)
            .await
            .expect("get")
            .is_some()
    );

    an_expired_pending_client_is_not_approved_by_a_finish(&store, code_for_client(NOW + TTL)).await;
    a_finish_without_a_parked_request_issues_the_code(&store, code_for_client(NOW + 20)).await;
}

/// Finishes one parked request once per code, all at once; returns the codes that were issued.
async fn finish_concurrently(
    store: &Arc<dyn Store>,
    areq: &AuthorizationRequest,
    client: &Client,
    consent: &Consent,
    codes: Vec<AuthorizationCode>,
) -> Vec<AuthorizationCode> {
    let mut tasks = Vec::new();
    for code in codes {
        let (store, areq, client, consent) = (
            Arc::clone(store),
            areq.clone(),
            client.clone(),
            consent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let finish = Finish {
                request: Some(&areq),
                code: &code,
                consent: Some(&consent),
                approve: Some((&client, "admin-1")),
            };
            (store.finish_authorization(finish, NOW + 5).await, code)
        }));
    }
    let mut issued = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            (Ok(()), code) => issued.push(code),
            (Err(StoreError::NotFound | StoreError::Conflict), code) => {
                assert_eq!(
                    store
                        .get_code(&code.tenant, &code.code_hash, NOW + 6)
                        .await
                        .expect("get"),
                    None,
                    "a losing finish writes no code"
                );
            }
            (Err(other), _) => panic!("unexpected {other}"),
        }
    }
    issued
}

/// Approving an expired pending client writes nothing.
async fn an_expired_pending_client_is_not_approved_by_a_finish(
    store: &Arc<dyn Store>,
    mut late_code: AuthorizationCode,
) {
    let late = pending_client("acme", NOW);
    store
        .create_pending_client(&late, quota(0), NOW)
        .await
        .expect("client");
    let mut late_req = authorization_request("acme", NOW + TTL - 10);
    late_req.client_id = late.client_id.clone();
    store
        .put_authorization_request(&late_req)
        .await
        .expect("request");
    late_code.client_id = late.client_id.clone();
    let result = store
        .finish_authorization(
            Finish {
                request: Some(&late_req),
                code: &late_code,
                consent: None,
                approve: Some((&late, "admin-1")),
            },
            NOW + TTL,
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(
        store
            .get_authorization_request(&late_req.tenant, &late_req.id, NOW + TTL)
            .await
            .expect("get")
            .is_some(),
        "the request was not consumed"
    );
    assert_eq!(
        store
            .get_code(&tid("acme"), &late_code.code_hash, NOW + TTL)
            .await
            .expect("get"),
        None
    );
}

/// Without a parked request (issued straight from the authorization request).
async fn a_finish_without_a_parked_request_issues_the_code(
    store: &Arc<dyn Store>,
    direct: AuthorizationCode,
) {
    store
        .finish_authorization(
            Finish {
                request: None,
                code: &direct,
                consent: None,
                approve: None,
            },
            NOW + 20,
        )
        .await
        .expect("direct");
    assert!(
        store
            .get_code(&tid("acme"), &direct.code_hash, NOW + 21)
            .await
            .expect("get")
            .is_some()
    );
}
