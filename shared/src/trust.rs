//! Creating and revoking vendor trusts ([`VendorTrust`]), for every door an administrator
//! approves through: the consent page, the console and the admin API.

use crate::context::Ctx;
use crate::domain::{Actor, Client, EventType, TrustCreator, VendorTrust};
use crate::error::OAuthError;
use crate::store::StoreError;

/// Refuses a trust the client cannot found, before anything is approved.
pub fn check_eligible(client: &Client) -> Result<(), OAuthError> {
    VendorTrust::eligibility(client)
        .map_err(|why| OAuthError::invalid_request(format!("cannot trust this application: {why}")))
}

/// Records the trust in `client`'s application that an administrator asked for when approving
/// it (`client` as approved), and its audit event.
pub async fn create(
    ctx: &Ctx<'_>,
    client: &Client,
    creator: TrustCreator,
    via: &'static str,
) -> Result<VendorTrust, StoreError> {
    let actor = Actor::User {
        id: creator.id.clone(),
        email: creator.email.clone(),
    };
    let trust = VendorTrust::of(client, creator, ctx.now);
    ctx.app.store.put_trust(&trust).await?;
    tracing::info!(vendor_trust = %trust.id, client_id = %client.client_id, "vendor trust created");
    let event = ctx
        .event(EventType::TrustCreated, actor)
        .via(via)
        .about(client, &ctx.issuer)
        .detail("vendor_trust", trust.id.clone())
        .detail("redirect_uris", trust.redirect_uris.clone())
        .detail(
            "token_endpoint_auth_method",
            trust.token_endpoint_auth_method.as_str(),
        );
    let event = match &trust.software_id {
        Some(id) => event.detail("software_id", id.clone()),
        None => event,
    };
    ctx.record(event).await;
    Ok(trust)
}
