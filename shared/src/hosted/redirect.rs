//! The way back to the client: a redirect URI checked against the client's registration, and
//! the errors (RFC 6749 §4.1.2.1) that may be sent there.

use crate::domain::{AuthorizationRequest, Client, ClientStatus};
use crate::error::ErrorCode;
use crate::html;
use crate::http::Response;
use ::http::StatusCode;
use ::http::header::{self, HeaderValue};
use bytes::Bytes;
use url::Url;

use super::PageError;
use crate::context::Ctx;

/// A redirect URI that matched the client's registration, with the `state` and `iss` every
/// response to it must carry. Only [`validate_redirect`] and [`redirect_of`] construct it.
#[derive(Debug, Clone)]
pub struct ValidatedRedirect {
    uri: String,
    state: Option<String>,
    iss: String,
    /// Whether an administrator approved the client. Until then its redirect URI is only the
    /// registrant's claim: errors are shown on our own page, never sent there (anyone could
    /// otherwise register a client and use Gatehouse as an open redirector).
    approved: bool,
}

impl ValidatedRedirect {
    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    pub(crate) fn send(&self, status: StatusCode, params: &[(&str, &str)]) -> Response {
        let mut target = match Url::parse(&self.uri) {
            Ok(u) => u,
            Err(_) => {
                return html::message(
                    StatusCode::BAD_REQUEST,
                    "",
                    "Invalid redirect URI",
                    "The application's redirect URI cannot be used.",
                    None,
                );
            }
        };
        {
            let mut q = target.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.iss);
        }
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(target.as_str()) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        resp
    }
}

/// An error returned to the client's redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug)]
pub struct RedirectError {
    to: ValidatedRedirect,
    code: ErrorCode,
    description: String,
}

impl RedirectError {
    pub(crate) fn new(
        to: &ValidatedRedirect,
        code: ErrorCode,
        description: impl Into<String>,
    ) -> Self {
        Self {
            to: to.clone(),
            code,
            description: description.into(),
        }
    }

    /// The error for an unapproved client, as a page on Gatehouse.
    pub(crate) fn into_page(self) -> PageError {
        if self.code == ErrorCode::AccessDenied {
            return PageError::new(
                StatusCode::OK,
                "Application not approved",
                "You denied this request. The application stays unapproved and is deleted automatically unless an administrator approves it.",
            );
        }
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            format!(
                "The application sent a request that cannot be completed ({}: {}).",
                self.code.as_str(),
                self.description
            ),
        )
        .with_hint("The application has not been approved yet, so you are not sent back to it. Tell its developer about this error.")
    }

    pub(crate) fn into_response(self, ctx: &Ctx<'_>, status: StatusCode) -> Response {
        if !self.to.approved {
            return ctx.page_error(self.into_page());
        }
        self.to.send(
            status,
            &[
                ("error", self.code.as_str()),
                ("error_description", &self.description),
            ],
        )
    }
}

/// Step 2: the redirect URI must match a registered one exactly (loopback: any port). With a
/// single registered URI it may be omitted (RFC 6749 §3.1.2.3).
pub(crate) fn validate_redirect(
    ctx: &Ctx<'_>,
    client: &Client,
    raw: Option<&str>,
    state: Option<&str>,
) -> Result<ValidatedRedirect, PageError> {
    let uris = &client.metadata.redirect_uris;
    let chosen = match raw {
        Some(presented) => uris
            .iter()
            .any(|u| u.matches(presented))
            .then(|| presented.to_owned()),
        None if uris.len() == 1 => uris.first().map(|u| u.as_str().to_owned()),
        None => None,
    };
    // A client that added this URI to its configuration since it was approved (RFC 7592
    // update, changed metadata document): not before an administrator approves the change.
    let awaiting_approval = raw.is_some_and(|presented| {
        client
            .pending_changes
            .as_ref()
            .is_some_and(|p| p.redirect_uris.iter().any(|u| u.matches(presented)))
    });
    if chosen.is_none() && awaiting_approval {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Administrator approval required",
            format!(
                "{} changed its registration (a new return address) since an administrator of {} approved it. An administrator must approve the change in the admin console before it can be used.",
                client.metadata.client_name, ctx.tenant.display_name
            ),
        ));
    }
    let uri = chosen.ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid redirect URI",
            if raw.is_some() {
                "The application asked to return to an address it did not register."
            } else {
                "The application did not say where to return (redirect_uri is missing)."
            },
        )
    })?;
    Ok(ValidatedRedirect {
        uri,
        state: state.map(str::to_owned),
        iss: ctx.issuer.clone(),
        approved: client.status == ClientStatus::Approved,
    })
}

/// The redirect of a parked request: it was validated when the request was parked.
pub(crate) fn redirect_of(
    ctx: &Ctx<'_>,
    areq: &AuthorizationRequest,
    client: &Client,
) -> ValidatedRedirect {
    ValidatedRedirect {
        uri: areq.redirect_uri.clone(),
        state: areq.state.clone(),
        iss: ctx.issuer.clone(),
        approved: client.status == ClientStatus::Approved,
    }
}
