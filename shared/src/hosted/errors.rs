//! The hosted flow's two kinds of errors and how each becomes a response.

use crate::http::Response;
use crate::params::{ParamError, Params};
use crate::store::StoreError;
use ::http::StatusCode;

use super::RedirectError;
use crate::context::Ctx;

/// An error shown to the user on our own page; never a redirect.
#[derive(Debug)]
pub struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) hint: Option<&'static str>,
}

impl PageError {
    pub(crate) fn new(
        status: StatusCode,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(crate) fn start_again() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "The authorization request expired or was already completed.",
        )
        .with_hint("Return to the application and start connecting again.")
    }

    pub(crate) fn forged_form() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form cannot be accepted",
            "The form was not issued to this browser for this request.",
        )
        .with_hint("Return to the application and start connecting again.")
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        let err = crate::error::OAuthError::from(e);
        Self::new(
            err.status,
            "Temporarily unavailable",
            "The service could not complete this step. Please try again in a moment.",
        )
    }
}

pub enum AuthorizeError {
    Page(PageError),
    Redirect(RedirectError),
}

impl From<PageError> for AuthorizeError {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl From<RedirectError> for AuthorizeError {
    fn from(e: RedirectError) -> Self {
        Self::Redirect(e)
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        Self::Page(e.into())
    }
}

pub(crate) fn finish(
    ctx: &Ctx<'_>,
    result: Result<Response, AuthorizeError>,
    status: StatusCode,
) -> Response {
    match result {
        Ok(resp) => resp,
        Err(AuthorizeError::Page(e)) => ctx.page_error(e),
        Err(AuthorizeError::Redirect(e)) => e.into_response(ctx, status),
    }
}

pub(crate) fn respond(ctx: &Ctx<'_>, result: Result<Response, AuthorizeError>) -> Response {
    finish(ctx, result, StatusCode::SEE_OTHER)
}

pub(crate) fn admin_required() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Administrator approval required",
        "Only an administrator of this organisation can approve a new application.",
    )
}

pub(crate) fn expired_registration() -> PageError {
    PageError::new(
        StatusCode::GONE,
        "This application can no longer be approved",
        "Its registration expired before it was approved, and it has been removed.",
    )
    .with_hint("Return to the application and connect again; it will register anew.")
}

pub(crate) fn invalid_decision() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "Invalid form",
        "The form did not say whether to approve or deny.",
    )
}

pub(crate) fn too_large(e: ParamError) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Request too large", e.describe())
}

pub(crate) fn page_param<'p>(
    params: &'p Params,
    name: &'static str,
) -> Result<Option<&'p str>, PageError> {
    params.single(name).map_err(|e| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            e.describe(),
        )
    })
}
