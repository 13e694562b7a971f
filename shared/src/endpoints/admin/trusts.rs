//! Vendor trusts as administrators manage them: listed (API and console) and revoked. They are
//! created with an approval (`service::approve_client`, the consent page); see
//! [`crate::domain::VendorTrust`].

use super::Admin;
use crate::context::Ctx;
use crate::domain::{EventType, VendorTrust};
use crate::error::OAuthError;
use crate::store::StoreError;

/// Every trust of the tenant, newest first (revoked ones too).
pub async fn list(ctx: &Ctx<'_>) -> Result<Vec<VendorTrust>, OAuthError> {
    Ok(ctx.app.store.list_trusts(&ctx.tenant.id).await?)
}

/// Revokes a trust: no further registration is approved by it; the clients it approved stay
/// approved. Idempotent (`204` again); `404` for an unknown id.
pub async fn revoke(ctx: &Ctx<'_>, admin: &Admin, id: &str) -> Result<(), OAuthError> {
    let not_found = || OAuthError::not_found("no such vendor trust in this tenant");
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let before = ctx
        .app
        .store
        .get_trust(&ctx.tenant.id, id)
        .await?
        .ok_or_else(not_found)?;
    match ctx
        .app
        .store
        .revoke_trust(&ctx.tenant.id, id, ctx.now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    if before.is_active() {
        tracing::info!(vendor_trust = %id, "vendor trust revoked");
        let event = ctx
            .event(EventType::TrustRevoked, admin.actor())
            .via(admin.door)
            .detail("vendor_trust", id)
            .detail("client_name", before.client_name.clone())
            .detail("redirect_uris", before.redirect_uris.clone());
        ctx.record(event).await;
    }
    Ok(())
}
