//! Request/response types shared by the Lambda adapter and the local runner, and the one place
//! where errors and JSON become HTTP responses.

use crate::defaults::MAX_BODY_BYTES;
use crate::error::OAuthError;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use std::net::IpAddr;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// The caller's IP address as the platform saw it (API Gateway's `sourceIp`, or the socket's
/// peer address locally). Stored as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The request id used in logs (Lambda's request id, or a generated one locally).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Marks a request whose body exceeded the runner's read limit; the body was dropped. The app
/// answers it with `413` through the route's normal response path (CORS included).
#[derive(Debug, Clone, Copy)]
pub struct BodyTooLarge;

pub(crate) const JSON: &str = "application/json";

/// A JSON request body's envelope: at most [`MAX_BODY_BYTES`] (`413`), sent as
/// `application/json` (`415`, the description naming `what` was sent).
pub fn check_json_body(req: &Request, what: &str) -> Result<(), OAuthError> {
    if req.body().len() > MAX_BODY_BYTES {
        return Err(OAuthError::payload_too_large());
    }
    if !is_json(req.headers()) {
        return Err(OAuthError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            crate::error::ErrorCode::InvalidRequest,
            format!("{what} must be sent as Content-Type: application/json"),
        ));
    }
    Ok(())
}

/// Headers every response carries (pages add their own on top, see [`crate::html`]).
pub(crate) fn base_headers(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

pub fn json_response(status: StatusCode, body: &serde_json::Value, cache: Cache) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Bytes::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    base_headers(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    cache.apply(h);
    resp
}

/// `204 No Content` for a completed write (deletions), with the headers every answer carries.
pub fn no_content() -> Response {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    base_headers(resp.headers_mut());
    Cache::NoStore.apply(resp.headers_mut());
    resp
}

#[derive(Debug, Clone, Copy)]
pub enum Cache {
    /// Credentials and per-request answers (RFC 6749 §5.1): `no-store`.
    NoStore,
    /// Public documents (metadata): cacheable for this many seconds.
    Public(u32),
}

impl Cache {
    fn apply(self, h: &mut HeaderMap) {
        match self {
            Self::NoStore => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
            Self::Public(secs) => {
                if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={secs}")) {
                    h.insert(header::CACHE_CONTROL, v);
                }
            }
        }
    }
}

/// `{"error": …, "error_description": …}` with the error's status and extra headers.
pub fn error_response(err: &OAuthError) -> Response {
    let body = serde_json::json!({
        "error": err.code.as_str(),
        "error_description": err.description,
    });
    let mut resp = json_response(err.status, &body, Cache::NoStore);
    for (name, value) in &err.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().append(name.clone(), v);
        }
    }
    resp
}

/// CORS for endpoints browser-based MCP clients call directly (they send
/// `MCP-Protocol-Version`, which triggers a preflight): metadata, registration, token. No
/// credentials are involved, so any origin may call.
pub fn with_cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Retry-After"),
    );
    resp
}

/// Answer to a CORS preflight (`OPTIONS`).
pub fn preflight(allow_methods: &'static str) -> Response {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    base_headers(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(allow_methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Content-Type, MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    with_cors(resp)
}

/// The credentials of an `Authorization: {scheme} {credentials}` header (RFC 9110 §11.6.2; the
/// scheme is case-insensitive). `None`: no header, not text, another scheme, or nothing after it.
pub fn authorization<'r>(req: &'r Request, scheme: &str) -> Option<&'r str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(s, _)| s.eq_ignore_ascii_case(scheme))
        .map(|(_, credentials)| credentials.trim())
        .filter(|credentials| !credentials.is_empty())
}

/// An RFC 6750 §2.1 bearer token of at most `max_len` bytes (our own opaque tokens are short;
/// anything longer is not one of them and is not worth hashing).
pub fn bearer_token(req: &Request, max_len: usize) -> Option<&str> {
    authorization(req, "bearer").filter(|t| t.len() <= max_len)
}

/// Whether the request declares a body of the given media type (parameters such as `charset`
/// allowed).
pub fn has_media_type(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media_type))
}

/// Whether the request declares a JSON body (`application/json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    has_media_type(headers, JSON)
}

/// Whether the request declares a form body (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &HeaderMap) -> bool {
    has_media_type(headers, "application/x-www-form-urlencoded")
}
