//! Each tenant's signing keys, cached per process (per warm container): the active signing key
//! of each algorithm, unsealed (`crate::keywrap`) once per cache period, and the published key
//! set verifiers use. Keys are created on first use when a tenant has none
//! (`crate::keygen::rotate`).

use crate::defaults::SIGNING_KEY_CACHE_SECS;
use crate::domain::{SigningAlg, TenantId, UnixTime};
use crate::keygen::{Keys, rotate};
use crate::keywrap::{self, KeyContext};
use crate::store::{Store, StoreError};
use crate::tokens::{KeySet, SigningKey, TokenError, active_key, token_kid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slot<T> = Mutex<Option<(UnixTime, T)>>;

/// One tenant's cached keys: the active signing key of each algorithm and the published set.
#[derive(Default)]
struct TenantKeys {
    signing: [Slot<Arc<SigningKey>>; SigningAlg::ALL.len()],
    verifying: Slot<Arc<KeySet>>,
}

/// Per-process cache of each tenant's keys, each kept for [`SIGNING_KEY_CACHE_SECS`] of the
/// application's clock (`crate::clock`), so that the key activation delay can be tested end to
/// end. Bounded: past `MAX_TENANTS` tenants it starts over.
#[derive(Default)]
pub struct KeyCache {
    tenants: Mutex<HashMap<TenantId, Arc<TenantKeys>>>,
}

impl KeyCache {
    const MAX_TENANTS: usize = 1024;

    fn of(&self, tenant: &TenantId) -> Arc<TenantKeys> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if tenants.len() >= Self::MAX_TENANTS && !tenants.contains_key(tenant) {
            tenants.clear();
        }
        Arc::clone(tenants.entry(tenant.clone()).or_default())
    }

    fn fresh<T: Clone>(slot: &Slot<T>, now: UnixTime) -> Option<T> {
        let ttl = i64::try_from(SIGNING_KEY_CACHE_SECS).unwrap_or(i64::MAX);
        let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(at, _)| (*at..at.saturating_add(ttl)).contains(&now))
            .map(|(_, v)| v.clone())
    }

    /// The tenant's active key of `alg`, creating one on first use when none exists (a new
    /// tenant, or keys that predate the algorithm). The private half is unsealed with
    /// `wrapper` (`crate::keywrap`) once per cache period.
    pub async fn signing_key(
        &self,
        keys: Keys<'_>,
        tenant: &TenantId,
        alg: SigningAlg,
        now: UnixTime,
    ) -> Result<Arc<SigningKey>, TokenError> {
        let cached = self.of(tenant);
        let slot = &cached.signing[alg as usize];
        if let Some(k) = Self::fresh(slot, now) {
            return Ok(k);
        }
        let mut public = keys.store.list_public_keys(tenant).await?;
        if !public.iter().any(|k| k.alg == alg) {
            public.push(rotate(keys, tenant, alg, now).await?);
        }
        let active = active_key(&public, alg, now).ok_or(TokenError::NoKey)?;
        let sealed = keys
            .store
            .get_private_key(tenant, &active.kid)
            .await?
            .ok_or(TokenError::NoKey)?;
        let context = KeyContext {
            tenant,
            kid: &active.kid,
        };
        let private = keywrap::open(keys.wrapper, context, &sealed)
            .await
            .map_err(StoreError::from)?;
        let key = Arc::new(SigningKey::from_stored(active, &private)?);
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, Arc::clone(&key)));
        Ok(key)
    }

    /// The tenant's published keys; `refresh` forces a re-read.
    pub async fn key_set(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        refresh: bool,
        now: UnixTime,
    ) -> Result<Arc<KeySet>, TokenError> {
        let cached = self.of(tenant);
        if !refresh && let Some(k) = Self::fresh(&cached.verifying, now) {
            return Ok(k);
        }
        let set = Arc::new(KeySet::from_public(store.list_public_keys(tenant).await?));
        // A tenant with no keys yet gets them on its first token, from the token function:
        // an empty set is not kept, so the JWKS lists them as soon as they exist.
        if !set.public.is_empty() {
            *cached.verifying.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((now, Arc::clone(&set)));
        }
        Ok(set)
    }

    /// The tenant's published keys as verifying `token` needs them: read again when the token
    /// names a key this process has not seen (a rotation since the cache was filled).
    pub async fn key_set_for(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<KeySet>, TokenError> {
        let keys = self.key_set(store, tenant, false, now).await?;
        let unknown = token_kid(token).is_some_and(|kid| !keys.public.iter().any(|k| k.kid == kid));
        if unknown {
            self.key_set(store, tenant, true, now).await
        } else {
            Ok(keys)
        }
    }
}
