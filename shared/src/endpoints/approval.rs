//! `POST {issuer}/admin/approve`: an administrator's decision on a pending client, served by
//! the admin function — the only code path (and the only IAM role) that can approve a client.
//!
//! Approve: approve the client exactly once, in the configuration the page showed (the form
//! carries its `config_version`; the approving write is conditional on it, on still pending and
//! on unexpired; the TTL attribute is removed), record the administrator's consent, issue the
//! code.
//! Deny: end the request with `access_denied` (the pending client expires on its own).

use crate::context::Ctx;
use crate::domain::Role;
use crate::hosted::{
    self as authorize, AuthorizeError, Grants, admin_required, invalid_decision, issue_code,
    load_form, signin_again,
};
use crate::http::{Request, Response};
use ::http::StatusCode;

pub async fn post(ctx: &Ctx<'_>, req: &Request) -> Response {
    let result = decide(ctx, req).await;
    authorize::respond(ctx, result)
}

async fn decide(ctx: &Ctx<'_>, req: &Request) -> Result<Response, AuthorizeError> {
    let form = load_form(ctx, req).await?;
    let Some(session) = form.session.as_ref() else {
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
        // Approve what the page showed, nothing else: a client that changed itself since
        // (RFC 7592) is shown again. The store re-checks the version in the approving write.
        Some("approve") if !form.decided_on_current_version() => Ok(authorize::consent_page(
            ctx,
            &form.client,
            &form.areq,
            session,
            true,
        )),
        // Approval, the administrator's consent and the code: one store transaction (and,
        // when asked for, the trust in the application's future registrations).
        Some("approve") => {
            let trust = form.params.single("trust_vendor").ok().flatten() == Some("on");
            if trust {
                crate::trust::check_eligible(&form.client).map_err(|e| {
                    authorize::PageError::new(
                        StatusCode::BAD_REQUEST,
                        "This application cannot be trusted",
                        e.description,
                    )
                })?;
            }
            issue_code(
                ctx,
                &form.flow(),
                session,
                StatusCode::SEE_OTHER,
                Grants::ApprovalAndConsent { trust },
            )
            .await
        }
        Some("deny") => authorize::deny(ctx, &form.areq, &form.redirect).await,
        _ => Err(invalid_decision().into()),
    }
}
