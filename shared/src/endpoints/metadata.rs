//! RFC 8414 authorization server metadata. `issuer` is byte-for-byte the issuer URL the
//! document was looked up for (RFC 8414 §3.3: clients must refuse a mismatch), and the document lists only endpoints that exist.

use crate::documents::{DocumentCache, Kind};
use crate::domain::{AuthMethod, Tenant};
use crate::http::{Request, Response};
use serde_json::{Value, json};

/// `{base}/t/{tenant}`: the tenant's issuer identifier.
pub fn issuer(base: &str, tenant: &Tenant) -> String {
    format!("{base}/t/{}", tenant.id)
}

/// The tenant's MCP resource: the `aud` of tokens when a client names no `resource`.
pub fn default_resource(base: &str, tenant: &Tenant) -> String {
    tenant
        .default_resource
        .clone()
        .unwrap_or_else(|| demo_resource(base, tenant))
}

/// The MCP endpoint Gatehouse itself serves for a tenant (`{issuer}/mcp`).
pub fn demo_resource(base: &str, tenant: &Tenant) -> String {
    format!("{base}/t/{}/mcp", tenant.id)
}

/// RFC 9728 protected resource metadata for the tenant's MCP resource. `offline_access` is
/// left out of `scopes_supported`: MCP clients request exactly these scopes, and a public
/// client asking for `offline_access` would be asking for something it cannot get.
pub fn protected_resource_document(base: &str, tenant: &Tenant) -> Value {
    json!({
        "resource": default_resource(base, tenant),
        "authorization_servers": [issuer(base, tenant)],
        "scopes_supported": tenant
            .dcr
            .allowed_scopes
            .without(crate::domain::OFFLINE_ACCESS)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{} MCP server", tenant.display_name),
    })
}

/// Where the protected resource metadata of `resource` lives (RFC 9728 §3.1: path insertion).
pub fn protected_resource_metadata_url(base: &str, tenant: &Tenant) -> String {
    format!(
        "{base}/.well-known/oauth-protected-resource/t/{}/mcp",
        tenant.id
    )
}

pub fn document(base: &str, tenant: &Tenant) -> Value {
    let issuer = issuer(base, tenant);
    let settings = &tenant.dcr;
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        // RFC 9207: authorization responses carry `iss` (mix-up defence).
        "authorization_response_iss_parameter_supported": true,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        // PKCE S256 only: `plain` exposes the verifier to whoever reads the authorization
        // request (RFC 9700 §2.1.1), so it is refused, and the document advertises only what works.
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": tenant.allowed_scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": AuthMethod::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "revocation_endpoint_auth_methods_supported": AuthMethod::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    });
    if let Value::Object(map) = &mut doc {
        if settings.enabled {
            map.insert(
                "registration_endpoint".into(),
                format!("{issuer}/oauth/register").into(),
            );
        }
        // Client ID Metadata Documents (MCP's preferred client identification).
        if tenant.cimd_enabled {
            map.insert("client_id_metadata_document_supported".into(), true.into());
        }
    }
    doc
}

/// The claims Gatehouse's ID tokens and UserInfo responses carry (`endpoints::token::openid`).
pub const CLAIMS_SUPPORTED: [&str; 12] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "amr",
    "email",
    "email_verified",
    "name",
];

/// OpenID Connect Discovery 1.0 §3: the RFC 8414 document (the same endpoints and methods,
/// byte for byte) plus what OpenID Connect adds. Published whether or not the tenant has
/// OpenID Connect on, because verifiers of access tokens (API Gateway's JWT authorizer) find
/// `jwks_uri` here; `scopes_supported` says whether `openid` can be asked for.
pub fn openid_document(base: &str, tenant: &Tenant) -> Value {
    let mut doc = document(base, tenant);
    let issuer = issuer(base, tenant);
    if let Value::Object(map) = &mut doc {
        let extra = json!({
            "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "claims_supported": CLAIMS_SUPPORTED,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            // Its default is true (Discovery §3), so it is said outright.
            "request_uri_parameter_supported": false,
        });
        if let Value::Object(extra) = extra {
            map.extend(extra);
        }
    }
    doc
}

/// How long clients and caches may reuse a metadata document without asking again. Short,
/// because a tenant's settings change what it says (registration on or off, scopes); the
/// `ETag` makes asking again cheap (`crate::documents`).
const METADATA_MAX_AGE_SECS: u32 = 60;

/// A metadata document (RFC 8414, OpenID Connect Discovery or RFC 9728), prebuilt per tenant
/// and settings.
pub fn response(
    cache: &DocumentCache,
    kind: Kind,
    base: &str,
    tenant: &Tenant,
    req: &Request,
) -> Response {
    let build = match kind {
        Kind::AuthorizationServer => document,
        Kind::OpenIdConfiguration => openid_document,
        Kind::ProtectedResource => protected_resource_document,
    };
    cache
        .get(kind, tenant, base, || build(base, tenant))
        .respond(req, METADATA_MAX_AGE_SECS)
}
