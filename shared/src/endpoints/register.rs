//! RFC 7591 Dynamic Client Registration: `POST {issuer}/oauth/register`.
//!
//! Pipeline: [`check_dcr_enabled`] → [`check_rate`](crate::app::App) → [`check_body`] →
//! [`client_metadata::validate`] (general shape) → [`apply_dcr_policy`] (tenant rules for
//! anonymous registrants, seed 002) → [`new_pending_client`] → one conditional store write →
//! [`registration_response`].

use crate::app::App;
use crate::client_metadata::{self, RequestedMetadata};
use crate::crypto;
use crate::defaults::MAX_BODY_BYTES;
use crate::domain::{
    AuthMethod, Client, ClientId, ClientMetadata, ClientStatus, ConsentMethod, CreatedByType,
    DcrSettings, GrantType, OFFLINE_ACCESS, ScopeSet, Tenant, UnixTime,
};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::store::{PendingQuota, StoreError};
use ::http::StatusCode;
use serde_json::Value;

pub async fn handle(app: &App, tenant: &Tenant, req: &Request) -> Result<Response, OAuthError> {
    check_dcr_enabled(&tenant.dcr)?;
    app.check_registration_rate(req)?;
    check_body(req)?;
    let doc = client_metadata::parse_json_object(req.body())?;
    let requested = client_metadata::validate(&doc)?;
    let metadata = apply_dcr_policy(requested, &tenant.dcr)?;
    let now = app.now();
    let (client, issued) = new_pending_client(tenant, metadata, now);
    let quota = PendingQuota {
        cap: tenant.dcr.pending_client_cap,
        window_secs: tenant.dcr.pending_client_ttl_secs,
    };
    match app.store.create_pending_client(&client, quota, now).await {
        Ok(()) => {}
        Err(StoreError::PendingCapReached) => {
            return Err(OAuthError::too_many_requests(
                "this tenant has too many unapproved registrations; an administrator must approve or let them expire before new ones are accepted",
                retry_after(quota, now),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(
        client_id = %client.client_id,
        auth_method = client.metadata.token_endpoint_auth_method.as_str(),
        "registered pending client"
    );
    let issuer = crate::endpoints::metadata::issuer(&app.public_base(req)?, tenant);
    Ok(registration_response(
        &client,
        &issuer,
        Some(&issued),
        StatusCode::CREATED,
    ))
}

/// When a refused registration can surely be retried: registrations of the previous window stop
/// counting at the next window boundary, those of the current one a window later.
pub(crate) fn retry_after(quota: PendingQuota, now: UnixTime) -> u64 {
    let window = quota.window_secs.max(1);
    let into = u64::try_from(now).unwrap_or(0) % window;
    (window - into + window).min(7200)
}

/// Seed 002: a tenant administrator turns the public endpoint on; off means `403`.
pub fn check_dcr_enabled(settings: &DcrSettings) -> Result<(), OAuthError> {
    if settings.enabled {
        Ok(())
    } else {
        Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccessDenied,
            "dynamic client registration is disabled for this tenant; ask its administrator for a client",
        ))
    }
}

/// `application/json`, at most 64 KiB.
pub fn check_body(req: &Request) -> Result<(), OAuthError> {
    if req.body().len() > MAX_BODY_BYTES {
        return Err(OAuthError::payload_too_large());
    }
    if !http::is_json(req.headers()) {
        return Err(OAuthError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidRequest,
            "registration requests must be sent as Content-Type: application/json",
        ));
    }
    Ok(())
}

/// The tenant's rules for anonymous registrants (seed 002), in one place:
/// the auth method must be allowed; `client_uri` may be required; scopes must be among the
/// allowed ones (omitted → all of them); public clients never get `offline_access`.
pub fn apply_dcr_policy(
    req: RequestedMetadata,
    settings: &DcrSettings,
) -> Result<ClientMetadata, OAuthError> {
    let method = req.token_endpoint_auth_method;
    if !settings.allowed_auth_methods.contains(&method) {
        let allowed: Vec<&str> = settings
            .allowed_auth_methods
            .iter()
            .map(|m| m.as_str())
            .collect();
        return Err(OAuthError::invalid_client_metadata(format!(
            "token_endpoint_auth_method {:?} is not allowed on this tenant; allowed: {}",
            method.as_str(),
            if allowed.is_empty() {
                "none configured".to_owned()
            } else {
                allowed.join(", ")
            }
        )));
    }
    if settings.require_client_uri && req.client_uri.is_none() {
        return Err(OAuthError::invalid_client_metadata(
            "client_uri is required on this tenant",
        ));
    }
    let mut scope = grant_scope(req.scope.as_ref(), &settings.allowed_scopes, method)?;
    // Deliberate widening: a confidential client that registers the refresh_token grant gets
    // offline_access (when the tenant allows it) even if its requested scope left it out.
    // MCP SDKs take the registration scope from the resource's challenge, which omits
    // offline_access for public clients' sake; without this they could never refresh.
    if method.is_confidential()
        && req.grant_types.contains(&GrantType::RefreshToken)
        && settings.allowed_scopes.contains(OFFLINE_ACCESS)
        && !scope.contains(OFFLINE_ACCESS)
    {
        let mut tokens: Vec<_> = scope.iter().cloned().collect();
        tokens.extend(
            ScopeSet::parse(OFFLINE_ACCESS)
                .unwrap_or_default()
                .iter()
                .cloned(),
        );
        scope = ScopeSet::from_tokens(tokens).ordered_like(&settings.allowed_scopes);
    }
    Ok(ClientMetadata {
        client_name: req.client_name,
        redirect_uris: req.redirect_uris,
        grant_types: req.grant_types,
        response_types: req.response_types,
        token_endpoint_auth_method: method,
        scope,
        application_type: req.application_type,
        client_uri: req.client_uri,
        logo_uri: req.logo_uri,
        tos_uri: req.tos_uri,
        policy_uri: req.policy_uri,
        software_id: req.software_id,
        software_version: req.software_version,
        contacts: req.contacts,
    })
}

/// Seed 002's scope rules. Unknown scopes are refused (RFC 7591 §3.2.2 `invalid_client_metadata`)
/// rather than silently narrowed, so a misconfigured client learns at registration, not at
/// its first authorization. `offline_access` is the exception (hazard 7): a public client that
/// asks for it simply does not get it.
pub fn grant_scope(
    requested: Option<&ScopeSet>,
    allowed: &ScopeSet,
    method: AuthMethod,
) -> Result<ScopeSet, OAuthError> {
    let granted = match requested {
        None => allowed.clone(),
        Some(req) => {
            let unknown: Vec<&str> = req.not_in(allowed).map(|t| t.as_str()).collect();
            if !unknown.is_empty() {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "scope {} is not available on this tenant; allowed scopes: {allowed}",
                    unknown.join(" ")
                )));
            }
            req.ordered_like(allowed)
        }
    };
    if method.is_confidential() {
        return Ok(granted);
    }
    let public = granted.without(OFFLINE_ACCESS);
    // A public client that asked only for offline_access would be left with nothing; give it
    // what an omitted scope gives a public client instead of an unusable empty grant.
    if public.is_empty() {
        Ok(allowed.without(OFFLINE_ACCESS))
    } else {
        Ok(public)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn scope_rules_follow_seed_002() {
        let allowed = scopes("user_default mcp:execute offline_access");
        let conf = AuthMethod::ClientSecretBasic;
        let public = AuthMethod::None;
        assert_eq!(
            grant_scope(None, &allowed, conf).unwrap().to_string(),
            "user_default mcp:execute offline_access"
        );
        assert_eq!(
            grant_scope(None, &allowed, public).unwrap().to_string(),
            "user_default mcp:execute"
        );
        assert_eq!(
            grant_scope(
                Some(&scopes("offline_access mcp:execute")),
                &allowed,
                public
            )
            .unwrap()
            .to_string(),
            "mcp:execute"
        );
        assert_eq!(
            grant_scope(Some(&scopes("offline_access")), &allowed, public)
                .unwrap()
                .to_string(),
            "user_default mcp:execute"
        );
        assert_eq!(
            grant_scope(Some(&scopes("offline_access mcp:execute")), &allowed, conf)
                .unwrap()
                .to_string(),
            "mcp:execute offline_access"
        );
        let err = grant_scope(Some(&scopes("admin mcp:execute")), &allowed, conf).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClientMetadata);
        assert!(err.description.contains("admin"));
    }

    #[test]
    fn confidential_clients_with_the_refresh_grant_get_offline_access() {
        let settings = DcrSettings::default();
        let doc = |method: &str, grants: &[&str]| {
            let v = serde_json::json!({
                "client_name": "a", "redirect_uris": ["https://a.example/cb"],
                "scope": "user_default mcp:execute", "token_endpoint_auth_method": method,
                "grant_types": grants,
            });
            let Value::Object(map) = v else {
                unreachable!()
            };
            crate::client_metadata::validate(&map).unwrap()
        };
        let refreshing = ["authorization_code", "refresh_token"];
        let scope = |m, g: &[&str]| {
            apply_dcr_policy(doc(m, g), &settings)
                .unwrap()
                .scope
                .to_string()
        };
        assert_eq!(
            scope("client_secret_basic", &refreshing),
            "user_default mcp:execute offline_access"
        );
        assert_eq!(
            scope("client_secret_basic", &["authorization_code"]),
            "user_default mcp:execute"
        );
        assert_eq!(scope("none", &refreshing), "user_default mcp:execute");
    }

    proptest::proptest! {
        /// Whatever is requested, a public client never holds offline_access and never holds a
        /// scope the tenant does not allow.
        #[test]
        fn granted_scopes_stay_within_policy(req in proptest::collection::vec(proptest::sample::select(vec!["user_default", "mcp:execute", "offline_access"]), 0..4)) {
            let allowed = scopes("user_default mcp:execute offline_access");
            let requested = scopes(&req.join(" "));
            let requested = (!requested.is_empty()).then_some(requested);
            for method in AuthMethod::ALL {
                let granted = grant_scope(requested.as_ref(), &allowed, method).unwrap();
                proptest::prop_assert!(granted.not_in(&allowed).next().is_none());
                proptest::prop_assert!(!granted.is_empty());
                if !method.is_confidential() {
                    proptest::prop_assert!(!granted.contains(OFFLINE_ACCESS));
                }
            }
        }
    }
}
