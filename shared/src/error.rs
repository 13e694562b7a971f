//! One error type for every protocol failure. It knows its RFC error code, its HTTP status and
//! whether it may travel back to a client's redirect URI; rendering happens in one place
//! ([`crate::http::error_response`]).

use http::StatusCode;

/// RFC error codes (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2, RFC 6750 §3.1) plus the few
/// non-RFC codes this server needs for transport-level failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    UnsupportedResponseType,
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidToken,
    InsufficientScope,
    TemporarilyUnavailable,
    ServerError,
    NotFound,
    MethodNotAllowed,
    TooManyRequests,
    /// OpenID Connect Core §3.1.2.6 (`prompt=none`) and §6.1 (request objects).
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::TooManyRequests => "too_many_requests",
        }
    }
}

/// A protocol error answered directly to the caller as JSON.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: String,
    /// Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(http::HeaderName, String)>,
}

impl OAuthError {
    pub fn new(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: http::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidClientMetadata,
            description,
        )
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRedirectUri,
            description,
        )
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, description)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            format!("this endpoint accepts {allow}"),
        )
        .with_header(http::header::ALLOW, allow)
    }

    pub fn too_many_requests(description: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            description,
        )
        .with_header(http::header::RETRY_AFTER, retry_after_secs.to_string())
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!(
                "request body is larger than {} bytes",
                crate::defaults::MAX_BODY_BYTES
            ),
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TemporarilyUnavailable,
            "the authorization server's storage is unavailable; retry shortly",
        )
        .with_header(http::header::RETRY_AFTER, "2")
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "the authorization server hit an unexpected error",
        )
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "unexpected storage error");
                Self::server_error()
            }
        }
    }
}
