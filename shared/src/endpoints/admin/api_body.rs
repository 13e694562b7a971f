//! The admin API's request bodies that only the API reads (`docs/admin-api.md`): a new client,
//! a new user, a new admin API token. Edits shared with the console and the CLI are in
//! [`manage`](super::manage) and [`settings`](super::settings).

use super::body::{BodyError, checked, from_object, present, text_or_empty};
use super::settings::display_text;
use crate::defaults::{ADMIN_TOKEN_DEFAULT_TTL_SECS, ADMIN_TOKEN_MAX_TTL_SECS};
use crate::domain::ConsentMethod;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST …/oauth-clients`: `consentMethod`, read before anything else in the body (it is not
/// RFC 7591 metadata, so it is judged apart from [`NewClientMetadata`]). Missing or `null`:
/// `required`.
#[derive(Debug, Deserialize)]
pub struct NewClientConsent {
    #[serde(
        rename = "consentMethod",
        default = "consent_required",
        deserialize_with = "new_client_consent"
    )]
    pub consent: ConsentMethod,
}

fn consent_required() -> ConsentMethod {
    ConsentMethod::Required
}

fn new_client_consent<'de, D: Deserializer<'de>>(d: D) -> Result<ConsentMethod, D::Error> {
    let consent = checked(d, |v| match v {
        Value::Null => Ok(ConsentMethod::Required),
        Value::String(raw) => ConsentMethod::parse(&raw)
            .ok_or_else(|| "consentMethod must be \"required\" or \"trusted\"".to_owned()),
        _ => Err("consentMethod must be a string".to_owned()),
    })?;
    Ok(consent.unwrap_or(ConsentMethod::Required))
}

/// `POST …/oauth-clients`: the RFC 7591 metadata an administrator may set. Unlike anonymous
/// registration (RFC 7591 §2 ignores unknown metadata), an administrator's typo should not pass
/// silently, hence `deny_unknown_fields`. The values stay JSON: [`to_object`](super::body::to_object) hands them to the
/// registration validator ([`crate::client_metadata::validate`]) as sent.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewClientMetadata {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    client_name: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    redirect_uris: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    grant_types: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    response_types: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    token_endpoint_auth_method: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    scope: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    application_type: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    client_uri: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    logo_uri: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    tos_uri: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    policy_uri: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    software_id: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    software_version: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    contacts: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    id_token_signed_response_alg: Option<Value>,
    /// Read by [`NewClientConsent`]; declared so that it is not an unknown field.
    #[serde(default, rename = "consentMethod", skip_serializing)]
    _consent: IgnoredAny,
}

/// What [`NewClientMetadata`] accepts, for the message refusing anything else.
pub const NEW_CLIENT_FIELDS: &[&str] = &[
    "client_name",
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "application_type",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "contacts",
    "id_token_signed_response_alg",
];

/// `POST …/users`. A missing or non-string field reads as empty, which the user checks refuse
/// with their own message (`email is not a valid address`, …).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[serde(default, deserialize_with = "text_or_empty")]
    pub email: String,
    #[serde(default, deserialize_with = "text_or_empty")]
    pub password: String,
    #[serde(default, deserialize_with = "text_or_empty")]
    pub role: String,
    /// Optional; checked by `manage::user_name`.
    #[serde(default)]
    pub name: Option<Value>,
}

/// `POST …/tokens`. Each field keeps its check's outcome, so that the handler reports a bad
/// `name` before a bad `expires_in`, and both before an unknown field ([`known_first`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default = "default_token_name", deserialize_with = "token_name")]
    pub name: Result<String, String>,
    #[serde(
        default = "default_token_lifetime",
        deserialize_with = "token_lifetime"
    )]
    pub expires_in: Result<i64, String>,
}

fn default_token_name() -> Result<String, String> {
    Ok("api".to_owned())
}

fn default_token_lifetime() -> Result<i64, String> {
    Ok(ADMIN_TOKEN_DEFAULT_TTL_SECS)
}

fn token_name<'de, D: Deserializer<'de>>(d: D) -> Result<Result<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => default_token_name(),
        Value::String(s) => display_text(&s, 100).map_err(|e| format!("name {e}")),
        _ => Err("name must be a string".to_owned()),
    })
}

fn token_lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<Result<i64, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => default_token_lifetime(),
        v => v
            .as_i64()
            .filter(|s| (60..=ADMIN_TOKEN_MAX_TTL_SECS).contains(s))
            .ok_or_else(|| {
                format!("expires_in must be from 60 to {ADMIN_TOKEN_MAX_TTL_SECS} seconds")
            }),
    })
}

/// `T` from the object without its unknown fields, and the first unknown field (in key order)
/// if there was one: for bodies that report their own fields' errors first.
pub fn known_first<T: DeserializeOwned>(
    object: &Map<String, Value>,
) -> Result<(T, Option<String>), BodyError> {
    let mut known = object.clone();
    let mut first_unknown = None;
    loop {
        match from_object(&known) {
            Ok(body) => return Ok((body, first_unknown)),
            Err(BodyError::Unknown(name)) if known.remove(&name).is_some() => {
                first_unknown.get_or_insert(name);
            }
            Err(e) => return Err(e),
        }
    }
}
