//! The embedded store: in-process maps behind one mutex. Same contract as DynamoDB, including
//! lazy expiry (reads check `expires_at`; a periodic sweep reclaims memory).

use super::{PendingQuota, Store, StoreError, approved};
use crate::domain::{
    AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus, Consent, Email,
    Session, Tenant, TenantId, UnixTime, User,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Writes between two sweeps of expired items.
const SWEEP_EVERY: u32 = 512;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<TenantId, Tenant>,
    clients: HashMap<(TenantId, ClientId), Client>,
    /// (tenant, window) → registrations counted, with the counter's own expiry.
    pending_counters: HashMap<(TenantId, i64), (u32, UnixTime)>,
    users: HashMap<(TenantId, Email), User>,
    authorization_requests: HashMap<(TenantId, String), AuthorizationRequest>,
    sessions: HashMap<(TenantId, String), Session>,
    consents: HashMap<(TenantId, ClientId, String), Consent>,
    codes: HashMap<(TenantId, String), AuthorizationCode>,
    writes_since_sweep: u32,
}

impl Inner {
    fn note_write(&mut self, now: UnixTime) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.clients.retain(|_, c| c.is_live(now));
            self.pending_counters.retain(|_, (_, exp)| now < *exp);
            self.authorization_requests.retain(|_, r| r.is_live(now));
            self.sessions.retain(|_, r| r.is_live(now));
            self.codes.retain(|_, r| r.is_live(now));
        }
    }

    fn counter(&self, tenant: &TenantId, bucket: i64, now: UnixTime) -> u32 {
        match self.pending_counters.get(&(tenant.clone(), bucket)) {
            Some((n, exp)) if now < *exp => *n,
            _ => 0,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied change: every mutation
        // below is computed first and applied with single map operations.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.tenants.contains_key(&tenant.id) {
            return Err(StoreError::AlreadyExists);
        }
        inner.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.lock()
            .tenants
            .insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self.lock().tenants.get(id).cloned())
    }

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

    async fn get_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        Ok(self
            .lock()
            .clients
            .get(&(tenant.clone(), id.clone()))
            .filter(|c| c.is_live(now))
            .cloned())
    }

    async fn list_clients(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<Vec<Client>, StoreError> {
        let mut out: Vec<Client> = self
            .lock()
            .clients
            .iter()
            .filter(|((t, _), c)| t == tenant && c.is_live(now))
            .map(|(_, c)| c.clone())
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
        Ok(out)
    }

    async fn approve_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
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
        if current.status != ClientStatus::Pending {
            return Err(StoreError::Conflict);
        }
        let updated = approved(current, approver, now);
        inner.clients.insert(key, updated.clone());
        inner.note_write(now);
        Ok(updated)
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (user.tenant.clone(), user.email.clone());
        if inner.users.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.users.insert(key, user.clone());
        Ok(())
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.lock()
            .users
            .insert((user.tenant.clone(), user.email.clone()), user.clone());
        Ok(())
    }

    async fn get_user(&self, tenant: &TenantId, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .get(&(tenant.clone(), email.clone()))
            .cloned())
    }

    async fn put_authorization_request(
        &self,
        req: &AuthorizationRequest,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner
            .authorization_requests
            .insert((req.tenant.clone(), req.id.clone()), req.clone());
        inner.note_write(req.created_at);
        Ok(())
    }

    async fn get_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        Ok(self
            .lock()
            .authorization_requests
            .get(&(tenant.clone(), id.to_owned()))
            .filter(|r| r.is_live(now))
            .cloned())
    }

    async fn take_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        let mut inner = self.lock();
        let key = (tenant.clone(), id.to_owned());
        if !inner
            .authorization_requests
            .get(&key)
            .is_some_and(|r| r.is_live(now))
        {
            return Ok(None);
        }
        Ok(inner.authorization_requests.remove(&key))
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (session.tenant.clone(), session.id_hash.clone());
        if inner.sessions.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.sessions.insert(key, session.clone());
        inner.note_write(session.created_at);
        Ok(())
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .get(&(tenant.clone(), id_hash.to_owned()))
            .filter(|s| s.is_live(now))
            .cloned())
    }

    async fn put_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        self.lock().consents.insert(
            (
                consent.tenant.clone(),
                consent.client_id.clone(),
                consent.user_id.clone(),
            ),
            consent.clone(),
        );
        Ok(())
    }

    async fn get_consent(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        user_id: &str,
    ) -> Result<Option<Consent>, StoreError> {
        Ok(self
            .lock()
            .consents
            .get(&(tenant.clone(), client.clone(), user_id.to_owned()))
            .cloned())
    }

    async fn create_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (code.tenant.clone(), code.code_hash.clone());
        if inner.codes.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.codes.insert(key, code.clone());
        inner.note_write(code.auth_time);
        Ok(())
    }

    async fn get_code(
        &self,
        tenant: &TenantId,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        Ok(self
            .lock()
            .codes
            .get(&(tenant.clone(), code_hash.to_owned()))
            .filter(|c| c.is_live(now))
            .cloned())
    }
}
