//! A demo MCP server at `{issuer}/mcp` (Streamable HTTP, JSON responses): the protected
//! resource the tenant's tokens are for by default. It shows what a tenant's own MCP server does
//! with Gatehouse tokens: verify them offline against the JWKS (`tokens::verify_access_token`,
//! bound to the issuer and to this resource as `aud`), and point unauthenticated clients at the
//! protected resource metadata (RFC 9728 §5.1) so they can discover the authorization server.

use crate::context::Ctx;
use crate::domain::{OFFLINE_ACCESS, Tenant};
use crate::endpoints::metadata;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{self, Cache, Request, Response};
use crate::tokens::{self, AccessClaims};
use ::http::StatusCode;
use ::http::header::WWW_AUTHENTICATE;
use bytes::Bytes;
use serde_json::{Value, json};

/// Protocol revisions this endpoint speaks; `initialize` echoes the client's when listed.
const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

fn challenge(base: &str, tenant: &Tenant, error: Option<(&str, &str)>) -> String {
    let scope = tenant
        .dcr
        .allowed_scopes
        .without(OFFLINE_ACCESS)
        .to_string();
    let mut value = format!(
        "Bearer resource_metadata=\"{}\", scope=\"{scope}\"",
        metadata::protected_resource_metadata_url(base, tenant)
    );
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    value
}

/// RFC 6750 §3: no token → 401 without an error code; a bad one → `invalid_token`.
async fn authenticate(ctx: &Ctx<'_>, req: &Request) -> Result<AccessClaims, OAuthError> {
    let (app, tenant, base, issuer) = (ctx.app, ctx.tenant, ctx.base.as_str(), &ctx.issuer);
    let unauthorized = |error: Option<(&str, &str)>, description: &str| {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            description,
        )
        .with_header(WWW_AUTHENTICATE, challenge(base, tenant, error))
    };
    let token = http::authorization(req, "bearer")
        .ok_or_else(|| unauthorized(None, "a bearer access token is required"))?;
    let resource = metadata::demo_resource(base, tenant);
    let keys = app
        .keys
        .key_set_for(app.store.as_ref(), &tenant.id, token, ctx.now)
        .await
        .map_err(|_| OAuthError::unavailable())?;
    let invalid = || {
        unauthorized(
            Some((
                "invalid_token",
                "the access token is invalid, expired, revoked, or not for this resource",
            )),
            "the access token is invalid, expired, revoked, or not for this resource",
        )
    };
    let claims = tokens::verify_access_token(token, &keys, issuer, Some(&resource))
        .map_err(|_| invalid())?;
    // The demo resource also asks whether the grant behind the token still stands (one
    // consistent read), so revocation, refresh-token reuse and client deletion take effect
    // at once instead of at the token's expiry. A resource server that only verifies the JWT
    // accepts it until `exp` (at most GATEHOUSE_ACCESS_TOKEN_TTL).
    let live = app
        .store
        .get_grant(&tenant.id, &claims.sid)
        .await?
        .is_some_and(|g| g.is_active(ctx.now));
    if live { Ok(claims) } else { Err(invalid()) }
}

fn rpc_result(id: &Value, result: Value) -> Response {
    http::json_response(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Cache::NoStore,
    )
}

fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    http::json_response(
        status,
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        Cache::NoStore,
    )
}

pub async fn handle(ctx: &Ctx<'_>, req: &Request) -> Result<Response, OAuthError> {
    let claims = authenticate(ctx, req).await?;
    if !ctx.methods.allows(req.method().as_str()) {
        // No server-initiated stream (GET) in this demo; Streamable HTTP allows 405 here.
        return Err(OAuthError::method_not_allowed(ctx.methods.allow));
    }
    let message: Value = match serde_json::from_slice(req.body()) {
        Ok(v) => v,
        Err(_) => {
            return Ok(rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                -32700,
                "parse error",
            ));
        }
    };
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return Ok(rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            "invalid request: one JSON-RPC message with a method",
        ));
    };
    let Some(id) = message.get("id").filter(|id| !id.is_null()) else {
        // A notification (e.g. notifications/initialized): accepted, no body.
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::ACCEPTED;
        return Ok(resp);
    };
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    answer(ctx, &claims, method, id, &params)
}

/// The answer to one JSON-RPC request (a message with an `id`).
fn answer(
    ctx: &Ctx<'_>,
    claims: &AccessClaims,
    method: &str,
    id: &Value,
    params: &Value,
) -> Result<Response, OAuthError> {
    let resp = match method {
        "initialize" => {
            let requested = params.get("protocolVersion").and_then(Value::as_str);
            let version = requested
                .filter(|v| PROTOCOL_VERSIONS.contains(v))
                .unwrap_or(PROTOCOL_VERSIONS[0]);
            rpc_result(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "gatehouse-demo-mcp", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
        }
        "ping" => rpc_result(id, json!({})),
        "tools/list" => rpc_result(
            id,
            json!({"tools": [{
                "name": "whoami",
                "description": "Says who the access token belongs to and what it may do.",
                "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            }]}),
        ),
        "tools/call" => return call_tool(ctx, claims, id, params),
        _ => rpc_error(StatusCode::OK, id, -32601, "method not found"),
    };
    Ok(resp)
}

/// `tools/call`: the one tool, `whoami`, needs the `mcp:execute` scope (RFC 6750 §3.1
/// `insufficient_scope` otherwise, with the challenge naming the scope).
fn call_tool(
    ctx: &Ctx<'_>,
    claims: &AccessClaims,
    id: &Value,
    params: &Value,
) -> Result<Response, OAuthError> {
    let name = params.get("name").and_then(Value::as_str);
    if name != Some("whoami") {
        return Ok(rpc_error(StatusCode::OK, id, -32602, "unknown tool"));
    }
    if !claims.scope.split(' ').any(|s| s == "mcp:execute") {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientScope,
            "calling tools needs the mcp:execute scope",
        )
        .with_header(
            WWW_AUTHENTICATE,
            challenge(
                &ctx.base,
                ctx.tenant,
                Some((
                    "insufficient_scope",
                    "calling tools needs the mcp:execute scope",
                )),
            ),
        ));
    }
    Ok(rpc_result(
        id,
        json!({"content": [{"type": "text", "text": format!(
            "subject {} through client {} with scope \"{}\"",
            claims.sub, claims.client_id, claims.scope
        )}], "isError": false}),
    ))
}
