//! Registration hot path on the embedded store: the full `App::handle` pipeline (routing,
//! tenant cache, validation, policy, secret generation and hashing, store write, JSON response).
//!
//!     cargo bench -p gatehouse-core --bench register

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::http::Request;
use gatehouse_core::seed;
use gatehouse_core::store::memory::MemoryStore;
use std::hint::black_box;
use std::sync::Arc;

const BODY: &str = r#"{"client_name":"My AI Agent","redirect_uris":["https://agent.example.com/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"software_id":"agent-123","software_version":"1.0.0","logo_uri":"https://example.com/logo.png","tos_uri":"https://example.com/tos","policy_uri":"https://example.com/policy","client_uri":"https://example.com"}"#;

fn request(method: &str, path: &str, body: &'static str) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Bytes::from_static(body.as_bytes()))
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
    let app = App::new(store, config);

    c.bench_function("register (embedded store)", |b| {
        b.iter(|| {
            let resp =
                rt.block_on(app.handle(None, request("POST", "/t/demo/oauth/register", BODY)));
            assert_eq!(resp.status(), 201);
            black_box(resp)
        })
    });
    c.bench_function("authorization server metadata", |b| {
        b.iter(|| {
            let resp = rt.block_on(app.handle(
                None,
                request("GET", "/.well-known/oauth-authorization-server/t/demo", ""),
            ));
            black_box(resp)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
