//! Reading admin request bodies (JSON objects) into `#[serde(deny_unknown_fields)]` structs with
//! the admin API's own error messages (`docs/admin-api.md`: a refused field is named in
//! `error_description`).
//!
//! Bodies are deserialized from the parsed JSON object rather than from the raw bytes, so fields
//! are checked in the object's key order and a repeated key keeps its last value, as when the
//! handlers read the object field by field. A field's check runs in its `deserialize_with`
//! function and fails with the finished message ([`checked`]); serde's own unknown-field error is
//! turned back into the field's name ([`BodyError::Unknown`]) so each body can word it.

use crate::error::OAuthError;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a body did not deserialize.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// A field the struct does not declare.
    Unknown(String),
    /// A declared field with a refused value: the finished message.
    Invalid(String),
}

impl BodyError {
    /// As a `400 invalid_request`, wording an unknown field with `unknown`.
    pub fn into_oauth(self, unknown: impl FnOnce(&str) -> String) -> OAuthError {
        OAuthError::invalid_request(match self {
            Self::Unknown(name) => unknown(&name),
            Self::Invalid(message) => message,
        })
    }
}

/// `T` from a JSON object.
pub fn from_object<T: DeserializeOwned>(object: &Map<String, Value>) -> Result<T, BodyError> {
    // `&Map` is no deserializer itself; a body is at most 64 KiB, so a copy is cheap.
    let value = Value::Object(object.clone());
    T::deserialize(&value).map_err(|e| classify(&e))
}

/// Serde's unknown-field message is "unknown field `NAME`, expected …" (or "…, there are no
/// fields"); the text after the name never contains "`, " followed by those words, so the last
/// such separator ends the name even when the name holds backticks.
fn classify(e: &serde_json::Error) -> BodyError {
    let text = e.to_string();
    let unknown = text.strip_prefix("unknown field `").and_then(|rest| {
        ["`, expected ", "`, there are no fields"]
            .iter()
            .filter_map(|sep| rest.rfind(sep))
            .max()
            .map(|end| rest[..end].to_owned())
    });
    unknown.map_or(BodyError::Invalid(text), BodyError::Unknown)
}

/// A `deserialize_with` body: reads the field as any JSON value (`null` included, so a check
/// can tell `null` from a missing field, which never reaches it) and checks it with `check`,
/// whose error is the finished message.
pub fn checked<'de, D, T>(
    d: D,
    check: impl FnOnce(Value) -> Result<T, String>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    check(value).map(Some).map_err(D::Error::custom)
}

/// A field kept as the JSON value sent (`null` too), for bodies whose values another validator
/// reads as a JSON object (RFC 7591 metadata, [`crate::client_metadata::validate`]).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A field read as text; anything that is not a string reads as empty, which the value checks
/// then refuse with their own message (`POST /users`).
pub fn text_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        _ => String::new(),
    })
}

/// A struct whose fields are all [`present`] values, back as the JSON object it was read from.
pub fn to_object<T: Serialize>(body: &T) -> Map<String, Value> {
    match serde_json::to_value(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default, deserialize_with = "name")]
        name: Option<String>,
        #[serde(default, deserialize_with = "present")]
        raw: Option<Value>,
    }

    fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        checked(d, |v| match v {
            Value::String(s) => Ok(s),
            _ => Err("name must be a string".to_owned()),
        })
    }

    fn parse(v: Value) -> Result<Sample, BodyError> {
        from_object(v.as_object().unwrap())
    }

    #[test]
    fn absent_null_and_values_are_told_apart() {
        let s = parse(json!({})).unwrap();
        assert_eq!((s.name, s.raw), (None, None));
        let s = parse(json!({"raw": null, "name": "x"})).unwrap();
        assert_eq!((s.name.as_deref(), s.raw), (Some("x"), Some(Value::Null)));
    }

    #[test]
    fn errors_keep_their_messages_and_name_unknown_fields() {
        assert_eq!(
            parse(json!({"name": null})).unwrap_err(),
            BodyError::Invalid("name must be a string".into())
        );
        for odd in ["colour", "a`b", "x`, expected y", ""] {
            assert_eq!(
                parse(json!({ odd: 1 })).unwrap_err(),
                BodyError::Unknown(odd.into()),
                "{odd}"
            );
        }
        // Key order decides which of two errors is reported.
        assert_eq!(
            parse(json!({"name": 5, "zebra": 1})).unwrap_err(),
            BodyError::Invalid("name must be a string".into())
        );
        assert_eq!(
            parse(json!({"name": 5, "colour": 1})).unwrap_err(),
            BodyError::Unknown("colour".into())
        );
    }
}
