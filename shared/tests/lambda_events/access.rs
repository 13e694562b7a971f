//! "Ask an administrator" and the audit trail through the functions as API Gateway routes
//! them: a regular user's request on the authorize function's page, the admin API (admin
//! function) listing who asked, rejecting the client, and the audit events of each step.

use crate::admin::{admin_api, console_sign_in, form_post};
use crate::support::{app, hidden, json_body, raw_event, register, set_cookie_pair, text_body};
use gatehouse_core::app::App;
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;
use serde_json::Value;

/// The demo user signs in on a pending client's authorization page (authorize function) and
/// lands on "Administrator approval required"; returns the cookies and that page.
async fn user_meets_pending_client(app: &App, id: &str) -> (Vec<String>, String) {
    let query = format!(
        "client_id={id}&redirect_uri=http%3A%2F%2Flocalhost%3A4444%2Fcb&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=abc"
    );
    let page = handle_event(
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
    .await;
    assert_eq!(page.status(), 200);
    let browser = set_cookie_pair(&page, "gh_browser");
    let html = text_body(&page);
    let form = format!(
        "request_id={}&client_id={id}&csrf_token={}&action=sign_in&email=user%40demo.test&password=user-pass",
        hidden(&html, "request_id"),
        hidden(&html, "csrf_token"),
    );
    let refused = authorize_post(app, form, vec![browser.clone()]).await;
    assert_eq!(refused.status(), 403);
    let session = set_cookie_pair(&refused, "gh_session");
    let html = text_body(&refused);
    assert!(html.contains("Administrator approval required"), "{html}");
    assert!(html.contains("id=\"request-access\""), "{html}");
    (vec![browser, session], html)
}

async fn authorize_post(
    app: &App,
    form: String,
    cookies: Vec<String>,
) -> lambda_http::Response<lambda_http::Body> {
    form_post(
        app,
        Function::Authorize,
        "POST /t/{tenant}/oauth/authorize",
        "/t/demo/oauth/authorize",
        form,
        cookies,
    )
    .await
}

async fn audit(app: &App, session: &str, query: &str) -> Vec<Value> {
    let resp = admin_api(
        app,
        "GET",
        &format!("/t/demo/api/v1/audit-events{query}"),
        None,
        vec![session.to_owned()],
        None,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text_body(&resp));
    json_body(&resp)["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn a_user_asks_and_the_administrator_sees_who_asked_and_rejects() {
    let app = app().await;
    let client = register(&app, "none").await;
    let id = client["client_id"].as_str().expect("id").to_owned();
    let (cookies, html) = user_meets_pending_client(&app, &id).await;
    let ask = format!(
        "request_id={}&client_id={id}&csrf_token={}&action=request_access",
        hidden(&html, "request_id"),
        hidden(&html, "csrf_token"),
    );
    let forged = ask.replace("csrf_token=", "csrf_token=x");
    assert_eq!(
        authorize_post(&app, forged, cookies.clone()).await.status(),
        403
    );
    let sent = authorize_post(&app, ask.clone(), cookies.clone()).await;
    assert_eq!(sent.status(), 200);
    assert!(text_body(&sent).contains("id=\"access-requested\""));
    assert_eq!(
        authorize_post(&app, ask, cookies).await.status(),
        200,
        "asking again shows the same page"
    );

    let admin = console_sign_in(&app).await;
    let path = format!("/t/demo/api/v1/oauth-clients/{id}");
    let shown = admin_api(&app, "GET", &path, None, vec![admin.clone()], None).await;
    let asked = &json_body(&shown)["access_requests"];
    assert_eq!(asked.as_array().map(Vec::len), Some(1), "{asked}");
    assert_eq!(asked[0]["email"], "user@demo.test");
    let requested = audit(&app, &admin, "?type=client.access_requested").await;
    assert_eq!(requested.len(), 1, "one event for two clicks");
    assert_eq!(requested[0]["client_id"], id.as_str());
    assert_eq!(requested[0]["actor"]["email"], "user@demo.test");
    assert_eq!(requested[0]["client"]["status"], "pending");

    let who = admin_api(
        &app,
        "GET",
        "/t/demo/api/v1/session",
        None,
        vec![admin.clone()],
        None,
    )
    .await;
    let csrf = json_body(&who)["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let reject = format!("{path}/reject");
    let rejected = admin_api(
        &app,
        "POST",
        &reject,
        None,
        vec![admin.clone()],
        Some(&csrf),
    )
    .await;
    assert_eq!(rejected.status(), 204, "{}", text_body(&rejected));
    let gone = admin_api(&app, "GET", &path, None, vec![admin.clone()], None).await;
    assert_eq!(gone.status(), 404);
    let events = audit(&app, &admin, &format!("?client_id={id}")).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "client.rejected",
            "client.access_requested",
            "client.registered"
        ],
        "newest first"
    );
    assert_eq!(events[0]["access_requests"][0]["email"], "user@demo.test");
    let signins = audit(&app, &admin, "?type=signin.succeeded").await;
    assert!(signins.iter().any(|e| e["detail"]["page"] == "console"));
    assert!(signins.iter().any(|e| e["detail"]["page"] == "authorize"));
}
