//! The admin function: console sign-in, the admin API behind the proxy route, and approval.

use crate::support::{
    HOST, app, base_event, hidden, json_body, raw_event, register, set_cookie_pair, text_body,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::app::App;
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use lambda_http::Body;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_function_serves_console_sign_in_and_the_api_from_proxy_routes() {
    let app = app().await;
    let session = console_sign_in(&app).await;
    let anonymous = admin_api(
        &app,
        "GET",
        "/t/demo/api/v1/oauth-clients",
        None,
        vec![],
        None,
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    let who = admin_api(
        &app,
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
    let forged = admin_api(
        &app,
        "PATCH",
        "/t/demo/api/v1/settings",
        Some(patch.clone()),
        vec![session.clone()],
        None,
    )
    .await;
    assert_eq!(forged.status(), 403, "a cookie write needs the CSRF header");
    let changed = admin_api(
        &app,
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

/// The console's sign-in page and form through the `{proxy+}` routes; returns the session
/// cookie pair.
pub(crate) async fn console_sign_in(app: &App) -> String {
    let signin = handle_event(
        app,
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
        form_post(
            app,
            Function::Admin,
            "POST /t/{tenant}/admin/{proxy+}",
            "/t/demo/admin/signin",
            form.clone(),
            cookies,
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
    set_cookie_pair(&signed_in, "gh_session")
}

/// An event on the admin API's `ANY /t/{tenant}/api/v1/{proxy+}` route, with cookies, an
/// optional CSRF header and an optional (base64-encoded) JSON body.
pub(crate) async fn admin_api(
    app: &App,
    method: &str,
    path: &str,
    body: Option<Value>,
    cookies: Vec<String>,
    csrf: Option<&str>,
) -> lambda_http::Response<Body> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut ev = base_event(method, "ANY /t/{tenant}/api/v1/{proxy+}", path);
    ev["rawQueryString"] = query.into();
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
    handle_event(app, Function::Admin, req).await
}

/// A form `POST` with cookies to `function` on `route`.
pub(crate) async fn form_post(
    app: &App,
    function: Function,
    route: &str,
    path: &str,
    form: String,
    cookies: Vec<String>,
) -> lambda_http::Response<Body> {
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
    .await
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
    let (browser, session, shown) = sign_in_to_the_approval_page(&app, &id).await;
    let approve = |form: String, cookies: Vec<String>| {
        form_post(
            &app,
            Function::Admin,
            "POST /t/{tenant}/admin/approve",
            "/t/demo/admin/approve",
            form,
            cookies,
        )
    };
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
    let renamed = rename_through_the_register_function(&app, &client, "Renamed Agent").await;
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

/// A pending client's request error is a page (with HSTS), never a redirect; a good request
/// signs the administrator in through the authorize function onto the approval page. Returns
/// the browser and session cookie pairs and the page.
async fn sign_in_to_the_approval_page(app: &App, id: &str) -> (String, String, String) {
    let authorize = |query: String, cookies: Vec<String>| {
        handle_event(
            app,
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
    let approval_page = form_post(
        app,
        Function::Authorize,
        "POST /t/{tenant}/oauth/authorize",
        "/t/demo/oauth/authorize",
        form,
        vec![browser.clone()],
    )
    .await;
    assert_eq!(approval_page.status(), 200);
    let session = set_cookie_pair(&approval_page, "gh_session");
    (browser, session, text_body(&approval_page))
}

/// An RFC 7592 `PUT` through the register function that renames the client.
async fn rename_through_the_register_function(
    app: &App,
    client: &Value,
    name: &str,
) -> lambda_http::Response<Body> {
    let id = client["client_id"].as_str().expect("id");
    let mut ev = base_event(
        "PUT",
        "PUT /t/{tenant}/oauth/register/{client_id}",
        &format!("/t/demo/oauth/register/{id}"),
    );
    ev["pathParameters"]["client_id"] = id.into();
    ev["headers"]["authorization"] = format!(
        "Bearer {}",
        client["registration_access_token"].as_str().expect("token")
    )
    .into();
    ev["body"] = STANDARD
        .encode(
            json!({"client_id": id, "client_name": name,
                   "redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"})
            .to_string(),
        )
        .into();
    ev["isBase64Encoded"] = true.into();
    handle_event(
        app,
        Function::Register,
        lambda_http::request::from_str(&ev.to_string()).expect("event"),
    )
    .await
}
