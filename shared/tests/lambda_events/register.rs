//! The register function: RFC 7591 registration and RFC 7592 client configuration.

use crate::support::{HOST, app, base_event, event, json_body, register};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use serde_json::{Value, json};

#[tokio::test]
async fn register_function_answers_a_base64_registration_event() {
    let app = app().await;
    let body = json!({
        "client_name": "My AI Agent",
        "redirect_uris": ["https://agent.example.com/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post"
    });
    let resp = handle_event(
        &app,
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
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let doc = json_body(&resp);
    assert_eq!(doc["client_name"], "My AI Agent");
    assert_eq!(doc["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(doc["client_secret"].as_str().map(str::len), Some(43));
}

#[tokio::test]
async fn register_function_rate_limits_by_api_gateway_source_ip() {
    let app = app().await;
    let body = json!({"client_name": "A", "redirect_uris": ["https://a.example/cb"]});
    let send = || {
        handle_event(
            &app,
            Function::Register,
            event(
                "POST",
                "POST /t/{tenant}/oauth/register",
                "/t/demo/oauth/register",
                Some(&body),
            ),
        )
    };
    assert_eq!(send().await.status(), 201);
    assert_eq!(send().await.status(), 201);
    let third = send().await;
    assert_eq!(third.status(), 429);
    assert_eq!(json_body(&third)["error"], "too_many_requests");
    assert!(third.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn register_function_refuses_other_functions_routes_and_bad_methods() {
    let app = app().await;
    let resp = handle_event(
        &app,
        Function::Register,
        event(
            "GET",
            "GET /.well-known/oauth-authorization-server/t/{tenant}",
            "/.well-known/oauth-authorization-server/t/demo",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = handle_event(
        &app,
        Function::Register,
        event(
            "GET",
            "GET /t/{tenant}/oauth/register",
            "/t/demo/oauth/register",
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), 405);
    assert_eq!(json_body(&resp)["error"], "method_not_allowed");
}

#[tokio::test]
async fn register_function_serves_rfc7592_client_configuration() {
    let app = app().await;
    let client = register(&app, "none").await;
    let uri = client["registration_client_uri"].as_str().expect("uri");
    let path = uri.trim_start_matches(&format!("https://{HOST}"));
    let token = client["registration_access_token"].as_str().expect("token");
    let id = client["client_id"].as_str().expect("id");
    let call = |method: &str, bearer: Option<&str>, body: Option<Value>| {
        let mut ev = base_event(
            method,
            &format!("{method} /t/{{tenant}}/oauth/register/{{client_id}}"),
            path,
        );
        ev["pathParameters"]["client_id"] = id.into();
        if let Some(b) = bearer {
            ev["headers"]["authorization"] = format!("Bearer {b}").into();
        }
        if let Some(body) = body {
            ev["body"] = STANDARD.encode(body.to_string()).into();
            ev["isBase64Encoded"] = true.into();
        }
        let req = lambda_http::request::from_str(&ev.to_string()).expect("event");
        handle_event(&app, Function::Register, req)
    };
    assert_eq!(call("GET", None, None).await.status(), 401);
    assert_eq!(call("GET", Some("wrong"), None).await.status(), 401);
    let read = call("GET", Some(token), None).await;
    assert_eq!(read.status(), 200);
    assert_eq!(json_body(&read)["client_id"], id);
    let updated = call(
        "PUT",
        Some(token),
        Some(json!({
            "client_id": id, "client_name": "Renamed",
            "redirect_uris": ["http://localhost/other"], "token_endpoint_auth_method": "none",
        })),
    )
    .await;
    assert_eq!(updated.status(), 200);
    assert_eq!(
        json_body(&updated)["redirect_uris"][0],
        "http://localhost/other"
    );
    assert_eq!(call("DELETE", Some(token), None).await.status(), 204);
    assert_eq!(call("GET", Some(token), None).await.status(), 401);
}
