//! Client writes that must happen once or all together: registration against the pending
//! quota, administrators' clients, deletion with everything issued, approval with its record.

use crate::domain::{Approval, Client, ClientId, ClientStatus, TenantId, UnixTime};
use crate::store::{PendingQuota, StoreError, approved};

use super::*;

impl MemoryStore {
    pub(super) async fn tx_create_pending_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (client.tenant.clone(), client.client_id.clone());
        if inner.clients.get(&key).is_some_and(|c| c.is_live(now)) {
            return Err(StoreError::AlreadyExists);
        }
        if quota.cap > 0 {
            let bucket = quota.bucket(now);
            let used = inner.counter(&client.tenant, bucket, now)
                + inner.counter(&client.tenant, bucket - 1, now);
            if used >= quota.cap {
                return Err(StoreError::PendingCapReached);
            }
            let current = inner.counter(&client.tenant, bucket, now);
            inner.pending_counters.insert(
                (client.tenant.clone(), bucket),
                (current + 1, quota.bucket_expiry(bucket)),
            );
        }
        inner.clients.insert(key, client.clone());
        inner.note_write(now);
        Ok(())
    }

    pub(super) async fn tx_create_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (client.tenant.clone(), client.client_id.clone());
        if inner.clients.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.approvals.insert(key.clone(), Approval::of(client));
        inner.clients.insert(key, client.clone());
        Ok(())
    }

    pub(super) async fn tx_delete_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (tenant.clone(), id.clone());
        if !inner.clients.get(&key).is_some_and(|c| c.is_live(now)) {
            return Err(StoreError::NotFound);
        }
        inner.clients.remove(&key);
        inner.approvals.remove(&key);
        for ((t, _), g) in inner.grants.iter_mut() {
            if t == tenant && &g.client_id == id {
                g.revoked_at.get_or_insert(now);
            }
        }
        inner.note_write(now);
        Ok(())
    }

    pub(super) async fn tx_approve_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        version: u32,
        approver: &str,
        now: UnixTime,
    ) -> Result<Client, StoreError> {
        let mut inner = self.lock();
        let key = (tenant.clone(), id.clone());
        let current = inner
            .clients
            .get(&key)
            .filter(|c| c.is_live(now))
            .cloned()
            .ok_or(StoreError::NotFound)?;
        if current.status != ClientStatus::Pending || current.config_version != version {
            return Err(StoreError::Conflict);
        }
        let updated = approved(current, approver, now);
        inner.approvals.insert(key.clone(), Approval::of(&updated));
        inner.clients.insert(key, updated.clone());
        inner.note_write(now);
        Ok(updated)
    }
}
