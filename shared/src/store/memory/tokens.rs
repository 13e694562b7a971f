//! [`TokenStore`] on the embedded store: code redemption, grants, refresh rotation
//! (with its grace window), revocation, signing keys.

use super::*;
use crate::domain::{AuthorizationCode, Grant, PublicSigningKey, RefreshToken, TenantId, UnixTime};
use crate::keywrap::SealedKey;
use crate::store::{StoreError, TokenStore};
use async_trait::async_trait;

#[async_trait]
impl TokenStore for MemoryStore {
    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (code.tenant.clone(), code.code_hash.clone());
        let stored = inner
            .codes
            .get(&key)
            .filter(|c| c.is_live(now))
            .ok_or(StoreError::NotFound)?;
        if stored.redeemed_grant.is_some() {
            return Err(StoreError::Conflict);
        }
        let client_live = inner
            .clients
            .get(ClientKey::text(&code.tenant, &code.client_id).as_str())
            .is_some_and(|c| c.is_live(now));
        if !client_live {
            return Err(StoreError::NotFound);
        }
        let mut redeemed = stored.clone();
        redeemed.redeemed_grant = Some(grant.id.clone());
        inner.codes.insert(key, redeemed);
        inner
            .grants
            .insert((grant.tenant.clone(), grant.id.clone()), grant.clone());
        if let Some(t) = refresh {
            inner
                .refresh_tokens
                .insert((t.tenant.clone(), t.token_hash.clone()), t.clone());
        }
        inner.note_write(now);
        Ok(())
    }

    async fn get_grant(&self, tenant: &TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .lock()
            .grants
            .get(&(tenant.clone(), id.to_owned()))
            .cloned())
    }

    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.lock()
            .grants
            .update(&(tenant.clone(), id.to_owned()), |g| {
                g.revoked_at.get_or_insert(now);
            });
        Ok(())
    }

    async fn get_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<RefreshToken>, StoreError> {
        Ok(self
            .lock()
            .refresh_tokens
            .get(&(tenant.clone(), token_hash.to_owned()))
            .filter(|t| t.is_live(now))
            .cloned())
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        grace_secs: i64,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let grant_active = inner
            .grants
            .get(&(old.tenant.clone(), old.grant_id.clone()))
            .is_some_and(|g| g.revoked_at.is_none());
        if !grant_active {
            return Err(StoreError::NotFound);
        }
        let key = (old.tenant.clone(), old.token_hash.clone());
        let current = inner
            .refresh_tokens
            .get(&key)
            .filter(|t| t.is_live(now))
            .ok_or(StoreError::NotFound)?;
        match current.rotated_at {
            Some(at) if at <= now - grace_secs => return Err(StoreError::Conflict),
            Some(_) => {}
            None => {
                inner
                    .refresh_tokens
                    .update(&key, |t| t.rotated_at = Some(now));
            }
        }
        inner
            .refresh_tokens
            .insert((new.tenant.clone(), new.token_hash.clone()), new.clone());
        inner.note_write(now);
        Ok(())
    }

    async fn list_public_keys(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<PublicSigningKey>, StoreError> {
        let mut keys = self
            .lock()
            .public_keys
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        Ok(keys)
    }

    async fn get_private_key(
        &self,
        tenant: &TenantId,
        kid: &str,
    ) -> Result<Option<SealedKey>, StoreError> {
        Ok(self
            .lock()
            .private_keys
            .get(&(tenant.clone(), kid.to_owned()))
            .cloned())
    }

    async fn add_signing_key(
        &self,
        tenant: &TenantId,
        public: &PublicSigningKey,
        private: &SealedKey,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (tenant.clone(), public.kid.clone());
        if inner.private_keys.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.private_keys.insert(key, private.clone());
        inner
            .public_keys
            .entry(tenant.clone())
            .or_default()
            .push(public.clone());
        Ok(())
    }
}
