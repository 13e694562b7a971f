//! The embedded store: in-process maps behind one mutex. Same contract as DynamoDB, including
//! lazy expiry (reads check `expires_at`; a periodic sweep reclaims memory).

use super::{
    Finish, FlowItems, FlowKeys, PendingQuota, Store, StoreError, approved, client_cursor, verified,
};
use crate::domain::{
    ApiToken, Approval, AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus,
    Consent, Email, Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime,
    User,
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
    /// The approval records, kept apart as DynamoDB keeps them (`APPROVAL#`).
    approvals: HashMap<(TenantId, ClientId), Approval>,
    /// (tenant, window) → registrations counted, with the counter's own expiry.
    pending_counters: HashMap<(TenantId, i64), (u32, UnixTime)>,
    /// (tenant, account hash, window) → failed sign-ins, with the counter's own expiry.
    signin_failures: HashMap<(TenantId, String, i64), (u32, UnixTime)>,
    users: HashMap<(TenantId, Email), User>,
    authorization_requests: HashMap<(TenantId, String), AuthorizationRequest>,
    sessions: HashMap<(TenantId, String), Session>,
    consents: HashMap<(TenantId, ClientId, String), Consent>,
    codes: HashMap<(TenantId, String), AuthorizationCode>,
    grants: HashMap<(TenantId, String), Grant>,
    refresh_tokens: HashMap<(TenantId, String), RefreshToken>,
    api_tokens: HashMap<(TenantId, String), ApiToken>,
    public_keys: Vec<PublicSigningKey>,
    private_keys: HashMap<String, String>,
    writes_since_sweep: u32,
}

impl Inner {
    fn note_write(&mut self, now: UnixTime) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.clients.retain(|_, c| c.is_live(now));
            self.pending_counters.retain(|_, (_, exp)| now < *exp);
            self.signin_failures.retain(|_, (_, exp)| now < *exp);
            self.authorization_requests.retain(|_, r| r.is_live(now));
            self.sessions.retain(|_, r| r.is_live(now));
            self.codes.retain(|_, r| r.is_live(now));
            self.grants.retain(|_, g| now < g.expires_at);
            self.refresh_tokens.retain(|_, t| t.is_live(now));
            self.api_tokens.retain(|_, t| t.is_live(now));
        }
    }

    /// A live client, checked against its approval record ([`verified`]).
    fn client(
        &self,
        key: &(TenantId, ClientId),
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        match self.clients.get(key).filter(|c| c.is_live(now)) {
            Some(c) => verified(c.clone(), self.approvals.get(key)).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces a live client's record, only in the status it had when read, and with it, when
    /// `with_approval`, its approval record (the DynamoDB adapter's conditional transaction).
    fn replace_client(
        &mut self,
        client: &Client,
        with_approval: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let key = (client.tenant.clone(), client.client_id.clone());
        let current = self
            .clients
            .get(&key)
            .filter(|c| c.is_live(now))
            .ok_or(StoreError::NotFound)?;
        if current.status != client.status {
            return Err(StoreError::Conflict);
        }
        if with_approval {
            self.approvals.insert(key.clone(), Approval::of(client));
        }
        self.clients.insert(key, client.clone());
        self.note_write(now);
        Ok(())
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

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut out: Vec<Tenant> = self.lock().tenants.values().cloned().collect();
        out.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(out)
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

    async fn load_flow(&self, keys: FlowKeys<'_>, now: UnixTime) -> Result<FlowItems, StoreError> {
        let inner = self.lock();
        let t = keys.tenant.clone();
        Ok(FlowItems {
            request: keys.request_id.and_then(|id| {
                inner
                    .authorization_requests
                    .get(&(t.clone(), id.to_owned()))
                    .filter(|r| r.is_live(now))
                    .cloned()
            }),
            client: match keys.client_id {
                Some(id) => inner.client(&(t.clone(), id.clone()), now)?,
                None => None,
            },
            session: keys.session_hash.and_then(|h| {
                inner
                    .sessions
                    .get(&(t.clone(), h.to_owned()))
                    .filter(|s| s.is_live(now))
                    .cloned()
            }),
        })
    }

    async fn finish_authorization(
        &self,
        finish: Finish<'_>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let code = finish.code;
        // Check everything first, then apply: all or nothing, like the DynamoDB transaction.
        let request_key = finish.request.map(|r| (r.tenant.clone(), r.id.clone()));
        if let Some(key) = &request_key
            && !inner
                .authorization_requests
                .get(key)
                .is_some_and(|r| r.is_live(now))
        {
            return Err(StoreError::NotFound);
        }
        let client_key = (code.tenant.clone(), code.client_id.clone());
        if let Some((as_read, _)) = finish.approve {
            match inner.clients.get(&client_key).filter(|c| c.is_live(now)) {
                None => return Err(StoreError::NotFound),
                Some(c)
                    if c.status != ClientStatus::Pending
                        || c.config_version != as_read.config_version =>
                {
                    return Err(StoreError::Conflict);
                }
                Some(_) => {}
            }
        }
        let code_key = (code.tenant.clone(), code.code_hash.clone());
        if inner.codes.contains_key(&code_key) {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(key) = request_key {
            inner.authorization_requests.remove(&key);
        }
        inner.codes.insert(code_key, code.clone());
        if let Some(c) = finish.consent {
            inner.consents.insert(
                (c.tenant.clone(), c.client_id.clone(), c.user_id.clone()),
                c.clone(),
            );
        }
        if let Some((as_read, approver)) = finish.approve {
            let updated = approved(as_read.clone(), approver, now);
            inner
                .approvals
                .insert(client_key.clone(), Approval::of(&updated));
            inner.clients.insert(client_key, updated);
        }
        inner.note_write(now);
        Ok(())
    }

    async fn count_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u32, StoreError> {
        let mut inner = self.lock();
        let entry = inner
            .signin_failures
            .entry((tenant.clone(), account.to_owned(), window))
            .or_insert((0, expires_at));
        if now >= entry.1 {
            *entry = (0, expires_at);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = expires_at;
        let count = entry.0;
        // Swept by expiry only, like every other item: a flood of other accounts' failures
        // never makes room by dropping a live counter.
        inner.note_write(now);
        Ok(count)
    }

    async fn uncount_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(entry) =
            inner
                .signin_failures
                .get_mut(&(tenant.clone(), account.to_owned(), window))
        {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
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

    async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        let mut out: Vec<User> = self
            .lock()
            .users
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, u)| u.clone())
            .collect();
        out.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
        Ok(out)
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = (token.tenant.clone(), token.token_hash.clone());
        if inner.api_tokens.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.api_tokens.insert(key, token.clone());
        inner.note_write(token.created_at);
        Ok(())
    }

    async fn get_api_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ApiToken>, StoreError> {
        Ok(self
            .lock()
            .api_tokens
            .get(&(tenant.clone(), token_hash.to_owned()))
            .filter(|t| t.is_live(now))
            .cloned())
    }

    async fn delete_api_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .api_tokens
            .remove(&(tenant.clone(), token_hash.to_owned()));
        Ok(())
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

    async fn delete_session(&self, tenant: &TenantId, id_hash: &str) -> Result<(), StoreError> {
        self.lock()
            .sessions
            .remove(&(tenant.clone(), id_hash.to_owned()));
        Ok(())
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
            .get(&(code.tenant.clone(), code.client_id.clone()))
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
        if let Some(g) = self.lock().grants.get_mut(&(tenant.clone(), id.to_owned())) {
            g.revoked_at.get_or_insert(now);
        }
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
            .get_mut(&key)
            .filter(|t| t.is_live(now))
            .ok_or(StoreError::NotFound)?;
        match current.rotated_at {
            Some(at) if at <= now - grace_secs => return Err(StoreError::Conflict),
            Some(_) => {}
            None => current.rotated_at = Some(now),
        }
        inner
            .refresh_tokens
            .insert((new.tenant.clone(), new.token_hash.clone()), new.clone());
        inner.note_write(now);
        Ok(())
    }

    async fn list_public_keys(&self) -> Result<Vec<PublicSigningKey>, StoreError> {
        let mut keys = self.lock().public_keys.clone();
        keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        Ok(keys)
    }

    async fn get_private_key(&self, kid: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().private_keys.get(kid).cloned())
    }

    async fn add_signing_key(
        &self,
        public: &PublicSigningKey,
        private_pkcs8_b64: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.private_keys.contains_key(&public.kid) {
            return Err(StoreError::AlreadyExists);
        }
        inner
            .private_keys
            .insert(public.kid.clone(), private_pkcs8_b64.to_owned());
        inner.public_keys.push(public.clone());
        Ok(())
    }
}
