//! The authorization endpoint (RFC 6749 §4.1, OAuth 2.1, RFC 7636, RFC 8707, RFC 9207) and its
//! hosted sign-in and consent forms.
//!
//! Two kinds of errors, kept apart by the type system: [`PageError`] is shown to the user and
//! never redirects (bad `client_id` or `redirect_uri`, expired request, forged form);
//! [`RedirectError`] goes back to the client, and can only be built from a [`ValidatedRedirect`],
//! which only exists once the client and its redirect URI have been checked.
//!
//! `GET` pipeline: [`Params::parse`] → [`parse_client_id`] (client and session read in one
//! round trip) → [`validate_redirect`] →
//! [`validate_request`] (response type, PKCE, scope, resource) → park the request →
//! [`next_step`] → park the request unless it ends at once → [`run_step`] (sign-in page,
//! approval/consent page, or a code).

use crate::cimd::{self, ResolveError};
use crate::crypto;
use crate::defaults::{
    AUTHORIZATION_CODE_TTL_SECS, AUTHORIZATION_REQUEST_TTL_SECS, SESSION_TTL_SECS,
};
use crate::domain::{
    AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus, Consent,
    ConsentMethod, Role, ScopeSet, Session,
};
use crate::endpoints::metadata;
use crate::error::ErrorCode;
use crate::html;
use crate::http::{Request, Response};
use crate::params::{ParamError, Params};
use crate::store::{Finish, FlowKeys, StoreError};
use ::http::StatusCode;
use ::http::header::{self, HeaderValue};
use bytes::Bytes;
use cookie::{Cookie, SameSite};
use url::Url;

use crate::signin::{self, BROWSER_COOKIE, SESSION_COOKIE};

// ------------------------------------------------------------------ context and errors

pub(crate) use crate::context::Ctx;

/// What the hosted pages need of the request context.
impl Ctx<'_> {
    fn authorize_action(&self) -> String {
        format!("{}/oauth/authorize", self.issuer)
    }

    fn approve_action(&self) -> String {
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

    fn page_error(&self, e: PageError) -> Response {
        html::message(
            e.status,
            &self.tenant.display_name,
            &e.title,
            &e.message,
            e.hint,
        )
    }
}

/// An error shown to the user on our own page; never a redirect.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    hint: Option<&'static str>,
}

impl PageError {
    fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    fn start_again() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "The authorization request expired or was already completed.",
        )
        .with_hint("Return to the application and start connecting again.")
    }

    fn forged_form() -> Self {
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
    fn send(&self, status: StatusCode, params: &[(&str, &str)]) -> Response {
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
    fn new(to: &ValidatedRedirect, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            to: to.clone(),
            code,
            description: description.into(),
        }
    }

    /// The error for an unapproved client, as a page on Gatehouse.
    fn into_page(self) -> PageError {
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

    fn into_response(self, ctx: &Ctx<'_>, status: StatusCode) -> Response {
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

fn finish(ctx: &Ctx<'_>, result: Result<Response, AuthorizeError>, status: StatusCode) -> Response {
    match result {
        Ok(resp) => resp,
        Err(AuthorizeError::Page(e)) => ctx.page_error(e),
        Err(AuthorizeError::Redirect(e)) => e.into_response(ctx, status),
    }
}

// ------------------------------------------------------------------ parameters

fn too_large(e: ParamError) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Request too large", e.describe())
}

fn page_param<'p>(params: &'p Params, name: &'static str) -> Result<Option<&'p str>, PageError> {
    params.single(name).map_err(|e| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            e.describe(),
        )
    })
}

// ------------------------------------------------------------------ GET

pub async fn get(ctx: &Ctx<'_>, req: &Request) -> Response {
    let result = authorize_get(ctx, req).await;
    finish(ctx, result, StatusCode::FOUND)
}

async fn authorize_get(ctx: &Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let params = Params::parse(req.uri().query().unwrap_or("").as_bytes()).map_err(too_large)?;
    // One round trip for the client and the browser's session.
    let client_id = parse_client_id(page_param(&params, "client_id")?)?;
    let session_hash = cookie_value(req, SESSION_COOKIE).map(|id| crypto::hash_secret(&id));
    let flow = ctx
        .app
        .store
        .load_flow(
            FlowKeys {
                tenant: &ctx.tenant.id,
                request_id: None,
                client_id: Some(&client_id),
                session_hash: session_hash.as_deref(),
            },
            ctx.now,
        )
        .await?;
    let client = if client_id.is_url() {
        document_client(ctx, req, &client_id, flow.client).await?
    } else {
        flow.client.ok_or_else(unknown_client)?
    };
    let session = signin::current_session(ctx.app, flow.session).await?;
    let state = params.single("state");
    let redirect = validate_redirect(
        ctx,
        &client,
        page_param(&params, "redirect_uri")?,
        state.as_ref().ok().copied().flatten(),
    )?;
    // From here on, errors go back to the client.
    if let Err(e) = state {
        return Err(RedirectError::new(&redirect, ErrorCode::InvalidRequest, e.describe()).into());
    }
    let validated = validate_request(ctx, &client, &params, &redirect)?;

    let (browser_value, new_browser) = match cookie_value(req, BROWSER_COOKIE) {
        Some(v) => (v, false),
        None => (crypto::new_secret(), true),
    };
    let areq = AuthorizationRequest {
        id: crypto::new_secret(),
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect.uri.clone(),
        state: redirect.state.clone(),
        code_challenge: validated.code_challenge,
        scope: validated.scope,
        resource: validated.resource,
        csrf_token: crypto::new_secret(),
        browser_hash: crypto::hash_secret(&browser_value),
        created_at: ctx.now,
        expires_at: ctx.now + AUTHORIZATION_REQUEST_TTL_SECS,
    };
    let next = next_step(ctx, &client, &areq, session.as_ref()).await?;
    // A request that ends at once (signed in, approved, consented) is never parked.
    let parked = next != Next::IssueCode;
    if parked {
        ctx.app.store.put_authorization_request(&areq).await?;
    }
    let flow = Flow {
        client: &client,
        areq: &areq,
        parked,
        redirect: &redirect,
        session: session.as_ref(),
    };
    let mut resp = run_step(ctx, next, &flow, StatusCode::FOUND).await?;
    if new_browser {
        resp.headers_mut().append(
            header::SET_COOKIE,
            ctx.cookie(BROWSER_COOKIE, browser_value, 365 * 24 * 3600),
        );
    }
    Ok(resp)
}

fn unknown_client() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "Unknown application",
        "This application is not registered with this service, or its registration expired before an administrator approved it.",
    )
    .with_hint("Return to the application and connect again; it will register anew.")
}

/// A client identified by a Client ID Metadata Document URL: the stored client while its
/// document is fresh, else the document fetched and validated now (an unknown URL becomes a
/// pending client). Every failure is a page: nothing about an unverified document may decide
/// where the browser goes.
async fn document_client(
    ctx: &Ctx<'_>,
    req: &Request,
    id: &ClientId,
    stored: Option<Client>,
) -> Result<Client, PageError> {
    if !ctx.tenant.cimd_enabled {
        return Err(unknown_client());
    }
    let resolved = cimd::resolve(ctx.app, ctx.tenant, id, stored, ctx.now, || {
        ctx.app.registration_rate_ok(req)
    })
    .await;
    resolved.map_err(|e| match e {
        ResolveError::Document(doc) => {
            let status = if doc.is_upstream() {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            };
            tracing::info!(client_id = %id, error = %doc, "metadata document refused");
            let text = doc.to_string();
            let mut chars = text.chars();
            let sentence = chars
                .next()
                .map(|first| format!("{}{}.", first.to_uppercase(), chars.as_str()))
                .unwrap_or_default();
            PageError::new(status, "This application cannot be used", sentence)
            .with_hint("The application identifies itself with a metadata document at its client_id URL; its developer must make that document available and valid.")
        }
        ResolveError::CapReached { .. } => PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many new applications",
            "This organisation has too many applications waiting for an administrator's approval; new ones are accepted once those are approved or expire.",
        ),
        ResolveError::RateLimited => PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many new applications",
            "Too many new applications were introduced from this address; wait a minute and try again.",
        ),
        ResolveError::Store(e) => e.into(),
    })
}

/// Step 1: the request must name a client; it must exist in this tenant and be live (an
/// expired pending client is absent even if DynamoDB still holds it).
fn parse_client_id(raw: Option<&str>) -> Result<ClientId, PageError> {
    let raw = raw.ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            "The request does not name an application (client_id is missing).",
        )
    })?;
    ClientId::parse(raw).ok_or_else(unknown_client)
}

/// Step 2: the redirect URI must match a registered one exactly (loopback: any port). With a
/// single registered URI it may be omitted (RFC 6749 §3.1.2.3).
fn validate_redirect(
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

struct ValidatedRequest {
    code_challenge: String,
    scope: ScopeSet,
    resource: String,
}

/// Step 3: everything else, with errors sent back to the client.
fn validate_request(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
    redirect: &ValidatedRedirect,
) -> Result<ValidatedRequest, RedirectError> {
    let fail = |code: ErrorCode, d: String| RedirectError::new(redirect, code, d);
    // RFC 6749 §3.1: defined parameters must not repeat; unknown ones are ignored.
    const DEFINED: [&str; 7] = [
        "client_id",
        "redirect_uri",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "state",
    ];
    if let Some(name) = params.first_repeated().filter(|n| DEFINED.contains(n)) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("the {name} parameter is repeated"),
        ));
    }
    let p = |name: &'static str| {
        params
            .single(name)
            .map_err(|e| fail(ErrorCode::InvalidRequest, e.describe()))
    };
    match p("response_type")? {
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use \"code\""),
            ));
        }
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "response_type is required (\"code\")".into(),
            ));
        }
    }
    let code_challenge = p("code_challenge")?.ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
        )
    })?;
    match p("code_challenge_method")? {
        Some("S256") => {}
        Some(other) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("code_challenge_method {other:?} is not supported; use S256"),
            ));
        }
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method is required and must be S256 (plain is not accepted)".into(),
            ));
        }
    }
    let challenge_ok = code_challenge.len() == 43
        && code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"
                .into(),
        ));
    }
    let scope = crate::policy::requested_scope(client, p("scope")?).map_err(|bad| {
        fail(
            ErrorCode::InvalidScope,
            format!("scope {bad} is not registered for this application"),
        )
    })?;

    let default_resource = metadata::default_resource(&ctx.base, ctx.tenant);
    let resources = params.all("resource");
    let resource = match resources.as_slice() {
        [] => default_resource,
        [one] if *one == default_resource => default_resource,
        [one] => {
            return Err(fail(
                ErrorCode::InvalidTarget,
                format!(
                    "resource {one:?} is not served by this authorization server; use {default_resource}"
                ),
            ));
        }
        _ => {
            return Err(fail(
                ErrorCode::InvalidTarget,
                "only one resource may be requested at a time".into(),
            ));
        }
    };
    Ok(ValidatedRequest {
        code_challenge: code_challenge.to_owned(),
        scope,
        resource,
    })
}

// ------------------------------------------------------------------ the flow

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

/// Where a request goes next for this browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    SignIn,
    /// Pending client, administrator: the approval page (posts to the admin function).
    Approval,
    /// Pending client, anyone else: refused until an administrator approves it.
    NeedsAdministrator,
    /// Approved client, consent method `required`, no consent for this configuration yet.
    Consent,
    IssueCode,
}

async fn next_step(
    ctx: &Ctx<'_>,
    client: &Client,
    areq: &AuthorizationRequest,
    session: Option<&Session>,
) -> Result<Next, StoreError> {
    let Some(session) = session else {
        return Ok(Next::SignIn);
    };
    if client.status == ClientStatus::Pending {
        return Ok(if session.role == Role::Admin {
            Next::Approval
        } else {
            Next::NeedsAdministrator
        });
    }
    if client.consent_method == ConsentMethod::Trusted
        || has_consent(ctx, client, areq, session).await?
    {
        return Ok(Next::IssueCode);
    }
    Ok(Next::Consent)
}

/// The state of one authorization request as a step sees it.
pub(crate) struct Flow<'a> {
    pub client: &'a Client,
    pub areq: &'a AuthorizationRequest,
    /// Whether `areq` is stored (and so must be consumed when the code is issued).
    pub parked: bool,
    pub redirect: &'a ValidatedRedirect,
    pub session: Option<&'a Session>,
}

async fn run_step(
    ctx: &Ctx<'_>,
    next: Next,
    flow: &Flow<'_>,
    status: StatusCode,
) -> Result<Response, AuthorizeError> {
    match (next, flow.session) {
        (Next::IssueCode, Some(session)) => {
            issue_code(ctx, flow, session, status, Grants::Nothing).await
        }
        (Next::Approval | Next::Consent, Some(session)) => {
            Ok(consent_page(ctx, flow.client, flow.areq, session, false))
        }
        (Next::NeedsAdministrator, _) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Administrator approval required",
            format!(
                "{} is a new application that an administrator of {} has not approved yet. Ask an administrator to connect it first; then try again.",
                flow.client.metadata.client_name, ctx.tenant.display_name
            ),
        )
        .into()),
        _ => Ok(signin_page(ctx, flow.client, flow.areq, "", None, StatusCode::OK)),
    }
}

/// Consent counts when it was given to the client's current configuration and covers the
/// requested scopes: a configuration change (a scope edit) asks every user again.
async fn has_consent(
    ctx: &Ctx<'_>,
    client: &Client,
    areq: &AuthorizationRequest,
    session: &Session,
) -> Result<bool, StoreError> {
    let consent = ctx
        .app
        .store
        .get_consent(&ctx.tenant.id, &client.client_id, &session.user_id)
        .await?;
    Ok(consent.is_some_and(|c| {
        c.config_version == client.config_version && areq.scope.not_in(&c.scope).next().is_none()
    }))
}

/// What the user granted in the step that issues the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grants {
    /// Nothing new: trusted client, or consent already on record.
    Nothing,
    /// The user consented on this page.
    Consent,
    /// An administrator approved the pending client (and so consented).
    ApprovalAndConsent,
}

/// Ends the authorization with a code, in one store transaction that consumes the parked
/// request (exactly once: a replayed form finds it gone), records consent and, for an
/// administrator's approval, approves the client (only while it is still pending and live).
/// The code goes to the client with `state` and `iss`.
pub(crate) async fn issue_code(
    ctx: &Ctx<'_>,
    flow: &Flow<'_>,
    session: &Session,
    status: StatusCode,
    grants: Grants,
) -> Result<Response, AuthorizeError> {
    let (client, areq) = (flow.client, flow.areq);
    let code = crypto::new_secret();
    let record = AuthorizationCode {
        code_hash: crypto::hash_secret(&code),
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: areq.redirect_uri.clone(),
        code_challenge: areq.code_challenge.clone(),
        scope: areq.scope.clone(),
        resource: areq.resource.clone(),
        user_id: session.user_id.clone(),
        user_email: Some(session.email.clone()),
        user_epoch: session.grant_epoch,
        auth_time: ctx.now,
        expires_at: ctx.now + AUTHORIZATION_CODE_TTL_SECS,
        redeemed_grant: None,
    };
    let consent = Consent {
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        user_id: session.user_id.clone(),
        config_version: client.config_version,
        scope: areq.scope.clone(),
        granted_at: ctx.now,
    };
    let approving = grants == Grants::ApprovalAndConsent && client.status == ClientStatus::Pending;
    let finish = |approve: bool| Finish {
        request: flow.parked.then_some(areq),
        code: &record,
        consent: (grants != Grants::Nothing).then_some(&consent),
        approve: approve.then_some((client, session.user_id.as_str())),
    };
    match ctx
        .app
        .store
        .finish_authorization(finish(approving), ctx.now)
        .await
    {
        Ok(()) => {
            if approving {
                tracing::info!(client_id = %client.client_id, approved_by = %session.user_id, "approved client");
            }
        }
        // The client is no longer pending in the configuration shown: another administrator
        // approved exactly it a moment ago (carry on as consent), or it changed itself since the
        // page was read (show it again; nothing was approved).
        Err(StoreError::Conflict) if approving => {
            let current = ctx
                .app
                .store
                .get_client(&ctx.tenant.id, &client.client_id, ctx.now)
                .await?
                .ok_or_else(expired_registration)?;
            if current.status != ClientStatus::Approved
                || current.config_version != client.config_version
            {
                return Ok(consent_page(ctx, &current, areq, session, true));
            }
            match ctx
                .app
                .store
                .finish_authorization(finish(false), ctx.now)
                .await
            {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(PageError::start_again().into()),
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::NotFound) if approving => {
            return Err(expired_registration().into());
        }
        Err(StoreError::NotFound) => return Err(PageError::start_again().into()),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(client_id = %client.client_id, user_id = %session.user_id, "issued authorization code");
    Ok(flow.redirect.send(status, &[("code", &code)]))
}

/// The user said no (RFC 6749 §4.1.2.1 `access_denied`). The request is consumed.
pub(crate) async fn deny(
    ctx: &Ctx<'_>,
    areq: &AuthorizationRequest,
    redirect: &ValidatedRedirect,
) -> Result<Response, AuthorizeError> {
    if ctx
        .app
        .store
        .take_authorization_request(&ctx.tenant.id, &areq.id, ctx.now)
        .await?
        .is_none()
    {
        return Err(PageError::start_again().into());
    }
    Err(RedirectError::new(
        redirect,
        ErrorCode::AccessDenied,
        "the user denied the request",
    )
    .into())
}

fn signin_page(
    ctx: &Ctx<'_>,
    client: &Client,
    areq: &AuthorizationRequest,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let nonce = html::nonce();
    let action = ctx.authorize_action();
    html::page(
        status,
        &nonce,
        &html::SignIn {
            nonce: &nonce,
            tenant_name: &ctx.tenant.display_name,
            client_name: &client.metadata.client_name,
            action: &action,
            request_id: &areq.id,
            client_id: client.client_id.as_str(),
            csrf_token: &areq.csrf_token,
            email,
            error,
        },
    )
}

/// The approval page (pending client, administrator) or the consent page. `changed`: the
/// decision just submitted was made on an earlier configuration of the client, so this page
/// (answered `409`) shows the current one to decide on again.
pub(crate) fn consent_page(
    ctx: &Ctx<'_>,
    client: &Client,
    areq: &AuthorizationRequest,
    session: &Session,
    changed: bool,
) -> Response {
    let pending = client.status == ClientStatus::Pending;
    let action = if pending {
        ctx.approve_action()
    } else {
        ctx.authorize_action()
    };
    let minutes = (ctx.now - client.created_at).max(0) / 60;
    let nonce = html::nonce();
    html::page(
        if changed {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        },
        &nonce,
        &html::ConsentPage {
            nonce: &nonce,
            changed,
            tenant_name: &ctx.tenant.display_name,
            client_name: &client.metadata.client_name,
            client_uri: client.metadata.client_uri.as_deref().map(html::ascii_url),
            logo_uri: client
                .metadata
                .logo_uri
                .as_deref()
                .filter(|_| pending)
                .map(html::ascii_url),
            document_url: client
                .client_id
                .is_url()
                .then_some(client.client_id.as_str()),
            redirect_uri: html::ascii_url(&areq.redirect_uri),
            // Approving a client approves every return address it has, so show them all.
            all_redirect_uris: if pending {
                client
                    .metadata
                    .redirect_uris
                    .iter()
                    .map(|u| html::ascii_url(u.as_str()))
                    .collect()
            } else {
                Vec::new()
            },
            scopes: areq.scope.iter().map(|s| s.as_str()).collect(),
            pending,
            registered_ago: match minutes {
                0 => "less than a minute ago".to_owned(),
                1 => "1 minute ago".to_owned(),
                m => format!("{m} minutes ago"),
            },
            stays_connected: crate::policy::gets_refresh_token(client),
            user_email: session.email.as_str(),
            action: &action,
            request_id: &areq.id,
            client_id: client.client_id.as_str(),
            csrf_token: &areq.csrf_token,
            config_version: client.config_version,
        },
    )
}

// ------------------------------------------------------------------ POST (forms)

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
    let session_hash = cookie_value(req, SESSION_COOKIE).map(|id| crypto::hash_secret(&id));
    let flow = ctx
        .app
        .store
        .load_flow(
            FlowKeys {
                tenant: &ctx.tenant.id,
                request_id: Some(request_id),
                client_id: Some(&client_id),
                session_hash: session_hash.as_deref(),
            },
            ctx.now,
        )
        .await?;
    let areq = flow.request.ok_or_else(PageError::start_again)?;
    let csrf = page_param(&params, "csrf_token")?.unwrap_or("");
    let browser = cookie_value(req, BROWSER_COOKIE).unwrap_or_default();
    let csrf_ok = crypto::constant_time_eq(csrf, &areq.csrf_token);
    let browser_ok = crypto::verify_secret(&browser, &areq.browser_hash);
    if !(csrf_ok && browser_ok && areq.client_id == client_id) {
        return Err(PageError::forged_form());
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
    let session = signin::current_session(ctx.app, flow.session).await?;
    Ok(SubmittedForm {
        params,
        areq,
        client,
        redirect,
        session,
    })
}

/// The redirect of a parked request: it was validated when the request was parked.
fn redirect_of(ctx: &Ctx<'_>, areq: &AuthorizationRequest, client: &Client) -> ValidatedRedirect {
    ValidatedRedirect {
        uri: areq.redirect_uri.clone(),
        state: areq.state.clone(),
        iss: ctx.issuer.clone(),
        approved: client.status == ClientStatus::Approved,
    }
}

pub async fn post(ctx: &Ctx<'_>, req: &Request) -> Response {
    let result = authorize_post(ctx, req).await;
    finish(ctx, result, StatusCode::SEE_OTHER)
}

async fn authorize_post(ctx: &Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let form = load_form(ctx, req).await?;
    match page_param(&form.params, "action")? {
        Some("sign_in") => sign_in(ctx, req, &form).await,
        Some("decide") => {
            let Some(session) = form.session.as_ref() else {
                return Ok(signin_again(ctx, &form));
            };
            if form.client.status == ClientStatus::Pending {
                // Approval of a pending client happens only on the admin route.
                let next = next_step(ctx, &form.client, &form.areq, Some(session)).await?;
                return run_step(ctx, next, &form.flow(), StatusCode::SEE_OTHER).await;
            }
            if !form.decided_on_current_version() {
                return Ok(consent_page(ctx, &form.client, &form.areq, session, true));
            }
            match page_param(&form.params, "decision")? {
                Some("approve") => {
                    issue_code(
                        ctx,
                        &form.flow(),
                        session,
                        StatusCode::SEE_OTHER,
                        Grants::Consent,
                    )
                    .await
                }
                Some("deny") => deny(ctx, &form.areq, &form.redirect).await,
                _ => Err(invalid_decision().into()),
            }
        }
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "Unknown form action.",
        )
        .into()),
    }
}

/// Sign-in: rate-limited per IP and per account, one generic message for every failure, and
/// the same argon2 work whether or not the account exists.
async fn sign_in(
    ctx: &Ctx<'_>,
    req: &Request,
    form: &SubmittedForm,
) -> Result<Response, AuthorizeError> {
    let email_raw = page_param(&form.params, "email")?.unwrap_or("");
    let password = page_param(&form.params, "password")?.unwrap_or("");
    let retry = |msg: &str, status| {
        signin_page(ctx, &form.client, &form.areq, email_raw, Some(msg), status)
    };

    let user = match signin::check_password(ctx.app, ctx.tenant, req, email_raw, password).await {
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

pub(crate) fn signin_again(ctx: &Ctx<'_>, form: &SubmittedForm) -> Response {
    signin_page(ctx, &form.client, &form.areq, "", None, StatusCode::OK)
}
