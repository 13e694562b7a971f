//! Hosted pages: askama templates (compiled, auto-escaped) and the headers every page carries:
//! a strict Content-Security-Policy with a per-response nonce for the inline stylesheet,
//! `frame-ancestors 'none'` against clickjacking, and `no-store`.

use crate::crypto;
use crate::domain::UnixTime;
use crate::http::Response;
use askama::Template;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignIn<'a> {
    pub nonce: &'a str,
    pub tenant_name: &'a str,
    pub client_name: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub client_id: &'a str,
    pub csrf_token: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub nonce: &'a str,
    /// The application changed since the page the decision came from; this one shows it anew.
    pub changed: bool,
    pub tenant_name: &'a str,
    pub client_name: &'a str,
    pub client_uri: Option<String>,
    /// Shown as text on the approval page only: a remote picture would tell its host the
    /// administrator's address and could be swapped after approval.
    pub logo_uri: Option<String>,
    /// The client's metadata document URL (its client_id), for metadata-document clients.
    pub document_url: Option<&'a str>,
    pub redirect_uri: String,
    /// Every registered redirect URI, shown when approving a new client.
    pub all_redirect_uris: Vec<String>,
    pub scopes: Vec<&'a str>,
    pub pending: bool,
    pub registered_ago: String,
    pub stays_connected: bool,
    pub user_email: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub client_id: &'a str,
    pub csrf_token: &'a str,
    /// The configuration the page shows; a decision on another one is refused and the page
    /// shown again.
    pub config_version: u32,
    /// A pending client whose application an administrator may trust on approval.
    pub trustable: bool,
}

/// A pending client met by a regular user: the "ask an administrator" form, or (`asked`) the
/// confirmation that the request was recorded.
#[derive(Template)]
#[template(path = "needs_admin.html")]
pub struct NeedsAdministrator<'a> {
    pub nonce: &'a str,
    pub tenant_name: &'a str,
    pub client_name: &'a str,
    pub asked: bool,
    /// When the pending registration is deleted ("in 59 minutes").
    pub time_left: String,
    pub user_email: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub client_id: &'a str,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub nonce: &'a str,
    pub tenant_name: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub hint: Option<&'a str>,
}

/// A URL as the administrator must read it: hosts in their ASCII (punycode) form, so that a
/// look-alike internationalised host (`аpple.com` with a Cyrillic `а`) shows as what it is
/// (`xn--pple-43d.com`). A value that does not parse is shown as it is (escaped).
pub fn ascii_url(raw: &str) -> String {
    url::Url::parse(raw).map_or_else(|_| raw.to_owned(), String::from)
}

/// A fresh CSP nonce for one response.
pub fn nonce() -> String {
    crypto::hex(&crypto::random_bytes::<16>())
}

/// Renders a template into a page response with the security headers.
pub fn page(status: StatusCode, nonce: &str, template: &impl Template) -> Response {
    let body = template.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "template rendering failed");
        "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
    });
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    crate::http::base_headers(h);
    resp
}

/// A message page (errors, "an administrator must approve", "start again").
pub fn message(
    status: StatusCode,
    tenant_name: &str,
    title: &str,
    message: &str,
    hint: Option<&str>,
) -> Response {
    let nonce = nonce();
    page(
        status,
        &nonce,
        &Message {
            nonce: &nonce,
            tenant_name,
            title,
            message,
            hint,
        },
    )
}

/// How long ago `then` was, in the words every page uses ("3 minutes ago").
pub fn ago(now: UnixTime, then: UnixTime) -> String {
    let secs = (now - then).max(0);
    let (n, unit) = match secs {
        0..60 => return "less than a minute ago".to_owned(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// How long until `until`, in whole minutes ("42 min left").
pub fn time_left(now: UnixTime, until: UnixTime) -> String {
    if until - now >= 60 {
        format!("{} min left", (until - now) / 60)
    } else {
        "under a minute left".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_supplied_text_is_escaped() {
        let resp = message(
            StatusCode::BAD_REQUEST,
            "<b>t</b>",
            "x",
            "<script>alert(1)</script>",
            None,
        );
        let body = String::from_utf8(resp.body().to_vec()).unwrap();
        assert!(!body.contains("<script>alert(1)</script>"));
        assert!(
            body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{body}"
        );
        assert!(!body.contains("<b>t</b>"));
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn durations_read_the_same_on_every_page() {
        assert_eq!(ago(1000, 1000), "less than a minute ago");
        assert_eq!(ago(1000, 2000), "less than a minute ago");
        assert_eq!(ago(1060, 1000), "1 minute ago");
        assert_eq!(ago(1000 + 7200, 1000), "2 hours ago");
        assert_eq!(ago(1000 + 86_400, 1000), "1 day ago");
        assert_eq!(time_left(1000, 1000 + 59), "under a minute left");
        assert_eq!(time_left(1000, 1000 + 3600), "60 min left");
    }
}
