//! [`ClientStore`] on the embedded store: registrations against the pending quota,
//! approval with its approval record, edits, deletion with everything the client was issued.

use super::*;
use crate::domain::{Client, ClientId, ClientStatus, TenantId, UnixTime};
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
        let key = ClientKey::text(&client.tenant, &client.client_id);
        if inner
            .clients
            .get(key.as_str())
            .is_some_and(|c| c.is_live(now))
        {
            return Err(StoreError::AlreadyExists);
        }
        inner.count_registration(&client.tenant, quota, now)?;
        inner.put_client(client, false)?;
        inner.note_write(now);
        Ok(())
    }

    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = ClientKey::text(&client.tenant, &client.client_id);
        if inner.clients.contains_key(key.as_str()) {
            return Err(StoreError::AlreadyExists);
        }
        inner.put_client(client, true)
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        self.lock().client(&ClientKey::new(tenant, id), now)
    }

    async fn list_clients(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<Vec<Client>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<Client> = Vec::new();
        for key in inner.clients.keys().filter(|k| k.tenant_is(tenant)) {
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
        let key = ClientKey::text(tenant, id);
        if !inner
            .clients
            .get(key.as_str())
            .is_some_and(|c| c.is_live(now))
        {
            return Err(StoreError::NotFound);
        }
        inner.clients.remove(key.as_str());
        inner.approvals.remove(key.as_str());
        inner.grants.update_all(|(t, _), g| {
            let mine = t == tenant && &g.client_id == id;
            if mine {
                g.revoked_at.get_or_insert(now);
            }
            mine
        });
        inner.note_write(now);
        Ok(())
    }

    async fn reject_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = ClientKey::text(tenant, id);
        let status = inner
            .clients
            .get(key.as_str())
            .filter(|c| c.is_live(now))
            .map(|c| c.status)
            .ok_or(StoreError::NotFound)?;
        if status != ClientStatus::Pending {
            return Err(StoreError::Conflict);
        }
        inner.clients.remove(key.as_str());
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
        let key = ClientKey::new(tenant, id);
        let current = inner
            .clients
            .get(&key)
            .filter(|c| c.is_live(now))
            .ok_or(StoreError::NotFound)?;
        if current.status != ClientStatus::Pending || current.config_version != version {
            return Err(StoreError::Conflict);
        }
        let updated = approved(current.decode(&key)?, approver, now);
        inner.put_client(&updated, true)?;
        inner.note_write(now);
        Ok(updated)
    }
}
