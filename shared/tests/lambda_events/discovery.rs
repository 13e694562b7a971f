//! The discovery function: RFC 8414 metadata and its preflight.

use crate::support::{HOST, app, call, json_body};
use gatehouse_core::router::Function;
use serde_json::json;

#[tokio::test]
async fn discovery_function_derives_the_issuer_from_the_api_host() {
    let app = app().await;
    for path in [
        "/.well-known/oauth-authorization-server/t/demo",
        "/t/demo/.well-known/oauth-authorization-server",
    ] {
        let resp = call(&app, Function::Discovery, "GET", path, &[]).await;
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
    let resp = call(&app, Function::Discovery, "OPTIONS", path, &[]).await;
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
    let first = call(&app, Function::Discovery, "GET", path, &[]).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    assert_eq!(first.headers()["cache-control"], "public, max-age=60");

    let held = call(
        &app,
        Function::Discovery,
        "GET",
        path,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(held.status(), 304);
    assert!(held.body().is_empty());
    assert_eq!(held.headers()["etag"], etag.as_str());
}

/// OpenID Connect Discovery through the discovery function, both paths the template routes,
/// published before the tenant turns OpenID Connect on (API Gateway's JWT authorizer reads
/// `jwks_uri` from it), with the JWKS it names holding an RSA and an EC key.
#[tokio::test]
async fn discovery_function_serves_the_openid_configuration_and_its_jwks() {
    let app = app().await;
    let demo = gatehouse_core::domain::TenantId::parse("demo").expect("tenant id");
    gatehouse_core::tokens::ensure_keys(app.signing_keys(), &demo, app.now())
        .await
        .expect("keys");
    for path in [
        "/.well-known/openid-configuration/t/demo",
        "/t/demo/.well-known/openid-configuration",
    ] {
        let resp = call(&app, Function::Discovery, "GET", path, &[]).await;
        assert_eq!(resp.status(), 200, "{path}");
        let doc = json_body(&resp);
        let issuer = format!("https://{HOST}/t/demo");
        assert_eq!(doc["issuer"], issuer.as_str());
        assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks.json"));
        assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/oauth/userinfo"));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256"])
        );
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert_eq!(doc["request_uri_parameter_supported"], json!(false));
    }
    let path = "/t/demo/jwks.json";
    let jwks = call(&app, Function::Discovery, "GET", path, &[]).await;
    let mut kinds: Vec<String> = json_body(&jwks)["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            format!(
                "{}/{}",
                k["kty"].as_str().unwrap_or(""),
                k["alg"].as_str().unwrap_or("")
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["EC/ES256", "RSA/RS256"]);
}
