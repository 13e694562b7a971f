use super::{AuthMethod, ScopeSet, SigningAlg, TenantId};
use crate::defaults;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A tenant: one issuer, its users and clients, and its Dynamic Client Registration policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: String,
    pub dcr: DcrSettings,
    /// The tenant's MCP server URL: the `aud` of tokens when a client names no `resource`
    /// (some agent platforms' clients never do). `None`: the demo MCP endpoint `{issuer}/mcp`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default_resource: Option<String>,
    /// Whether clients may identify themselves with a Client ID Metadata Document URL
    /// (published as `client_id_metadata_document_supported`). On unless turned off; the
    /// approval gate applies to these clients exactly as to registered ones.
    #[serde(default = "enabled")]
    pub cimd_enabled: bool,
    /// Whether OpenID Connect is on: the `openid`, `profile` and `email` scopes join the
    /// allowed scopes, and a code granted `openid` also yields an ID token. Off unless turned
    /// on, so a tenant's clients see no change until its administrator decides.
    #[serde(default)]
    pub openid_enabled: bool,
    /// How access tokens are signed: ES256 (the default: the fastest to sign), or RS256 for
    /// resource servers whose verifier knows only RSA (API Gateway's JWT authorizer for HTTP
    /// APIs). Both keys are always published, so a change needs no JWKS change.
    #[serde(default)]
    pub access_token_signing_alg: SigningAlg,
    /// How long audit events are kept, in days (`docs/events.md`).
    #[serde(default = "audit_retention_days")]
    pub audit_retention_days: u32,
}

fn audit_retention_days() -> u32 {
    defaults::AUDIT_RETENTION_DAYS
}

/// The OpenID Connect scopes (Core §3.1.2.1 and §5.4) an `openid_enabled` tenant allows.
pub const OPENID_SCOPES: &str = "openid profile email";

fn enabled() -> bool {
    true
}

/// Per-tenant DCR settings, set by the tenant's administrator. Every field has a default in [`crate::defaults`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcrSettings {
    /// Whether the public registration endpoint accepts registrations at all.
    pub enabled: bool,
    /// Token endpoint authentication methods a registrant may choose.
    pub allowed_auth_methods: Vec<AuthMethod>,
    /// Whether a registration must carry `client_uri` (off by default; RFC 7591 makes it optional).
    pub require_client_uri: bool,
    /// The scopes a registrant may ask for, and the default set when it asks for none.
    pub allowed_scopes: ScopeSet,
    /// Seconds an unapproved client lives before it is deleted.
    pub pending_client_ttl_secs: u64,
    /// Most pending clients per lifetime window; `0` turns the cap off.
    pub pending_client_cap: u32,
    /// The share of `pending_client_cap` one source (an IPv4 address, an IPv6 /64) may use
    /// per window, in percent (1–100; 100: no per-source limit).
    #[serde(default = "source_share")]
    pub pending_client_source_share_percent: u32,
}

fn source_share() -> u32 {
    defaults::PENDING_CLIENT_SOURCE_SHARE_PERCENT
}

impl Default for DcrSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_auth_methods: vec![
                AuthMethod::ClientSecretBasic,
                AuthMethod::ClientSecretPost,
                AuthMethod::None,
            ],
            require_client_uri: false,
            allowed_scopes: ScopeSet::parse(defaults::TENANT_ALLOWED_SCOPES).unwrap_or_default(),
            pending_client_ttl_secs: defaults::PENDING_CLIENT_TTL_SECS,
            pending_client_cap: defaults::PENDING_CLIENT_CAP,
            pending_client_source_share_percent: defaults::PENDING_CLIENT_SOURCE_SHARE_PERCENT,
        }
    }
}

impl Tenant {
    pub fn new(id: TenantId, display_name: impl Into<String>) -> Self {
        Self {
            id,
            display_name: display_name.into(),
            dcr: DcrSettings::default(),
            default_resource: None,
            cimd_enabled: true,
            openid_enabled: false,
            access_token_signing_alg: SigningAlg::ES256,
            audit_retention_days: defaults::AUDIT_RETENTION_DAYS,
        }
    }

    /// The scopes a client of this tenant may hold: the administrator's list, plus the OpenID
    /// Connect scopes when OpenID Connect is on.
    /// Borrowed unless OpenID Connect is on (registration reads it on every request).
    pub fn allowed_scopes(&self) -> Cow<'_, ScopeSet> {
        if !self.openid_enabled {
            return Cow::Borrowed(&self.dcr.allowed_scopes);
        }
        let openid = ScopeSet::parse(OPENID_SCOPES).unwrap_or_default();
        let extra = openid.not_in(&self.dcr.allowed_scopes).cloned();
        Cow::Owned(ScopeSet::from_tokens(
            self.dcr.allowed_scopes.iter().cloned().chain(extra),
        ))
    }

    /// When an audit event recorded at `at` is deleted.
    pub fn audit_expiry(&self, at: super::UnixTime) -> super::UnixTime {
        at.saturating_add(i64::from(self.audit_retention_days).saturating_mul(86_400))
    }

    /// The registration policy with [`Tenant::allowed_scopes`] as the allowed scopes: the
    /// tenant's own settings, borrowed, unless OpenID Connect adds scopes.
    pub fn dcr_policy(&self) -> Cow<'_, DcrSettings> {
        match self.allowed_scopes() {
            Cow::Borrowed(_) => Cow::Borrowed(&self.dcr),
            Cow::Owned(allowed_scopes) => Cow::Owned(DcrSettings {
                allowed_scopes,
                ..self.dcr.clone()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes_are_user_default_mcp_execute_and_offline_access() {
        assert_eq!(
            DcrSettings::default().allowed_scopes.to_string(),
            "user_default mcp:execute offline_access"
        );
    }

    #[test]
    fn openid_connect_adds_its_scopes_once() {
        let mut t = Tenant::new(TenantId::parse("demo").unwrap(), "Demo");
        assert_eq!(
            t.allowed_scopes().to_string(),
            "user_default mcp:execute offline_access"
        );
        t.openid_enabled = true;
        assert_eq!(
            t.allowed_scopes().to_string(),
            "user_default mcp:execute offline_access openid profile email"
        );
        t.dcr.allowed_scopes = ScopeSet::parse("email mcp:execute").unwrap();
        assert_eq!(
            t.dcr_policy().allowed_scopes.to_string(),
            "email mcp:execute openid profile"
        );
    }
}
