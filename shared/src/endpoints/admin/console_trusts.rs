//! The console's trusted applications page (`{issuer}/admin/trusts`): vendor trusts listed,
//! and revoked (see [`super::trusts`]).

use super::Admin;
use super::console_pages::{Frame, see_other};
use super::trusts;
use crate::context::Ctx;
use crate::error::OAuthError;
use crate::html;
use crate::http::Response;
use crate::params::Params;
use ::http::StatusCode;
use askama::Template;

struct TrustRow {
    id: String,
    client_name: String,
    redirect_uris: Vec<String>,
    auth_method: &'static str,
    software_id: String,
    created: String,
    created_by: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin_trusts.html")]
struct TrustsPage<'a> {
    nonce: &'a str,
    tenant_name: &'a str,
    issuer: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    trusts: Vec<TrustRow>,
}

pub(super) async fn trusts_page(ctx: &Ctx<'_>, f: &Frame<'_>) -> Result<Response, OAuthError> {
    let rows = trusts::list(ctx)
        .await?
        .into_iter()
        .map(|t| TrustRow {
            active: t.is_active(),
            client_name: t.client_name,
            redirect_uris: t.redirect_uris.iter().map(|u| html::ascii_url(u)).collect(),
            auth_method: t.token_endpoint_auth_method.as_str(),
            software_id: t.software_id.unwrap_or_default(),
            created: html::ago(ctx.now, t.created_at),
            created_by: t.created_by.email,
            id: t.id,
        })
        .collect();
    Ok(html::page(
        StatusCode::OK,
        &f.nonce,
        &TrustsPage {
            nonce: &f.nonce,
            tenant_name: f.tenant_name,
            issuer: f.issuer,
            csrf: f.csrf,
            error: f.error,
            trusts: rows,
        },
    ))
}

pub(super) async fn trusts_post(
    ctx: &Ctx<'_>,
    admin: &Admin,
    form: &Params,
) -> Result<Response, OAuthError> {
    let single = |name: &'static str| {
        form.single(name)
            .map_err(|e| OAuthError::invalid_request(e.describe()))
    };
    if single("action")? != Some("revoke") {
        return Err(OAuthError::invalid_request(
            "the form did not say what to do with the trust",
        ));
    }
    let id = single("trust_id")?.unwrap_or("");
    trusts::revoke(ctx, admin, id).await?;
    Ok(see_other(&format!("{}/admin/trusts", ctx.issuer)))
}
