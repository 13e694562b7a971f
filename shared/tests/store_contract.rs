//! The storage contract: one suite, run against the embedded store and against DynamoDB
//! (moto's server, started by `tests/run`, via `GATEHOUSE_TEST_DYNAMODB_ENDPOINT`). Both
//! adapters must give the same answers, including expiry-on-read and exactly-once writes.

use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse_core::crypto;
use gatehouse_core::domain::{
    ApiToken, ApplicationType, AuthMethod, AuthorizationCode, AuthorizationRequest, Client,
    ClientId, ClientMetadata, ClientStatus, Consent, ConsentMethod, CreatedByType, DocumentState,
    Email, Grant, GrantType, PublicSigningKey, RedirectUri, RefreshToken, ResponseType, Role,
    ScopeSet, Session, Tenant, TenantId, UnixTime, User,
};
use gatehouse_core::store::dynamo::{DynamoStore, sdk_config};
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::store::{Finish, FlowKeys, PendingQuota, Store, StoreError};
use std::sync::Arc;

const NOW: UnixTime = 1_800_000_000;
const TTL: i64 = 3600;

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

async fn dynamodb() -> Arc<dyn Store> {
    Arc::new(dynamo_store().await)
}

async fn dynamo_store() -> DynamoStore {
    let endpoint = std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: the DynamoDB contract tests need a \
             DynamoDB API endpoint. Run ./tests/run, which starts moto's server and sets it."
        )
    });
    let shared = sdk_config(Some(&endpoint)).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&shared)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "contract-tests",
        ))
        .build();
    let table = format!("gatehouse-contract-{}", crypto::new_id());
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table);
    store.ensure_table().await.expect("create the test table");
    store
}

fn tenant(id: &str) -> Tenant {
    Tenant::new(TenantId::parse(id).expect("tenant id"), "Test tenant")
}

fn pending_client(tenant: &str, now: UnixTime) -> Client {
    Client {
        tenant: TenantId::parse(tenant).expect("tenant id"),
        client_id: ClientId::generate(),
        secret_hash: Some(crypto::hash_secret("s3cret")),
        status: ClientStatus::Pending,
        created_by: CreatedByType::Dcr,
        consent_method: ConsentMethod::Required,
        created_at: now,
        expires_at: Some(now + TTL),
        approved_by: None,
        approved_at: None,
        registration_token_hash: Some(crypto::hash_secret("rat")),
        config_version: 1,
        pending_changes: None,
        metadata: ClientMetadata {
            client_name: "Agent".into(),
            redirect_uris: vec![RedirectUri::parse("https://agent.example/cb").expect("uri")],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            response_types: vec![ResponseType::Code],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            scope: ScopeSet::parse("user_default mcp:execute offline_access").expect("scope"),
            application_type: ApplicationType::Web,
            client_uri: Some("https://agent.example".into()),
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            software_id: Some("agent-123".into()),
            software_version: None,
            contacts: vec![],
        },
        document: None,
    }
}

fn quota(cap: u32) -> PendingQuota {
    PendingQuota {
        cap,
        window_secs: TTL as u64,
    }
}

fn tid(id: &str) -> TenantId {
    TenantId::parse(id).expect("tenant id")
}

// ---------------------------------------------------------------- the contract

async fn tenants_are_created_once_and_replaced_by_put(store: Arc<dyn Store>) {
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

async fn a_pending_client_round_trips_within_its_tenant_only(store: Arc<dyn Store>) {
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

async fn an_expired_pending_client_reads_as_absent(store: Arc<dyn Store>) {
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

async fn a_duplicate_client_id_is_refused_and_not_counted(store: Arc<dyn Store>) {
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

async fn the_pending_cap_holds_across_the_current_and_previous_window(store: Arc<dyn Store>) {
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

async fn a_zero_cap_means_no_cap(store: Arc<dyn Store>) {
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

async fn concurrent_registrations_never_exceed_the_cap(store: Arc<dyn Store>) {
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

async fn approval_happens_exactly_once_and_ends_expiry(store: Arc<dyn Store>) {
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

async fn concurrent_approvals_have_one_winner(store: Arc<dyn Store>) {
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

async fn clients_list_oldest_first_and_per_tenant(store: Arc<dyn Store>) {
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

async fn users_are_created_once_and_replaced_by_put(store: Arc<dyn Store>) {
    let mut user = User {
        id: crypto::new_id(),
        tenant: tid("acme"),
        email: Email::parse("Admin@Acme.Test").expect("email"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Admin,
        disabled: false,
        created_at: NOW,
        session_epoch: 0,
        grant_epoch: 0,
    };
    let email = Email::parse("admin@acme.test").expect("email");
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        None
    );
    store.create_user(&user).await.expect("create");
    assert!(matches!(
        store.create_user(&user).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(
        store.get_user(&tid("other"), &email).await.expect("get"),
        None
    );
    user.disabled = true;
    user.role = Role::User;
    store.put_user(&user).await.expect("put");
    assert_eq!(
        store.get_user(&user.tenant, &email).await.expect("get"),
        Some(user)
    );
}

fn authorization_request(tenant: &str, now: UnixTime) -> AuthorizationRequest {
    AuthorizationRequest {
        id: crypto::new_secret(),
        tenant: tid(tenant),
        client_id: ClientId::generate(),
        redirect_uri: "http://127.0.0.1:4312/cb".into(),
        state: Some("xyz".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: ScopeSet::parse("mcp:execute").expect("scope"),
        resource: "https://mcp.example/mcp".into(),
        csrf_token: crypto::new_secret(),
        browser_hash: crypto::hash_secret("browser"),
        created_at: now,
        expires_at: now + 600,
    }
}

async fn authorization_requests_expire_and_are_taken_exactly_once(store: Arc<dyn Store>) {
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

async fn sessions_are_tenant_scoped_and_expire(store: Arc<dyn Store>) {
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

async fn consents_and_codes_round_trip(store: Arc<dyn Store>) {
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

fn code_for(tenant: &str, now: UnixTime) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: crypto::hash_secret(&crypto::new_secret()),
        tenant: tid(tenant),
        client_id: ClientId::generate(),
        redirect_uri: "https://agent.example/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: ScopeSet::parse("mcp:execute offline_access").expect("scope"),
        resource: "https://mcp.example/mcp".into(),
        user_id: "u1".into(),
        user_email: None,
        user_epoch: 0,
        auth_time: now,
        expires_at: now + 300,
        redeemed_grant: None,
    }
}

/// Stores an approved client for a code's `client_id` (a code is redeemable only while its
/// client exists).
async fn client_of(store: &Arc<dyn Store>, code: &AuthorizationCode) {
    let mut client = pending_client(code.tenant.as_str(), NOW);
    client.client_id = code.client_id.clone();
    client.status = ClientStatus::Approved;
    client.expires_at = None;
    store.create_client(&client).await.expect("client");
}

fn grant_for(code: &AuthorizationCode, now: UnixTime) -> Grant {
    Grant {
        id: crypto::new_id(),
        tenant: code.tenant.clone(),
        client_id: code.client_id.clone(),
        user_id: code.user_id.clone(),
        user_email: None,
        user_epoch: 0,
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        created_at: now,
        expires_at: now + 86_400,
        revoked_at: None,
    }
}

fn refresh_for(grant: &Grant, now: UnixTime) -> RefreshToken {
    RefreshToken {
        token_hash: crypto::hash_secret(&crypto::new_secret()),
        tenant: grant.tenant.clone(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        user_email: None,
        user_epoch: 0,
        scope: grant.scope.clone(),
        resource: grant.resource.clone(),
        created_at: now,
        expires_at: grant.expires_at,
        rotated_at: None,
    }
}

async fn codes_are_redeemed_exactly_once_with_their_grant(store: Arc<dyn Store>) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("create");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            let grant = grant_for(&code, NOW);
            let refresh = refresh_for(&grant, NOW);
            let result = store
                .redeem_code(&code, &grant, Some(&refresh), NOW + 1)
                .await;
            (result, grant, refresh)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("join") {
            (Ok(()), grant, refresh) => winners.push((grant, refresh)),
            (Err(StoreError::Conflict), _, _) => {}
            (Err(other), _, _) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    let (grant, refresh) = winners.remove(0);
    let stored = store
        .get_code(&code.tenant, &code.code_hash, NOW + 2)
        .await
        .expect("get")
        .expect("redeemed codes stay readable until they expire");
    assert_eq!(stored.redeemed_grant.as_deref(), Some(grant.id.as_str()));
    assert_eq!(
        store
            .get_grant(&grant.tenant, &grant.id)
            .await
            .expect("grant"),
        Some(grant.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(&refresh.tenant, &refresh.token_hash, NOW + 2)
            .await
            .expect("refresh"),
        Some(refresh)
    );
    // An expired code cannot be redeemed.
    let late = code_for("acme", NOW);
    store.create_code(&late).await.expect("create");
    let g = grant_for(&late, NOW);
    assert!(matches!(
        store.redeem_code(&late, &g, None, NOW + 300).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_grant(&g.tenant, &g.id).await.expect("get"), None);
}

async fn refresh_rotation_honours_the_grace_window_and_revocation(store: Arc<dyn Store>) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("create");
    let grant = grant_for(&code, NOW);
    let first = refresh_for(&grant, NOW);
    store
        .redeem_code(&code, &grant, Some(&first), NOW)
        .await
        .expect("redeem");

    // Concurrent refreshes with the same token inside the grace window all succeed.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&store);
        let (old, next) = (first.clone(), refresh_for(&grant, NOW + 10));
        tasks.push(tokio::spawn(async move {
            store.rotate_refresh_token(&old, &next, 30, NOW + 10).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("within the grace window");
    }
    let rotated = store
        .get_refresh_token(&first.tenant, &first.token_hash, NOW + 11)
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(
        rotated.rotated_at,
        Some(NOW + 10),
        "the first rotation time stays"
    );

    // After the grace window, reuse is refused.
    let after = refresh_for(&grant, NOW + 40);
    assert!(matches!(
        store
            .rotate_refresh_token(&first, &after, 30, NOW + 40)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_refresh_token(&after.tenant, &after.token_hash, NOW + 40)
            .await
            .expect("get"),
        None,
        "a refused rotation writes nothing"
    );

    // Once the grant is revoked, no token of it rotates.
    let second = refresh_for(&grant, NOW + 50);
    store
        .rotate_refresh_token(&first, &second, 1000, NOW + 45)
        .await
        .expect("wide grace");
    store
        .revoke_grant(&grant.tenant, &grant.id, NOW + 60)
        .await
        .expect("revoke");
    store
        .revoke_grant(&grant.tenant, &grant.id, NOW + 70)
        .await
        .expect("idempotent");
    let revoked = store
        .get_grant(&grant.tenant, &grant.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(revoked.revoked_at, Some(NOW + 60));
    assert!(!revoked.is_active(NOW + 61));
    let third = refresh_for(&grant, NOW + 80);
    assert!(matches!(
        store
            .rotate_refresh_token(&second, &third, 30, NOW + 80)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .revoke_grant(&grant.tenant, "no-such-grant", NOW)
        .await
        .expect("revoking an unknown grant is a no-op");
}

async fn signing_keys_keep_private_halves_apart(store: Arc<dyn Store>) {
    assert!(store.list_public_keys().await.expect("list").is_empty());
    let older = PublicSigningKey {
        kid: "k1".into(),
        x: "x1".into(),
        y: "y1".into(),
        created_at: NOW,
    };
    let newer = PublicSigningKey {
        kid: "k2".into(),
        x: "x2".into(),
        y: "y2".into(),
        created_at: NOW + 100,
    };
    store
        .add_signing_key(&older, "cHJpdjE=")
        .await
        .expect("add");
    store
        .add_signing_key(&newer, "cHJpdjI=")
        .await
        .expect("add");
    let listed = store.list_public_keys().await.expect("list");
    assert_eq!(listed, vec![newer, older], "newest first");
    assert_eq!(
        store.get_private_key("k1").await.expect("get").as_deref(),
        Some("cHJpdjE=")
    );
    assert_eq!(store.get_private_key("nope").await.expect("get"), None);
}

async fn a_flow_step_reads_request_client_and_session_in_one_call(store: Arc<dyn Store>) {
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

async fn finishing_an_authorization_is_one_atomic_step(store: Arc<dyn Store>) {
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
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (store, areq, client, consent) = (
            Arc::clone(&store),
            areq.clone(),
            client.clone(),
            consent.clone(),
        );
        let code = code_for_client(NOW + 5);
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

    // Approving an expired pending client writes nothing.
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
    let mut late_code = code_for_client(NOW + TTL);
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

    // Without a parked request (issued straight from the authorization request).
    let direct = code_for_client(NOW + 20);
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

// ---------------------------------------------------------------- administration

async fn tenants_and_users_are_listed_per_tenant(store: Arc<dyn Store>) {
    for id in ["beta", "alpha"] {
        store.create_tenant(&tenant(id)).await.expect("create");
    }
    let ids: Vec<String> = store
        .list_tenants()
        .await
        .expect("list")
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    for (t, email) in [
        ("alpha", "zed@a.test"),
        ("alpha", "amy@a.test"),
        ("beta", "bob@b.test"),
    ] {
        let user = User {
            id: crypto::new_id(),
            tenant: tid(t),
            email: Email::parse(email).expect("email"),
            password_hash: "x".into(),
            role: Role::User,
            disabled: false,
            created_at: NOW,
            session_epoch: 0,
            grant_epoch: 0,
        };
        store.create_user(&user).await.expect("create");
    }
    let emails: Vec<String> = store
        .list_users(&tid("alpha"))
        .await
        .expect("list")
        .iter()
        .map(|u| u.email.to_string())
        .collect();
    assert_eq!(emails, ["amy@a.test", "zed@a.test"]);
}

async fn client_pages_walk_every_live_client_once(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut c = pending_client("acme", NOW + i);
        if i == 2 {
            c.expires_at = Some(NOW + 3); // expired by the time we list
        }
        store
            .create_pending_client(&c, quota(0), NOW + i)
            .await
            .expect("create");
        if i != 2 {
            ids.push(c.client_id.to_string());
        }
    }
    store
        .create_pending_client(&pending_client("other", NOW), quota(0), NOW)
        .await
        .expect("create");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .list_clients_page(&tid("acme"), after.as_deref(), 2, NOW + 10)
            .await
            .expect("page");
        pages += 1;
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|c| c.client_id.to_string()));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "oldest first, each live client once, expired skipped"
    );
    assert_eq!(pages, 2);
}

async fn edits_keep_status_and_never_resurrect(store: Arc<dyn Store>) {
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

async fn deleting_a_client_revokes_its_grants(store: Arc<dyn Store>) {
    let mut client = pending_client("acme", NOW);
    client.status = ClientStatus::Approved;
    client.expires_at = None;
    client.created_by = CreatedByType::User;
    store.create_client(&client).await.expect("create");
    assert!(matches!(
        store.create_client(&client).await,
        Err(StoreError::AlreadyExists)
    ));
    let mut code = code_for("acme", NOW);
    code.client_id = client.client_id.clone();
    store.create_code(&code).await.expect("code");
    let grant = grant_for(&code, NOW);
    store
        .redeem_code(&code, &grant, None, NOW)
        .await
        .expect("redeem");
    let bystander_code = code_for("acme", NOW);
    client_of(&store, &bystander_code).await;
    store.create_code(&bystander_code).await.expect("code");
    let bystander = grant_for(&bystander_code, NOW);
    store
        .redeem_code(&bystander_code, &bystander, None, NOW)
        .await
        .expect("redeem");

    store
        .delete_client(&client.tenant, &client.client_id, NOW + 1)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_client(&client.tenant, &client.client_id, NOW + 1)
            .await
            .expect("get"),
        None
    );
    let revoked = store
        .get_grant(&tid("acme"), &grant.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(revoked.revoked_at, Some(NOW + 1));
    let untouched = store
        .get_grant(&tid("acme"), &bystander.id)
        .await
        .expect("get")
        .expect("grant");
    assert_eq!(untouched.revoked_at, None, "other clients' grants stay");
    assert!(matches!(
        store
            .delete_client(&client.tenant, &client.client_id, NOW + 2)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn a_code_of_a_deleted_client_cannot_be_redeemed(store: Arc<dyn Store>) {
    let code = code_for("acme", NOW);
    client_of(&store, &code).await;
    store.create_code(&code).await.expect("code");
    store
        .delete_client(&code.tenant, &code.client_id, NOW + 1)
        .await
        .expect("delete");
    let grant = grant_for(&code, NOW + 2);
    assert!(matches!(
        store.redeem_code(&code, &grant, None, NOW + 2).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_grant(&grant.tenant, &grant.id)
            .await
            .expect("get"),
        None,
        "no grant escapes the deletion"
    );
}

async fn api_tokens_and_sessions_end(store: Arc<dyn Store>) {
    let token = ApiToken {
        token_hash: crypto::hash_secret("gha_acme_x"),
        tenant: tid("acme"),
        email: Email::parse("admin@acme.test").expect("email"),
        name: "ci".into(),
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_api_token(&token).await.expect("create");
    assert!(matches!(
        store.create_api_token(&token).await,
        Err(StoreError::AlreadyExists)
    ));
    let get = |tenant: &'static str, at: UnixTime| {
        let store = store.clone();
        let hash = token.token_hash.clone();
        async move {
            store
                .get_api_token(&tid(tenant), &hash, at)
                .await
                .expect("get")
        }
    };
    assert_eq!(get("acme", NOW + 1).await, Some(token.clone()));
    assert_eq!(get("other", NOW + 1).await, None);
    assert_eq!(get("acme", NOW + 100).await, None, "expired on read");
    store
        .delete_api_token(&tid("acme"), &token.token_hash)
        .await
        .expect("delete");
    assert_eq!(get("acme", NOW + 1).await, None);

    let session = Session {
        id_hash: crypto::hash_secret("sid"),
        tenant: tid("acme"),
        user_id: "u1".into(),
        email: Email::parse("admin@acme.test").expect("email"),
        role: Role::Admin,
        epoch: 0,
        grant_epoch: 0,
        created_at: NOW,
        expires_at: NOW + 100,
    };
    store.create_session(&session).await.expect("create");
    store
        .delete_session(&tid("acme"), &session.id_hash)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_session(&tid("acme"), &session.id_hash, NOW + 1)
            .await
            .expect("get"),
        None
    );
}

/// A Client ID Metadata Document client: its URL id, document cache state and proposed
/// changes round-trip; the same URL can be recorded again once its pending record expired (the
/// TTL sweeper may not have removed it yet), while a live one is never overwritten; and the
/// cache write-back is an ordinary conditional edit.
async fn a_metadata_document_client_round_trips_and_comes_back_after_expiry(store: Arc<dyn Store>) {
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

/// An approval approves the configuration the administrator saw: once the client changed
/// itself (a new configuration version), neither approval path writes anything.
async fn approval_is_conditional_on_the_configuration_version(store: Arc<dyn Store>) {
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

/// Sign-in attempts are counted per account and window, atomically, until the window's end;
/// a successful one is taken back.
async fn signin_attempts_are_counted_per_account_and_window(store: Arc<dyn Store>) {
    let t = tid("acme");
    let (a, b) = (
        crypto::hash_secret("a@acme.test"),
        crypto::hash_secret("b@acme.test"),
    );
    let window = NOW / 60;
    let end = (window + 1) * 60;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, t, a) = (Arc::clone(&store), t.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            store.count_signin_attempt(&t, &a, window, end, NOW).await
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.expect("join").expect("count"));
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<u32>>(),
        "every attempt counted once"
    );
    let count = |store: &Arc<dyn Store>, t: &TenantId, acct: &str, w: i64, now: UnixTime| {
        let (store, t, acct) = (Arc::clone(store), t.clone(), acct.to_owned());
        async move {
            store
                .count_signin_attempt(&t, &acct, w, (w + 1) * 60, now)
                .await
                .expect("count")
        }
    };
    // Another account, tenant or window starts at one.
    assert_eq!(count(&store, &t, &b, window, NOW + 1).await, 1);
    assert_eq!(count(&store, &tid("other"), &a, window, NOW + 1).await, 1);
    assert_eq!(count(&store, &t, &a, window + 1, NOW + 61).await, 1);
    // A success is taken back; taking back never goes below zero nor creates a counter.
    store
        .uncount_signin_attempt(&t, &a, window)
        .await
        .expect("uncount");
    assert_eq!(count(&store, &t, &a, window, NOW + 2).await, 10);
    store
        .uncount_signin_attempt(&t, &crypto::hash_secret("nobody"), window)
        .await
        .expect("uncount absent");
    assert_eq!(
        count(&store, &t, &crypto::hash_secret("nobody"), window, NOW + 2).await,
        1
    );
}

/// Only an administrator's write (an approval, `update_approved_client`, `create_client`)
/// changes what is approved. A client's own record that claims more — another configuration,
/// a redirect URI nobody approved, or approval itself — is refused as corrupt, on every read.
async fn approval_lives_in_its_own_record(store: Arc<dyn Store>) {
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

    // A pending client's record claiming approval, with no approval record: refused.
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

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::memory()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::dynamodb().await).await;
                }
            )*
        }
    };
}

contract!(
    tenants_are_created_once_and_replaced_by_put,
    a_pending_client_round_trips_within_its_tenant_only,
    an_expired_pending_client_reads_as_absent,
    a_duplicate_client_id_is_refused_and_not_counted,
    the_pending_cap_holds_across_the_current_and_previous_window,
    a_zero_cap_means_no_cap,
    concurrent_registrations_never_exceed_the_cap,
    approval_happens_exactly_once_and_ends_expiry,
    concurrent_approvals_have_one_winner,
    approval_is_conditional_on_the_configuration_version,
    approval_lives_in_its_own_record,
    signin_attempts_are_counted_per_account_and_window,
    clients_list_oldest_first_and_per_tenant,
    users_are_created_once_and_replaced_by_put,
    authorization_requests_expire_and_are_taken_exactly_once,
    sessions_are_tenant_scoped_and_expire,
    consents_and_codes_round_trip,
    codes_are_redeemed_exactly_once_with_their_grant,
    refresh_rotation_honours_the_grace_window_and_revocation,
    signing_keys_keep_private_halves_apart,
    a_flow_step_reads_request_client_and_session_in_one_call,
    finishing_an_authorization_is_one_atomic_step,
    tenants_and_users_are_listed_per_tenant,
    client_pages_walk_every_live_client_once,
    edits_keep_status_and_never_resurrect,
    deleting_a_client_revokes_its_grants,
    api_tokens_and_sessions_end,
    a_code_of_a_deleted_client_cannot_be_redeemed,
    a_metadata_document_client_round_trips_and_comes_back_after_expiry,
);

/// DynamoDB only (the embedded store cannot hold an approved client without its record): a
/// client approved by a release that kept approval in the client record alone has no approval
/// record; it is refused until the operator records its approval
/// (`gatehouse clients record-approvals`), which leaves clients that have one alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_approvals_missing_after_an_upgrade_are_recorded_by_the_operator() {
    let store = dynamo_store().await;
    let c = pending_client("acme", NOW);
    store
        .create_pending_client(&c, quota(10), NOW)
        .await
        .expect("create");
    let approved = store
        .approve_client(&c.tenant, &c.client_id, c.config_version, "admin", NOW + 1)
        .await
        .expect("approve");
    // As an earlier release left it: no approval record.
    store
        .sdk()
        .delete_item()
        .table_name(store.table())
        .key(
            "pk",
            AttributeValue::S(format!("APPROVAL#acme#{}", c.client_id)),
        )
        .key("sk", AttributeValue::S("APPROVAL".into()))
        .send()
        .await
        .expect("delete the record");
    assert!(matches!(
        store.get_client(&c.tenant, &c.client_id, NOW + 2).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        store
            .record_missing_approvals(&c.tenant, NOW + 3)
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        store
            .get_client(&c.tenant, &c.client_id, NOW + 4)
            .await
            .expect("read"),
        Some(approved)
    );
    assert_eq!(
        store
            .record_missing_approvals(&c.tenant, NOW + 5)
            .await
            .expect("again"),
        0
    );
}
