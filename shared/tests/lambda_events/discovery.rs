//! The discovery function: RFC 8414 metadata and its preflight.

use crate::support::{HOST, app, event, json_body};
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
