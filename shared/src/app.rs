//! The application: state built once per process (store, configuration, clock, caches) and
//! shared by every request. It knows no endpoint: the dispatcher is [`crate::server`], and
//! endpoints receive this state through the request context ([`crate::context::Ctx`]).

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Tenant, TenantId, UnixTime};
use crate::error::OAuthError;
use crate::http::Request;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Config,
    /// Signing keys, cached per process (per warm container).
    pub keys: crate::keycache::KeyCache,
    /// The key that wraps private signing keys (`crate::keywrap`): KMS on Lambda; a random
    /// process-local key unless set otherwise (right for the embedded store only).
    pub key_wrapper: Arc<dyn crate::keywrap::KeyWrapper>,
    /// Client ID Metadata Document fetches (TLS set up on first use).
    pub cimd: crate::cimd::fetch::Fetcher,
    /// Where "now" comes from; read once per request into [`crate::context::Ctx::now`].
    pub clock: Clock,
    /// Prebuilt metadata documents, per tenant and settings.
    pub published: crate::documents::DocumentCache,
    /// Where administrators' notifications go (EventBridge, or the log only).
    pub notifier: crate::events::Notifier,
    tenants: TenantCache,
    registration_limiter: RateLimiter<std::net::IpAddr>,
    signin_ip_limiter: RateLimiter<std::net::IpAddr>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        let limiter = RateLimiter::new(config.registrations_per_ip_per_minute);
        Self {
            store,
            keys: crate::keycache::KeyCache::default(),
            key_wrapper: Arc::new(crate::keywrap::LocalWrapper::random()),
            cimd: crate::cimd::fetch::Fetcher::new(
                crate::cimd::fetch::Limits::default(),
                config.dev_cimd_allow_loopback,
                config.dev_cimd_extra_roots.clone(),
            ),
            clock: match &config.dev_clock_file {
                Some(path) => Clock::OffsetFile(path.clone()),
                None => Clock::System,
            },
            published: crate::documents::DocumentCache::default(),
            notifier: crate::events::Notifier::log_only(),
            tenants: TenantCache::new(config.tenant_cache_ttl),
            registration_limiter: limiter,
            signin_ip_limiter: RateLimiter::new(crate::defaults::SIGNINS_PER_IP_PER_MINUTE),
            config,
        }
    }

    /// The store and the wrapping key, as signing keys need them.
    pub fn signing_keys(&self) -> crate::tokens::Keys<'_> {
        crate::tokens::Keys {
            store: self.store.as_ref(),
            wrapper: self.key_wrapper.as_ref(),
        }
    }

    /// The store and the fetcher, as metadata-document resolution needs them.
    pub fn documents(&self) -> crate::cimd::Sources<'_> {
        crate::cimd::Sources {
            store: self.store.as_ref(),
            fetcher: &self.cimd,
        }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The tenant named in the path, from the per-process cache or the store.
    pub async fn tenant(&self, raw: &str) -> Result<Arc<Tenant>, OAuthError> {
        let unknown = || OAuthError::not_found(format!("unknown tenant {raw:?}"));
        let id = TenantId::parse(raw).ok_or_else(unknown)?;
        if let Some(cached) = self.tenants.get(&id) {
            return cached.ok_or_else(unknown);
        }
        let loaded = self.store.get_tenant(&id).await?.map(Arc::new);
        self.tenants.put(id, loaded.clone());
        loaded.ok_or_else(unknown)
    }

    /// Forget a cached tenant (after this process changed its settings).
    pub fn invalidate_tenant(&self, id: &TenantId) {
        self.tenants.remove(id);
    }

    /// The external base URL: configured, or derived from the request's `Host` (API Gateway
    /// sets `Host` to the domain the client called and `X-Forwarded-Proto` to its scheme).
    pub fn public_base(&self, req: &Request) -> Result<String, OAuthError> {
        if let Some(base) = &self.config.public_url {
            return Ok(base.clone());
        }
        let host = req
            .headers()
            .get(::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| OAuthError::invalid_request("missing Host header"))?;
        let proto = req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "http" || *p == "https")
            .unwrap_or("https");
        crate::config::normalise_public_url(&format!("{proto}://{host}"))
            .map_err(|_| OAuthError::invalid_request("malformed Host header"))
    }

    /// Whether this source may register (or introduce a new metadata-document client) now.
    pub fn registration_rate_ok(&self, source: Option<IpAddr>) -> bool {
        source.is_none_or(|ip| self.registration_limiter.allow(ip, Instant::now()))
    }

    /// Whether this source may try a password now (the in-process per-IP sign-in limit).
    pub fn signin_rate_ok(&self, source: Option<IpAddr>) -> bool {
        source.is_none_or(|ip| self.signin_ip_limiter.allow(ip, Instant::now()))
    }

    /// The in-process per-IP registration limit. The tenant's pending cap is the real quota
    /// (many users of one AI platform share one egress address, so a per-IP limit alone would
    /// either block them or stop nothing); this slows one noisy source on one warm container.
    pub fn check_registration_rate(&self, source: Option<IpAddr>) -> Result<(), OAuthError> {
        if self.registration_rate_ok(source) {
            Ok(())
        } else {
            Err(OAuthError::too_many_requests(
                "too many registrations from this address; retry in a minute",
                60,
            ))
        }
    }
}

/// Tenant records cached per process for a short time, negative answers included (so random
/// tenant names cannot hammer the table). Bounded: past `MAX` entries the cache starts over.
struct TenantCache {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<TenantId, CachedTenant>>,
}

/// When the entry was loaded, and the tenant (`None`: known not to exist).
type CachedTenant = (Instant, Option<Arc<Tenant>>);

impl TenantCache {
    const MAX: usize = 4096;

    fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: &TenantId) -> Option<Option<Arc<Tenant>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, t)| t.clone())
    }

    fn put(&self, id: TenantId, tenant: Option<Arc<Tenant>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(id, (Instant::now(), tenant));
    }

    fn remove(&self, id: &TenantId) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
