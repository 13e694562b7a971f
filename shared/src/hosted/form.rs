//! Submitted hosted forms: the parked request they belong to, checked, and the sign-in form.

use crate::crypto;
use crate::defaults::SESSION_TTL_SECS;
use crate::domain::{Actor, AuthorizationRequest, Client, ClientId, EventType, Session};
use crate::http::{Request, Response};
use crate::params::Params;
use ::http::StatusCode;
use ::http::header::{self};

use super::{
    AuthorizeError, Flow, PageError, ValidatedRedirect, cookie_value, next_step, page_param,
    redirect_of, run_step, signin_page, too_large,
};
use crate::context::Ctx;
use crate::signin::{self, BROWSER_COOKIE, SESSION_COOKIE};

/// A submitted hosted form, checked: the parked request exists and is unexpired, the form's
/// CSRF token is that request's, and the browser is the one that started it.
pub(crate) struct SubmittedForm {
    pub params: Params,
    pub areq: AuthorizationRequest,
    pub client: Client,
    pub redirect: ValidatedRedirect,
    /// The browser's session in this tenant, if any.
    pub session: Option<Session>,
}

impl SubmittedForm {
    /// Whether the decision was made on the client's configuration as stored now: the form
    /// carries the `config_version` its page showed. A client that changed itself since (new
    /// name, redirect URIs, scope) must be shown again before anyone decides on it.
    pub(crate) fn decided_on_current_version(&self) -> bool {
        self.params
            .single("config_version")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u32>().ok())
            == Some(self.client.config_version)
    }

    pub(crate) fn flow(&self) -> Flow<'_> {
        Flow {
            client: &self.client,
            areq: &self.areq,
            parked: true,
            redirect: &self.redirect,
            session: self.session.as_ref(),
        }
    }
}

/// Reads a submitted form and, in one round trip, the parked request, its client (named in
/// the form, checked against the request) and the browser's session.
pub(crate) async fn load_form(ctx: &Ctx<'_>, req: &Request) -> Result<SubmittedForm, PageError> {
    if !crate::http::is_form(req.headers()) {
        return Err(PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported form",
            "Forms must be submitted as application/x-www-form-urlencoded.",
        ));
    }
    let params = Params::parse(req.body()).map_err(too_large)?;
    if let Some(name) = params.first_repeated() {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            format!("The {name} field is repeated."),
        ));
    }
    let request_id = page_param(&params, "request_id")?.ok_or_else(PageError::start_again)?;
    let client_id = page_param(&params, "client_id")?
        .and_then(ClientId::parse)
        .ok_or_else(PageError::forged_form)?;
    let flow = super::load_step(ctx, req, &client_id, Some(request_id)).await?;
    let areq = flow.request.ok_or_else(PageError::start_again)?;
    let csrf = page_param(&params, "csrf_token")?.unwrap_or("");
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    let csrf_ok = crypto::constant_time_eq(csrf, &areq.csrf_token);
    let browser_ok = crypto::verify_secret(&browser, &areq.browser_hash);
    if !(csrf_ok && browser_ok && areq.client_id == client_id) {
        return Err(PageError::forged_form());
    }
    if let Some(expired) = flow
        .expired_client
        .as_ref()
        .filter(|_| flow.client.is_none())
    {
        // Found past its expiry: nobody approved it in time. Administrators hear of it.
        let event = ctx
            .event(EventType::ClientExpired, Actor::System)
            .via("hosted_form")
            .about(expired, &ctx.issuer);
        ctx.record(event).await;
    }
    let client = flow.client.ok_or_else(|| {
        PageError::new(
            StatusCode::GONE,
            "This application no longer exists",
            "Its registration expired before an administrator approved it, or it was deleted.",
        )
        .with_hint("Return to the application and connect again; it will register anew.")
    })?;
    if !areq.redirect_still_registered(&client.metadata.redirect_uris) {
        return Err(PageError::start_again());
    }
    let redirect = redirect_of(ctx, &areq, &client);
    // The session this request refused (`prompt=login`, `max_age`) cannot answer its forms
    // either: only a sign-in on this request's page replaces it.
    let session = signin::current_session(ctx.app, flow.session)
        .await?
        .filter(|s| areq.openid.stale_session.as_deref() != Some(s.id_hash.as_str()));
    Ok(SubmittedForm {
        params,
        areq,
        client,
        redirect,
        session,
    })
}

/// Sign-in: rate-limited per IP and per account, one generic message for every failure, and
/// the same argon2 work whether or not the account exists.
pub(crate) async fn sign_in(
    ctx: &Ctx<'_>,
    form: &SubmittedForm,
) -> Result<Response, AuthorizeError> {
    let email_raw = page_param(&form.params, "email")?.unwrap_or("");
    let password = page_param(&form.params, "password")?.unwrap_or("");
    let retry = |msg: &str, status| {
        signin_page(ctx, &form.client, &form.areq, email_raw, Some(msg), status)
    };

    let user = match signin::check_password(ctx, "authorize", email_raw, password).await {
        Ok(user) => user,
        Err(signin::SignInError::Throttled) => {
            return Ok(retry(
                "Too many sign-in attempts. Wait a minute and try again.",
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        Err(signin::SignInError::Invalid) => {
            return Ok(retry(
                "Incorrect email or password.",
                StatusCode::UNAUTHORIZED,
            ));
        }
        Err(signin::SignInError::Store(e)) => return Err(e.into()),
    };
    let (session, session_id) = signin::start_session(ctx.app, &user, ctx.now).await?;
    let flow = Flow {
        session: Some(&session),
        ..form.flow()
    };
    let next = next_step(ctx, &form.client, &form.areq, Some(&session)).await?;
    // RFC 9700 §4.12: 303 after a form that carried the password.
    let mut resp = match run_step(ctx, next, &flow, StatusCode::SEE_OTHER).await {
        Ok(resp) => resp,
        Err(AuthorizeError::Page(e)) => ctx.page_error(e),
        Err(AuthorizeError::Redirect(e)) => e.into_response(ctx, StatusCode::SEE_OTHER),
    };
    resp.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(SESSION_COOKIE, session_id, SESSION_TTL_SECS),
    );
    Ok(resp)
}
