//! "Ask an administrator": a regular user who meets a pending client records a request for its
//! approval (once per user and client, while it is pending), which notifies the tenant's
//! administrators (`docs/events.md`) and shows in the console's pending queue.

use crate::domain::{AccessRequest, Actor, EventType, Requester};
use crate::http::Response;
use crate::store::StoreError;
use ::http::StatusCode;

use super::{
    AuthorizeError, Flow, Next, PageError, SubmittedForm, needs_admin_page, next_step, run_step,
    signin_again,
};
use crate::context::Ctx;

/// `action=request_access` on the "Administrator approval required" page.
pub(crate) async fn request_access(
    ctx: &Ctx<'_>,
    form: &SubmittedForm,
) -> Result<Response, AuthorizeError> {
    let Some(session) = form.session.as_ref() else {
        return Ok(signin_again(ctx, form));
    };
    // An administrator gets the approval page, an approved client the rest of the flow.
    let next = next_step(ctx, &form.client, &form.areq, Some(session)).await?;
    if next != Next::NeedsAdministrator {
        return run_step(ctx, next, &form.flow(), StatusCode::SEE_OTHER).await;
    }
    let client = &form.client;
    let request = AccessRequest {
        tenant: ctx.tenant.id.clone(),
        client_id: client.client_id.clone(),
        requester: Requester::of(session, ctx.now),
        expires_at: client.expires_at.unwrap_or(ctx.now),
    };
    match ctx.app.store.request_access(&request, ctx.now).await {
        Ok(true) => {
            tracing::info!(client_id = %client.client_id, user_id = %session.user_id, "administrator's approval requested");
            let requests = ctx.access_requests(client).await;
            let event = ctx
                .event(EventType::AccessRequested, Actor::session(session))
                .about(client, &ctx.issuer)
                .asked_by(&requests);
            ctx.record(event).await;
        }
        // Asked already: nobody is notified twice.
        Ok(false) => {}
        // No longer pending: approved a moment ago (go on with the flow), or gone.
        Err(StoreError::NotFound) => {
            let current = ctx
                .app
                .store
                .get_client(&ctx.tenant.id, &client.client_id, ctx.now)
                .await?
                .ok_or_else(gone)?;
            let next = next_step(ctx, &current, &form.areq, Some(session)).await?;
            let flow = Flow {
                client: &current,
                ..form.flow()
            };
            return run_step(ctx, next, &flow, StatusCode::SEE_OTHER).await;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(needs_admin_page(ctx, client, &form.areq, session, true))
}

fn gone() -> PageError {
    PageError::new(
        StatusCode::GONE,
        "This application no longer exists",
        "Its registration expired before an administrator approved it, or it was deleted.",
    )
    .with_hint("Return to the application and connect again; it will register anew.")
}
