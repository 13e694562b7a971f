//! The application: shared state built once per process (store, configuration, caches) and the
//! dispatcher that turns a request into a response for one function or for all of them.

use crate::config::Config;
use crate::domain::{Tenant, TenantId, UnixTime, unix_now};
use crate::endpoints::{admin, approval, authorize, client_config, mcp, metadata, register, token};
use crate::error::OAuthError;
use crate::http::{self, ClientIp, Request, RequestId, Response};
use crate::ratelimit::RateLimiter;
use crate::router::{self, Function, Route};
use crate::store::Store;
use ::http::Method;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument;

pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Config,
    /// Signing keys, cached per process (per warm container).
    pub keys: crate::tokens::KeyCache,
    /// Client ID Metadata Document fetches (TLS set up on first use).
    pub cimd: crate::cimd::fetch::Fetcher,
    tenants: TenantCache,
    registration_limiter: RateLimiter<std::net::IpAddr>,
    pub(crate) signin_ip_limiter: RateLimiter<std::net::IpAddr>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        let limiter = RateLimiter::new(config.registrations_per_ip_per_minute);
        Self {
            store,
            keys: crate::tokens::KeyCache::default(),
            cimd: crate::cimd::fetch::Fetcher::new(
                crate::cimd::fetch::Limits::default(),
                config.dev_cimd_allow_loopback,
                config.dev_cimd_extra_roots.clone(),
            ),
            tenants: TenantCache::new(config.tenant_cache_ttl),
            registration_limiter: limiter,
            signin_ip_limiter: RateLimiter::new(crate::defaults::SIGNINS_PER_IP_PER_MINUTE),
            config,
        }
    }

    pub fn now(&self) -> UnixTime {
        unix_now()
    }

    /// Serves one request. `only` restricts it to one Lambda function's routes (a route of
    /// another function is a 404, as API Gateway would never send it there).
    pub async fn handle(&self, only: Option<Function>, req: Request) -> Response {
        let started = Instant::now();
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let path = req.uri().path().to_owned();
        // RFC 6797: browsers that reached us over https keep to https for a year, so a later
        // `http://` link (or an attacker on the network) cannot take a sign-in page or a code
        // over plain http. Only when the public URL itself is https: local http development
        // must not pin `localhost` to https in the developer's browser.
        let hsts = self
            .public_base(&req)
            .is_ok_and(|base| base.starts_with("https://"));
        let route = router::route(&path).filter(|r| only.is_none_or(|f| r.function() == f));
        let function = route.as_ref().map_or("none", |r| r.function().name());
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %req.method(),
            route = route.as_ref().map_or("none", Route::name),
            tenant = route.as_ref().map_or("", Route::tenant),
        );
        let work = async {
            match route {
                Some(route) => {
                    let resp = self
                        .dispatch(&route, &req)
                        .await
                        .unwrap_or_else(|e| http::error_response(&e));
                    if route.cors() {
                        http::with_cors(resp)
                    } else {
                        resp
                    }
                }
                None => http::error_response(&OAuthError::not_found(
                    "no such endpoint; tenant endpoints live under /t/{tenant}/",
                )),
            }
        };
        async {
            let (mut resp, dynamodb_calls) =
                crate::telemetry::counting_db_calls(function, work).await;
            if hsts {
                resp.headers_mut().insert(
                    ::http::header::STRICT_TRANSPORT_SECURITY,
                    ::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
                );
            }
            tracing::info!(
                status = resp.status().as_u16(),
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                dynamodb_calls,
                "handled"
            );
            resp
        }
        .instrument(span)
        .await
    }

    async fn dispatch(&self, route: &Route<'_>, req: &Request) -> Result<Response, OAuthError> {
        if req.extensions().get::<http::BodyTooLarge>().is_some() {
            return Err(OAuthError::payload_too_large());
        }
        match route {
            Route::Register { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("POST, OPTIONS"));
                }
                if req.method() != Method::POST {
                    return Err(OAuthError::method_not_allowed("POST, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                register::handle(self, &tenant, req).await
            }
            Route::ClientConfiguration { tenant, client_id } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("GET, PUT, DELETE, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                client_config::handle(self, &tenant, client_id, req).await
            }
            Route::AdminApi { tenant, rest } => {
                let tenant = self.tenant(tenant).await?;
                admin::api::handle(self, &tenant, rest, req).await
            }
            Route::Console { tenant, rest } => {
                let tenant = self.tenant(tenant).await?;
                Ok(admin::console::handle(self, &tenant, rest, req).await)
            }
            Route::AuthorizationServerMetadata { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("GET, OPTIONS"));
                }
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return Err(OAuthError::method_not_allowed("GET, HEAD, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                Ok(metadata::response(&self.public_base(req)?, &tenant))
            }
            Route::Authorize { tenant } => {
                let tenant = self.tenant(tenant).await?;
                match *req.method() {
                    Method::GET => Ok(authorize::get(self, &tenant, req).await),
                    Method::POST => Ok(authorize::post(self, &tenant, req).await),
                    _ => Err(OAuthError::method_not_allowed("GET, POST")),
                }
            }
            Route::Token { tenant } | Route::Revoke { tenant } | Route::Introspect { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("POST, OPTIONS"));
                }
                if req.method() != Method::POST {
                    return Err(OAuthError::method_not_allowed("POST, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                match route {
                    Route::Token { .. } => token::token(self, &tenant, req).await,
                    Route::Revoke { .. } => token::revoke(self, &tenant, req).await,
                    _ => token::introspect(self, &tenant, req).await,
                }
            }
            Route::Jwks { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("GET, OPTIONS"));
                }
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return Err(OAuthError::method_not_allowed("GET, HEAD, OPTIONS"));
                }
                self.tenant(tenant).await?;
                token::jwks(self).await
            }
            Route::ProtectedResourceMetadata { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("GET, OPTIONS"));
                }
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return Err(OAuthError::method_not_allowed("GET, HEAD, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                Ok(http::json_response(
                    ::http::StatusCode::OK,
                    &metadata::protected_resource_document(&self.public_base(req)?, &tenant),
                    http::Cache::Public(60),
                ))
            }
            Route::Mcp { tenant } => {
                if req.method() == Method::OPTIONS {
                    return Ok(http::preflight("GET, POST, OPTIONS"));
                }
                let tenant = self.tenant(tenant).await?;
                mcp::handle(self, &tenant, req).await
            }
            Route::Approve { tenant } => {
                if req.method() != Method::POST {
                    return Err(OAuthError::method_not_allowed("POST"));
                }
                let tenant = self.tenant(tenant).await?;
                Ok(approval::post(self, &tenant, req).await)
            }
        }
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
    pub fn registration_rate_ok(&self, req: &Request) -> bool {
        match req.extensions().get::<ClientIp>().copied() {
            Some(ClientIp(ip)) => self.registration_limiter.allow(ip, Instant::now()),
            None => true,
        }
    }

    /// The in-process per-IP registration limit. The tenant's pending cap is the real quota
    /// (many users of one AI platform share one egress address, so a per-IP limit alone would
    /// either block them or stop nothing); this slows one noisy source on one warm container.
    pub fn check_registration_rate(&self, req: &Request) -> Result<(), OAuthError> {
        if self.registration_rate_ok(req) {
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
