//! Each Lambda function driven with real API Gateway HTTP API (payload 2.0) events through
//! `lambda_http`'s own deserialisation, routed the way the SAM template routes them.

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

const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

async fn app() -> App {
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

fn event(method: &str, route_key: &str, path: &str, body: Option<&Value>) -> lambda_http::Request {
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
fn raw_event(
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

fn base_event(method: &str, route_key: &str, path: &str) -> Value {
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
async fn token_request(app: &App, form: String) -> lambda_http::Response<Body> {
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

fn text_body(resp: &lambda_http::Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

async fn register(app: &App, auth_method: &str) -> Value {
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

fn json_body(resp: &lambda_http::Response<Body>) -> Value {
    let bytes: &[u8] = match resp.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    serde_json::from_slice(bytes).expect("JSON body")
}

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

#[tokio::test]
async fn authorize_function_signs_in_with_cookies_from_the_cookies_array() {
    let app = app().await;
    let client = register(&app, "none").await;
    let query = format!(
        "response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A4444%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=abc",
        client["client_id"].as_str().expect("id")
    );
    let page = handle_event(
        &app,
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
    .await;
    assert_eq!(page.status(), 200);
    let set_cookie = page.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("Secure")
            && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let browser = set_cookie.split(';').next().expect("cookie").to_owned();
    let html = text_body(&page);
    let form = format!(
        "request_id={}&client_id={}&csrf_token={}&action=sign_in&email=admin%40demo.test&password={}",
        hidden(&html, "request_id"),
        hidden(&html, "client_id"),
        hidden(&html, "csrf_token"),
        "admin-pass"
    );

    // Without the browser cookie the form is refused.
    let forged = handle_event(
        &app,
        Function::Authorize,
        raw_event(
            "POST",
            "POST /t/{tenant}/oauth/authorize",
            "/t/demo/oauth/authorize",
            "",
            Some((form.clone(), "application/x-www-form-urlencoded")),
            &[],
        ),
    )
    .await;
    assert_eq!(forged.status(), 403);

    let signed_in = handle_event(
        &app,
        Function::Authorize,
        raw_event(
            "POST",
            "POST /t/{tenant}/oauth/authorize",
            "/t/demo/oauth/authorize",
            "",
            Some((form, "application/x-www-form-urlencoded")),
            &[browser],
        ),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    let consent = text_body(&signed_in);
    assert!(consent.contains("New, unverified application"));
    assert!(consent.contains(&format!("action=\"https://{HOST}/t/demo/admin/approve\"")));
}

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

/// The cookie pair (`name=value`) a response sets.
fn set_cookie_pair(resp: &lambda_http::Response<Body>, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .expect("the cookie is set")
}

#[tokio::test]
async fn admin_function_serves_console_sign_in_and_the_api_from_proxy_routes() {
    let app = app().await;
    let signin = handle_event(
        &app,
        Function::Admin,
        raw_event(
            "GET",
            "GET /t/{tenant}/admin/{proxy+}",
            "/t/demo/admin/signin",
            "",
            None,
            &[],
        ),
    )
    .await;
    assert_eq!(signin.status(), 200);
    assert!(
        signin.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("frame-ancestors 'none'")
    );
    let browser = set_cookie_pair(&signin, "gh_browser");
    let form = format!(
        "csrf={}&email=admin%40demo.test&password=admin-pass",
        hidden(&text_body(&signin), "csrf")
    );
    let post = |cookies: Vec<String>| {
        handle_event(
            &app,
            Function::Admin,
            raw_event(
                "POST",
                "POST /t/{tenant}/admin/{proxy+}",
                "/t/demo/admin/signin",
                "",
                Some((form.clone(), "application/x-www-form-urlencoded")),
                &cookies,
            ),
        )
    };
    assert_eq!(
        post(vec![]).await.status(),
        403,
        "no browser cookie, no sign-in"
    );
    let signed_in = post(vec![browser.clone()]).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(
        signed_in.headers()["location"],
        format!("https://{HOST}/t/demo/admin")
    );
    let session = set_cookie_pair(&signed_in, "gh_session");

    let api = |method: &str,
               path: &str,
               body: Option<Value>,
               cookies: Vec<String>,
               csrf: Option<&str>| {
        let mut ev = base_event(method, "ANY /t/{tenant}/api/v1/{proxy+}", path);
        ev["cookies"] = json!(cookies);
        ev["pathParameters"]["proxy"] = path.trim_start_matches("/t/demo/api/v1/").into();
        if let Some(csrf) = csrf {
            ev["headers"]["x-csrf-token"] = csrf.into();
        }
        if let Some(body) = body {
            ev["body"] = STANDARD.encode(body.to_string()).into();
            ev["isBase64Encoded"] = true.into();
        }
        let req = lambda_http::request::from_str(&ev.to_string()).expect("event");
        handle_event(&app, Function::Admin, req)
    };
    let anonymous = api("GET", "/t/demo/api/v1/oauth-clients", None, vec![], None).await;
    assert_eq!(anonymous.status(), 401);
    let who = api(
        "GET",
        "/t/demo/api/v1/session",
        None,
        vec![session.clone()],
        None,
    )
    .await;
    assert_eq!(who.status(), 200);
    let csrf = json_body(&who)["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let patch = json!({"require_client_uri": true});
    let forged = api(
        "PATCH",
        "/t/demo/api/v1/settings",
        Some(patch.clone()),
        vec![session.clone()],
        None,
    )
    .await;
    assert_eq!(forged.status(), 403, "a cookie write needs the CSRF header");
    let changed = api(
        "PATCH",
        "/t/demo/api/v1/settings",
        Some(patch),
        vec![session],
        Some(&csrf),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(json_body(&changed)["require_client_uri"], true);
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

fn encoded(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// Client ID Metadata Documents through the authorize, token and admin functions: an internal
/// document address is refused with a page, never a redirect; a recorded client whose document
/// is fresh is served from the store without a fetch (its host does not even resolve here); a
/// stale one is fetched again at the token endpoint, and when that fails the client cannot
/// authenticate; the admin API finds a client by its percent-encoded URL in the proxy route.
#[tokio::test]
async fn metadata_document_clients_through_the_authorize_token_and_admin_functions() {
    use gatehouse_core::cimd;
    use gatehouse_core::domain::{ClientId, DocumentState, Email};
    let app = app().await;
    let tenant = app.tenant("demo").await.expect("demo");
    let now = app.now();
    let authorize = |client_id: &str| {
        let query = format!(
            "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4444%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=abc",
            encoded(client_id)
        );
        handle_event(
            &app,
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
    };
    let record = |url: &str, fresh_until: i64| {
        let id = ClientId::parse(url).expect("url id");
        let parsed = cimd::document_url(&id).expect("document url");
        let doc = json!({
            "client_id": url,
            "client_name": "Lambda CIMD agent",
            "redirect_uris": ["http://127.0.0.1:4444/cb"],
        });
        let metadata = cimd::validate_document(doc.to_string().as_bytes(), &id, &parsed, &tenant)
            .expect("valid document");
        let state = DocumentState {
            fetched_at: now,
            fresh_until,
        };
        cimd::new_pending_client(&tenant, &id, metadata, state, now)
    };

    // An internal address: refused before any connection, on a page.
    let refused = authorize("https://10.0.0.1/clients/agent.json").await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    assert!(
        text_body(&refused).contains("not allowed"),
        "{}",
        text_body(&refused)
    );

    // A recorded client with a fresh document: no fetch, the sign-in page.
    let url = "https://agent.invalid/clients/agent.json";
    let quota = gatehouse_core::store::PendingQuota {
        cap: 0,
        window_secs: 3600,
    };
    app.store
        .create_pending_client(&record(url, now + 300), quota, now)
        .await
        .expect("record");
    let page = authorize(url).await;
    assert_eq!(page.status(), 200, "{}", text_body(&page));
    assert!(text_body(&page).contains("Lambda CIMD agent"));

    // Approved, but its document is stale and its host is refused: 401 invalid_client.
    let stale_url = "https://10.0.0.1/clients/stale.json";
    let stale = record(stale_url, now - 1);
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

    // The admin API by percent-encoded URL (rawPath keeps the encoding).
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
        &app,
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

/// The approval gate through the functions as API Gateway routes them: a pending client's
/// request errors are pages of the authorize function (never a redirect to the unapproved
/// redirect URI); the admin function approves only the configuration its page showed, so a
/// client that renamed itself through the register function (RFC 7592) in between is shown
/// again; HSTS on every answer, the public URL being https.
#[tokio::test]
async fn admin_function_approves_only_the_configuration_its_page_showed() {
    let app = app().await;
    let client = register(&app, "none").await;
    let id = client["client_id"].as_str().expect("id").to_owned();
    let authorize = |query: String, cookies: Vec<String>| {
        handle_event(
            &app,
            Function::Authorize,
            raw_event(
                "GET",
                "GET /t/{tenant}/oauth/authorize",
                "/t/demo/oauth/authorize",
                &query,
                None,
                &cookies,
            ),
        )
    };
    let query = |extra: &str| {
        format!(
            "client_id={id}&redirect_uri=http%3A%2F%2Flocalhost%3A4444%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=abc{extra}"
        )
    };

    let refused = authorize(query("&response_type=token"), vec![]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    assert!(text_body(&refused).contains("unsupported_response_type"));
    assert!(
        refused.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .contains("max-age=31536000")
    );

    let page = authorize(query("&response_type=code"), vec![]).await;
    assert_eq!(page.status(), 200);
    let browser = set_cookie_pair(&page, "gh_browser");
    let html = text_body(&page);
    let form = format!(
        "request_id={}&client_id={id}&csrf_token={}&action=sign_in&email=admin%40demo.test&password=admin-pass",
        hidden(&html, "request_id"),
        hidden(&html, "csrf_token"),
    );
    let post = |function: Function, route: &'static str, path: &'static str| {
        let app = &app;
        move |form: String, cookies: Vec<String>| {
            handle_event(
                app,
                function,
                raw_event(
                    "POST",
                    route,
                    path,
                    "",
                    Some((form, "application/x-www-form-urlencoded")),
                    &cookies,
                ),
            )
        }
    };
    let sign_in = post(
        Function::Authorize,
        "POST /t/{tenant}/oauth/authorize",
        "/t/demo/oauth/authorize",
    );
    let approve = post(
        Function::Admin,
        "POST /t/{tenant}/admin/approve",
        "/t/demo/admin/approve",
    );
    let approval_page = sign_in(form, vec![browser.clone()]).await;
    assert_eq!(approval_page.status(), 200);
    let session = set_cookie_pair(&approval_page, "gh_session");
    let shown = text_body(&approval_page);
    let decide = |html: &str| {
        format!(
            "request_id={}&client_id={id}&csrf_token={}&action=decide&decision=approve&config_version={}",
            hidden(html, "request_id"),
            hidden(html, "csrf_token"),
            hidden(html, "config_version"),
        )
    };
    let stale_form = decide(&shown);

    // The client renames itself through the register function while the page is open.
    let mut ev = base_event(
        "PUT",
        "PUT /t/{tenant}/oauth/register/{client_id}",
        &format!("/t/demo/oauth/register/{id}"),
    );
    ev["pathParameters"]["client_id"] = id.clone().into();
    ev["headers"]["authorization"] = format!(
        "Bearer {}",
        client["registration_access_token"].as_str().expect("token")
    )
    .into();
    ev["body"] = STANDARD
        .encode(
            json!({"client_id": id, "client_name": "Renamed Agent",
                   "redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"})
            .to_string(),
        )
        .into();
    ev["isBase64Encoded"] = true.into();
    let renamed = handle_event(
        &app,
        Function::Register,
        lambda_http::request::from_str(&ev.to_string()).expect("event"),
    )
    .await;
    assert_eq!(renamed.status(), 200);

    let again = approve(stale_form, vec![browser.clone(), session.clone()]).await;
    assert_eq!(again.status(), 409);
    assert!(again.headers().get("location").is_none());
    let again_html = text_body(&again);
    assert!(again_html.contains("Renamed Agent"), "{again_html}");

    let approved = approve(decide(&again_html), vec![browser, session]).await;
    assert_eq!(approved.status(), 303);
    let location = approved.headers()["location"].to_str().expect("ascii");
    assert!(
        location.starts_with("http://localhost:4444/cb?code="),
        "{location}"
    );
}
