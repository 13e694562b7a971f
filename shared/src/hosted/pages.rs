//! The hosted pages: sign-in, approval and consent.

use crate::domain::{AuthorizationRequest, Client, ClientStatus, Session};
use crate::html;
use crate::http::Response;
use ::http::StatusCode;

use super::SubmittedForm;
use crate::context::Ctx;

pub(crate) fn signin_page(
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
            registered_ago: html::ago(ctx.now, client.created_at),
            stays_connected: crate::policy::gets_refresh_token(client),
            user_email: session.email.as_str(),
            action: &action,
            request_id: &areq.id,
            client_id: client.client_id.as_str(),
            csrf_token: &areq.csrf_token,
            config_version: client.config_version,
            trustable: pending && crate::domain::VendorTrust::eligibility(client).is_ok(),
        },
    )
}

pub(crate) fn signin_again(ctx: &Ctx<'_>, form: &SubmittedForm) -> Response {
    let hint = form.areq.openid.login_hint.as_deref().unwrap_or("");
    signin_page(ctx, &form.client, &form.areq, hint, None, StatusCode::OK)
}

/// The page a regular user meets on a pending client: `403` with the "ask an administrator"
/// form, or, once asked, `200` saying so.
pub(crate) fn needs_admin_page(
    ctx: &Ctx<'_>,
    client: &Client,
    areq: &AuthorizationRequest,
    session: &Session,
    asked: bool,
) -> Response {
    let nonce = html::nonce();
    let action = ctx.authorize_action();
    let left = client.expires_at.unwrap_or(ctx.now).saturating_sub(ctx.now);
    let time_left = match left / 60 {
        0 => "in under a minute".to_owned(),
        1 => "in 1 minute".to_owned(),
        n => format!("in {n} minutes"),
    };
    html::page(
        if asked {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        },
        &nonce,
        &html::NeedsAdministrator {
            nonce: &nonce,
            tenant_name: &ctx.tenant.display_name,
            client_name: &client.metadata.client_name,
            asked,
            time_left,
            user_email: session.email.as_str(),
            action: &action,
            request_id: &areq.id,
            client_id: client.client_id.as_str(),
            csrf_token: &areq.csrf_token,
        },
    )
}
