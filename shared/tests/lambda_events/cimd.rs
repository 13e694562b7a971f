//! Client ID Metadata Document clients through the authorize, token and admin functions.

use crate::support::{app, base_event, encoded, json_body, raw_event, text_body, token_request};
use gatehouse_core::app::App;
use gatehouse_core::cimd;
use gatehouse_core::domain::{Client, ClientId, DocumentState, Email, Tenant, UnixTime};
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use gatehouse_core::store::PendingQuota;
use lambda_http::Body;
use serde_json::json;

/// Client ID Metadata Documents through the authorize, token and admin functions: an internal
/// document address is refused with a page, never a redirect; a recorded client whose document
/// is fresh is served from the store without a fetch (its host does not even resolve here); a
/// stale one is fetched again at the token endpoint, and when that fails the client cannot
/// authenticate; the admin API finds a client by its percent-encoded URL in the proxy route.
#[tokio::test]
async fn metadata_document_clients_through_the_authorize_token_and_admin_functions() {
    let app = app().await;
    let tenant = app.tenant("demo").await.expect("demo");
    let now = app.now();

    // An internal address: refused before any connection, on a page.
    let refused = authorize(&app, "https://10.0.0.1/clients/agent.json").await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    assert!(
        text_body(&refused).contains("not allowed"),
        "{}",
        text_body(&refused)
    );

    // A recorded client with a fresh document: no fetch, the sign-in page.
    let url = "https://agent.invalid/clients/agent.json";
    let quota = PendingQuota {
        cap: 0,
        window_secs: 3600,
        source: None,
    };
    app.store
        .create_pending_client(&record(&tenant, url, now + 300, now), quota, now)
        .await
        .expect("record");
    let page = authorize(&app, url).await;
    assert_eq!(page.status(), 200, "{}", text_body(&page));
    assert!(text_body(&page).contains("Lambda CIMD agent"));

    // Approved, but its document is stale and its host is refused: 401 invalid_client.
    let stale_url = "https://10.0.0.1/clients/stale.json";
    let stale = record(&tenant, stale_url, now - 1, now);
    app.store
        .create_pending_client(&stale, quota, now)
        .await
        .expect("record stale");
    app.store
        .approve_client(
            &tenant.id,
            &stale.client_id,
            stale.config_version,
            "admin",
            now,
        )
        .await
        .expect("approve");
    let form = format!(
        "grant_type=authorization_code&code=x&code_verifier={}&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4444%2Fcb",
        "a".repeat(43),
        encoded(stale_url)
    );
    let token = token_request(&app, form).await;
    assert_eq!(token.status(), 401);
    let body = json_body(&token);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("not allowed"),
        "{body}"
    );

    the_admin_api_finds_the_client_by_its_encoded_url(&app, &tenant, url, now).await;
}

/// The authorization endpoint for a metadata-document client.
async fn authorize(app: &App, client_id: &str) -> lambda_http::Response<Body> {
    let query = format!(
        "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4444%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=abc",
        encoded(client_id)
    );
    handle_event(
        app,
        Function::Authorize,
        raw_event(
            "GET",
            "GET /t/{tenant}/oauth/authorize",
            "/t/demo/oauth/authorize",
            &query,
            None,
            &[],
        ),
    )
    .await
}

/// A pending client as the authorize function records it from a valid document at `url`.
fn record(tenant: &Tenant, url: &str, fresh_until: i64, now: UnixTime) -> Client {
    let id = ClientId::parse(url).expect("url id");
    let parsed = cimd::document_url(&id).expect("document url");
    let doc = json!({
        "client_id": url,
        "client_name": "Lambda CIMD agent",
        "redirect_uris": ["http://127.0.0.1:4444/cb"],
    });
    let metadata = cimd::validate_document(doc.to_string().as_bytes(), &id, &parsed, tenant)
        .expect("valid document");
    let state = DocumentState {
        fetched_at: now,
        fresh_until,
    };
    cimd::new_pending_client(tenant, &id, metadata, state, now)
}

/// The admin API by percent-encoded URL (rawPath keeps the encoding).
async fn the_admin_api_finds_the_client_by_its_encoded_url(
    app: &App,
    tenant: &Tenant,
    url: &str,
    now: UnixTime,
) {
    let admin = app
        .store
        .get_user(&tenant.id, &Email::parse("admin@demo.test").expect("email"))
        .await
        .expect("read")
        .expect("admin");
    let (api_token, secret) =
        gatehouse_core::endpoints::admin::new_api_token(&tenant.id, &admin, "t", 600, now);
    app.store.create_api_token(&api_token).await.expect("token");
    let path = format!("/t/demo/api/v1/oauth-clients/{}", encoded(url));
    let mut ev = base_event("GET", "ANY /t/{tenant}/api/v1/{proxy+}", &path);
    ev["headers"]["authorization"] = format!("Bearer {secret}").into();
    let resp = handle_event(
        app,
        Function::Admin,
        lambda_http::request::from_str(&ev.to_string()).expect("event"),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text_body(&resp));
    let view = json_body(&resp);
    assert_eq!(view["client_id"], url);
    assert_eq!(view["createdByType"], "cimd");
    assert_eq!(view["metadata_document"]["url"], url);
}
