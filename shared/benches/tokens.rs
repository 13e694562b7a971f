//! Token endpoint hot paths on the embedded store, through the full `App::handle` pipeline:
//! client authentication (SHA-256 + constant-time compare), code lookup, PKCE, the redemption
//! write, ES256 signing; refresh-token rotation; JWT verification (what a resource server
//! does per call); RFC 7662 introspection; and authorization request validation (the `GET`
//! that validates client, redirect URI, PKCE, scope and resource, parks the request and renders
//! the sign-in page).
//!
//!     cargo bench -p gatehouse-core --bench tokens

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::crypto;
use gatehouse_core::domain::{AuthorizationCode, ClientId, Email, TenantId, unix_now};
use gatehouse_core::http::Request;
use gatehouse_core::seed;
use gatehouse_core::store::Store;
use gatehouse_core::store::memory::MemoryStore;
use std::hint::black_box;
use std::sync::Arc;

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9qXeA7C8yI-9FDv5m6GF6bSFw1fS4v";

fn form(path: &str, body: String) -> Request {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(body))
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config::for_tests("http://127.0.0.1:8787");
    config.pending_client_cap_override = Some(0);
    let store = Arc::new(MemoryStore::new());
    rt.block_on(seed::seed_demo(store.as_ref(), &config))
        .unwrap_or_else(|e| panic!("{e}"));
    let app = App::new(store.clone(), config);
    let tenant = TenantId::parse("demo").unwrap_or_else(|| panic!("tenant"));
    // The seeded demo user: the token endpoint checks the user behind every code and token.
    let email = Email::parse("user@demo.test").unwrap_or_else(|| panic!("email"));
    let user = rt
        .block_on(store.get_user(&tenant, &email))
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("seeded user"));

    // An approved confidential client with the refresh grant.
    let register = http::Request::builder()
        .method("POST")
        .uri("/t/demo/oauth/register")
        .header("content-type", "application/json")
        .body(Bytes::from_static(br#"{"client_name":"bench","redirect_uris":["http://localhost/cb"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"client_secret_post"}"#))
        .unwrap_or_default();
    let registered: serde_json::Value =
        serde_json::from_slice(rt.block_on(app.handle(None, register)).body()).unwrap_or_default();
    let client_id = registered["client_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let secret = registered["client_secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = ClientId::parse(&client_id).unwrap_or_else(|| panic!("client id"));
    let version = rt
        .block_on(store.get_client(&tenant, &id, unix_now()))
        .ok()
        .flatten()
        .map_or(0, |c| c.config_version);
    rt.block_on(store.approve_client(&tenant, &id, version, "bench", unix_now()))
        .unwrap_or_else(|e| panic!("{e}"));
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(VERIFIER.as_bytes()))
    };
    let new_code = || {
        let code = crypto::new_secret();
        let now = unix_now();
        rt.block_on(
            store.create_code(&AuthorizationCode {
                code_hash: crypto::hash_secret(&code),
                tenant: tenant.clone(),
                client_id: id.clone(),
                redirect_uri: "http://localhost/cb".into(),
                code_challenge: challenge.clone(),
                scope: gatehouse_core::domain::ScopeSet::parse("mcp:execute offline_access")
                    .unwrap_or_default(),
                resource: "http://127.0.0.1:8787/t/demo/mcp".into(),
                user_id: user.id.clone(),
                user_email: Some(email.clone()),
                user_epoch: user.grant_epoch,
                auth_time: now,
                expires_at: now + 300,
                redeemed_grant: None,
            }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        code
    };
    let exchange = |code: &str| {
        form(
            "/t/demo/oauth/token",
            format!(
                "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&client_id={client_id}&client_secret={secret}"
            ),
        )
    };

    c.bench_function("token: authorization_code exchange (embedded store)", |b| {
        b.iter_batched(
            &new_code,
            |code| {
                let resp = rt.block_on(app.handle(None, exchange(&code)));
                assert_eq!(resp.status(), 200);
                black_box(resp)
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let first: serde_json::Value =
        serde_json::from_slice(rt.block_on(app.handle(None, exchange(&new_code()))).body())
            .unwrap_or_default();
    let mut refresh = first["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.bench_function("token: refresh_token rotation (embedded store)", |b| {
        b.iter(|| {
            let resp = rt.block_on(app.handle(
                None,
                form(
                    "/t/demo/oauth/token",
                    format!("grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}&client_secret={secret}"),
                ),
            ));
            assert_eq!(resp.status(), 200);
            let doc: serde_json::Value = serde_json::from_slice(resp.body()).unwrap_or_default();
            refresh = doc["refresh_token"].as_str().unwrap_or_default().to_owned();
        })
    });

    let access = first["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let keys = rt
        .block_on(app.keys.key_set(store.as_ref(), false))
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("jwt: verify an ES256 access token", |b| {
        b.iter(|| {
            let claims = gatehouse_core::tokens::verify_access_token(
                black_box(&access),
                &keys,
                "http://127.0.0.1:8787/t/demo",
                Some("http://127.0.0.1:8787/t/demo/mcp"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            black_box(claims)
        })
    });

    c.bench_function("introspect: an access token (embedded store)", |b| {
        b.iter(|| {
            let resp = rt.block_on(app.handle(
                None,
                form(
                    "/t/demo/oauth/introspect",
                    format!("token={access}&client_id={client_id}&client_secret={secret}"),
                ),
            ));
            assert_eq!(resp.status(), 200);
            black_box(resp)
        })
    });

    let authorize = format!(
        "/t/demo/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&code_challenge={challenge}&code_challenge_method=S256&state=s&scope=mcp%3Aexecute"
    );
    c.bench_function(
        "authorize: validate a request and render sign-in (embedded store)",
        |b| {
            b.iter(|| {
                let req = http::Request::builder()
                    .method("GET")
                    .uri(authorize.as_str())
                    .body(Bytes::new())
                    .unwrap_or_default();
                let resp = rt.block_on(app.handle(None, req));
                assert_eq!(resp.status(), 200);
                black_box(resp)
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
