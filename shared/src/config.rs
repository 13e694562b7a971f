//! Server configuration, read from `GATEHOUSE_*` variables once at start-up (the Lambda init
//! phase, or `gatehouse serve`) into a typed struct. A bad value is a clear start-up error.

use crate::defaults;
use std::time::Duration;
use url::Url;

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct Config {
    /// External base URL (`GATEHOUSE_PUBLIC_URL`), an origin without a path. When unset, the
    /// base URL is derived from each request's `Host` (API Gateway sets it to the domain the
    /// client called).
    pub public_url: Option<String>,
    /// DynamoDB table (`GATEHOUSE_TABLE`); unset means the embedded store (local runner only).
    pub table: Option<String>,
    /// DynamoDB endpoint override (`GATEHOUSE_DYNAMODB_ENDPOINT`); the SDK also honours the
    /// standard `AWS_ENDPOINT_URL_DYNAMODB`.
    pub dynamodb_endpoint: Option<String>,
    /// The EventBridge bus administrators' notifications are published on
    /// (`GATEHOUSE_EVENT_BUS`, a name or ARN; `docs/events.md`). Unset: log lines only.
    pub event_bus: Option<String>,
    /// EventBridge endpoint override (`GATEHOUSE_EVENTS_ENDPOINT`), for a local emulator.
    pub events_endpoint: Option<String>,
    /// The KMS key that wraps private signing keys (`GATEHOUSE_KMS_KEY_ID`: id, ARN or alias;
    /// `crate::keywrap`), and an endpoint override (`GATEHOUSE_KMS_ENDPOINT`) for an emulator.
    pub kms_key_id: Option<String>,
    pub kms_endpoint: Option<String>,
    /// A local wrapping key instead of KMS (`GATEHOUSE_LOCAL_WRAPPING_KEY`, 32 bytes
    /// base64url): development tables and tests.
    pub local_wrapping_key: Option<LocalWrappingKey>,
    /// The deployment stage (`GATEHOUSE_STAGE`, the template's `Stage`): the `Stage` dimension
    /// of the business metrics (`crate::metrics`). `local` when unset.
    pub stage: String,
    /// How long tenant settings are cached per process (`GATEHOUSE_TENANT_CACHE_TTL`, seconds).
    pub tenant_cache_ttl: Duration,
    /// Registrations per source IP per minute per process (`GATEHOUSE_REGISTRATION_RATE_LIMIT`);
    /// `0` turns it off, as does `GATEHOUSE_PENDING_CLIENT_CAP=0`.
    pub registrations_per_ip_per_minute: u32,
    /// Access token lifetime (`GATEHOUSE_ACCESS_TOKEN_TTL`, seconds).
    pub access_token_ttl_secs: i64,
    /// Grace window for a rotated refresh token (`GATEHOUSE_REFRESH_GRACE`, seconds).
    pub refresh_grace_secs: i64,
    /// Passwords for the seeded demo users (`GATEHOUSE_DEMO_ADMIN_PASSWORD`,
    /// `GATEHOUSE_DEMO_USER_PASSWORD`); generated when unset.
    pub demo_admin_password: Option<String>,
    pub demo_user_password: Option<String>,
    /// Overrides applied to the seeded `demo` tenant by `gatehouse serve`.
    pub pending_client_ttl_override: Option<u64>,
    pub pending_client_cap_override: Option<u32>,
    /// The seeded `demo` tenant's `pending_client_source_share_percent`
    /// (`GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE`, 1–100; tests of the tenant-wide cap set 100).
    pub pending_client_source_share_override: Option<u32>,
    /// Development only, never set in the SAM template: a PEM file of extra CA certificates
    /// trusted for Client ID Metadata Document fetches (`GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE`), so
    /// tests can serve documents over HTTPS with a test CA.
    pub dev_cimd_extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Development only, never set in the SAM template: allow metadata documents on loopback
    /// addresses (`GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK=true`). Private, link-local, multicast and
    /// cloud metadata addresses stay refused.
    pub dev_cimd_allow_loopback: bool,
    /// Development only (`GATEHOUSE_DEV_CLOCK_FILE`): the clock runs this file's offset in
    /// seconds ahead of the system clock (see [`crate::clock::Clock::OffsetFile`]), so black-box
    /// tests reach lifetimes of hours and days.
    pub dev_clock_file: Option<std::path::PathBuf>,
}

fn flag(name: &str) -> Result<bool, ConfigError> {
    match var(name).as_deref().map(str::trim) {
        None => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "{name}={other:?} must be true or false"
        ))),
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &str) -> Result<Option<T>, ConfigError> {
    var(name)
        .map(|raw| {
            raw.trim()
                .parse::<T>()
                .map_err(|_| ConfigError(format!("{name}={raw:?} is not a valid number")))
        })
        .transpose()
}

/// Checks that a public URL is an `http(s)` origin and returns it without a trailing slash.
pub fn normalise_public_url(raw: &str) -> Result<String, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError(format!("GATEHOUSE_PUBLIC_URL={raw:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError(format!(
            "GATEHOUSE_PUBLIC_URL={raw:?} must be an http(s) URL with a host"
        )));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError(format!(
            "GATEHOUSE_PUBLIC_URL={raw:?} must be an origin (no path): RFC 8414 metadata lives at the host's root"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The text of a local wrapping key; never printed.
#[derive(Clone)]
pub struct LocalWrappingKey(pub String);

impl std::fmt::Debug for LocalWrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalWrappingKey(..)")
    }
}

fn source_share_override() -> Result<Option<u32>, ConfigError> {
    match parse_var::<u32>("GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE")? {
        Some(share) if !(1..=100).contains(&share) => Err(ConfigError(
            "GATEHOUSE_PENDING_CLIENT_SOURCE_SHARE must be a percentage from 1 to 100".into(),
        )),
        other => Ok(other),
    }
}

fn local_wrapping_key() -> Result<Option<LocalWrappingKey>, ConfigError> {
    let Some(text) = var("GATEHOUSE_LOCAL_WRAPPING_KEY") else {
        return Ok(None);
    };
    if crate::keywrap::LocalWrapper::parse(&text).is_none() {
        return Err(ConfigError(
            "GATEHOUSE_LOCAL_WRAPPING_KEY must be 32 bytes in base64url without padding \
             (e.g. `head -c 32 /dev/urandom | basenc --base64url | tr -d =`)"
                .into(),
        ));
    }
    Ok(Some(LocalWrappingKey(text)))
}

/// `GATEHOUSE_STAGE`: 1–20 lowercase letters, digits and hyphens (the template's pattern),
/// `local` when unset.
fn stage() -> Result<String, ConfigError> {
    let Some(stage) = var("GATEHOUSE_STAGE") else {
        return Ok("local".into());
    };
    let ok = stage.len() <= 20
        && stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(stage)
    } else {
        Err(ConfigError(format!(
            "GATEHOUSE_STAGE must be 1-20 lowercase letters, digits or hyphens, not {stage:?}"
        )))
    }
}

impl Config {
    /// The key that wraps private signing keys, as configured (`crate::keywrap::wrapper`).
    pub fn key_wrapper(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Option<std::sync::Arc<dyn crate::keywrap::KeyWrapper>>, ConfigError> {
        let local = self.local_wrapping_key.as_ref().map(|k| k.0.as_str());
        crate::keywrap::wrapper(
            self.kms_key_id.as_deref(),
            self.kms_endpoint.as_deref(),
            local,
            sdk,
        )
        .map_err(ConfigError)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let public_url = var("GATEHOUSE_PUBLIC_URL")
            .map(|raw| normalise_public_url(&raw))
            .transpose()?;
        let cap_override = parse_var::<u32>("GATEHOUSE_PENDING_CLIENT_CAP")?;
        let ttl_override = parse_var::<u64>("GATEHOUSE_PENDING_CLIENT_TTL")?;
        if ttl_override == Some(0) {
            return Err(ConfigError(
                "GATEHOUSE_PENDING_CLIENT_TTL must be at least 1 second".into(),
            ));
        }
        let rate = if cap_override == Some(0) {
            0
        } else {
            parse_var::<u32>("GATEHOUSE_REGISTRATION_RATE_LIMIT")?
                .unwrap_or(defaults::REGISTRATIONS_PER_IP_PER_MINUTE)
        };
        Ok(Self {
            public_url,
            table: var("GATEHOUSE_TABLE"),
            dynamodb_endpoint: var("GATEHOUSE_DYNAMODB_ENDPOINT"),
            event_bus: var("GATEHOUSE_EVENT_BUS"),
            events_endpoint: var("GATEHOUSE_EVENTS_ENDPOINT"),
            stage: stage()?,
            kms_key_id: var("GATEHOUSE_KMS_KEY_ID"),
            kms_endpoint: var("GATEHOUSE_KMS_ENDPOINT"),
            local_wrapping_key: local_wrapping_key()?,
            tenant_cache_ttl: Duration::from_secs(
                parse_var::<u64>("GATEHOUSE_TENANT_CACHE_TTL")?
                    .unwrap_or(defaults::TENANT_CACHE_TTL_SECS),
            ),
            registrations_per_ip_per_minute: rate,
            access_token_ttl_secs: parse_var::<i64>("GATEHOUSE_ACCESS_TOKEN_TTL")?
                .unwrap_or(defaults::ACCESS_TOKEN_TTL_SECS)
                .max(1),
            refresh_grace_secs: parse_var::<i64>("GATEHOUSE_REFRESH_GRACE")?
                .unwrap_or(defaults::REFRESH_GRACE_SECS)
                .max(0),
            demo_admin_password: var("GATEHOUSE_DEMO_ADMIN_PASSWORD"),
            demo_user_password: var("GATEHOUSE_DEMO_USER_PASSWORD"),
            pending_client_ttl_override: ttl_override,
            pending_client_cap_override: cap_override,
            pending_client_source_share_override: source_share_override()?,
            dev_cimd_extra_roots: match var("GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE") {
                None => Vec::new(),
                Some(path) => crate::cimd::fetch::read_pem_certs(std::path::Path::new(&path))
                    .map_err(|e| ConfigError(format!("GATEHOUSE_DEV_CIMD_EXTRA_CA_FILE: {e}")))?,
            },
            dev_cimd_allow_loopback: flag("GATEHOUSE_DEV_CIMD_ALLOW_LOOPBACK")?,
            dev_clock_file: var("GATEHOUSE_DEV_CLOCK_FILE").map(std::path::PathBuf::from),
        })
    }

    /// Defaults with nothing from the environment (tests and benchmarks).
    pub fn for_tests(public_url: &str) -> Self {
        Self {
            public_url: Some(public_url.trim_end_matches('/').to_owned()),
            table: None,
            dynamodb_endpoint: None,
            event_bus: None,
            events_endpoint: None,
            stage: "local".into(),
            kms_key_id: None,
            kms_endpoint: None,
            local_wrapping_key: None,
            tenant_cache_ttl: Duration::from_secs(defaults::TENANT_CACHE_TTL_SECS),
            registrations_per_ip_per_minute: 0,
            access_token_ttl_secs: defaults::ACCESS_TOKEN_TTL_SECS,
            refresh_grace_secs: defaults::REFRESH_GRACE_SECS,
            demo_admin_password: Some("admin-pass".into()),
            demo_user_password: Some("user-pass".into()),
            pending_client_ttl_override: None,
            pending_client_cap_override: None,
            pending_client_source_share_override: None,
            dev_cimd_extra_roots: Vec::new(),
            dev_cimd_allow_loopback: false,
            dev_clock_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_must_be_an_origin() {
        assert_eq!(
            normalise_public_url("https://auth.example.com/")
                .ok()
                .as_deref(),
            Some("https://auth.example.com")
        );
        assert_eq!(
            normalise_public_url("http://127.0.0.1:8787")
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert!(normalise_public_url("https://auth.example.com/prefix").is_err());
        assert!(normalise_public_url("ftp://auth.example.com").is_err());
        assert!(normalise_public_url("not a url").is_err());
    }
}
