//! The authorize function: the hosted sign-in with cookies from the `cookies` array.

use crate::support::{HOST, app, hidden, raw_event, register, text_body};
use gatehouse_core::lambda::handle_event;
use gatehouse_core::router::Function;

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
