//! The token function: base64 form bodies, and UserInfo.

use crate::support::{app, call, json_body, register, token_request};
use gatehouse_core::router::Function;

#[tokio::test]
async fn token_function_reads_base64_form_bodies_and_refuses_unapproved_clients() {
    let app = app().await;
    let client = register(&app, "client_secret_post").await;
    let form = format!(
        "grant_type=authorization_code&code=x&code_verifier={}&client_id={}&client_secret={}",
        "a".repeat(43),
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );
    let resp = token_request(&app, form).await;
    assert_eq!(resp.status(), 401);
    let doc = json_body(&resp);
    assert_eq!(doc["error"], "invalid_client");
    assert!(
        doc["error_description"]
            .as_str()
            .expect("text")
            .contains("approved")
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

/// UserInfo through the token function, as API Gateway hands it over: its preflight (browser
/// relying parties call it cross-origin), a missing token (a bare `Bearer` challenge, RFC 6750
/// §3.1) and a bad one (`invalid_token`), on GET and POST alike.
#[tokio::test]
async fn token_function_answers_userinfo() {
    let app = app().await;
    let path = "/t/demo/oauth/userinfo";
    let preflight = call(&app, Function::Token, "OPTIONS", path, &[]).await;
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-methods"],
        "GET, POST, OPTIONS"
    );
    for method in ["GET", "POST"] {
        let anonymous = call(&app, Function::Token, method, path, &[]).await;
        assert_eq!(anonymous.status(), 401, "{method}");
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
        assert_eq!(anonymous.headers()["cache-control"], "no-store");

        let bearer = [("authorization", "Bearer not-a-token")];
        let bad = call(&app, Function::Token, method, path, &bearer).await;
        assert_eq!(bad.status(), 401, "{method}");
        assert_eq!(json_body(&bad)["error"], "invalid_token");
        let challenge = bad.headers()["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
    }
}
