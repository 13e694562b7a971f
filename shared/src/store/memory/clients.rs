//! [`ClientStore`] on the embedded store: registrations against the pending quota,
//! approval with its approval record, edits, deletion with everything the client was issued.

use super::*;
use crate::domain::{Approval, Client, ClientId, ClientStatus, TenantId, UnixTime};
use crate::store::{ClientStore, PendingQuota, StoreError, approved, client_cursor};
use async_trait::async_trait;

#[async_trait]
impl ClientStore for MemoryStore {
    async fn create_pending_client(
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

    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (client.tenant.clone(), client.client_id.clone());
        if inner.clients.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.approvals.insert(key.clone(), Approval::of(client));
        inner.clients.insert(key, client.clone());
        Ok(())
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        self.lock().client(&(tenant.clone(), id.clone()), now)
    }

    async fn list_clients(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<Vec<Client>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<Client> = Vec::new();
        for key in inner.clients.keys().filter(|(t, _)| t == tenant) {
            if let Some(c) = inner.client(key, now)? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
        Ok(out)
    }

    async fn list_clients_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<Client>, Option<String>), StoreError> {
        let mut all: Vec<(String, Client)> = self
            .list_clients(tenant, now)
            .await?
            .into_iter()
            .map(|c| (client_cursor(&c), c))
            .filter(|(cursor, _)| after.is_none_or(|a| cursor.as_str() > a))
            .collect();
        let limit = limit.max(1);
        let next = (all.len() > limit).then(|| all[limit - 1].0.clone());
        all.truncate(limit);
        Ok((all.into_iter().map(|(_, c)| c).collect(), next))
    }

    async fn update_client(&self, client: &Client, now: UnixTime) -> Result<(), StoreError> {
        self.lock().replace_client(client, false, now)
    }

    async fn update_approved_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if client.status != ClientStatus::Approved {
            return Err(StoreError::Conflict);
        }
        self.lock().replace_client(client, true, now)
    }

    async fn delete_client(
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

    async fn approve_client(
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
