//! The Lambda adapter: every function binary is `gatehouse_core::lambda::run(Function::X)`.
//! Initialisation (configuration, SDK client, caches) happens once, in the init phase; the
//! handler converts an API Gateway HTTP API (payload 2.0) event into our request type and back.

use crate::app::App;
use crate::config::Config;
use crate::http::{ClientIp, Request, RequestId, Response};
use crate::router::Function;
use crate::store::Directory;
use crate::store::dynamo::{DynamoStore, sdk_client, sdk_config};
use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt, service_fn};
use std::sync::Arc;

/// Builds the application for a Lambda function: DynamoDB from `GATEHOUSE_TABLE`.
pub async fn init_app() -> Result<App, lambda_http::Error> {
    let config = Config::from_env()?;
    crate::metrics::install(&config.stage);
    let table = config.table.clone().ok_or_else(|| {
        crate::config::ConfigError("GATEHOUSE_TABLE must name the DynamoDB table".into())
    })?;
    let sdk = sdk_config(config.dynamodb_endpoint.as_deref()).await;
    let store = DynamoStore::new(sdk_client(&sdk), table);
    warm_up(&store).await;
    let notifier = match &config.event_bus {
        Some(bus) => crate::events::Notifier::event_bridge(
            &sdk,
            bus.clone(),
            config.events_endpoint.as_deref(),
        ),
        None => crate::events::Notifier::log_only(),
    };
    let wrapper = config
        .key_wrapper(&sdk)?
        .ok_or_else(|| crate::config::ConfigError(crate::keywrap::WRAPPING_KEY_REQUIRED.into()))?;
    let mut app = App::new(Arc::new(store), config);
    app.notifier = notifier;
    app.key_wrapper = wrapper;
    Ok(app)
}

/// One cheap read in the init phase (a `GetItem` every function's role may make), so that
/// credentials, DNS and the TLS handshake are done before the first request instead of
/// costing it hundreds of milliseconds. A failure only logs: the first request will retry.
async fn warm_up(store: &DynamoStore) {
    let started = std::time::Instant::now();
    let probe = crate::domain::TenantId::parse("warm-up")
        .map(|id| async move { store.get_tenant(&id).await });
    if let Some(probe) = probe {
        match probe.await {
            Ok(_) => tracing::info!(
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "DynamoDB connection warmed up"
            ),
            Err(e) => tracing::warn!(error = %e, "DynamoDB warm-up failed"),
        }
    }
}

pub async fn run(function: Function) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(crate::telemetry::LogFormat::Json);
    let app = Arc::new(init_app().await?);
    tracing::info!(function = function.name(), "initialised");
    lambda_http::run(service_fn(move |event: lambda_http::Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(handle_event(&app, function, event).await) }
    }))
    .await
}

/// One API Gateway event through one function's routes.
pub async fn handle_event(
    app: &App,
    function: Function,
    event: lambda_http::Request,
) -> lambda_http::Response<Body> {
    let trace = event
        .lambda_context_ref()
        .and_then(|c| c.xray_trace_id.as_deref())
        .and_then(crate::xray::Trace::sampled);
    let request = into_request(event);
    let handled = crate::xray::traced(trace, app.handle(Some(function), request)).await;
    let response = into_lambda_response(handled);
    // Before the response is returned: Lambda may freeze the process right after, and counts
    // left in memory would be written only by a later invocation, if any.
    crate::metrics::flush();
    response
}

fn into_request(event: lambda_http::Request) -> Request {
    let source_ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
        }
        _ => None,
    };
    let request_id = event
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let raw_path = event.raw_http_path().to_owned();
    let (mut parts, body) = event.into_parts();
    // Route on the raw path API Gateway received (no stage prefix with the `$default` stage).
    if !raw_path.is_empty() {
        let pq = match parts.uri.query() {
            Some(q) => format!("{raw_path}?{q}"),
            None => raw_path,
        };
        if let Ok(uri) = pq.parse() {
            parts.uri = uri;
        }
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let mut req = Request::from_parts(parts, bytes);
    if let Some(ip) = source_ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    req.extensions_mut().insert(RequestId(request_id));
    req
}

fn into_lambda_response(resp: Response) -> lambda_http::Response<Body> {
    let (parts, bytes) = resp.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}
