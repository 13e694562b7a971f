//! The embedded store: in-process maps behind one mutex. Same contract as DynamoDB, including
//! lazy expiry (reads check `expires_at`; a periodic sweep reclaims memory).

use super::{StoreError, verified};
use crate::domain::{
    ApiToken, Approval, AuthorizationCode, AuthorizationRequest, Client, ClientId, Consent, Email,
    Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime, User,
};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

mod clients;
mod directory;
mod flow;
mod tokens;

/// Writes between two sweeps of expired items.
const SWEEP_EVERY: u32 = 512;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
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
    pub(super) fn note_write(&mut self, now: UnixTime) {
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
    pub(super) fn client(
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
    pub(super) fn replace_client(
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

    pub(super) fn counter(&self, tenant: &TenantId, bucket: i64, now: UnixTime) -> u32 {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied change: every mutation
        // below is computed first and applied with single map operations.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
