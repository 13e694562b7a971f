//! [`TrustStore`] on the embedded store.

use super::*;
use crate::domain::{Client, TenantId, UnixTime, VendorTrust};
use crate::store::{PendingQuota, StoreError, TrustStore};
use async_trait::async_trait;

#[async_trait]
impl TrustStore for MemoryStore {
    async fn put_trust(&self, trust: &VendorTrust) -> Result<(), StoreError> {
        let tenant = trust
            .tenant
            .clone()
            .ok_or_else(|| StoreError::Corrupt("a trust without its tenant".into()))?;
        self.lock()
            .trusts
            .insert((tenant, trust.id.clone()), trust.clone());
        Ok(())
    }

    async fn get_trust(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<VendorTrust>, StoreError> {
        Ok(self
            .lock()
            .trusts
            .get(&(tenant.clone(), id.to_owned()))
            .cloned())
    }

    async fn list_trusts(&self, tenant: &TenantId) -> Result<Vec<VendorTrust>, StoreError> {
        let mut out: Vec<VendorTrust> = self
            .lock()
            .trusts
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, trust)| trust.clone())
            .collect();
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(out)
    }

    async fn revoke_trust(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let trust = inner
            .trusts
            .get_mut(&(tenant.clone(), id.to_owned()))
            .ok_or(StoreError::NotFound)?;
        trust.revoked_at.get_or_insert(now);
        Ok(())
    }

    async fn create_trusted_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let active = client.vendor_trust.as_ref().is_some_and(|id| {
            inner
                .trusts
                .get(&(client.tenant.clone(), id.clone()))
                .is_some_and(VendorTrust::is_active)
        });
        if !active {
            return Err(StoreError::Conflict);
        }
        let key = ClientKey::of(client);
        if inner.clients.get(&key).is_some_and(|c| c.is_live(now)) {
            return Err(StoreError::AlreadyExists);
        }
        inner.count_registration(&client.tenant, quota, now)?;
        inner.put_client(client, false)?;
        inner.note_write(now);
        Ok(())
    }
}
