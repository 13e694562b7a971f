//! What an administrator may change, validated in one place for the clients API, the console
//! and the operator CLI: client edits (name, scopes, consent method), tenant settings, users.

use crate::client_metadata;
use crate::crypto;
use crate::defaults::{MAX_CLIENT_NAME_CHARS, MAX_URI_CHARS};
use crate::domain::{
    AuthMethod, Client, ConsentMethod, Email, Role, ScopeSet, Tenant, UnixTime, User,
};
use crate::error::OAuthError;
use serde_json::{Map, Value, json};

/// Minimum length of a password set by an administrator or the operator CLI.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The client as the admin API shows it: metadata and state, never a secret or a hash.
pub fn client_view(client: &Client) -> Value {
    let mut v = serde_json::to_value(&client.metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("client_id".into(), client.client_id.as_str().into());
        map.insert("createdByType".into(), client.created_by.as_str().into());
        map.insert("status".into(), client.status.as_str().into());
        map.insert(
            "consentMethod".into(),
            client.consent_method.as_str().into(),
        );
        map.insert("created_at".into(), client.created_at.into());
        map.insert("config_version".into(), client.config_version.into());
        if let Some(exp) = client.expires_at {
            map.insert("expires_at".into(), exp.into());
        }
        if let Some(at) = client.approved_at {
            map.insert("approved_at".into(), at.into());
        }
        if let Some(by) = &client.approved_by {
            map.insert("approved_by".into(), by.as_str().into());
        }
        if let Some(doc) = &client.document {
            map.insert(
                "metadata_document".into(),
                json!({
                    "url": client.client_id.as_str(),
                    "fetched_at": doc.fetched_at,
                    "fresh_until": doc.fresh_until,
                }),
            );
        }
        if let Some(proposed) = &client.pending_changes {
            map.insert(
                "pending_changes".into(),
                serde_json::to_value(proposed).unwrap_or_else(|_| json!({})),
            );
        }
    }
    v
}

/// An administrator's change to a client. `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ClientEdit {
    pub client_name: Option<String>,
    pub scope: Option<String>,
    pub consent_method: Option<String>,
}

/// Fields no edit may touch: identity, provenance, lifecycle and credentials.
const IMMUTABLE_CLIENT_FIELDS: &[&str] = &[
    "client_id",
    "createdByType",
    "status",
    "created_at",
    "expires_at",
    "approved_at",
    "approved_by",
    "config_version",
    "client_secret",
    "client_secret_expires_at",
    "client_id_issued_at",
    "token_endpoint_auth_method",
    "registration_access_token",
    "registration_client_uri",
];

impl ClientEdit {
    /// From a JSON `PATCH` body: only `client_name`, `scope`, `consentMethod`.
    pub fn from_json(doc: &Map<String, Value>) -> Result<Self, OAuthError> {
        let mut edit = Self::default();
        for (key, value) in doc {
            if IMMUTABLE_CLIENT_FIELDS.contains(&key.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "{key} cannot be changed; editable fields are client_name, scope and consentMethod"
                )));
            }
            let text = || {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| OAuthError::invalid_request(format!("{key} must be a string")))
            };
            match key.as_str() {
                "client_name" => edit.client_name = Some(text()?),
                "scope" => edit.scope = Some(text()?),
                "consentMethod" => edit.consent_method = Some(text()?),
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "unknown field {other:?}; editable fields are client_name, scope and consentMethod"
                    )));
                }
            }
        }
        Ok(edit)
    }

    /// Applies the edit. A scope change bumps `config_version`, so every user sees the consent
    /// page again; grants already issued keep their scope (a scope edit must not cut off an
    /// active connection).
    pub fn apply(&self, client: &Client, tenant: &Tenant) -> Result<Client, OAuthError> {
        let mut out = client.clone();
        if let Some(name) = &self.client_name {
            if client.document.is_some() {
                return Err(OAuthError::invalid_request(
                    "client_name of a metadata-document client comes from its document; changes to it are approved with POST .../approve",
                ));
            }
            out.metadata.client_name = valid_client_name(name)?;
        }
        if let Some(method) = &self.consent_method {
            out.consent_method = ConsentMethod::parse(method).ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "consentMethod must be \"required\" or \"trusted\", not {method:?}"
                ))
            })?;
        }
        if let Some(raw) = &self.scope {
            let scope = crate::policy::admin_scope(
                raw,
                tenant,
                client.metadata.token_endpoint_auth_method,
            )?;
            if scope != client.metadata.scope {
                out.metadata.scope = scope;
                out.config_version = client.config_version.saturating_add(1);
            }
        }
        Ok(out)
    }
}

fn valid_client_name(name: &str) -> Result<String, OAuthError> {
    let mut doc = Map::new();
    doc.insert("client_name".into(), name.into());
    client_metadata::string_field(&doc, "client_name", MAX_CLIENT_NAME_CHARS)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| OAuthError::invalid_client_metadata("client_name must not be empty"))
}

// ------------------------------------------------------------------ tenant settings

pub fn settings_view(tenant: &Tenant) -> Value {
    let methods: Vec<&str> = tenant
        .dcr
        .allowed_auth_methods
        .iter()
        .map(|m| m.as_str())
        .collect();
    json!({
        "display_name": tenant.display_name,
        "dcr_enabled": tenant.dcr.enabled,
        "allowed_auth_methods": methods,
        "require_client_uri": tenant.dcr.require_client_uri,
        "allowed_scopes": tenant.dcr.allowed_scopes.to_string(),
        "pending_client_ttl_secs": tenant.dcr.pending_client_ttl_secs,
        "pending_client_cap": tenant.dcr.pending_client_cap,
        "default_resource": tenant.default_resource,
        "cimd_enabled": tenant.cimd_enabled,
    })
}

pub const SETTINGS_KEYS: &[&str] = &[
    "display_name",
    "dcr_enabled",
    "allowed_auth_methods",
    "require_client_uri",
    "allowed_scopes",
    "pending_client_ttl_secs",
    "pending_client_cap",
    "default_resource",
    "cimd_enabled",
];

const PENDING_TTL_RANGE: (u64, u64) = (60, 86_400);
const PENDING_CAP_MAX: u64 = 100_000;

/// Applies a settings change given as JSON values (the API's `PATCH` body; the console and the
/// CLI convert their text fields with [`settings_value`] first). All or nothing.
pub fn apply_settings(tenant: &Tenant, patch: &Map<String, Value>) -> Result<Tenant, OAuthError> {
    let mut out = tenant.clone();
    for (key, value) in patch {
        let bad = |what: &str| OAuthError::invalid_request(format!("{key}: {what}"));
        match key.as_str() {
            "display_name" => {
                let name = value.as_str().ok_or_else(|| bad("must be a string"))?;
                out.display_name = display_text(name, 100).map_err(|e| bad(&e))?;
            }
            "dcr_enabled" => {
                out.dcr.enabled = value
                    .as_bool()
                    .ok_or_else(|| bad("must be true or false"))?
            }
            "cimd_enabled" => {
                out.cimd_enabled = value
                    .as_bool()
                    .ok_or_else(|| bad("must be true or false"))?;
            }
            "require_client_uri" => {
                out.dcr.require_client_uri = value
                    .as_bool()
                    .ok_or_else(|| bad("must be true or false"))?;
            }
            "allowed_auth_methods" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| bad("must be a list of authentication methods"))?;
                let mut methods = Vec::new();
                for m in list {
                    let raw = m.as_str().ok_or_else(|| bad("must be a list of strings"))?;
                    let method = AuthMethod::parse(raw).ok_or_else(|| {
                        bad(&format!(
                            "unknown method {raw:?}; use client_secret_basic, client_secret_post or none"
                        ))
                    })?;
                    if !methods.contains(&method) {
                        methods.push(method);
                    }
                }
                out.dcr.allowed_auth_methods = methods;
            }
            "allowed_scopes" => {
                let raw = value
                    .as_str()
                    .ok_or_else(|| bad("must be a space-delimited string"))?;
                let scopes = ScopeSet::parse(raw)
                    .map_err(|t| bad(&format!("scope token {t:?} is malformed")))?;
                if scopes.is_empty() {
                    return Err(bad("must name at least one scope"));
                }
                out.dcr.allowed_scopes = scopes;
            }
            "pending_client_ttl_secs" => {
                let v = value
                    .as_u64()
                    .filter(|v| (PENDING_TTL_RANGE.0..=PENDING_TTL_RANGE.1).contains(v))
                    .ok_or_else(|| {
                        bad(&format!(
                            "must be a whole number of seconds from {} to {}",
                            PENDING_TTL_RANGE.0, PENDING_TTL_RANGE.1
                        ))
                    })?;
                out.dcr.pending_client_ttl_secs = v;
            }
            "pending_client_cap" => {
                let v = value
                    .as_u64()
                    .filter(|v| *v <= PENDING_CAP_MAX)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        bad(&format!(
                            "must be a whole number from 0 (no cap) to {PENDING_CAP_MAX}"
                        ))
                    })?;
                out.dcr.pending_client_cap = v;
            }
            "default_resource" => {
                out.default_resource = match value {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some(valid_resource(s).map_err(|e| bad(&e))?),
                    _ => return Err(bad("must be a URL string or null")),
                };
            }
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "unknown setting {other:?}; settings are {}",
                    SETTINGS_KEYS.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// A human-readable name shown on pages (tenant display name, token name): 1 to `max`
/// characters after trimming, no control characters and no invisible bidirectional formatting
/// characters (which can make a name read differently from what it is).
pub fn display_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(format!("must be 1-{max} characters"));
    }
    if text.chars().any(client_metadata::disguising_char) {
        return Err("must not contain control or bidirectional formatting characters".into());
    }
    Ok(text.to_owned())
}

/// A resource indicator (RFC 8707 §2): an absolute URL without a fragment; `https`, or `http`
/// on loopback for development.
fn valid_resource(raw: &str) -> Result<String, String> {
    if raw.len() > MAX_URI_CHARS {
        return Err("is too long".into());
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_owned())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err("must be an https URL (http only on loopback)".into());
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a fragment or user information".into());
    }
    Ok(raw.to_owned())
}

/// A setting given as text (a console form field or a CLI `key=value`) as the JSON value
/// [`apply_settings`] expects: booleans, numbers, comma-separated lists, strings.
pub fn settings_value(key: &str, raw: &str) -> Result<Value, OAuthError> {
    let bad = |what: &str| OAuthError::invalid_request(format!("{key}: {what}"));
    Ok(match key {
        "dcr_enabled" | "require_client_uri" | "cimd_enabled" => match raw {
            "true" | "on" | "yes" | "1" => Value::Bool(true),
            "false" | "off" | "no" | "0" => Value::Bool(false),
            _ => return Err(bad("must be true or false")),
        },
        "pending_client_ttl_secs" | "pending_client_cap" => Value::Number(
            raw.trim()
                .parse::<u64>()
                .map_err(|_| bad("must be a whole number"))?
                .into(),
        ),
        "allowed_auth_methods" => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| Value::String(m.to_owned()))
                .collect(),
        ),
        "default_resource" if raw.trim().is_empty() => Value::Null,
        _ => Value::String(raw.to_owned()),
    })
}

// ------------------------------------------------------------------ users

pub fn user_view(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email.as_str(),
        "role": user.role.as_str(),
        "disabled": user.disabled,
        "created_at": user.created_at,
    })
}

pub fn valid_password(password: &str) -> Result<(), OAuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(OAuthError::invalid_request(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(OAuthError::invalid_request("password is too long"));
    }
    Ok(())
}

/// A new user (argon2id hash of the password).
pub fn new_user(
    tenant: &Tenant,
    email: &str,
    password: &str,
    role: &str,
    now: UnixTime,
) -> Result<User, OAuthError> {
    let email = Email::parse(email)
        .ok_or_else(|| OAuthError::invalid_request("email is not a valid address"))?;
    let role = Role::parse(role)
        .ok_or_else(|| OAuthError::invalid_request("role must be \"admin\" or \"user\""))?;
    valid_password(password)?;
    Ok(User {
        id: crypto::new_id(),
        tenant: tenant.id.clone(),
        email,
        password_hash: crypto::hash_password(password),
        role,
        disabled: false,
        created_at: now,
        session_epoch: 0,
        grant_epoch: 0,
    })
}

/// A change to a user. An administrator cannot demote or disable themselves (no lock-out).
#[derive(Debug, Default, Clone)]
pub struct UserEdit {
    pub role: Option<String>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

impl UserEdit {
    pub fn from_json(doc: &Map<String, Value>) -> Result<Self, OAuthError> {
        let mut edit = Self::default();
        for (key, value) in doc {
            let bad = |what: &str| OAuthError::invalid_request(format!("{key}: {what}"));
            match key.as_str() {
                "role" => {
                    edit.role = Some(
                        value
                            .as_str()
                            .ok_or_else(|| bad("must be a string"))?
                            .to_owned(),
                    )
                }
                "disabled" => {
                    edit.disabled = Some(
                        value
                            .as_bool()
                            .ok_or_else(|| bad("must be true or false"))?,
                    )
                }
                "password" => {
                    edit.password = Some(
                        value
                            .as_str()
                            .ok_or_else(|| bad("must be a string"))?
                            .to_owned(),
                    )
                }
                "email" | "id" | "created_at" => {
                    return Err(bad("cannot be changed"));
                }
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "unknown field {other:?}; editable fields are role, disabled and password"
                    )));
                }
            }
        }
        Ok(edit)
    }

    /// The edited user. Disabling ends the user's sessions and revokes every code and grant
    /// issued so far (enabling again revives none of them); a new password ends the sessions.
    /// A role change needs neither: every decision reads the role as stored now.
    pub fn apply(&self, user: &User, acting: &User) -> Result<User, OAuthError> {
        let mut out = user.clone();
        if let Some(role) = &self.role {
            out.role = Role::parse(role)
                .ok_or_else(|| OAuthError::invalid_request("role must be \"admin\" or \"user\""))?;
        }
        if let Some(disabled) = self.disabled {
            if disabled && !user.disabled {
                out.revoke_everything();
            }
            out.disabled = disabled;
        }
        if let Some(password) = &self.password {
            valid_password(password)?;
            out.password_hash = crypto::hash_password(password);
            out.end_sessions();
        }
        let is_self = user.id == acting.id;
        if is_self && (out.role != Role::Admin || out.disabled) {
            return Err(OAuthError::invalid_request(
                "you cannot remove your own administrator role or disable yourself; ask another administrator",
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_text_refuses_control_and_bidi_characters() {
        assert_eq!(
            display_text("  Acme Corp ", 100).as_deref(),
            Ok("Acme Corp")
        );
        assert_eq!(display_text("Ünïcödé ✓", 100).as_deref(), Ok("Ünïcödé ✓"));
        for bad in [
            "",
            "   ",
            "a\u{0}b",
            "a\u{7}\u{1b}[31m",
            "x\r\ny",
            "evil\u{202e}gnp.exe",
        ] {
            assert!(display_text(bad, 100).is_err(), "{bad:?}");
        }
        assert!(display_text(&"a".repeat(101), 100).is_err());
    }
}
