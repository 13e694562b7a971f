//! The whole request pipeline on the embedded store: the first byte picks an endpoint and a
//! method, the rest is the query string or body. Covers the authorization request parser, the
//! token/revocation/introspection form parsers, registration, RFC 7592, the admin API and
//! console parsers. Never a panic, never a 5xx.
#![no_main]

use bytes::Bytes;
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::seed;
use gatehouse_core::store::memory::MemoryStore;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct World {
    rt: tokio::runtime::Runtime,
    app: App,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::for_tests("http://127.0.0.1:8787");
        config.pending_client_cap_override = Some(0);
        let store = Arc::new(MemoryStore::new());
        rt.block_on(seed::seed_demo(store.as_ref(), &config))
            .expect("seed");
        // No network from the fuzzer: URL client ids would make it fetch metadata documents.
        // The document validator is fuzzed on its own (the `registration` target).
        rt.block_on(async {
            use gatehouse_core::store::Store;
            let id = gatehouse_core::domain::TenantId::parse("demo").expect("id");
            let mut tenant = store.get_tenant(&id).await.expect("read").expect("demo");
            tenant.cimd_enabled = false;
            store.put_tenant(&tenant).await.expect("write");
        });
        let app = App::new(store, config);
        World { rt, app }
    })
}

const TARGETS: &[(&str, &str, &str)] = &[
    ("GET", "/t/demo/oauth/authorize", "query"),
    ("POST", "/t/demo/oauth/authorize", "application/x-www-form-urlencoded"),
    ("POST", "/t/demo/oauth/token", "application/x-www-form-urlencoded"),
    ("POST", "/t/demo/oauth/revoke", "application/x-www-form-urlencoded"),
    ("POST", "/t/demo/oauth/introspect", "application/x-www-form-urlencoded"),
    ("POST", "/t/demo/oauth/register", "application/json"),
    ("PUT", "/t/demo/oauth/register/0123456789abcdef0123456789abcdef", "application/json"),
    ("POST", "/t/demo/admin/approve", "application/x-www-form-urlencoded"),
    ("POST", "/t/demo/admin/signin", "application/x-www-form-urlencoded"),
    ("GET", "/t/demo/api/v1/oauth-clients", "query"),
    ("POST", "/t/demo/mcp", "application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (method, path, kind) = TARGETS[usize::from(pick) % TARGETS.len()];
    let builder = http::Request::builder().method(method);
    let req = if kind == "query" {
        // Only bytes a URI may carry; the HTTP layer refuses the rest before routing.
        let query: String = rest
            .iter()
            .map(|b| char::from(*b))
            .filter(|c| c.is_ascii_graphic() && *c != '#')
            .collect();
        builder
            .uri(format!("{path}?{query}"))
            .header("host", "127.0.0.1:8787")
            .body(Bytes::new())
    } else {
        builder
            .uri(path)
            .header("host", "127.0.0.1:8787")
            .header("content-type", kind)
            .header("authorization", "Bearer gha_demo_fuzz")
            .body(Bytes::copy_from_slice(rest))
    };
    let Ok(req) = req else {
        return;
    };
    let w = world();
    let resp = w.rt.block_on(w.app.handle(None, req));
    assert!(
        !resp.status().is_server_error(),
        "{method} {path} answered {}",
        resp.status()
    );
});
