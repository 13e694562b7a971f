//! Query-string and form parameters (`application/x-www-form-urlencoded`). RFC 6749 §3.1:
//! request parameters must not be included more than once; [`Params::single`] reports a
//! repeated one when it is asked for.

use crate::defaults::{MAX_AUTHORIZE_INPUT_BYTES, MAX_PARAMETER_CHARS};

pub struct Params(pub(crate) Vec<(String, String)>);

#[derive(Debug, PartialEq, Eq)]
pub enum ParamError {
    TooLarge,
    Repeated(&'static str),
    TooLong(&'static str),
}

impl ParamError {
    pub fn describe(&self) -> String {
        match self {
            Self::TooLarge => {
                format!(
                    "the request's parameters are longer than {MAX_AUTHORIZE_INPUT_BYTES} bytes"
                )
            }
            Self::Repeated(n) => format!("the {n} parameter is repeated"),
            Self::TooLong(n) => {
                format!("the {n} parameter is longer than {MAX_PARAMETER_CHARS} characters")
            }
        }
    }
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, ParamError> {
        if raw.len() > MAX_AUTHORIZE_INPUT_BYTES {
            return Err(ParamError::TooLarge);
        }
        Ok(Self(
            url::form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// The one value of `name` (empty counts as absent).
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, ParamError> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(ParamError::Repeated(name));
        }
        match first {
            Some((_, v)) if v.chars().count() > MAX_PARAMETER_CHARS => {
                Err(ParamError::TooLong(name))
            }
            Some((_, v)) if !v.is_empty() => Ok(Some(v.as_str())),
            _ => Ok(None),
        }
    }

    /// Every value of `name`, in order (parameters RFC 8707 allows to repeat).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every parameter name, in order (repeated ones as often as they appear).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The first repeated parameter name, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            self.0[..i]
                .iter()
                .any(|(k2, _)| k2 == k)
                .then_some(k.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_long_parameters_are_reported() {
        let p = Params::parse(b"a=1&b=2&a=3&c=").unwrap();
        assert_eq!(p.single("a"), Err(ParamError::Repeated("a")));
        assert_eq!(p.single("b"), Ok(Some("2")));
        assert_eq!(p.single("c"), Ok(None));
        assert_eq!(p.first_repeated(), Some("a"));
        let long = format!("x={}", "y".repeat(MAX_PARAMETER_CHARS + 1));
        assert_eq!(
            Params::parse(long.as_bytes()).unwrap().single("x"),
            Err(ParamError::TooLong("x"))
        );
        assert!(Params::parse(&vec![b'a'; MAX_AUTHORIZE_INPUT_BYTES + 1]).is_err());
    }
}
