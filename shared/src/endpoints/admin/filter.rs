//! The admin API's clients list filter: `createdByType eq "dcr"`, conditions joined by `and`.
//!
//! Grammar (keywords case-insensitive, values case-sensitive):
//! ```text
//! filter    = condition *( ws "and" ws condition )
//! condition = attribute ws "eq" ws DQUOTE value DQUOTE
//! attribute = "createdByType" / "status" / "consentMethod"
//! ```
//! Anything else is refused with the (1-based) character position where parsing broke; the
//! parser never builds a query string, so there is nothing to inject into.

use crate::domain::{Client, ClientStatus, ConsentMethod, CreatedByType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    CreatedBy(CreatedByType),
    Status(ClientStatus),
    Consent(ConsentMethod),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter(Vec<Condition>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: at position {position}: {message}")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

const MAX_FILTER_CHARS: usize = 512;

impl ClientFilter {
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        if raw.chars().count() > MAX_FILTER_CHARS {
            return Err(FilterError {
                position: MAX_FILTER_CHARS + 1,
                message: format!("a filter is at most {MAX_FILTER_CHARS} characters"),
            });
        }
        let mut p = Parser {
            chars: raw.chars().collect(),
            at: 0,
        };
        let mut conditions = vec![p.condition()?];
        loop {
            let spaced = p.skip_ws();
            if p.done() {
                break;
            }
            let at = p.at;
            let word = p.word();
            if !spaced || !word.eq_ignore_ascii_case("and") {
                return Err(p.error_at(
                    at,
                    if word.eq_ignore_ascii_case("or") {
                        "only \"and\" can join conditions".to_owned()
                    } else {
                        format!(
                            "expected \"and\" or the end of the filter, found {:?}",
                            p.rest_from(at)
                        )
                    },
                ));
            }
            if !p.skip_ws() {
                return Err(p.error("expected a space after \"and\""));
            }
            conditions.push(p.condition()?);
        }
        Ok(Self(conditions))
    }

    pub fn matches(&self, client: &Client) -> bool {
        self.0.iter().all(|c| match c {
            Condition::CreatedBy(v) => client.created_by == *v,
            Condition::Status(v) => client.status == *v,
            Condition::Consent(v) => client.consent_method == *v,
        })
    }

    /// Pending clients are listed only when the filter asks for them: unapproved registrations
    /// come from anyone and expire on their own, so they stay out of the administrator's list.
    pub fn shows_pending(&self) -> bool {
        self.0.contains(&Condition::Status(ClientStatus::Pending))
    }

    /// Whether a client belongs in the listing under this filter.
    pub fn lists(&self, client: &Client) -> bool {
        (client.status != ClientStatus::Pending || self.shows_pending()) && self.matches(client)
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn done(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn error(&self, message: &str) -> FilterError {
        self.error_at(self.at, message.to_owned())
    }

    fn error_at(&self, at: usize, message: String) -> FilterError {
        FilterError {
            position: at + 1,
            message,
        }
    }

    fn rest_from(&self, at: usize) -> String {
        self.chars[at..].iter().take(20).collect()
    }

    /// Skips spaces; whether any were skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| *c == ' ' || *c == '\t')
        {
            self.at += 1;
        }
        self.at > start
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(char::is_ascii_alphabetic)
        {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn condition(&mut self) -> Result<Condition, FilterError> {
        self.skip_ws();
        let attr_at = self.at;
        let attr = self.word();
        let attr = match attr.as_str() {
            "createdByType" | "status" | "consentMethod" => attr,
            "" => {
                return Err(self.error_at(
                    attr_at,
                    "expected an attribute: createdByType, status or consentMethod".into(),
                ));
            }
            other => {
                return Err(self.error_at(
                    attr_at,
                    format!(
                        "unknown attribute {other:?}; filterable attributes are createdByType, status and consentMethod"
                    ),
                ));
            }
        };
        if !self.skip_ws() {
            return Err(self.error("expected a space and \"eq\" after the attribute"));
        }
        let op_at = self.at;
        let op = self.word();
        if !op.eq_ignore_ascii_case("eq") {
            return Err(self.error_at(
                op_at,
                format!("unsupported operator {op:?}; only \"eq\" is supported"),
            ));
        }
        if !self.skip_ws() {
            return Err(self.error("expected a space and a quoted value after \"eq\""));
        }
        let value_at = self.at;
        if self.chars.get(self.at) != Some(&'"') {
            return Err(self.error("expected a value in double quotes"));
        }
        self.at += 1;
        let start = self.at;
        loop {
            match self.chars.get(self.at) {
                None => {
                    return Err(self.error_at(value_at, "unterminated quoted value".into()));
                }
                Some('"') => break,
                Some('\\') => return Err(self.error("escapes are not supported in values")),
                Some(_) => self.at += 1,
            }
        }
        let value: String = self.chars[start..self.at].iter().collect();
        self.at += 1;
        let unknown = |allowed: &str| {
            self.error_at(
                value_at,
                format!("unknown {attr} value {value:?}; use {allowed}"),
            )
        };
        Ok(match attr.as_str() {
            "createdByType" => Condition::CreatedBy(match value.as_str() {
                "dcr" => CreatedByType::Dcr,
                "user" => CreatedByType::User,
                "service" => CreatedByType::Service,
                "cimd" => CreatedByType::Cimd,
                _ => return Err(unknown("\"dcr\", \"cimd\", \"user\" or \"service\"")),
            }),
            "status" => Condition::Status(match value.as_str() {
                "pending" => ClientStatus::Pending,
                "approved" => ClientStatus::Approved,
                _ => return Err(unknown("\"pending\" or \"approved\"")),
            }),
            _ => Condition::Consent(
                ConsentMethod::parse(&value)
                    .ok_or_else(|| unknown("\"required\" or \"trusted\""))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_filter_syntax() {
        assert_eq!(
            ClientFilter::parse(r#"createdByType eq "dcr""#).unwrap(),
            ClientFilter(vec![Condition::CreatedBy(CreatedByType::Dcr)])
        );
        let f = ClientFilter::parse(r#"createdByType EQ "dcr" AND status eq "pending""#).unwrap();
        assert!(f.shows_pending());
        assert_eq!(f.0.len(), 2);
    }

    #[test]
    fn refuses_with_a_position() {
        for (raw, position) in [
            (r#"createdBy eq "dcr""#, 1),
            (r#"status ne "pending""#, 8),
            (r#"status eq pending"#, 11),
            (r#"status eq "pending"#, 11),
            (r#"status eq "sleeping""#, 11),
            (r#"status eq "pending" or status eq "approved""#, 21),
            (r#"status eq "pending" x"#, 21),
            (r#"status eq "pending"and"#, 20),
            (r#"createdByType eq "dcr\" or \"x""#, 22),
            ("", 1),
        ] {
            let err = ClientFilter::parse(raw).unwrap_err();
            assert_eq!(err.position, position, "{raw}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(raw in "\\PC{0,80}") {
            let _ = ClientFilter::parse(&raw);
        }
    }
}
