//! RFC 7591 Dynamic Client Registration: `POST {issuer}/oauth/register`.
//!
//! Pipeline: [`policy::check_dcr_enabled`] → the per-source rate limit
//! ([`crate::app::App::check_registration_rate`]) → [`check_body`] →
//! [`client_metadata::validate`] (general shape) → [`policy::apply_dcr_policy`] (the tenant's
//! rules for anonymous registrants) → [`new_pending_client`] → one conditional store write →
//! [`registration_response`].

use crate::client_metadata::{self};
use crate::context::Ctx;
use crate::crypto;
use crate::domain::{
    Actor, Client, ClientId, ClientMetadata, ClientStatus, ConsentMethod, CreatedByType, EventType,
    Tenant, UnixTime, VendorTrust,
};
use crate::error::OAuthError;
use crate::http::{self, Cache, Request, Response};
use crate::policy;
use crate::store::{PendingQuota, StoreError};
use ::http::StatusCode;
use serde_json::Value;

pub async fn handle(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let result = register(ctx, req).await;
    if let Err(e) = &result
        && e.status == StatusCode::TOO_MANY_REQUESTS
    {
        crate::metrics::count(
            crate::metrics::Metric::RegistrationsThrottled,
            &ctx.tenant.id,
        );
    }
    result
}

async fn register(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant, now) = (ctx.app, ctx.tenant, ctx.now);
    policy::check_dcr_enabled(&tenant.dcr)?;
    app.check_registration_rate(ctx.ip)?;
    check_body(req)?;
    let doc = client_metadata::parse_json_object(req.body())?;
    let requested = client_metadata::validate(&doc)?;
    let metadata = policy::apply_dcr_policy(requested, &tenant.dcr_policy())?;
    let (client, issued) = new_pending_client(tenant, metadata, now);
    let quota = policy::pending_quota(&tenant.dcr, ctx.ip);
    let cap_reached = || {
        OAuthError::too_many_requests(
            "this tenant has too many unapproved registrations; an administrator must approve or let them expire before new ones are accepted",
            policy::retry_after(quota, now),
        )
    };
    match trusted_registration(ctx, &client, quota).await {
        Ok(Some(approved)) => {
            return Ok(registration_response(
                &approved,
                &ctx.issuer,
                Some(&issued),
                StatusCode::CREATED,
            ));
        }
        Ok(None) => {}
        Err(StoreError::PendingCapReached) => return Err(cap_reached()),
        Err(StoreError::SourceCapReached) => return Err(source_cap_reached(quota, now)),
        Err(other) => return Err(other.into()),
    }
    match app.store.create_pending_client(&client, quota, now).await {
        Ok(()) => {}
        Err(StoreError::PendingCapReached) => return Err(cap_reached()),
        Err(StoreError::SourceCapReached) => return Err(source_cap_reached(quota, now)),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(
        client_id = %client.client_id,
        auth_method = client.metadata.token_endpoint_auth_method.as_str(),
        "registered pending client"
    );
    let event = ctx
        .event(
            EventType::ClientRegistered,
            Actor::Anonymous { email: None },
        )
        .via("registration")
        .about(&client, &ctx.issuer);
    ctx.record(event).await;
    Ok(registration_response(
        &client,
        &ctx.issuer,
        Some(&issued),
        StatusCode::CREATED,
    ))
}

fn source_cap_reached(quota: PendingQuota, now: UnixTime) -> OAuthError {
    OAuthError::too_many_requests(
        "too many registrations from this network address for this tenant; retry later or ask the tenant's administrator",
        policy::source_retry_after(quota, now),
    )
}

/// A registration of an application an administrator trusts ([`VendorTrust`]): created
/// approved and linked to the trust, in a transaction that holds only while the trust is
/// active. `None`: no active trust matches, and the client is registered pending.
async fn trusted_registration(
    ctx: &Ctx<'_>,
    pending: &Client,
    quota: PendingQuota,
) -> Result<Option<Client>, StoreError> {
    if VendorTrust::eligibility(pending).is_err() {
        return Ok(None);
    }
    let id = VendorTrust::id_of(&pending.metadata);
    let trust = ctx.app.store.get_trust(&ctx.tenant.id, &id).await?;
    if !trust.as_ref().is_some_and(VendorTrust::is_active) {
        return Ok(None);
    }
    let client = Client {
        status: ClientStatus::Approved,
        expires_at: None,
        approved_by: Some(format!("vendor-trust:{id}")),
        approved_at: Some(ctx.now),
        vendor_trust: Some(id.clone()),
        ..pending.clone()
    };
    match ctx
        .app
        .store
        .create_trusted_client(&client, quota, ctx.now)
        .await
    {
        Ok(()) => {}
        // Revoked since it was read.
        Err(StoreError::Conflict) => return Ok(None),
        Err(e) => return Err(e),
    }
    tracing::info!(client_id = %client.client_id, vendor_trust = %id, "registered client approved by a vendor trust");
    let anonymous = Actor::Anonymous { email: None };
    let registered = ctx
        .event(EventType::ClientRegistered, anonymous)
        .via("registration")
        .about(&client, &ctx.issuer)
        .detail("vendor_trust", id.clone());
    ctx.record(registered).await;
    let approved = ctx
        .event(EventType::ClientApproved, Actor::System)
        .via("vendor_trust")
        .about(&client, &ctx.issuer)
        .detail("vendor_trust", id)
        .detail("config_version", client.config_version);
    ctx.record(approved).await;
    Ok(Some(client))
}

/// `application/json`, at most 64 KiB (RFC 7591 §3.1, RFC 7592 §2.2).
pub fn check_body(req: &Request) -> Result<(), OAuthError> {
    http::check_json_body(req, "registration requests")
}

/// The secrets a registration hands out once; only their SHA-256 hashes are stored.
pub struct Issued {
    /// The client secret, for confidential clients.
    pub secret: Option<String>,
    /// The RFC 7592 registration access token.
    pub registration_token: String,
}

/// A fresh pending DCR client and its secrets.
pub fn new_pending_client(
    tenant: &Tenant,
    metadata: ClientMetadata,
    now: UnixTime,
) -> (Client, Issued) {
    let secret = metadata
        .token_endpoint_auth_method
        .is_confidential()
        .then(crypto::new_secret);
    let registration_token = crypto::new_secret();
    let lifetime = i64::try_from(tenant.dcr.pending_client_ttl_secs).unwrap_or(i64::MAX);
    let client = Client {
        tenant: tenant.id.clone(),
        client_id: ClientId::generate(),
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        status: ClientStatus::Pending,
        created_by: CreatedByType::Dcr,
        consent_method: ConsentMethod::Required,
        created_at: now,
        expires_at: Some(now.saturating_add(lifetime)),
        approved_by: None,
        approved_at: None,
        registration_token_hash: Some(crypto::hash_secret(&registration_token)),
        config_version: 1,
        metadata,
        document: None,
        pending_changes: None,
        vendor_trust: None,
    };
    (
        client,
        Issued {
            secret,
            registration_token,
        },
    )
}

/// Where a client manages its own registration (RFC 7592).
pub fn registration_client_uri(issuer: &str, client: &Client) -> String {
    format!("{issuer}/oauth/register/{}", client.client_id)
}

/// RFC 7591 §3.2.1 / RFC 7592 §3: every accepted field, never a `null`. Secrets appear only in
/// the response that created them (`issued`); later reads cannot show them, as only their
/// hashes are stored.
pub fn registration_response(
    client: &Client,
    issuer: &str,
    issued: Option<&Issued>,
    status: StatusCode,
) -> Response {
    let mut body = serde_json::to_value(&client.metadata).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert("client_id".into(), client.client_id.as_str().into());
        map.insert("client_id_issued_at".into(), client.created_at.into());
        if client.registration_token_hash.is_some() {
            map.insert(
                "registration_client_uri".into(),
                registration_client_uri(issuer, client).into(),
            );
        }
        if let Some(issued) = issued {
            if let Some(secret) = &issued.secret {
                map.insert("client_secret".into(), secret.as_str().into());
                map.insert("client_secret_expires_at".into(), 0.into());
            }
            map.insert(
                "registration_access_token".into(),
                issued.registration_token.as_str().into(),
            );
        }
    }
    http::json_response(status, &body, Cache::NoStore)
}
