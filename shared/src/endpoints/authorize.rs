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
use crate::defaults::AUTHORIZATION_REQUEST_TTL_SECS;
use crate::domain::{
    Actor, AuthorizationRequest, Client, ClientId, ClientStatus, EventType, OpenIdParams, ScopeSet,
};
use crate::endpoints::metadata;
use crate::error::ErrorCode;
use crate::http::{Request, Response};
use crate::params::Params;
use crate::store::StoreError;
use crate::tokens::{self, TokenError};
use ::http::StatusCode;
use ::http::header::{self};

use crate::hosted::{
    AuthorizeError, Flow, Grants, Next, PageError, RedirectError, ValidatedRedirect, consent_page,
    cookie_value, deny, finish, invalid_decision, issue_code, load_form, load_step, next_step,
    page_param, run_step, sign_in, signin_again, too_large, validate_redirect,
};
use crate::signin::{self, BROWSER_COOKIE};

use crate::context::Ctx;

pub async fn get(ctx: &Ctx<'_>, req: &Request) -> Response {
    let result = authorize_get(ctx, req).await;
    finish(ctx, result, StatusCode::FOUND)
}

async fn authorize_get(ctx: &Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let params = Params::parse(req.uri().query().unwrap_or("").as_bytes()).map_err(too_large)?;
    // One round trip for the client and the browser's session.
    let client_id = parse_client_id(page_param(&params, "client_id")?)?;
    let flow = load_step(ctx, req, &client_id, None).await?;
    let client = if client_id.is_url() {
        document_client(ctx, &client_id, flow.client).await?
    } else {
        flow.client.ok_or_else(unknown_client)?
    };
    let mut session = signin::current_session(ctx.app, flow.session).await?;
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
    let mut validated = validate_request(ctx, &client, &params, &redirect)?;
    // OpenID Connect Core §3.1.2.1: `prompt=login` and `max_age` refuse the session the browser
    // brought; the user signs in on this request's page, and the refused session cannot answer
    // its forms (`hosted::load_form`).
    let hinted = hinted_subject(ctx, &client, &params, &redirect).await?;
    if let Some(s) = session.take_if(|s| {
        !validated
            .openid
            .accepts_existing_session(s.created_at, ctx.now)
            || hinted.as_ref().is_some_and(|sub| *sub != s.user_id)
    }) {
        validated.openid.stale_session = Some(s.id_hash);
    }

    let (browser_value, new_browser) = match cookie_value(req, BROWSER_COOKIE) {
        Some(v) => (v, false),
        None => (crypto::new_secret(), true),
    };
    let areq = AuthorizationRequest {
        id: crypto::new_secret(),
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect.uri().to_owned(),
        state: redirect.state().map(str::to_owned),
        code_challenge: validated.code_challenge,
        scope: validated.scope,
        resource: validated.resource,
        csrf_token: crypto::new_secret(),
        browser_hash: crypto::hash_secret(&browser_value),
        created_at: ctx.now,
        expires_at: ctx.now + AUTHORIZATION_REQUEST_TTL_SECS,
        openid: validated.openid,
    };
    let next = next_step(ctx, &client, &areq, session.as_ref()).await?;
    if validated.prompt_none && next != Next::IssueCode {
        return Err(no_interaction(&redirect, next).into());
    }
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

/// The user an `id_token_hint` names (Core §3.1.2.1): an ID token this server issued to this
/// client, expired or not. A session of another user is refused like `prompt=login` refuses
/// one (and with `prompt=none` the answer is `login_required`).
async fn hinted_subject(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
    redirect: &ValidatedRedirect,
) -> Result<Option<String>, AuthorizeError> {
    let bad = |d: String| RedirectError::new(redirect, ErrorCode::InvalidRequest, d);
    let Some(hint) = params
        .single("id_token_hint")
        .map_err(|e| bad(e.describe()))?
    else {
        return Ok(None);
    };
    let app = ctx.app;
    let keys = app
        .keys
        .key_set_for(app.store.as_ref(), &ctx.tenant.id, hint, ctx.now)
        .await
        .map_err(|e| match e {
            TokenError::Store(e) => AuthorizeError::from(e),
            other => AuthorizeError::from(StoreError::Corrupt(other.to_string())),
        })?;
    tokens::id_token_hint_subject(hint, &keys, &ctx.issuer, client.client_id.as_str())
        .map(Some)
        .map_err(|_| {
            bad("id_token_hint is not an ID token this server issued to this application".into())
                .into()
        })
}

/// `prompt=none` (OpenID Connect Core §3.1.2.6) when the request cannot end without a page.
/// For a client no administrator approved, the error is shown, never sent (`ValidatedRedirect`).
fn no_interaction(redirect: &ValidatedRedirect, next: Next) -> RedirectError {
    let (code, description) = match next {
        Next::SignIn => (
            ErrorCode::LoginRequired,
            "the user must sign in, and prompt=none forbids asking",
        ),
        Next::Consent => (
            ErrorCode::ConsentRequired,
            "the user has not consented to this application, and prompt=none forbids asking",
        ),
        Next::Approval | Next::NeedsAdministrator | Next::IssueCode => (
            ErrorCode::InteractionRequired,
            "an administrator must approve this application first, and prompt=none forbids asking",
        ),
    };
    RedirectError::new(redirect, code, description)
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
    id: &ClientId,
    stored: Option<Client>,
) -> Result<Client, PageError> {
    if !ctx.tenant.cimd_enabled {
        return Err(unknown_client());
    }
    let first_seen = stored.is_none();
    let resolved = cimd::resolve(ctx.app.documents(), ctx.tenant, id, stored, ctx.now, || {
        ctx.app.registration_rate_ok(ctx.ip)
    })
    .await;
    if let Ok(client) = &resolved
        && first_seen
        && client.created_at == ctx.now
        && client.status == ClientStatus::Pending
    {
        let event = ctx
            .event(
                EventType::ClientRegistered,
                Actor::Anonymous { email: None },
            )
            .via("client_id_metadata_document")
            .about(client, &ctx.issuer);
        ctx.record(event).await;
    }
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

struct ValidatedRequest {
    code_challenge: String,
    scope: ScopeSet,
    resource: String,
    openid: OpenIdParams,
    prompt_none: bool,
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
    const DEFINED: [&str; 15] = [
        "client_id",
        "redirect_uri",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "login_hint",
        "response_mode",
        "request",
        "request_uri",
        "id_token_hint",
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
    let refused = |(code, d): (ErrorCode, String)| fail(code, d);
    response_type(p("response_type")?).map_err(refused)?;
    let code_challenge =
        pkce_challenge(p("code_challenge")?, p("code_challenge_method")?).map_err(refused)?;
    let scope = crate::policy::requested_scope(client, p("scope")?).map_err(|bad| {
        fail(
            ErrorCode::InvalidScope,
            format!("scope {bad} is not registered for this application"),
        )
    })?;
    let resource = single_resource(ctx, params).map_err(refused)?;
    let (openid, prompt_none) = openid_params(params, redirect)?;
    Ok(ValidatedRequest {
        code_challenge: code_challenge.to_owned(),
        scope,
        resource,
        openid,
        prompt_none,
    })
}

/// Longest `nonce` accepted: it is stored with the request and copied into the ID token.
const MAX_NONCE_CHARS: usize = 512;
/// Longest `login_hint` used; a longer one is ignored (it is only a convenience).
const MAX_LOGIN_HINT_CHARS: usize = 320;

/// The OpenID Connect parameters (Core §3.1.2.1, §6): request objects are not supported, the
/// only response mode is `query`, and `prompt`, `max_age`, `nonce` must be well formed. Returns
/// them and whether `prompt=none` was asked.
fn openid_params(
    params: &Params,
    redirect: &ValidatedRedirect,
) -> Result<(OpenIdParams, bool), RedirectError> {
    let fail = |code: ErrorCode, d: String| RedirectError::new(redirect, code, d);
    let p = |name: &'static str| {
        params
            .single(name)
            .map_err(|e| fail(ErrorCode::InvalidRequest, e.describe()))
    };
    if p("request")?.is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; send the parameters in the query".into(),
        ));
    }
    if p("request_uri")?.is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported; send the parameters in the query".into(),
        ));
    }
    if let Some(mode) = p("response_mode")?.filter(|m| *m != "query") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("response_mode {mode:?} is not supported; responses use the query"),
        ));
    }
    let (login, consent, none) =
        prompt(p("prompt")?).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;
    let max_age = match p("max_age")? {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a whole number of seconds (0 or more)".into(),
            )
        })?),
    };
    let nonce = p("nonce")?;
    if nonce.is_some_and(|n| n.chars().count() > MAX_NONCE_CHARS) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("nonce must be at most {MAX_NONCE_CHARS} characters"),
        ));
    }
    let login_hint = p("login_hint")?.filter(|h| h.chars().count() <= MAX_LOGIN_HINT_CHARS);
    let openid = OpenIdParams {
        nonce: nonce.map(str::to_owned),
        max_age,
        login,
        consent,
        login_hint: login_hint.map(str::to_owned),
        stale_session: None,
    };
    Ok((openid, none))
}

/// `prompt` (Core §3.1.2.1): space-separated `none`, `login`, `consent`, `select_account`;
/// `none` stands alone. `select_account` is a fresh sign-in (the sign-in page is where an
/// account is chosen). Returns (login, consent, none).
fn prompt(raw: Option<&str>) -> Result<(bool, bool, bool), String> {
    let values: Vec<&str> = raw
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(bad) = values
        .iter()
        .find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account"))
    {
        return Err(format!(
            "prompt value {bad:?} is not supported; use none, login, consent or select_account"
        ));
    }
    let has = |v: &str| values.contains(&v);
    if has("none") && values.len() > 1 {
        return Err("prompt=none cannot be combined with other prompt values".into());
    }
    Ok((
        has("login") || has("select_account"),
        has("consent"),
        has("none"),
    ))
}

/// A refusal sent back to the client: the RFC 6749 §4.1.2.1 error code and a description.
type Refusal = (ErrorCode, String);

/// `response_type` must be `code` (OAuth 2.1: the only response type).
fn response_type(raw: Option<&str>) -> Result<(), Refusal> {
    match raw {
        Some("code") => Ok(()),
        Some(other) => Err((
            ErrorCode::UnsupportedResponseType,
            format!("response_type {other:?} is not supported; use \"code\""),
        )),
        None => Err((
            ErrorCode::InvalidRequest,
            "response_type is required (\"code\")".into(),
        )),
    }
}

/// PKCE (RFC 7636, required by OAuth 2.1): an S256 challenge of the right shape; `plain` is
/// refused because it sends the verifier itself through the browser (RFC 9700 §2.1.1).
fn pkce_challenge<'p>(
    challenge: Option<&'p str>,
    method: Option<&str>,
) -> Result<&'p str, Refusal> {
    let invalid = |d: String| (ErrorCode::InvalidRequest, d);
    let challenge = challenge.ok_or_else(|| {
        invalid("PKCE is required: send code_challenge with code_challenge_method=S256".into())
    })?;
    match method {
        Some("S256") => {}
        Some(other) => {
            return Err(invalid(format!(
                "code_challenge_method {other:?} is not supported; use S256"
            )));
        }
        None => {
            return Err(invalid(
                "code_challenge_method is required and must be S256 (plain is not accepted)".into(),
            ));
        }
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(challenge)
    } else {
        Err(invalid(
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"
                .into(),
        ))
    }
}

/// RFC 8707: at most one `resource`, and it must be the tenant's; absent means the tenant's.
fn single_resource(ctx: &Ctx<'_>, params: &Params) -> Result<String, Refusal> {
    let default_resource = metadata::default_resource(&ctx.base, ctx.tenant);
    match params.all("resource").as_slice() {
        [] => Ok(default_resource),
        [one] if *one == default_resource => Ok(default_resource),
        [one] => Err((
            ErrorCode::InvalidTarget,
            format!(
                "resource {one:?} is not served by this authorization server; use {default_resource}"
            ),
        )),
        _ => Err((
            ErrorCode::InvalidTarget,
            "only one resource may be requested at a time".into(),
        )),
    }
}

pub async fn post(ctx: &Ctx<'_>, req: &Request) -> Response {
    let result = authorize_post(ctx, req).await;
    finish(ctx, result, StatusCode::SEE_OTHER)
}

async fn authorize_post(ctx: &Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let form = load_form(ctx, req).await?;
    match page_param(&form.params, "action")? {
        Some("sign_in") => sign_in(ctx, &form).await,
        Some("request_access") => crate::hosted::request_access(ctx, &form).await,
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
