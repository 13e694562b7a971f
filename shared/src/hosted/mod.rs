//! The hosted flow: what happens between an authorization request and the code — the parked
//! request, sign-in, the approval and consent pages, the administrator's decision and code
//! issuance. The authorization endpoint (`endpoints::authorize`) starts it, the approval
//! endpoint (`endpoints::approval`) and the admin console (`endpoints::admin::console`) reuse
//! its pages, forms and sign-in.
//!
//! Two kinds of errors, kept apart by the type system: [`PageError`] is shown to the user and
//! never redirects (bad `client_id` or `redirect_uri`, expired request, forged form);
//! [`RedirectError`] goes back to the client, and can only be built from a [`ValidatedRedirect`],
//! which only exists once the client and its redirect URI have been checked.

use crate::crypto;
use crate::domain::ClientId;
use crate::html;
use crate::http::{Request, Response};
use crate::signin::SESSION_COOKIE;
use crate::store::{FlowItems, FlowKeys, StoreError};
use ::http::header::{self, HeaderValue};
use cookie::{Cookie, SameSite};

mod access;
mod errors;
mod flow;
mod form;
mod pages;
mod redirect;
pub(crate) use access::request_access;
pub(crate) use errors::{
    AuthorizeError, PageError, admin_required, expired_registration, finish, invalid_decision,
    page_param, respond, too_large,
};
pub(crate) use flow::{Flow, Grants, Next, deny, issue_code, next_step, run_step};
pub(crate) use form::{SubmittedForm, load_form, sign_in};
pub(crate) use pages::{consent_page, needs_admin_page, signin_again, signin_page};
pub(crate) use redirect::{RedirectError, ValidatedRedirect, redirect_of, validate_redirect};

pub(crate) use crate::context::Ctx;

/// What the hosted pages need of the request context.
impl Ctx<'_> {
    pub(crate) fn authorize_action(&self) -> String {
        format!("{}/oauth/authorize", self.issuer)
    }

    pub(crate) fn approve_action(&self) -> String {
        format!("{}/admin/approve", self.issuer)
    }

    /// Cookies are `Secure` unless the server itself is plain http (loopback development).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.base.starts_with("https://")
    }

    pub(crate) fn cookie(&self, name: &'static str, value: String, max_age: i64) -> HeaderValue {
        let c = Cookie::build((name, value))
            .path(format!("/t/{}", self.tenant.id))
            .http_only(true)
            .secure(self.secure_cookies())
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub(crate) fn page_error(&self, e: PageError) -> Response {
        html::message(
            e.status,
            &self.tenant.display_name,
            &e.title,
            &e.message,
            e.hint,
        )
    }
}

pub(crate) fn cookie_value(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// What one step of the flow reads, in one round trip: the client, the browser's session (from
/// its cookie) and, for a submitted form, the parked request.
pub(crate) async fn load_step(
    ctx: &Ctx<'_>,
    req: &Request,
    client_id: &ClientId,
    request_id: Option<&str>,
) -> Result<FlowItems, StoreError> {
    let session_hash = cookie_value(req, SESSION_COOKIE).map(|id| crypto::hash_secret(&id));
    let keys = FlowKeys {
        tenant: &ctx.tenant.id,
        request_id,
        client_id: Some(client_id),
        session_hash: session_hash.as_deref(),
    };
    ctx.app.store.load_flow(keys, ctx.now).await
}
