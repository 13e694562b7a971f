//! The steps of a parked authorization request: where it goes next for this browser
//! (sign-in, approval, consent or a code), and the store transactions that end it.

use crate::crypto;
use crate::defaults::AUTHORIZATION_CODE_TTL_SECS;
use crate::domain::{
    Actor, AuthorizationCode, AuthorizationRequest, Client, ClientStatus, Consent, ConsentMethod,
    EventType, Role, Session,
};
use crate::error::ErrorCode;
use crate::http::Response;
use crate::store::{Finish, StoreError};
use ::http::StatusCode;

use super::{
    AuthorizeError, PageError, RedirectError, ValidatedRedirect, consent_page,
    expired_registration, needs_admin_page, signin_page,
};
use crate::context::Ctx;

/// Where a request goes next for this browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    SignIn,
    /// Pending client, administrator: the approval page (posts to the admin function).
    Approval,
    /// Pending client, anyone else: refused until an administrator approves it.
    NeedsAdministrator,
    /// Approved client, consent method `required`, no consent for this configuration yet.
    Consent,
    IssueCode,
}

pub(crate) async fn next_step(
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
    if areq.openid.consent {
        return Ok(Next::Consent);
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

pub(crate) async fn run_step(
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
        (Next::NeedsAdministrator, Some(session)) => Ok(needs_admin_page(
            ctx,
            flow.client,
            flow.areq,
            session,
            false,
        )),
        _ => {
            let hint = flow.areq.openid.login_hint.as_deref().unwrap_or("");
            Ok(signin_page(
                ctx,
                flow.client,
                flow.areq,
                hint,
                None,
                StatusCode::OK,
            ))
        }
    }
}

/// Consent counts when it was given to the client's current configuration and covers the
/// requested scopes: a configuration change (a scope edit) asks every user again.
pub(crate) async fn has_consent(
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
    /// An administrator approved the pending client (and so consented); `trust`: and trusted
    /// its application's future registrations ([`crate::domain::VendorTrust`]).
    ApprovalAndConsent { trust: bool },
}

/// A fresh authorization code for the parked request and the signed-in user (only its hash is
/// stored), valid for [`AUTHORIZATION_CODE_TTL_SECS`].
fn new_code(
    ctx: &Ctx<'_>,
    areq: &AuthorizationRequest,
    session: &Session,
) -> (String, AuthorizationCode) {
    let code = crypto::new_secret();
    let record = AuthorizationCode {
        code_hash: crypto::hash_secret(&code),
        tenant: ctx.tenant.id.clone(),
        client_id: areq.client_id.clone(),
        redirect_uri: areq.redirect_uri.clone(),
        code_challenge: areq.code_challenge.clone(),
        scope: areq.scope.clone(),
        resource: areq.resource.clone(),
        user_id: session.user_id.clone(),
        user_email: Some(session.email.clone()),
        user_epoch: session.grant_epoch,
        auth_time: session.created_at,
        expires_at: ctx.now + AUTHORIZATION_CODE_TTL_SECS,
        nonce: areq.openid.nonce.clone(),
        redeemed_grant: None,
    };
    (code, record)
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
    let (code, record) = new_code(ctx, areq, session);
    let consent = Consent {
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        user_id: session.user_id.clone(),
        config_version: client.config_version,
        scope: areq.scope.clone(),
        granted_at: ctx.now,
    };
    let approving = matches!(grants, Grants::ApprovalAndConsent { .. })
        && client.status == ClientStatus::Pending;
    let finish = |approve: bool| Finish {
        request: flow.parked.then_some(areq),
        code: &record,
        consent: (grants != Grants::Nothing).then_some(&consent),
        approve: approve.then_some((client, session.user_id.as_str())),
    };
    // Who asked for the client is read alongside the approval, for its event.
    let asking = async {
        if approving {
            ctx.access_requests(client).await
        } else {
            Vec::new()
        }
    };
    let finishing = ctx
        .app
        .store
        .finish_authorization(finish(approving), ctx.now);
    let (finished, asked) = tokio::join!(finishing, asking);
    match finished {
        Ok(()) => {
            if approving {
                tracing::info!(client_id = %client.client_id, approved_by = %session.user_id, "approved client");
                let trust = matches!(grants, Grants::ApprovalAndConsent { trust: true });
                record_approval(ctx, client, session, &asked, trust).await;
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
        Err(StoreError::NotFound) if approving => return Err(expired(ctx, client).await),
        Err(StoreError::NotFound) => return Err(PageError::start_again().into()),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(client_id = %client.client_id, user_id = %session.user_id, "issued authorization code");
    Ok(flow.redirect.send(status, &[("code", &code)]))
}

/// A pending client that expired while its approval page was open: reported, and the page
/// saying so.
async fn expired(ctx: &Ctx<'_>, client: &Client) -> AuthorizeError {
    let event = ctx
        .event(EventType::ClientExpired, Actor::System)
        .via("consent_page")
        .about(client, &ctx.issuer);
    ctx.record(event).await;
    expired_registration().into()
}

/// The audit event (and administrators' notification) of an approval on the consent page, with
/// the users who had asked for the client: they can connect now.
async fn record_approval(
    ctx: &Ctx<'_>,
    client: &Client,
    session: &Session,
    requests: &[crate::domain::AccessRequest],
    trust: bool,
) {
    let approved = crate::store::approved(client.clone(), &session.user_id, ctx.now);
    if trust {
        let creator = crate::domain::TrustCreator {
            id: session.user_id.clone(),
            email: session.email.as_str().to_owned(),
        };
        // The approval stands; a trust that could not be stored is only logged (the
        // administrator can trust the application from the console later).
        if let Err(e) = crate::trust::create(ctx, &approved, creator, "consent_page").await {
            tracing::error!(error = %e, client_id = %approved.client_id, "vendor trust not stored");
        }
    }
    let event = ctx
        .event(EventType::ClientApproved, Actor::session(session))
        .via("consent_page")
        .about(&approved, &ctx.issuer)
        .asked_by(requests)
        .detail("config_version", approved.config_version);
    ctx.record(event).await;
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
