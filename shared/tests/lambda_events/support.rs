//! Events, the in-memory app they are served by, and readers of the answers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::app::App;
use gatehouse_core::config::Config;
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use gatehouse_core::seed;
use gatehouse_core::store::memory::MemoryStore;
use lambda_http::Body;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

pub(crate) async fn app() -> App {
    let mut config = Config::for_tests("https://unused.example");
    // As deployed without a public-URL parameter: the issuer comes from the request's host.
    config.public_url = None;
    config.registrations_per_ip_per_minute = 2;
    config.pending_client_cap_override = Some(1000);
    let store = Arc::new(MemoryStore::new());
    seed::seed_demo(store.as_ref(), &config)
        .await
        .expect("seed demo tenant");
    App::new(store, config)
}

pub(crate) fn event(
    method: &str,
    route_key: &str,
    path: &str,
    body: Option<&Value>,
) -> lambda_http::Request {
    raw_event(
        method,
        route_key,
        path,
        "",
        body.map(|b| (b.to_string(), "application/json")),
        &[],
    )
}

/// A payload 2.0 event with a raw query string, an optional (base64-encoded) body of the given
/// content type, and cookies in the `cookies` array as API Gateway sends them.
pub(crate) fn raw_event(
    method: &str,
    route_key: &str,
    path: &str,
    query: &str,
    body: Option<(String, &str)>,
    cookies: &[String],
) -> lambda_http::Request {
    let mut ev = base_event(method, route_key, path);
    ev["rawQueryString"] = query.into();
    ev["cookies"] = json!(cookies);
    if let Some((body, content_type)) = body {
        ev["headers"]["content-type"] = content_type.into();
        ev["body"] = STANDARD.encode(body).into();
        ev["isBase64Encoded"] = true.into();
    }
    lambda_http::request::from_str(&ev.to_string()).expect("a valid payload 2.0 event")
}

/// One bodiless event (`{method} {path}`, with `headers` added) through one function.
pub(crate) async fn call(
    app: &App,
    function: Function,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> lambda_http::Response<Body> {
    let mut ev = base_event(method, &format!("{method} {path}"), path);
    for (name, value) in headers {
        ev["headers"][*name] = (*value).into();
    }
    let req = lambda_http::request::from_str(&ev.to_string()).expect("a valid payload 2.0 event");
    handle_event(app, function, req).await
}

pub(crate) fn base_event(method: &str, route_key: &str, path: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": HOST,
            "x-forwarded-proto": "https",
            "mcp-protocol-version": "2025-06-18"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "mcp-client/1.0"
            },
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
            "time": "23/Nov/2026:18:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "pathParameters": {"tenant": "demo"},
        "isBase64Encoded": false
    })
}

/// A form `POST` to the token function, as API Gateway routes it.
pub(crate) async fn token_request(app: &App, form: String) -> lambda_http::Response<Body> {
    handle_event(
        app,
        Function::Token,
        raw_event(
            "POST",
            "POST /t/{tenant}/oauth/token",
            "/t/demo/oauth/token",
            "",
            Some((form, "application/x-www-form-urlencoded")),
            &[],
        ),
    )
    .await
}

pub(crate) fn text_body(resp: &lambda_http::Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

pub(crate) async fn register(app: &App, auth_method: &str) -> Value {
    let body = json!({
        "client_name": "Agent",
        "redirect_uris": ["http://localhost/cb"],
        "token_endpoint_auth_method": auth_method,
    });
    let resp = handle_event(
        app,
        Function::Register,
        event(
            "POST",
            "POST /t/{tenant}/oauth/register",
            "/t/demo/oauth/register",
            Some(&body),
        ),
    )
    .await;
    assert_eq!(resp.status(), 201);
    json_body(&resp)
}

pub(crate) fn json_body(resp: &lambda_http::Response<Body>) -> Value {
    let bytes: &[u8] = match resp.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    serde_json::from_slice(bytes).expect("JSON body")
}

/// The cookie pair (`name=value`) a response sets.
pub(crate) fn set_cookie_pair(resp: &lambda_http::Response<Body>, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .expect("the cookie is set")
}

pub(crate) fn encoded(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
