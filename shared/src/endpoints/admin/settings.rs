//! Tenant settings an administrator may change, validated in one place for the admin API
//! (`PATCH {issuer}/api/v1/settings`), the console's settings form and `gatehouse tenant set`.

use super::body::{self, BodyError, checked};
use crate::client_metadata;
use crate::defaults::MAX_URI_CHARS;
use crate::domain::{AuthMethod, ScopeSet, SigningAlg, Tenant};
use crate::error::OAuthError;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

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
        "pending_client_source_share_percent": tenant.dcr.pending_client_source_share_percent,
        "default_resource": tenant.default_resource,
        "cimd_enabled": tenant.cimd_enabled,
        "openid_enabled": tenant.openid_enabled,
        "access_token_signing_alg": tenant.access_token_signing_alg.as_str(),
        "audit_retention_days": tenant.audit_retention_days,
    })
}

/// The settings that differ between two versions of a tenant, by name (for the audit trail).
pub fn changed_fields(before: &Tenant, after: &Tenant) -> Vec<String> {
    let (old, new) = (settings_view(before), settings_view(after));
    SETTINGS_KEYS
        .iter()
        .filter(|k| old.get(**k) != new.get(**k))
        .map(|k| (*k).to_owned())
        .collect()
}

pub const SETTINGS_KEYS: &[&str] = &[
    "display_name",
    "dcr_enabled",
    "allowed_auth_methods",
    "require_client_uri",
    "allowed_scopes",
    "pending_client_ttl_secs",
    "pending_client_cap",
    "pending_client_source_share_percent",
    "default_resource",
    "cimd_enabled",
    "openid_enabled",
    "access_token_signing_alg",
    "audit_retention_days",
];

const PENDING_TTL_RANGE: (u64, u64) = (60, 86_400);
const PENDING_CAP_MAX: u64 = 100_000;
/// Audit retention: at least a day, at most ten years.
const AUDIT_RETENTION_RANGE: (u64, u64) = (1, 3650);

/// A settings change, every field checked as it is read (so a refused change names the first
/// bad field in key order and applies nothing). `None`: leave the setting as it is;
/// `default_resource: Some(None)` clears it (`null` or `""`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "display_name")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "dcr_enabled")]
    pub dcr_enabled: Option<bool>,
    #[serde(default, deserialize_with = "allowed_auth_methods")]
    pub allowed_auth_methods: Option<Vec<AuthMethod>>,
    #[serde(default, deserialize_with = "require_client_uri")]
    pub require_client_uri: Option<bool>,
    #[serde(default, deserialize_with = "allowed_scopes")]
    pub allowed_scopes: Option<ScopeSet>,
    #[serde(default, deserialize_with = "pending_client_ttl_secs")]
    pub pending_client_ttl_secs: Option<u64>,
    #[serde(default, deserialize_with = "pending_client_cap")]
    pub pending_client_cap: Option<u32>,
    #[serde(default, deserialize_with = "pending_client_source_share_percent")]
    pub pending_client_source_share_percent: Option<u32>,
    #[serde(default, deserialize_with = "default_resource")]
    pub default_resource: Option<Option<String>>,
    #[serde(default, deserialize_with = "cimd_enabled")]
    pub cimd_enabled: Option<bool>,
    #[serde(default, deserialize_with = "openid_enabled")]
    pub openid_enabled: Option<bool>,
    #[serde(default, deserialize_with = "access_token_signing_alg")]
    pub access_token_signing_alg: Option<SigningAlg>,
    #[serde(default, deserialize_with = "audit_retention_days")]
    pub audit_retention_days: Option<u32>,
}

impl SettingsPatch {
    /// From a JSON object: the API's `PATCH` body, or the console's and CLI's text fields
    /// converted with [`settings_value`].
    pub fn from_object(patch: &Map<String, Value>) -> Result<Self, OAuthError> {
        body::from_object(patch).map_err(|e: BodyError| {
            e.into_oauth(|name| {
                format!(
                    "unknown setting {name:?}; settings are {}",
                    SETTINGS_KEYS.join(", ")
                )
            })
        })
    }

    /// The tenant with the change applied.
    pub fn apply(&self, tenant: &Tenant) -> Tenant {
        let mut out = tenant.clone();
        let p = self.clone();
        if let Some(v) = p.display_name {
            out.display_name = v;
        }
        if let Some(v) = p.dcr_enabled {
            out.dcr.enabled = v;
        }
        if let Some(v) = p.allowed_auth_methods {
            out.dcr.allowed_auth_methods = v;
        }
        if let Some(v) = p.require_client_uri {
            out.dcr.require_client_uri = v;
        }
        if let Some(v) = p.allowed_scopes {
            out.dcr.allowed_scopes = v;
        }
        if let Some(v) = p.pending_client_ttl_secs {
            out.dcr.pending_client_ttl_secs = v;
        }
        if let Some(v) = p.pending_client_cap {
            out.dcr.pending_client_cap = v;
        }
        if let Some(v) = p.pending_client_source_share_percent {
            out.dcr.pending_client_source_share_percent = v;
        }
        if let Some(v) = p.default_resource {
            out.default_resource = v;
        }
        if let Some(v) = p.cimd_enabled {
            out.cimd_enabled = v;
        }
        if let Some(v) = p.openid_enabled {
            out.openid_enabled = v;
        }
        if let Some(v) = p.access_token_signing_alg {
            out.access_token_signing_alg = v;
        }
        if let Some(v) = p.audit_retention_days {
            out.audit_retention_days = v;
        }
        out
    }
}

/// Applies a settings change given as JSON values. All or nothing.
pub fn apply_settings(tenant: &Tenant, patch: &Map<String, Value>) -> Result<Tenant, OAuthError> {
    Ok(SettingsPatch::from_object(patch)?.apply(tenant))
}

// One `deserialize_with` function per field: each names its field in its messages.

fn display_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |v| {
        let name = v.as_str().ok_or("must be a string")?;
        display_text(name, 100)
    })
    .map_err(named("display_name"))
}

fn dcr_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    checked(d, flag).map_err(named("dcr_enabled"))
}

fn cimd_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    checked(d, flag).map_err(named("cimd_enabled"))
}

fn openid_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    checked(d, flag).map_err(named("openid_enabled"))
}

fn access_token_signing_alg<'de, D>(d: D) -> Result<Option<SigningAlg>, D::Error>
where
    D: Deserializer<'de>,
{
    checked(d, |v| {
        v.as_str()
            .and_then(SigningAlg::parse)
            .ok_or_else(|| "must be \"ES256\" or \"RS256\"".to_owned())
    })
    .map_err(named("access_token_signing_alg"))
}

fn require_client_uri<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    checked(d, flag).map_err(named("require_client_uri"))
}

fn allowed_auth_methods<'de, D>(d: D) -> Result<Option<Vec<AuthMethod>>, D::Error>
where
    D: Deserializer<'de>,
{
    checked(d, auth_methods).map_err(named("allowed_auth_methods"))
}

fn allowed_scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ScopeSet>, D::Error> {
    checked(d, |v| {
        let raw = v.as_str().ok_or("must be a space-delimited string")?;
        let scopes = ScopeSet::parse(raw).map_err(|t| format!("scope token {t:?} is malformed"))?;
        if scopes.is_empty() {
            return Err("must name at least one scope".to_owned());
        }
        Ok(scopes)
    })
    .map_err(named("allowed_scopes"))
}

fn pending_client_ttl_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    checked(d, |v| {
        v.as_u64()
            .filter(|v| (PENDING_TTL_RANGE.0..=PENDING_TTL_RANGE.1).contains(v))
            .ok_or_else(|| {
                format!(
                    "must be a whole number of seconds from {} to {}",
                    PENDING_TTL_RANGE.0, PENDING_TTL_RANGE.1
                )
            })
    })
    .map_err(named("pending_client_ttl_secs"))
}

fn pending_client_cap<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    checked(d, |v| {
        v.as_u64()
            .filter(|v| *v <= PENDING_CAP_MAX)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("must be a whole number from 0 (no cap) to {PENDING_CAP_MAX}"))
    })
    .map_err(named("pending_client_cap"))
}

fn pending_client_source_share_percent<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    checked(d, |v| {
        v.as_u64()
            .filter(|v| (1..=100).contains(v))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| "must be a whole number from 1 to 100 (100: no per-source limit)".into())
    })
    .map_err(named("pending_client_source_share_percent"))
}

fn audit_retention_days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let (min, max) = AUDIT_RETENTION_RANGE;
    checked(d, |v| {
        v.as_u64()
            .filter(|v| (min..=max).contains(v))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("must be a whole number of days from {min} to {max}"))
    })
    .map_err(named("audit_retention_days"))
}

fn default_resource<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    checked(d, |v| match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => valid_resource(&s).map(Some),
        _ => Err("must be a URL string or null".to_owned()),
    })
    .map_err(named("default_resource"))
}

/// Prefixes a field check's message with the field's name (`"dcr_enabled: must be …"`).
fn named<E: serde::de::Error>(field: &'static str) -> impl Fn(E) -> E {
    move |e| E::custom(format!("{field}: {e}"))
}

fn flag(v: Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| "must be true or false".to_owned())
}

fn auth_methods(v: Value) -> Result<Vec<AuthMethod>, String> {
    let list = v
        .as_array()
        .ok_or("must be a list of authentication methods")?;
    let mut methods = Vec::new();
    for m in list {
        let raw = m.as_str().ok_or("must be a list of strings")?;
        let method = AuthMethod::parse(raw).ok_or_else(|| {
            format!("unknown method {raw:?}; use client_secret_basic, client_secret_post or none")
        })?;
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    Ok(methods)
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
/// [`SettingsPatch`] reads: booleans, numbers, comma-separated lists, strings.
pub fn settings_value(key: &str, raw: &str) -> Result<Value, OAuthError> {
    let bad = |what: &str| OAuthError::invalid_request(format!("{key}: {what}"));
    Ok(match key {
        "dcr_enabled" | "require_client_uri" | "cimd_enabled" | "openid_enabled" => match raw {
            "true" | "on" | "yes" | "1" => Value::Bool(true),
            "false" | "off" | "no" | "0" => Value::Bool(false),
            _ => return Err(bad("must be true or false")),
        },
        "pending_client_ttl_secs"
        | "pending_client_cap"
        | "pending_client_source_share_percent"
        | "audit_retention_days" => Value::Number(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;

    fn patch(v: Value) -> Result<Tenant, String> {
        let tenant = Tenant::new(TenantId::parse("demo").unwrap(), "Demo");
        apply_settings(&tenant, v.as_object().unwrap()).map_err(|e| e.description)
    }

    #[test]
    fn messages_name_the_field() {
        for (body, message) in [
            (
                json!({"dcr_enabled": null}),
                "dcr_enabled: must be true or false",
            ),
            (
                json!({"pending_client_cap": true}),
                "pending_client_cap: must be a whole number from 0 (no cap) to 100000",
            ),
            (
                json!({"default_resource": 5}),
                "default_resource: must be a URL string or null",
            ),
            (
                json!({"allowed_auth_methods": ["bogus"]}),
                "allowed_auth_methods: unknown method \"bogus\"; use client_secret_basic, client_secret_post or none",
            ),
            (
                json!({"colour": "blue", "display_name": 5}),
                "unknown setting \"colour\"; settings are display_name, dcr_enabled, allowed_auth_methods, require_client_uri, allowed_scopes, pending_client_ttl_secs, pending_client_cap, pending_client_source_share_percent, default_resource, cimd_enabled, openid_enabled, access_token_signing_alg, audit_retention_days",
            ),
            (
                json!({"audit_retention_days": 0}),
                "audit_retention_days: must be a whole number of days from 1 to 3650",
            ),
            (
                json!({"zebra": 1, "display_name": 5}),
                "display_name: must be a string",
            ),
        ] {
            assert_eq!(patch(body.clone()).unwrap_err(), message, "{body}");
        }
    }

    #[test]
    fn null_clears_the_default_resource() {
        let set = patch(json!({"default_resource": "https://mcp.example.com/mcp"})).unwrap();
        assert!(set.default_resource.is_some());
        let cleared =
            apply_settings(&set, json!({"default_resource": null}).as_object().unwrap()).unwrap();
        assert_eq!(cleared.default_resource, None);
        let kept = apply_settings(&set, &Map::new()).unwrap();
        assert_eq!(kept.default_resource, set.default_resource);
    }

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
