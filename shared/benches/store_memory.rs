//! Memory the embedded store holds per pending client, measured as the growth of the process's
//! resident memory (a counting allocator would need `unsafe`). Each measure runs in a fresh
//! child process, so memory freed by one never flatters the next.
//!
//!     cargo bench -p gatehouse-core --bench store_memory
//!     CLIENTS=300000 RATE=29000 cargo bench -p gatehouse-core --bench store_memory
//!
//! - `register`: CLIENTS registrations through `App::handle` (the full registration path),
//!   none expiring; prints resident bytes per client.
//! - `steady`: RATE registrations per simulated second for 40 s through the store API, each
//!   living 10 s (`benches/load.sh`'s setting); resident memory must level off at about
//!   RATE × 10 clients' worth.

use bytes::Bytes;
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::domain::{ClientId, TenantId, unix_now};
use gatehouse_core::seed;
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::store::{ClientStore, PendingQuota};
use std::process::Command;
use std::sync::Arc;

const BODY: &str = r#"{"client_name":"load test","redirect_uris":["https://client.example/cb"]}"#;
const TTL: i64 = 10;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory in bytes (`VmRSS`), or the peak (`VmHWM`).
fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
        * 1024
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn server() -> (tokio::runtime::Runtime, App, Arc<MemoryStore>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config::for_tests("http://127.0.0.1:8787");
    config.pending_client_cap_override = Some(0);
    config.pending_client_ttl_override = Some(86_400);
    let store = Arc::new(MemoryStore::new());
    rt.block_on(seed::seed_demo(store.as_ref(), &config))
        .unwrap_or_else(|e| panic!("{e}"));
    let app = App::new(store.clone(), config);
    (rt, app, store)
}

fn register(rt: &tokio::runtime::Runtime, app: &App) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/t/demo/oauth/register")
        .header("content-type", "application/json")
        .body(Bytes::from_static(BODY.as_bytes()))
        .unwrap_or_default();
    let resp = rt.block_on(app.handle(None, req));
    assert_eq!(resp.status(), 201);
}

fn measure_register() {
    let n = env_num("CLIENTS", 300_000);
    let (rt, app, _store) = server();
    for _ in 0..1_000 {
        register(&rt, &app);
    }
    let before = status_kib("VmRSS");
    for _ in 0..n {
        register(&rt, &app);
    }
    let grown = status_kib("VmRSS").saturating_sub(before);
    println!(
        "register: {n} pending clients through App::handle: +{:.1} MiB resident, {} bytes/client",
        mib(grown),
        grown / n.max(1)
    );
}

fn measure_steady() {
    let rate = env_num("RATE", 29_000);
    let (rt, app, store) = server();
    register(&rt, &app);
    let demo = TenantId::parse("demo").unwrap_or_else(|| panic!("demo"));
    let template = rt
        .block_on(store.list_clients(&demo, unix_now()))
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .unwrap_or_else(|| panic!("no client"));
    let quota = PendingQuota {
        cap: 0,
        window_secs: 10,
        source: None,
    };
    let start = unix_now() + 1_000;
    for second in 0..40 {
        let now = start + second;
        for _ in 0..rate {
            let mut client = template.clone();
            client.client_id = ClientId::generate();
            client.created_at = now;
            client.expires_at = Some(now + TTL);
            rt.block_on(store.create_pending_client(&client, quota, now))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        if (second + 1) % 10 == 0 {
            let rss = status_kib("VmRSS");
            let live = rate * usize::try_from(TTL).unwrap_or(0);
            println!(
                "steady: {rate}/s, lifetime {TTL} s, after {:>2} s: {:.1} MiB resident (peak {:.1} MiB), {} bytes per live client",
                second + 1,
                mib(rss),
                mib(status_kib("VmHWM")),
                rss / live.max(1)
            );
        }
    }
}

fn main() {
    match std::env::var("STORE_MEMORY_MEASURE").as_deref() {
        Ok("register") => measure_register(),
        Ok("steady") => measure_steady(),
        _ => {
            // `cargo test --benches` runs this binary too; measure only under `cargo bench`.
            if !std::env::args().any(|a| a == "--bench") {
                return;
            }
            let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
            for measure in ["register", "steady"] {
                let status = Command::new(&exe)
                    .env("STORE_MEMORY_MEASURE", measure)
                    .status()
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(status.success(), "{measure} failed");
            }
        }
    }
}
