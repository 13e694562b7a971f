//! What an administrator may change, validated in one place for the admin API, the console
//! and the operator CLI: client edits (name, scopes, consent method), users, and (in
//! [`super::settings`], re-exported here) tenant settings.

use super::body::{self, checked};
use crate::client_metadata;
use crate::crypto;
use crate::defaults::MAX_CLIENT_NAME_CHARS;
use crate::domain::{Client, ConsentMethod, Email, Role, Tenant, UnixTime, User};
use crate::error::OAuthError;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use super::settings::{
    SETTINGS_KEYS, SettingsPatch, apply_settings, changed_fields, display_text, settings_value,
    settings_view,
};

/// Minimum length of a password set by an administrator or the operator CLI.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An administrator's change to a client (`PATCH …/oauth-clients/{id}` body, console edit form).
/// `None` leaves a field as it is; a field sent as `null` is refused like any non-string.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEdit {
    #[serde(default, deserialize_with = "client_name")]
    pub client_name: Option<String>,
    #[serde(default, deserialize_with = "scope")]
    pub scope: Option<String>,
    #[serde(default, rename = "consentMethod", deserialize_with = "consent_method")]
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
        body::from_object(doc).map_err(|e| {
            e.into_oauth(|key| {
                if IMMUTABLE_CLIENT_FIELDS.contains(&key) {
                    format!(
                        "{key} cannot be changed; editable fields are client_name, scope and consentMethod"
                    )
                } else {
                    format!(
                        "unknown field {key:?}; editable fields are client_name, scope and consentMethod"
                    )
                }
            })
        })
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

/// A client edit's text field: a string, or the message naming the field.
fn edit_text<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Option<String>, D::Error> {
    checked(d, |v| match v {
        Value::String(s) => Ok(s),
        _ => Err(format!("{key} must be a string")),
    })
}

fn client_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    edit_text(d, "client_name")
}

fn scope<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    edit_text(d, "scope")
}

fn consent_method<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    edit_text(d, "consentMethod")
}

fn valid_client_name(name: &str) -> Result<String, OAuthError> {
    let mut doc = Map::new();
    doc.insert("client_name".into(), name.into());
    client_metadata::string_field(&doc, "client_name", MAX_CLIENT_NAME_CHARS)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| OAuthError::invalid_client_metadata("client_name must not be empty"))
}

// ------------------------------------------------------------------ users

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
        name: None,
    })
}

/// A change to a user (`PATCH …/users/{email}` body, console user actions). An administrator
/// cannot demote or disable themselves (no lock-out).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEdit {
    #[serde(default, deserialize_with = "role")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "disabled")]
    pub disabled: Option<bool>,
    #[serde(default, deserialize_with = "password")]
    pub password: Option<String>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "name")]
    pub name: Option<Option<String>>,
}

/// Fields of a user no edit may touch.
const IMMUTABLE_USER_FIELDS: &[&str] = &["email", "id", "created_at"];

fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |v| {
        v.as_str()
            .map(str::to_owned)
            .ok_or("role: must be a string".into())
    })
}

fn disabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    checked(d, |v| {
        v.as_bool().ok_or("disabled: must be true or false".into())
    })
}

/// Longest user name accepted.
pub const MAX_USER_NAME_CHARS: usize = 100;

/// A user's full name: text a page or an ID token shows (`settings::display_text`'s rules);
/// `null` or an empty string is none.
pub fn user_name(v: Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => super::settings::display_text(&s, MAX_USER_NAME_CHARS)
            .map(Some)
            .map_err(|e| format!("name: {e}")),
        _ => Err("name: must be a string or null".into()),
    }
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    checked(d, user_name)
}

fn password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |v| {
        v.as_str()
            .map(str::to_owned)
            .ok_or("password: must be a string".into())
    })
}

impl UserEdit {
    pub fn from_json(doc: &Map<String, Value>) -> Result<Self, OAuthError> {
        body::from_object(doc).map_err(|e| {
            e.into_oauth(|key| {
                if IMMUTABLE_USER_FIELDS.contains(&key) {
                    format!("{key}: cannot be changed")
                } else {
                    format!(
                        "unknown field {key:?}; editable fields are role, disabled, password and name"
                    )
                }
            })
        })
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
        if let Some(name) = &self.name {
            out.name.clone_from(name);
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
