//! The local runner: one HTTP/1.1 listener in front of [`App::handle`] for every route.

use bytes::Bytes;
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::defaults::{LOCAL_ADDR, MAX_BODY_BYTES};
use gatehouse_core::error::OAuthError;
use gatehouse_core::events::Notifier;
use gatehouse_core::http::{BodyTooLarge, ClientIp, RequestId, error_response};
use gatehouse_core::keywrap::{self, KeyWrapper, LocalWrapper};
use gatehouse_core::store::Store;
use gatehouse_core::store::dynamo::{DynamoStore, sdk_client, sdk_config};
use gatehouse_core::store::memory::MemoryStore;
use gatehouse_core::tokens::Keys;
use gatehouse_core::{crypto, seed, telemetry};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(telemetry::LogFormat::Pretty);
    let mut config = Config::from_env()?;
    let addr = std::env::var("GATEHOUSE_ADDR").unwrap_or_else(|_| LOCAL_ADDR.to_owned());
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{local}"));
    }

    let (store, wrapper) = store_and_wrapper(&config).await?;
    let report = seed::seed_demo(store.as_ref(), &config).await?;
    // Every tenant's signing keys up front, so its JWKS lists them before the first token.
    let keys = Keys {
        store: store.as_ref(),
        wrapper: wrapper.as_ref(),
    };
    for tenant in store.list_tenants().await? {
        gatehouse_core::tokens::ensure_keys(keys, &tenant.id, gatehouse_core::domain::unix_now())
            .await?;
    }
    let base = config.public_url.clone().unwrap_or_default();
    let notifier = notifier(&config).await;
    let mut app = App::new(store, config);
    app.notifier = notifier;
    app.key_wrapper = wrapper;
    let app = Arc::new(app);

    println!("Gatehouse listening on http://{local}");
    println!("  demo issuer:   {base}/t/{}", report.tenant);
    println!(
        "  metadata:      {base}/.well-known/oauth-authorization-server/t/{}",
        report.tenant
    );
    println!("  registration:  {base}/t/{}/oauth/register", report.tenant);
    // Printed to the terminal once for the developer; never sent to the log.
    if let Some(p) = &report.admin_password {
        println!("  {} password: {p}", seed::DEMO_ADMIN);
    }
    if let Some(p) = &report.user_password {
        println!("  {} password: {p}", seed::DEMO_USER);
    }

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let app = Arc::clone(&app);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, std::convert::Infallible>(serve_one(&app, peer, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            () = &mut shutdown => {
                println!("Gatehouse stopping");
                return Ok(());
            }
        }
    }
}

async fn serve_one(
    app: &App,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let (body, too_large) = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => (collected.to_bytes(), false),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            (Bytes::new(), true)
        }
        Err(_) => {
            let err = OAuthError::invalid_request("the request body could not be read");
            return error_response(&err).map(Full::new);
        }
    };
    let mut request = http::Request::from_parts(parts, body);
    request.extensions_mut().insert(ClientIp(peer.ip()));
    request
        .extensions_mut()
        .insert(RequestId(next_request_id()));
    if too_large {
        request.extensions_mut().insert(BodyTooLarge);
    }
    let resp = app.handle(None, request).await;
    resp.map(Full::new)
}

/// A request id for the log: unique within the process (a counter) and across processes (a
/// random prefix drawn once), never secret, so not worth a call to the OS RNG per request.
fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| u32::from_be_bytes(crypto::random_bytes::<4>()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}{n:08x}")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The embedded store, or the DynamoDB table the configuration names (created when missing),
/// and the key that wraps its private signing keys.
async fn store_and_wrapper(
    config: &Config,
) -> Result<(Arc<dyn Store>, Arc<dyn KeyWrapper>), Box<dyn std::error::Error>> {
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    let configured = config.key_wrapper(&sdk)?;
    Ok(match (&config.table, &config.dynamodb_endpoint) {
        // The embedded store lives in this process: so may its wrapping key.
        (None, None) => (
            Arc::new(MemoryStore::new()),
            configured.unwrap_or_else(|| Arc::new(LocalWrapper::random())),
        ),
        (table, _) => {
            let wrapper = configured.ok_or(keywrap::WRAPPING_KEY_REQUIRED)?;
            let table = table.clone().unwrap_or_else(|| "gatehouse".to_owned());
            let store = DynamoStore::new(sdk_client(&sdk), table);
            store
                .ensure_table()
                .await
                .map_err(|e| format!("DynamoDB table {}: {e}", store.table()))?;
            (Arc::new(store), wrapper)
        }
    })
}

/// Where notifications go: EventBridge when `GATEHOUSE_EVENT_BUS` names a bus, else the log.
async fn notifier(config: &Config) -> Notifier {
    match &config.event_bus {
        Some(bus) => {
            let sdk = sdk_config(config.events_endpoint.as_deref()).await;
            Notifier::event_bridge(&sdk, bus.clone(), config.events_endpoint.as_deref())
        }
        None => Notifier::log_only(),
    }
}
