use serde::{Deserialize, Serialize};
use std::fmt;

/// One scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`), at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeToken(String);

impl ScopeToken {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScopeToken {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("invalid scope token {value:?}"))
    }
}

impl From<ScopeToken> for String {
    fn from(value: ScopeToken) -> Self {
        value.0
    }
}

/// An ordered set of scope tokens without duplicates. Serialised as the space-delimited string
/// of RFC 6749 §3.3, which is also how it appears in registration responses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeSet(Vec<ScopeToken>);

pub const OFFLINE_ACCESS: &str = "offline_access";

impl ScopeSet {
    /// Parses a space-delimited scope string. Repeated tokens collapse; empty input is the empty
    /// set. Returns the offending token on failure.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut out: Vec<ScopeToken> = Vec::new();
        for part in raw.split(' ').filter(|p| !p.is_empty()) {
            let token = ScopeToken::parse(part).ok_or_else(|| part.to_owned())?;
            if !out.contains(&token) {
                out.push(token);
            }
        }
        Ok(Self(out))
    }

    pub fn from_tokens(tokens: impl IntoIterator<Item = ScopeToken>) -> Self {
        let mut out: Vec<ScopeToken> = Vec::new();
        for t in tokens {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Self(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|t| t.as_str() == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ScopeToken> {
        self.0.iter()
    }

    /// Tokens of `self` that `allowed` does not contain.
    pub fn not_in<'a>(&'a self, allowed: &'a ScopeSet) -> impl Iterator<Item = &'a ScopeToken> {
        self.0.iter().filter(|t| !allowed.contains(t.as_str()))
    }

    /// A copy without the given token.
    pub fn without(&self, scope: &str) -> Self {
        Self(
            self.0
                .iter()
                .filter(|t| t.as_str() != scope)
                .cloned()
                .collect(),
        )
    }

    /// `self` reordered to follow `canonical`'s order (tokens `canonical` lacks keep their
    /// relative order at the end), so equal sets always render identically.
    pub fn ordered_like(&self, canonical: &ScopeSet) -> Self {
        let mut out: Vec<ScopeToken> = canonical
            .iter()
            .filter(|t| self.contains(t.as_str()))
            .cloned()
            .collect();
        out.extend(self.not_in(canonical).cloned());
        Self(out)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t.as_str())?;
        }
        Ok(())
    }
}

impl TryFrom<String> for ScopeSet {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|t| format!("invalid scope token {t:?}"))
    }
}

impl From<ScopeSet> for String {
    fn from(value: ScopeSet) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedupes() {
        let s = ScopeSet::parse("  a b  a c").unwrap();
        assert_eq!(s.to_string(), "a b c");
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert_eq!(ScopeSet::parse("a \"b").unwrap_err(), "\"b");
        assert_eq!(ScopeSet::parse("a\\b").unwrap_err(), "a\\b");
        assert!(ScopeSet::parse("a\tb").is_err());
    }

    #[test]
    fn orders_canonically() {
        let canonical = ScopeSet::parse("user_default mcp:execute offline_access").unwrap();
        let s = ScopeSet::parse("offline_access user_default").unwrap();
        assert_eq!(
            s.ordered_like(&canonical).to_string(),
            "user_default offline_access"
        );
        assert_eq!(
            s.without(OFFLINE_ACCESS).to_string(),
            "user_default".to_string()
        );
    }
}
