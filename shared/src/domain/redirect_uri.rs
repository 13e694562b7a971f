use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// A registered redirect URI, validated once at registration (RFC 8252, RFC 9700 §4.1).
///
/// Accepted: `https` URIs with a host; `http` only for loopback hosts (`localhost`, `127.0.0.1`,
/// `[::1]`); private-use schemes for native apps (`com.example.app:/cb`, `cursor://…`).
/// Refused: relative URIs, fragments, user information, whitespace, and schemes that execute or
/// embed content (`javascript:`, `data:`, `file:` …). The exact string the client sent is kept
/// and echoed: we never substitute a normalised form (redirect URIs are compared as exact
/// strings, RFC 9700 §4.1.3, so a rewritten one would no longer match the client's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes that must never receive an authorization response.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "filesystem",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
    "urn",
    "view-source",
    "chrome",
    "jar",
];

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("redirect URI must not be empty".into());
        }
        if raw.len() > MAX_REDIRECT_URI_LEN {
            return Err(format!(
                "redirect URI longer than {MAX_REDIRECT_URI_LEN} characters"
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "redirect URI {raw:?} contains whitespace or control characters"
            ));
        }
        // WHATWG parsing repairs `https:///host` and reads `\` as `/`; a redirect URI must
        // mean the same to every parser, so such spellings are refused rather than repaired.
        if raw.contains('\\') {
            return Err(format!("redirect URI {raw:?} must not contain backslashes"));
        }
        let url = Url::parse(raw)
            .map_err(|e| format!("redirect URI {raw:?} is not an absolute URI ({e})"))?;
        if url.fragment().is_some() {
            return Err(format!("redirect URI {raw:?} must not contain a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "redirect URI {raw:?} must not contain user information"
            ));
        }
        if matches!(url.scheme(), "http" | "https") {
            let rest = &raw[url.scheme().len() + 1..];
            if !rest.starts_with("//") || rest[2..].starts_with('/') {
                return Err(format!(
                    "redirect URI {raw:?} must have the form {}://host/path",
                    url.scheme()
                ));
            }
        }
        match url.scheme() {
            "https" => {
                if url.host().is_none() {
                    return Err(format!("redirect URI {raw:?} has no host"));
                }
            }
            "http" => {
                if !is_loopback(&url) {
                    return Err(format!(
                        "redirect URI {raw:?} uses http with a non-loopback host; use https, or http only for localhost, 127.0.0.1 or [::1]"
                    ));
                }
            }
            scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
                return Err(format!(
                    "redirect URI scheme {scheme:?} is not allowed; use https, http on loopback, or a private-use scheme"
                ));
            }
            _ => {
                // Private-use scheme (RFC 8252 §7.1). It must carry a path or host to return to.
                if url.path().is_empty() && url.host().is_none() {
                    return Err(format!(
                        "redirect URI {raw:?} names no location for the private-use scheme"
                    ));
                }
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an `http` loopback URI, whose port a native app picks at run time.
    pub fn is_loopback(&self) -> bool {
        Url::parse(&self.0).is_ok_and(|u| u.scheme() == "http" && is_loopback(&u))
    }

    /// Does a redirect URI presented in an authorization request match this registered one?
    /// Exact string comparison (RFC 9700 §4.1.3), except that for loopback `http` URIs the port
    /// is ignored (RFC 8252 §7.3), `localhost` included: RFC 8252 §8.3 discourages it, but native
    /// clients register `http://localhost:<port>/…` and pick a new port on each run.
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(registered), Ok(candidate)) = (Url::parse(&self.0), Url::parse(presented)) else {
            return false;
        };
        if registered.scheme() != "http" || !is_loopback(&registered) {
            return false;
        }
        if presented
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return false;
        }
        candidate.scheme() == "http"
            && candidate.host() == registered.host()
            && candidate.path() == registered.path()
            && candidate.query() == registered.query()
            && candidate.fragment().is_none()
            && candidate.username().is_empty()
            && candidate.password().is_none()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RedirectUri> for String {
    fn from(value: RedirectUri) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_usual_shapes() {
        for ok in [
            "https://agent.example.com/callback",
            "https://agent.example.com/callback?x=1",
            "http://localhost/callback",
            "http://localhost:33418/callback",
            "http://127.0.0.1:8976/oauth/callback",
            "http://[::1]:9000/cb",
            "com.example.app:/oauth2redirect",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_dangerous_and_malformed_uris() {
        for bad in [
            "",
            "/callback",
            "callback",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://example.com/cb#frag",
            "https://example.com/cb#",
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.com/cb",
            "https://user:pw@example.com/cb",
            " https://example.com/cb",
            "https://example.com/c b",
            "https://example.com/cb\n",
            "https:///nohost",
            "https:/example.com/cb",
            "https://evil.example\\@good.example/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RedirectUri::parse(&format!("https://e.com/{}", "a".repeat(2000))).is_err());
    }

    #[test]
    fn loopback_matches_any_port_others_match_exactly() {
        let lo = RedirectUri::parse("http://localhost/callback").unwrap_or_else(|e| panic!("{e}"));
        assert!(lo.matches("http://localhost/callback"));
        assert!(lo.matches("http://localhost:51234/callback"));
        assert!(!lo.matches("http://localhost:51234/other"));
        assert!(!lo.matches("http://127.0.0.1:51234/callback"));
        assert!(!lo.matches("https://localhost:51234/callback"));
        assert!(!lo.matches("http://localhost:51234/callback#x"));

        let ip = RedirectUri::parse("http://127.0.0.1:8000/cb").unwrap_or_else(|e| panic!("{e}"));
        assert!(ip.matches("http://127.0.0.1:9999/cb"));

        let web = RedirectUri::parse("https://a.example/cb").unwrap_or_else(|e| panic!("{e}"));
        assert!(web.matches("https://a.example/cb"));
        assert!(!web.matches("https://a.example:443/cb/"));
        assert!(!web.matches("https://a.example/cb?x=1"));
        assert!(!web.matches("https://A.example/cb"));
    }

    proptest! {
        /// A non-loopback URI matches only itself, whatever is appended or changed.
        #[test]
        fn https_matching_is_exact(path in "[a-z0-9/]{0,20}", extra in "[a-zA-Z0-9/?=&#:.-]{1,10}") {
            let raw = format!("https://client.example/{path}");
            let uri = RedirectUri::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
            prop_assert!(uri.matches(&raw));
            let other = format!("{raw}{extra}");
            prop_assert!(!uri.matches(&other));
        }

        /// Loopback URIs match on every port and nothing else changes.
        #[test]
        fn loopback_matching_ignores_only_the_port(port in 1u16.., path in "[a-z0-9]{1,12}") {
            let uri = RedirectUri::parse(&format!("http://127.0.0.1/{path}")).unwrap_or_else(|e| panic!("{e}"));
            let with_port = format!("http://127.0.0.1:{port}/{path}");
            let other_path = format!("http://127.0.0.1:{port}/{path}x");
            prop_assert!(uri.matches(&with_port));
            prop_assert!(!uri.matches(&other_path));
        }

        /// Parsing never panics, whatever the input.
        #[test]
        fn parse_never_panics(raw in "\\PC{0,64}") {
            let _ = RedirectUri::parse(&raw);
        }
    }
}
