//! General validation of RFC 7591 client metadata: the shape and limits any client document must
//! meet, whoever submits it (anonymous registration, RFC 7592 update, an administrator). Tenant
//! policy for anonymous registrants is a separate layer (`policy::apply_dcr_policy`).

use crate::defaults::{
    MAX_CLIENT_NAME_CHARS, MAX_CONTACTS, MAX_REDIRECT_URIS, MAX_SHORT_STRING_CHARS, MAX_URI_CHARS,
};
use crate::domain::{
    ApplicationType, AuthMethod, ClientMetadata, Email, GrantType, RedirectUri, ResponseType,
    ScopeSet, SigningAlg,
};
use crate::error::OAuthError;
use serde_json::{Map, Value};
use url::{Host, Url};

/// Client metadata as requested, validated for shape; scopes are not yet judged against any
/// tenant's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedMetadata {
    pub client_name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    pub token_endpoint_auth_method: AuthMethod,
    /// `None` when the request carried no (or an empty) `scope`.
    pub scope: Option<ScopeSet>,
    pub application_type: ApplicationType,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub contacts: Vec<String>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
}

impl RequestedMetadata {
    /// The client's metadata once a policy has settled the two fields it decides: the
    /// authentication method and the scope. Everything else is kept as requested.
    pub fn into_metadata(self, method: AuthMethod, scope: ScopeSet) -> ClientMetadata {
        ClientMetadata {
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            response_types: self.response_types,
            token_endpoint_auth_method: method,
            scope,
            application_type: self.application_type,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            tos_uri: self.tos_uri,
            policy_uri: self.policy_uri,
            software_id: self.software_id,
            software_version: self.software_version,
            contacts: self.contacts,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
        }
    }
}

/// Parses a request body into a JSON object, with errors that say what is wrong and where.
pub fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, OAuthError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("request body is not valid JSON: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(OAuthError::invalid_client_metadata(format!(
            "request body must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Characters that make displayed text read differently from what it is: control characters,
/// bidirectional overrides, embeddings and isolates (`Claude\u{202e}gnp.exe` shows as
/// "Claudeexe.png"), directional marks, and zero-width or invisible characters that split or
/// join words unseen. Refused in every text an administrator or user judges a client by.
pub fn disguising_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// A field's value, treating JSON `null` as absent (some clients send explicit nulls).
fn field<'a>(doc: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    doc.get(name).filter(|v| !v.is_null())
}

pub(crate) fn string_field(
    doc: &Map<String, Value>,
    name: &str,
    max_chars: usize,
) -> Result<Option<String>, OAuthError> {
    match field(doc, name) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                return Ok(None);
            }
            if trimmed.chars().count() > max_chars {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "{name} is longer than {max_chars} characters"
                )));
            }
            if trimmed.chars().any(disguising_char) {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "{name} must not contain control, invisible or bidirectional formatting characters (they make text read differently from what it is)"
                )));
            }
            Ok(Some(trimmed.to_owned()))
        }
        Some(other) => Err(OAuthError::invalid_client_metadata(format!(
            "{name} must be a string, not {}",
            json_type(other)
        ))),
    }
}

fn string_array<'a>(
    doc: &'a Map<String, Value>,
    name: &str,
    max_items: usize,
) -> Result<Option<Vec<&'a str>>, OAuthError> {
    match field(doc, name) {
        None => Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max_items {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "{name} has more than {max_items} entries"
                )));
            }
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) if s.chars().any(disguising_char) => {
                        Err(OAuthError::invalid_client_metadata(format!(
                            "{name} entries must not contain control, invisible or bidirectional formatting characters"
                        )))
                    }
                    Value::String(s) => Ok(s.as_str()),
                    other => Err(OAuthError::invalid_client_metadata(format!(
                        "{name} must contain only strings, found {}",
                        json_type(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(other) => Err(OAuthError::invalid_client_metadata(format!(
            "{name} must be an array of strings, not {}",
            json_type(other)
        ))),
    }
}

/// An informational URL (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`): absolute `https`
/// (or `http` on loopback, for development), no user information or fragment. These are shown
/// to administrators on the consent page, so nothing that could execute is accepted.
fn web_uri_field(doc: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(raw) = string_field(doc, name, MAX_URI_CHARS)? else {
        return Ok(None);
    };
    let url = Url::parse(&raw).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("{name} is not an absolute URL ({e})"))
    })?;
    let loopback = matches!(url.host(), Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"))
        || matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host().is_none() {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{name} must be an https URL"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{name} must not contain user information or a fragment"
        )));
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "{name} must not contain whitespace"
        )));
    }
    Ok(Some(raw))
}

/// Validates the general shape of a registration request (RFC 7591 §2) and applies RFC 7591's
/// defaults. Unknown fields are ignored (RFC 7591 §2: "MUST ignore").
pub fn validate(doc: &Map<String, Value>) -> Result<RequestedMetadata, OAuthError> {
    let client_name = string_field(doc, "client_name", MAX_CLIENT_NAME_CHARS)?
        .ok_or_else(|| OAuthError::invalid_client_metadata("client_name is required"))?;

    let redirect_uris = redirect_uris(doc)?;
    let grant_types = grant_types(doc)?;
    let response_types = response_types(doc)?;
    let token_endpoint_auth_method = auth_method(doc)?;
    let scope = scope(doc)?;
    let application_type = application_type(doc)?;
    let contacts = contacts(doc)?;
    Ok(RequestedMetadata {
        client_name,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method,
        scope,
        application_type,
        client_uri: web_uri_field(doc, "client_uri")?,
        logo_uri: web_uri_field(doc, "logo_uri")?,
        tos_uri: web_uri_field(doc, "tos_uri")?,
        policy_uri: web_uri_field(doc, "policy_uri")?,
        software_id: string_field(doc, "software_id", MAX_SHORT_STRING_CHARS)?,
        software_version: string_field(doc, "software_version", MAX_SHORT_STRING_CHARS)?,
        contacts,
        id_token_signed_response_alg: id_token_alg(doc)?,
    })
}

/// OpenID Connect Dynamic Client Registration §2 `id_token_signed_response_alg`: RS256 (the
/// default when absent) or ES256, the algorithms Gatehouse signs ID tokens with. `none` is
/// refused: an unsigned ID token from the token endpoint would still be unsigned elsewhere.
fn id_token_alg(doc: &Map<String, Value>) -> Result<Option<SigningAlg>, OAuthError> {
    let name = "id_token_signed_response_alg";
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(raw)) => SigningAlg::parse(raw).map(Some).ok_or_else(|| {
            OAuthError::invalid_client_metadata(format!(
                "{name} {raw:?} is not supported; use RS256 or ES256"
            ))
        }),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!(
            "{name} must be a string (RS256 or ES256)"
        ))),
    }
}

/// `redirect_uris`: required, at least one, each a valid redirect URI; duplicates dropped.
fn redirect_uris(doc: &Map<String, Value>) -> Result<Vec<RedirectUri>, OAuthError> {
    let raw_uris = string_array(doc, "redirect_uris", MAX_REDIRECT_URIS)
        .map_err(|e| OAuthError::invalid_redirect_uri(e.description))?
        .ok_or_else(|| {
            OAuthError::invalid_redirect_uri("redirect_uris is required (at least one URI)")
        })?;
    if raw_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris must contain at least one URI",
        ));
    }
    let mut redirect_uris: Vec<RedirectUri> = Vec::with_capacity(raw_uris.len());
    for raw in raw_uris {
        let uri = RedirectUri::parse(raw).map_err(OAuthError::invalid_redirect_uri)?;
        if !redirect_uris.contains(&uri) {
            redirect_uris.push(uri);
        }
    }
    Ok(redirect_uris)
}

/// `grant_types`: `authorization_code` (the default) and optionally `refresh_token`.
fn grant_types(doc: &Map<String, Value>) -> Result<Vec<GrantType>, OAuthError> {
    let grant_types = match string_array(doc, "grant_types", 8)? {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => {
            let mut out = Vec::new();
            for g in list {
                let grant = GrantType::parse(g).ok_or_else(|| {
                    OAuthError::invalid_client_metadata(format!(
                        "grant type {g:?} is not supported; use authorization_code and optionally refresh_token"
                    ))
                })?;
                if !out.contains(&grant) {
                    out.push(grant);
                }
            }
            out
        }
    };
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types must include authorization_code: clients connect through the authorization code flow",
        ));
    }
    Ok(grant_types)
}

/// `response_types`: `code` only (the default).
fn response_types(doc: &Map<String, Value>) -> Result<Vec<ResponseType>, OAuthError> {
    let response_types = match string_array(doc, "response_types", 8)? {
        None => vec![ResponseType::Code],
        Some(list) if list.is_empty() => {
            return Err(OAuthError::invalid_client_metadata(
                "response_types must not be empty",
            ));
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|r| **r != "code") {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "response type {bad:?} is not supported; only \"code\" is"
                )));
            }
            vec![ResponseType::Code]
        }
    };
    Ok(response_types)
}

/// `token_endpoint_auth_method`: `client_secret_basic` when absent (RFC 7591 §2).
fn auth_method(doc: &Map<String, Value>) -> Result<AuthMethod, OAuthError> {
    let token_endpoint_auth_method =
        match string_field(doc, "token_endpoint_auth_method", MAX_SHORT_STRING_CHARS)? {
            None => AuthMethod::ClientSecretBasic,
            Some(raw) => AuthMethod::parse(&raw).ok_or_else(|| {
                OAuthError::invalid_client_metadata(format!(
                    "token_endpoint_auth_method {raw:?} is not supported; use client_secret_basic, client_secret_post or none"
                ))
            })?,
        };
    Ok(token_endpoint_auth_method)
}

/// `scope`: a space-delimited string of well-formed tokens; empty means absent.
fn scope(doc: &Map<String, Value>) -> Result<Option<ScopeSet>, OAuthError> {
    let scope = match field(doc, "scope") {
        None => None,
        Some(Value::String(raw)) => {
            if raw.len() > 1024 {
                return Err(OAuthError::invalid_client_metadata(
                    "scope is longer than 1024 characters",
                ));
            }
            let set = ScopeSet::parse(raw).map_err(|bad| {
                OAuthError::invalid_client_metadata(format!("scope token {bad:?} is malformed"))
            })?;
            (!set.is_empty()).then_some(set)
        }
        Some(other) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "scope must be a space-delimited string, not {}",
                json_type(other)
            )));
        }
    };
    Ok(scope)
}

/// `application_type`: `web` (the default) or `native`.
fn application_type(doc: &Map<String, Value>) -> Result<ApplicationType, OAuthError> {
    let application_type = match string_field(doc, "application_type", MAX_SHORT_STRING_CHARS)? {
        None => ApplicationType::Web,
        Some(t) if t == "web" => ApplicationType::Web,
        Some(t) if t == "native" => ApplicationType::Native,
        Some(other) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "application_type {other:?} is not supported; use \"web\" or \"native\""
            )));
        }
    };
    Ok(application_type)
}

/// `contacts`: email addresses.
fn contacts(doc: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let contacts = string_array(doc, "contacts", MAX_CONTACTS)?
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            Email::parse(c)
                .map(|e| e.as_str().to_owned())
                .ok_or_else(|| {
                    OAuthError::invalid_client_metadata(format!(
                        "contacts entry {c:?} is not an email address"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(contacts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    fn check(v: Value) -> Result<RequestedMetadata, OAuthError> {
        match v {
            Value::Object(m) => validate(&m),
            _ => panic!("test input must be an object"),
        }
    }

    fn base() -> Value {
        json!({"client_name": "Agent", "redirect_uris": ["https://agent.example.com/cb"]})
    }

    fn with(k: &str, v: Value) -> Value {
        let mut b = base();
        b[k] = v;
        b
    }

    #[test]
    fn applies_rfc_7591_defaults() {
        let m = check(base()).unwrap();
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, vec![ResponseType::Code]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.scope, None);
    }

    #[test]
    fn nulls_and_empty_optionals_are_absent() {
        let m = check(with("logo_uri", Value::Null)).unwrap();
        assert_eq!(m.logo_uri, None);
        let m = check(with("scope", json!(""))).unwrap();
        assert_eq!(m.scope, None);
    }

    // Longer than 80 lines because it is one table of cases, five lines each as rustfmt lays
    // them out; the loop that checks them is the last ten lines.
    #[test]
    fn field_errors_name_the_field_and_code() {
        let cases: Vec<(Value, ErrorCode, &str)> = vec![
            (
                json!({"redirect_uris": ["https://a.example/cb"]}),
                ErrorCode::InvalidClientMetadata,
                "client_name",
            ),
            (
                with("client_name", json!(5)),
                ErrorCode::InvalidClientMetadata,
                "client_name must be a string",
            ),
            (
                with("client_name", json!("x".repeat(201))),
                ErrorCode::InvalidClientMetadata,
                "longer than",
            ),
            (
                with("redirect_uris", json!([])),
                ErrorCode::InvalidRedirectUri,
                "at least one",
            ),
            (
                with("redirect_uris", json!("https://a.example/cb")),
                ErrorCode::InvalidRedirectUri,
                "array",
            ),
            (
                with("redirect_uris", json!([1])),
                ErrorCode::InvalidRedirectUri,
                "only strings",
            ),
            (
                with("redirect_uris", json!(["javascript:alert(1)"])),
                ErrorCode::InvalidRedirectUri,
                "javascript",
            ),
            (
                with("grant_types", json!(["client_credentials"])),
                ErrorCode::InvalidClientMetadata,
                "client_credentials",
            ),
            (
                with("grant_types", json!(["refresh_token"])),
                ErrorCode::InvalidClientMetadata,
                "authorization_code",
            ),
            (
                with("response_types", json!(["token"])),
                ErrorCode::InvalidClientMetadata,
                "token",
            ),
            (
                with("token_endpoint_auth_method", json!("private_key_jwt")),
                ErrorCode::InvalidClientMetadata,
                "private_key_jwt",
            ),
            (
                with("scope", json!(["a"])),
                ErrorCode::InvalidClientMetadata,
                "scope",
            ),
            (
                with("application_type", json!("desktop")),
                ErrorCode::InvalidClientMetadata,
                "desktop",
            ),
            (
                with("logo_uri", json!("javascript:alert(1)")),
                ErrorCode::InvalidClientMetadata,
                "logo_uri",
            ),
            (
                with("client_uri", json!("http://example.com")),
                ErrorCode::InvalidClientMetadata,
                "client_uri",
            ),
            (
                with("contacts", json!(["not-an-email"])),
                ErrorCode::InvalidClientMetadata,
                "contacts",
            ),
        ];
        for (input, code, needle) in cases {
            let err = check(input.clone()).unwrap_err();
            assert_eq!(err.code, code, "{input}");
            assert!(
                err.description.contains(needle),
                "{input}: {}",
                err.description
            );
        }
    }

    #[test]
    fn body_must_be_a_json_object() {
        assert!(
            parse_json_object(b"{")
                .unwrap_err()
                .description
                .contains("not valid JSON")
        );
        assert!(
            parse_json_object(b"[]")
                .unwrap_err()
                .description
                .contains("an array")
        );
        assert!(parse_json_object(b"{}").is_ok());
    }
}
