//! Public JSON documents served as prebuilt bodies: the authorization server metadata
//! (RFC 8414), the protected resource metadata (RFC 9728) and the JWKS (RFC 7517).
//!
//! Every MCP client fetches the two metadata documents on each connection, and many refetch
//! them often; they change only when a tenant's settings do. So each is serialised once per
//! tenant and settings (and public base URL), kept per process, and served with a strong
//! `ETag` (a digest of the body, so every process and Lambda container gives the same
//! document the same tag) and `Cache-Control: public, max-age`, so that clients, proxies and
//! API Gateway caches can reuse it and revalidate with `If-None-Match` for a `304`
//! (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2.9).

use crate::domain::{Tenant, TenantId};
use crate::http::{Request, Response, base_headers};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// A serialised document and its entity tag.
#[derive(Clone)]
pub struct Document {
    body: Bytes,
    etag: HeaderValue,
}

impl Document {
    pub fn new(value: &serde_json::Value) -> Self {
        let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        // 128 bits of SHA-256: a tag names one body; collisions are not a concern at this size.
        let digest = Sha256::digest(&body);
        let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
        let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
        Self { body, etag }
    }

    #[cfg(test)]
    fn etag(&self) -> &str {
        self.etag.to_str().unwrap_or_default()
    }

    /// Whether `If-None-Match` names this version: the weak comparison RFC 9110 §13.1.2
    /// prescribes for it (a `W/` prefix is ignored), or `*`.
    fn matches(&self, req: &Request) -> bool {
        let ours = self.etag.as_bytes();
        req.headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == ours)
    }

    /// `200` with the body, or `304 Not Modified` (no body, the same validators and caching
    /// headers, RFC 9110 §15.4.5) when the client already holds this version.
    pub fn respond(&self, req: &Request, max_age_secs: u32) -> Response {
        let not_modified = self.matches(req);
        let mut resp = Response::new(if not_modified {
            Bytes::new()
        } else {
            self.body.clone()
        });
        let h = resp.headers_mut();
        base_headers(h);
        if not_modified {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
        } else {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::http::JSON),
            );
        }
        let h = resp.headers_mut();
        h.insert(header::ETAG, self.etag.clone());
        if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age_secs}")) {
            h.insert(header::CACHE_CONTROL, v);
        }
        resp
    }
}

/// Which document of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AuthorizationServer = 0,
    ProtectedResource = 1,
    OpenIdConfiguration = 2,
}

struct Entry {
    tenant: Tenant,
    base: String,
    document: Document,
}

/// One prebuilt document per tenant and kind, rebuilt when the tenant's record (as this
/// process last read it) or the public base URL differs from what it was built from. At most
/// three entries per tenant (one per [`Kind`]): a changed `Host` replaces the entry rather than
/// adding one. Keyed by tenant alone, so that a lookup borrows the id instead of copying it.
#[derive(Default)]
pub struct DocumentCache {
    entries: Mutex<HashMap<TenantId, [Option<Entry>; 3]>>,
}

impl DocumentCache {
    pub fn get(
        &self,
        kind: Kind,
        tenant: &Tenant,
        base: &str,
        build: impl FnOnce() -> serde_json::Value,
    ) -> Document {
        let slot = kind as usize;
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries
                .get(&tenant.id)
                .and_then(|kinds| kinds[slot].as_ref())
                && e.base == base
                && e.tenant == *tenant
            {
                return e.document.clone();
            }
        }
        let document = Document::new(&build());
        let entry = Entry {
            tenant: tenant.clone(),
            base: base.to_owned(),
            document: document.clone(),
        };
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.id.clone())
            .or_default()[slot] = Some(entry);
        document
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(if_none_match: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/x");
        if let Some(v) = if_none_match {
            b = b.header(header::IF_NONE_MATCH, v);
        }
        b.body(Bytes::new()).unwrap()
    }

    #[test]
    fn serves_the_body_with_a_tag_and_304_when_the_client_holds_it() {
        let doc = Document::new(&json!({"issuer": "https://as.example/t/demo"}));
        let ok = doc.respond(&get(None), 60);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.body().as_ref(),
            br#"{"issuer":"https://as.example/t/demo"}"#
        );
        assert_eq!(ok.headers()[header::CACHE_CONTROL], "public, max-age=60");
        let tag = ok.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 24);

        for held in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".into(),
        ] {
            let nm = doc.respond(&get(Some(&held)), 60);
            assert_eq!(nm.status(), StatusCode::NOT_MODIFIED, "{held}");
            assert!(nm.body().is_empty());
            assert_eq!(nm.headers()[header::ETAG], tag.as_str());
            assert_eq!(nm.headers()[header::CACHE_CONTROL], "public, max-age=60");
        }
        for stale in ["\"other\"", "", "W/\"x\"", tag.trim_matches('"')] {
            assert_eq!(doc.respond(&get(Some(stale)), 60).status(), StatusCode::OK);
        }
    }

    #[test]
    fn a_changed_tenant_or_base_rebuilds_and_the_same_one_does_not() {
        let cache = DocumentCache::default();
        let mut tenant = Tenant::new(TenantId::parse("demo").unwrap(), "Demo");
        let builds = std::cell::Cell::new(0);
        let build = |t: &Tenant| {
            builds.set(builds.get() + 1);
            json!({"dcr": t.dcr.enabled})
        };
        let a = cache.get(Kind::AuthorizationServer, &tenant, "https://a", || {
            build(&tenant)
        });
        let b = cache.get(Kind::AuthorizationServer, &tenant, "https://a", || {
            build(&tenant)
        });
        assert_eq!((builds.get(), a.etag()), (1, b.etag()));
        cache.get(Kind::ProtectedResource, &tenant, "https://a", || {
            build(&tenant)
        });
        assert_eq!(builds.get(), 2);
        cache.get(Kind::AuthorizationServer, &tenant, "https://b", || {
            build(&tenant)
        });
        assert_eq!(builds.get(), 3);
        tenant.dcr.enabled = false;
        let c = cache.get(Kind::AuthorizationServer, &tenant, "https://b", || {
            build(&tenant)
        });
        assert_eq!(builds.get(), 4);
        assert_ne!(a.etag(), c.etag());
    }
}
