//! Fixtures shared by the contract cases: the two stores under test and sample items.

use gatehouse_core::crypto;
use gatehouse_core::domain::{
    ApplicationType, AuthMethod, AuthorizationCode, AuthorizationRequest, Client, ClientId,
    ClientMetadata, ClientStatus, ConsentMethod, CreatedByType, Grant, GrantType, OpenIdParams,
    RedirectUri, RefreshToken, ResponseType, ScopeSet, Tenant, TenantId, UnixTime,
};
use gatehouse_core::store::dynamo::{DynamoStore, sdk_config};
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::store::{PendingQuota, Store};
use std::sync::Arc;

pub(crate) const NOW: UnixTime = 1_800_000_000;
pub(crate) const TTL: i64 = 3600;

pub(crate) fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

pub(crate) async fn dynamodb() -> Arc<dyn Store> {
    Arc::new(dynamo_store().await)
}

pub(crate) async fn dynamo_store() -> DynamoStore {
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

pub(crate) fn tenant(id: &str) -> Tenant {
    Tenant::new(TenantId::parse(id).expect("tenant id"), "Test tenant")
}

pub(crate) fn pending_client(tenant: &str, now: UnixTime) -> Client {
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
        vendor_trust: None,
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
            id_token_signed_response_alg: Some(gatehouse_core::domain::SigningAlg::ES256),
        },
        document: None,
    }
}

pub(crate) fn quota(cap: u32) -> PendingQuota {
    PendingQuota {
        cap,
        window_secs: TTL as u64,
        source: None,
    }
}

pub(crate) fn tid(id: &str) -> TenantId {
    TenantId::parse(id).expect("tenant id")
}

pub(crate) fn authorization_request(tenant: &str, now: UnixTime) -> AuthorizationRequest {
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
        // Every OpenID Connect parameter set, so the round trip covers them.
        openid: OpenIdParams {
            nonce: Some("n-0S6_WzA2Mj".into()),
            max_age: Some(0),
            login: true,
            consent: true,
            login_hint: Some("user@demo.test".into()),
            stale_session: Some(crypto::hash_secret("old-session")),
        },
    }
}

pub(crate) fn code_for(tenant: &str, now: UnixTime) -> AuthorizationCode {
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
        nonce: Some("n-0S6_WzA2Mj".into()),
        redeemed_grant: None,
    }
}

/// Stores an approved client for a code's `client_id` (a code is redeemable only while its
/// client exists).
pub(crate) async fn client_of(store: &Arc<dyn Store>, code: &AuthorizationCode) {
    let mut client = pending_client(code.tenant.as_str(), NOW);
    client.client_id = code.client_id.clone();
    client.status = ClientStatus::Approved;
    client.expires_at = None;
    store.create_client(&client).await.expect("client");
}

pub(crate) fn grant_for(code: &AuthorizationCode, now: UnixTime) -> Grant {
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

pub(crate) fn refresh_for(grant: &Grant, now: UnixTime) -> RefreshToken {
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
