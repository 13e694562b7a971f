//! Client policy, one home per rule: what a tenant lets anonymous registrants do (RFC 7591 with
//! the tenant's DCR settings), which scopes a client may hold and request, who gets refresh
//! tokens and for how long a grant lasts, and when a registration refused by the pending quota
//! may be retried. Registration, RFC 7592 updates, metadata documents, the authorization
//! endpoint, the token endpoint and administrators' edits all ask here.

use crate::client_metadata::RequestedMetadata;
use crate::defaults::GRANT_TTL_SECS;
use crate::domain::{
    AuthMethod, Client, ClientMetadata, DcrSettings, GrantType, OFFLINE_ACCESS, ScopeSet, Tenant,
    UnixTime,
};
use crate::error::{ErrorCode, OAuthError};
use crate::store::PendingQuota;
use ::http::StatusCode;
use std::net::IpAddr;

/// A tenant administrator decides whether the public endpoint is on; off means `403`.
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

/// The tenant's rules for anonymous registrants, in one place:
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
    let mut scope = registration_scope(req.scope.as_ref(), &settings.allowed_scopes, method)?;
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
    Ok(req.into_metadata(method, scope))
}

/// Registration scope rules. Unknown scopes are refused (RFC 7591 §3.2.2 `invalid_client_metadata`)
/// rather than silently narrowed, so a misconfigured client learns at registration, not at
/// its first authorization. `offline_access` is the exception: a public client that
/// asks for it simply does not get it (public clients never get refresh tokens, and the
/// registration works without one).
pub fn registration_scope(
    requested: Option<&ScopeSet>,
    allowed: &ScopeSet,
    method: AuthMethod,
) -> Result<ScopeSet, OAuthError> {
    let granted = match requested {
        None => allowed.clone(),
        Some(req) => within_tenant(req, allowed)?,
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

/// A metadata document's scope: the document is written for every authorization server, so
/// scopes this tenant does not offer are dropped rather than refused (none left: the tenant's
/// defaults); a metadata-document client is public, so it never holds `offline_access`.
pub fn document_scope(
    requested: Option<&ScopeSet>,
    allowed: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    let offered = requested
        .map(|s| ScopeSet::from_tokens(s.iter().filter(|t| allowed.contains(t.as_str())).cloned()))
        .filter(|s| !s.is_empty());
    registration_scope(offered.as_ref(), allowed, AuthMethod::None)
}

/// The quota pending registrations count against: at most the tenant's cap per pending
/// lifetime window (a client that registers once per connection must not fill the table).
///
/// With a `source` (a registration's client address), that source may use only its share of
/// the cap (`pending_client_source_share_percent`, rounded up): one address cannot take the
/// whole quota from everyone else registering with the tenant. IPv6 sources count per /64,
/// the block one subscriber is usually given. No cap, no per-source count either.
pub fn pending_quota(settings: &DcrSettings, source: Option<IpAddr>) -> PendingQuota {
    let cap = settings.pending_client_cap;
    let share = settings.pending_client_source_share_percent.min(100);
    let per_source =
        u32::try_from((u64::from(cap) * u64::from(share)).div_ceil(100)).unwrap_or(cap);
    let source = source
        .filter(|_| cap > 0 && share < 100)
        .map(|ip| (source_block(ip), per_source));
    PendingQuota {
        cap,
        window_secs: settings.pending_client_ttl_secs,
        source,
    }
}

/// The address a registration is counted under: an IPv4 address as it is, an IPv6 address
/// cut to its /64 (an IPv4-mapped one as the IPv4 address).
pub fn source_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// When a registration refused for its source can be retried: the current window's end.
pub fn source_retry_after(quota: PendingQuota, now: UnixTime) -> u64 {
    let end = quota.window_end(quota.bucket(now));
    u64::try_from(end.saturating_sub(now))
        .unwrap_or(1)
        .min(7200)
}

/// When a refused registration can surely be retried: registrations of the previous window stop
/// counting at the next window boundary, those of the current one a window later.
pub fn retry_after(quota: PendingQuota, now: UnixTime) -> u64 {
    let window = quota.window_secs.max(1);
    let into = u64::try_from(now).unwrap_or(0) % window;
    (window - into + window).min(7200)
}

/// A scope an administrator sets on a client: well-formed, not empty, within the tenant's
/// allowed scopes, and no `offline_access` for public clients (they never get refresh tokens).
pub fn admin_scope(raw: &str, tenant: &Tenant, method: AuthMethod) -> Result<ScopeSet, OAuthError> {
    let scope = ScopeSet::parse(raw).map_err(|bad| {
        OAuthError::invalid_client_metadata(format!("scope token {bad:?} is malformed"))
    })?;
    if scope.is_empty() {
        return Err(OAuthError::invalid_client_metadata(
            "scope must name at least one scope",
        ));
    }
    let scope = within_tenant(&scope, &tenant.allowed_scopes())?;
    if !method.is_confidential() && scope.contains(OFFLINE_ACCESS) {
        return Err(OAuthError::invalid_client_metadata(
            "public clients cannot hold offline_access (they never receive refresh tokens)",
        ));
    }
    Ok(scope)
}

/// Every scope must be one the tenant allows (RFC 7591 §3.2.2 `invalid_client_metadata`
/// otherwise); the result is in the tenant's order.
fn within_tenant(scope: &ScopeSet, allowed: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let unknown: Vec<&str> = scope.not_in(allowed).map(|t| t.as_str()).collect();
    if !unknown.is_empty() {
        return Err(OAuthError::invalid_client_metadata(format!(
            "scope {} is not available on this tenant; allowed scopes: {allowed}",
            unknown.join(" ")
        )));
    }
    Ok(scope.ordered_like(allowed))
}

/// Requested scopes must be registered for the client; omitted means all of them.
/// `offline_access` the client cannot hold is dropped, not refused: the flow still gives it a
/// code and an access token, only no refresh token.
pub fn requested_scope(client: &Client, raw: Option<&str>) -> Result<ScopeSet, String> {
    let registered = &client.metadata.scope;
    let Some(raw) = raw else {
        return Ok(registered.clone());
    };
    let requested = ScopeSet::parse(raw).map_err(|bad| format!("{bad:?}"))?;
    let requested = if registered.contains(OFFLINE_ACCESS) {
        requested
    } else {
        requested.without(OFFLINE_ACCESS)
    };
    if let Some(bad) = requested.not_in(registered).next() {
        return Err(format!("{:?}", bad.as_str()));
    }
    if requested.is_empty() {
        return Ok(registered.clone());
    }
    Ok(requested.ordered_like(registered))
}

/// Refresh tokens go to clients registered with the `refresh_token` grant whose scope holds
/// `offline_access`; the consent page says so.
pub fn gets_refresh_token(client: &Client) -> bool {
    client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken)
        && client.metadata.scope.contains(OFFLINE_ACCESS)
}

/// The scope of a refreshed access token (RFC 6749 §6): the grant's, or a narrower one the
/// client asks for; never wider.
pub fn refresh_scope(granted: &ScopeSet, raw: Option<&str>) -> Result<ScopeSet, OAuthError> {
    let invalid = |d: String| OAuthError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidScope, d);
    let Some(raw) = raw else {
        return Ok(granted.clone());
    };
    let requested =
        ScopeSet::parse(raw).map_err(|bad| invalid(format!("scope token {bad:?} is malformed")))?;
    if let Some(extra) = requested.not_in(granted).next() {
        return Err(invalid(format!(
            "scope {:?} was not granted",
            extra.as_str()
        )));
    }
    Ok(requested)
}

/// When a new grant ends: a grant with refresh tokens lasts [`GRANT_TTL_SECS`]; one without
/// lasts as long as its only access token (`access_token_ttl_secs`, the configured
/// `GATEHOUSE_ACCESS_TOKEN_TTL`), so its record expires with the last token it backs.
pub fn grant_expiry(client: &Client, access_token_ttl_secs: i64, now: UnixTime) -> UnixTime {
    now.saturating_add(if gets_refresh_token(client) {
        GRANT_TTL_SECS
    } else {
        access_token_ttl_secs
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn a_source_gets_its_share_of_the_cap_rounded_up_and_ipv6_counts_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut dcr = DcrSettings {
            pending_client_cap: 5,
            pending_client_source_share_percent: 50,
            ..DcrSettings::default()
        };
        let q = pending_quota(&dcr, Some(ip("2001:db8:a:b:1:2:3:4")));
        assert_eq!(q.source, Some((ip("2001:db8:a:b::"), 3)));
        assert_eq!(q.cap, 5);
        let q = pending_quota(&dcr, Some(ip("::ffff:192.0.2.1")));
        assert_eq!(q.source, Some((ip("192.0.2.1"), 3)));
        assert_eq!(pending_quota(&dcr, None).source, None);
        // No per-source count at 100% or without a cap.
        dcr.pending_client_source_share_percent = 100;
        assert_eq!(pending_quota(&dcr, Some(ip("192.0.2.1"))).source, None);
        dcr.pending_client_source_share_percent = 1;
        dcr.pending_client_cap = 0;
        assert_eq!(pending_quota(&dcr, Some(ip("192.0.2.1"))).source, None);
        dcr.pending_client_cap = 200;
        assert_eq!(
            pending_quota(&dcr, Some(ip("192.0.2.1"))).source,
            Some((ip("192.0.2.1"), 2))
        );
    }

    #[test]
    fn scope_rules_for_registrants() {
        let allowed = scopes("user_default mcp:execute offline_access");
        let conf = AuthMethod::ClientSecretBasic;
        let public = AuthMethod::None;
        assert_eq!(
            registration_scope(None, &allowed, conf)
                .unwrap()
                .to_string(),
            "user_default mcp:execute offline_access"
        );
        assert_eq!(
            registration_scope(None, &allowed, public)
                .unwrap()
                .to_string(),
            "user_default mcp:execute"
        );
        assert_eq!(
            registration_scope(
                Some(&scopes("offline_access mcp:execute")),
                &allowed,
                public
            )
            .unwrap()
            .to_string(),
            "mcp:execute"
        );
        assert_eq!(
            registration_scope(Some(&scopes("offline_access")), &allowed, public)
                .unwrap()
                .to_string(),
            "user_default mcp:execute"
        );
        assert_eq!(
            registration_scope(Some(&scopes("offline_access mcp:execute")), &allowed, conf)
                .unwrap()
                .to_string(),
            "mcp:execute offline_access"
        );
        let err =
            registration_scope(Some(&scopes("admin mcp:execute")), &allowed, conf).unwrap_err();
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
                let granted = registration_scope(requested.as_ref(), &allowed, method).unwrap();
                proptest::prop_assert!(granted.not_in(&allowed).next().is_none());
                proptest::prop_assert!(!granted.is_empty());
                if !method.is_confidential() {
                    proptest::prop_assert!(!granted.contains(OFFLINE_ACCESS));
                }
            }
        }
    }
}
