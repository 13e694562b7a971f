//! The console's sign-in and sign-out (`{issuer}/admin/signin`, `{issuer}/admin/signout`): the
//! hosted password check ([`crate::signin`]) behind a form bound to the `gh_browser` cookie,
//! since there is no session yet whose CSRF token the form could carry.

use super::console_pages::see_other;
use crate::context::Ctx;
use crate::crypto;
use crate::hosted::cookie_value;
use crate::html;
use crate::http::{self, Request, Response};
use crate::params::Params;
use crate::signin::{self, BROWSER_COOKIE, SESSION_COOKIE, SignInError};
use ::http::StatusCode;
use ::http::header;
use askama::Template;

#[derive(Template)]
#[template(path = "admin_signin.html")]
struct SignInPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    signin_csrf: &'a str,
    email: &'a str,
}

fn signin_csrf(browser: &str) -> String {
    crypto::hash_secret(&format!("gatehouse-signin:{browser}"))
}

pub(super) fn signin_page(
    ctx: &Ctx<'_>,
    req: &Request,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (browser, fresh) = match cookie_value(req, BROWSER_COOKIE) {
        Some(b) => (b, false),
        None => (crypto::new_secret(), true),
    };
    let nonce = html::nonce();
    let mut resp = html::page(
        status,
        &nonce,
        &SignInPage {
            nonce: &nonce,
            tenant_name: &ctx.tenant.display_name,
            issuer: &ctx.issuer,
            csrf: "",
            error,
            signin_csrf: &signin_csrf(&browser),
            email,
        },
    );
    if fresh {
        resp.headers_mut().append(
            header::SET_COOKIE,
            ctx.cookie(BROWSER_COOKIE, browser, 365 * 24 * 3600),
        );
    }
    resp
}

pub(super) async fn sign_in(ctx: &Ctx<'_>, req: &Request) -> Response {
    let params = match (http::is_form(req.headers()), Params::parse(req.body())) {
        (true, Ok(p)) => p,
        _ => {
            return signin_page(
                ctx,
                req,
                "",
                Some("The sign-in form was malformed. Try again."),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let email = params.single("email").ok().flatten().unwrap_or("");
    let password = params.single("password").ok().flatten().unwrap_or("");
    let csrf = params.single("csrf").ok().flatten().unwrap_or("");
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    if browser.is_empty() || !crypto::constant_time_eq(csrf, &signin_csrf(&browser)) {
        return signin_page(
            ctx,
            req,
            email,
            Some("The sign-in form expired. Try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let user = match signin::check_password(ctx, "console", email, password).await {
        Ok(user) => user,
        Err(SignInError::Throttled) => {
            return signin_page(
                ctx,
                req,
                email,
                Some("Too many sign-in attempts. Wait a minute and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(SignInError::Invalid) => {
            return signin_page(
                ctx,
                req,
                email,
                Some("Incorrect email or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(SignInError::Store(e)) => return http::error_response(&e.into()),
    };
    let session_id = match signin::start_session(ctx.app, &user, ctx.now).await {
        Ok((_, id)) => id,
        Err(e) => return http::error_response(&e.into()),
    };
    let mut resp = see_other(&format!("{}/admin", ctx.issuer));
    resp.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(
            SESSION_COOKIE,
            session_id,
            crate::defaults::SESSION_TTL_SECS,
        ),
    );
    resp
}

pub(super) async fn sign_out(ctx: &Ctx<'_>, req: &Request) -> Response {
    if let Some(id) = cookie_value(req, SESSION_COOKIE)
        && let Err(e) = ctx
            .app
            .store
            .delete_session(&ctx.tenant.id, &crypto::hash_secret(&id))
            .await
    {
        return http::error_response(&e.into());
    }
    let mut resp = see_other(&format!("{}/admin/signin", ctx.issuer));
    resp.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(SESSION_COOKIE, String::new(), 0),
    );
    resp
}
