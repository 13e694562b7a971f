//! The token function: base64 form bodies.

use crate::support::{app, json_body, register, token_request};

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
