//! The discovery function: RFC 8414 metadata and its preflight.

use crate::support::{HOST, app, base_event, event, json_body};
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use serde_json::json;

#[tokio::test]
async fn discovery_function_derives_the_issuer_from_the_api_host() {
    let app = app().await;
    for path in [
        "/.well-known/oauth-authorization-server/t/demo",
        "/t/demo/.well-known/oauth-authorization-server",
    ] {
        let resp = handle_event(
            &app,
            Function::Discovery,
            event("GET", &format!("GET {path}"), path, None),
        )
        .await;
        assert_eq!(resp.status(), 200, "{path}");
        let doc = json_body(&resp);
        assert_eq!(doc["issuer"], format!("https://{HOST}/t/demo"));
        assert_eq!(
            doc["registration_endpoint"],
            format!("https://{HOST}/t/demo/oauth/register")
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    }
}

#[tokio::test]
async fn discovery_function_preflight_allows_mcp_protocol_version() {
    let app = app().await;
    let path = "/.well-known/oauth-authorization-server/t/demo";
    let resp = handle_event(
        &app,
        Function::Discovery,
        event("OPTIONS", &format!("OPTIONS {path}"), path, None),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    assert!(allowed.contains("MCP-Protocol-Version"));
}

/// A client (or a cache in front of the function) that holds the document revalidates it with
/// `If-None-Match` and gets `304` with no body, through API Gateway's event shape.
#[tokio::test]
async fn discovery_function_answers_a_held_document_with_304() {
    let app = app().await;
    let path = "/.well-known/oauth-authorization-server/t/demo";
    let first = handle_event(
        &app,
        Function::Discovery,
        event("GET", &format!("GET {path}"), path, None),
    )
    .await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    assert_eq!(first.headers()["cache-control"], "public, max-age=60");

    let mut ev = base_event("GET", &format!("GET {path}"), path);
    ev["headers"]["if-none-match"] = etag.clone().into();
    let req = lambda_http::request::from_str(&ev.to_string()).expect("a valid payload 2.0 event");
    let held = handle_event(&app, Function::Discovery, req).await;
    assert_eq!(held.status(), 304);
    assert!(held.body().is_empty());
    assert_eq!(held.headers()["etag"], etag.as_str());
}
