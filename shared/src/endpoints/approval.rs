//! `POST {issuer}/admin/approve`: an administrator's decision on a pending client, served by
//! the admin function — the only code path (and the only IAM role) that can approve a client.
//!
//! Approve: approve the client exactly once (conditional on still pending and unexpired; the
//! TTL attribute is removed), record the administrator's consent, issue the code.
//! Deny: end the request with `access_denied` (the pending client expires on its own).

use crate::app::App;
use crate::domain::{ClientStatus, Role, Tenant};
use crate::endpoints::authorize::{
    self, AuthorizeError, admin_required, current_session, expired_registration, invalid_decision,
    issue_code, load_form, record_consent, signin_again,
};
use crate::http::{Request, Response};
use crate::store::StoreError;
use ::http::StatusCode;

pub async fn post(app: &App, tenant: &Tenant, req: &Request) -> Response {
    let ctx = match authorize::Ctx::new(app, tenant, req) {
        Ok(ctx) => ctx,
        Err(e) => return authorize::bare_page(tenant, e),
    };
    let result = decide(&ctx, req).await;
    authorize::respond(&ctx, result)
}

async fn decide(ctx: &authorize::Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let form = load_form(ctx, req).await?;
    let Some(session) = current_session(ctx, req).await? else {
        return Ok(signin_again(ctx, &form));
    };
    if session.role != Role::Admin {
        return Err(admin_required().into());
    }
    if form.params.single("action") != Ok(Some("decide")) {
        return Err(invalid_decision().into());
    }
    let decision = form
        .params
        .single("decision")
        .map_err(|_| invalid_decision())?;
    match decision {
        Some("approve") => {
            let client = if form.client.status == ClientStatus::Pending {
                match ctx
                    .app
                    .store
                    .approve_client(
                        &ctx.tenant.id,
                        &form.client.client_id,
                        &session.user_id,
                        ctx.now,
                    )
                    .await
                {
                    Ok(approved) => {
                        tracing::info!(client_id = %approved.client_id, approved_by = %session.user_id, "approved client");
                        approved
                    }
                    Err(StoreError::NotFound) => return Err(expired_registration().into()),
                    // Another administrator approved it a moment ago: carry on as consent.
                    Err(StoreError::Conflict) => form.client.clone(),
                    Err(other) => return Err(other.into()),
                }
            } else {
                form.client.clone()
            };
            record_consent(ctx, &client, &form.areq, &session).await?;
            issue_code(
                ctx,
                &client,
                &form.areq,
                &form.redirect,
                &session,
                StatusCode::SEE_OTHER,
            )
            .await
        }
        Some("deny") => authorize::deny(ctx, &form.areq, &form.redirect).await,
        _ => Err(invalid_decision().into()),
    }
}
