//! RFC 7592 client configuration: `GET|PUT|DELETE {issuer}/oauth/register/{client_id}` with the
//! registration access token handed out at registration. Served by the register function.
//!
//! Pipeline: [`authorize_rat`] (token ↔ client, constant-time; every failure the same `401`,
//! RFC 7592 §2) → read / [`replace`] (the registration pipeline again: general validation and
//! the tenant's DCR policy) / delete.

use crate::app::App;
use crate::client_metadata;
use crate::context::Ctx;
use crate::crypto;
use crate::domain::{Actor, Client, ClientId, EventType, Tenant, UnixTime};
use crate::endpoints::register::{check_body, registration_response};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};
use crate::policy::{self, apply_dcr_policy};
use crate::store::StoreError;
use ::http::header::WWW_AUTHENTICATE;
use ::http::{Method, StatusCode};
use serde_json::Value;

fn invalid_token() -> OAuthError {
    OAuthError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidToken,
        "a valid registration access token for this client is required",
    )
    .with_header(
        WWW_AUTHENTICATE,
        "Bearer error=\"invalid_token\", error_description=\"the registration access token is invalid\"",
    )
}

pub async fn handle(ctx: &Ctx<'_>, raw_id: &str, req: &Request) -> Result<Response, OAuthError> {
    let (app, tenant, now, issuer) = (ctx.app, ctx.tenant, ctx.now, &ctx.issuer);
    let client = authorize_rat(app, tenant, raw_id, req, now).await?;
    match *req.method() {
        Method::GET => Ok(registration_response(&client, issuer, None, StatusCode::OK)),
        Method::PUT => {
            let updated = replace(tenant, &client, req)?;
            match app.store.update_client(&updated, now).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(invalid_token()),
                Err(StoreError::Conflict) => {
                    return Err(OAuthError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::InvalidRequest,
                        "the client was approved while this update was in flight; read it and retry",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            tracing::info!(client_id = %updated.client_id, config_version = updated.config_version, "client updated its registration");
            Ok(registration_response(
                &updated,
                issuer,
                None,
                StatusCode::OK,
            ))
        }
        Method::DELETE => {
            match app
                .store
                .delete_client(&tenant.id, &client.client_id, now)
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(client_id = %client.client_id, "client deleted its registration");
            let actor = Actor::Client {
                id: client.client_id.to_string(),
            };
            let event = ctx
                .event(EventType::ClientDeleted, actor)
                .via("client")
                .about(&client, &ctx.issuer);
            ctx.record(event).await;
            Ok(crate::http::no_content())
        }
        _ => Err(OAuthError::method_not_allowed(ctx.methods.allow)),
    }
}

/// The client the bearer token belongs to. Unknown client, expired pending client, missing or
/// wrong token: one answer, so the endpoint reveals nothing about which client ids exist.
async fn authorize_rat(
    app: &App,
    tenant: &Tenant,
    raw_id: &str,
    req: &Request,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let token = crate::http::bearer_token(req, 256).ok_or_else(invalid_token)?;
    let id = ClientId::parse(raw_id).ok_or_else(invalid_token)?;
    let client = app
        .store
        .get_client(&tenant.id, &id, now)
        .await?
        .ok_or_else(invalid_token)?;
    let ok = client
        .registration_token_hash
        .as_deref()
        .is_some_and(|h| crypto::verify_secret(token, h));
    if ok { Ok(client) } else { Err(invalid_token()) }
}

/// RFC 7592 §2.2: the body replaces the client's metadata and is validated exactly like a
/// registration. What cannot change: the id, the auth method (a public client cannot become
/// confidential without a secret, nor the reverse), the secret. A pending client takes the new
/// metadata under a new configuration version (an approval page showing the old one no longer
/// approves) and keeps its expiry. An approved client's changes wait for an administrator
/// ([`Client::propose`]); the answer shows the configuration in force, as RFC 7592 §2.2 lets
/// the server keep its own values.
fn replace(tenant: &Tenant, client: &Client, req: &Request) -> Result<Client, OAuthError> {
    check_body(req)?;
    let mut doc = client_metadata::parse_json_object(req.body())?;
    match doc.remove("client_id") {
        Some(Value::String(id)) if id == client.client_id.as_str() => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "client_id in the body must equal the client's id",
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "client_id is required in the body (RFC 7592 §2.2)",
            ));
        }
    }
    if let Some(secret) = doc.remove("client_secret") {
        let matches = match (secret.as_str(), client.secret_hash.as_deref()) {
            (Some(s), Some(hash)) => crypto::verify_secret(s, hash),
            _ => false,
        };
        if !matches {
            return Err(OAuthError::invalid_request(
                "client_secret in the body must be the client's current secret",
            ));
        }
    }
    for server_owned in [
        "registration_access_token",
        "registration_client_uri",
        "client_id_issued_at",
        "client_secret_expires_at",
    ] {
        doc.remove(server_owned);
    }
    let requested = client_metadata::validate(&doc)?;
    if requested.token_endpoint_auth_method != client.metadata.token_endpoint_auth_method {
        return Err(OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method cannot change (it is {:?}); register a new client instead",
            client.metadata.token_endpoint_auth_method.as_str()
        )));
    }
    policy::check_dcr_enabled(&tenant.dcr)?;
    let metadata = apply_dcr_policy(requested, &tenant.dcr_policy())?;
    Ok(client.clone().propose(metadata))
}
