use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's identifier as it appears in its issuer URL (`/t/{tenant}`): 1–63 characters of
/// lowercase letters, digits and inner hyphens, like a DNS label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("invalid tenant id {value:?}"))
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client identifier. Two forms, which cannot be confused:
/// - opaque: 1–128 characters from the RFC 3986 unreserved set. Issued identifiers are 128-bit
///   random hex; the wider alphabet admits identifiers an operator imports.
/// - a Client ID Metadata Document URL (`https://…`, at most [`MAX_URL_CLIENT_ID`] bytes of
///   visible ASCII, no fragment). Only its shape is checked here; the full rules live in
///   `cimd::document_url`, applied before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

/// Longest URL accepted as a client identifier (DynamoDB keys hold it with room to spare).
pub const MAX_URL_CLIENT_ID: usize = 1024;

impl ClientId {
    pub fn parse(raw: &str) -> Option<Self> {
        let opaque = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let url = raw.len() <= MAX_URL_CLIENT_ID
            && raw.starts_with("https://")
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
        (opaque || url).then(|| Self(raw.to_owned()))
    }

    /// Whether this identifier is a Client ID Metadata Document URL.
    pub fn is_url(&self) -> bool {
        self.0.starts_with("https://")
    }

    pub fn generate() -> Self {
        Self(crate::crypto::new_id())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("invalid client id {value:?}"))
    }
}

impl From<ClientId> for String {
    fn from(value: ClientId) -> Self {
        value.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's sign-in email, normalised to lowercase. Only the shape is checked (one `@`, a dot in
/// the domain, no whitespace); deliverability is not our concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        let (local, domain) = raw.split_once('@')?;
        let ok = !local.is_empty()
            && raw.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && raw.chars().all(|c| !c.is_whitespace() && !c.is_control());
        ok.then_some(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| "invalid email".to_owned())
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("demo").is_some());
        assert!(TenantId::parse("acme-2").is_some());
        for bad in ["", "-a", "a-", "Acme", "a_b", "a/b", "a.b", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn client_ids() {
        assert!(ClientId::parse("019f04b29f39e79c87e828eca7084462").is_some());
        assert!(ClientId::parse("https://app.example/client.json").is_some_and(|c| c.is_url()));
        assert!(!ClientId::generate().is_url());
        let long_url = format!("https://a.example/{}", "a".repeat(1100));
        for bad in [
            "",
            "a b",
            "a/b",
            "é",
            &"a".repeat(129),
            "http://a.example/c",
            "https://a.example/c#f",
            "https://a.example/ c",
            &long_url,
        ] {
            assert!(ClientId::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(ClientId::generate().as_str().len(), 32);
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Admin@Demo.Test ").map(|e| e.0),
            Some("admin@demo.test".into())
        );
        for bad in ["", "a", "a@b", "@b.c", "a@.c", "a b@c.d", "a@b@c.d"] {
            assert!(Email::parse(bad).is_none(), "{bad}");
        }
    }
}
