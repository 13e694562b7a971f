//! The embedded store: in-process maps behind one mutex. Same contract as DynamoDB, including
//! lazy expiry: reads check `expires_at`, so an expired item is gone the moment it expires,
//! whether or not its memory was reclaimed yet.
//!
//! Reclaiming is what keeps the process small under a registration flood (every pending client
//! lives for its TTL, so about rate × lifetime of them are held). Each expiring map carries a
//! time-ordered index ([`expiry::Expiring`]); every write first pops what has expired from the
//! head of the indexes, at most [`SWEEP_BUDGET`] entries a map, more than any write adds, so
//! the sweep keeps pace with the writes and costs in proportion to what expired rather than to
//! what lives (the former full `retain` sweep walked every live item). Clients, the bulk of
//! such a flood, are kept in a compact form ([`stored::StoredClient`]: one shared key and
//! one JSON document) and rebuilt when read.

use super::{StoreError, verified};
use crate::domain::{
    ApiToken, Approval, AuthorizationCode, AuthorizationRequest, Client, Consent, Email, Grant,
    PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime, User,
};
use expiry::{Expires, Expiring};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use stored::{ClientKey, StoredClient};

mod audit;
mod clients;
mod directory;
mod expiry;
mod flow;
mod stored;
mod tokens;
mod trust;

/// Index entries each map's sweep may visit per write: a write adds at most a few, so the
/// sweep drains expired items faster than they arrive, while one write never pays for a
/// whole second's worth of them.
const SWEEP_BUDGET: usize = 64;

/// How long a counter is kept past the end of its window. Counting is read-modify-write under
/// the caller's `now`: an attempt whose clock lags the write that would reclaim the counter (a
/// slow request, or the contract suite replaying earlier times) must still add to the count
/// rather than start it again at one. Counters are small; records have no such grace.
const COUNTER_GRACE_SECS: i64 = 300;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    tenants: HashMap<TenantId, Tenant>,
    clients: Expiring<ClientKey, StoredClient>,
    /// The approval records, kept apart as DynamoDB keeps them (`APPROVAL#`).
    approvals: HashMap<ClientKey, Approval>,
    /// (tenant, window) → registrations counted, with the counter's own expiry.
    pending_counters: Expiring<(TenantId, i64), (u32, UnixTime), COUNTER_GRACE_SECS>,
    /// (tenant, source, window) → registrations from that source (the current window only).
    source_counters:
        Expiring<(TenantId, std::net::IpAddr, i64), (u32, UnixTime), COUNTER_GRACE_SECS>,
    /// (tenant, account hash, window) → failed sign-ins, with the counter's own expiry.
    signin_failures: Expiring<(TenantId, String, i64), (u32, UnixTime), COUNTER_GRACE_SECS>,
    users: HashMap<(TenantId, Email), User>,
    authorization_requests: Expiring<(TenantId, String), AuthorizationRequest>,
    sessions: Expiring<(TenantId, String), Session>,
    consents: HashMap<(TenantId, crate::domain::ClientId, String), Consent>,
    codes: Expiring<(TenantId, String), AuthorizationCode>,
    grants: Expiring<(TenantId, String), Grant>,
    refresh_tokens: Expiring<(TenantId, String), RefreshToken>,
    api_tokens: Expiring<(TenantId, String), ApiToken>,
    /// Each tenant's published signing keys, and their sealed private halves by (tenant, kid).
    public_keys: HashMap<TenantId, Vec<PublicSigningKey>>,
    private_keys: HashMap<(TenantId, String), crate::keywrap::SealedKey>,
    /// tenant → audit events by sort key (oldest first; read newest first).
    audit: HashMap<TenantId, std::collections::BTreeMap<String, crate::domain::AuditEvent>>,
    /// (tenant, client) → access requests by user id.
    access_requests: HashMap<
        (TenantId, crate::domain::ClientId),
        std::collections::BTreeMap<String, crate::domain::AccessRequest>,
    >,
    /// (tenant, trust id) → vendor trust.
    trusts: HashMap<(TenantId, String), crate::domain::VendorTrust>,
}

macro_rules! expires_at {
    ($($record:ty),*) => {$(
        impl Expires for $record {
            fn expiry(&self) -> Option<UnixTime> {
                Some(self.expires_at)
            }
        }
    )*};
}

expires_at!(
    AuthorizationRequest,
    Session,
    AuthorizationCode,
    Grant,
    RefreshToken,
    ApiToken
);

impl Inner {
    /// Called on every write: reclaims what expired at the head of each index.
    fn note_write(&mut self, now: UnixTime) {
        self.clients.sweep(now, SWEEP_BUDGET);
        self.pending_counters.sweep(now, SWEEP_BUDGET);
        self.source_counters.sweep(now, SWEEP_BUDGET);
        self.signin_failures.sweep(now, SWEEP_BUDGET);
        self.authorization_requests.sweep(now, SWEEP_BUDGET);
        self.sessions.sweep(now, SWEEP_BUDGET);
        self.codes.sweep(now, SWEEP_BUDGET);
        self.grants.sweep(now, SWEEP_BUDGET);
        self.refresh_tokens.sweep(now, SWEEP_BUDGET);
        self.api_tokens.sweep(now, SWEEP_BUDGET);
    }

    /// A live client, checked against its approval record ([`verified`]).
    fn client(&self, key: &ClientKey, now: UnixTime) -> Result<Option<Client>, StoreError> {
        let Some(stored) = self.clients.get(key).filter(|c| c.is_live(now)) else {
            return Ok(None);
        };
        let client = stored.decode(key)?;
        let approval = self.approvals.get(key);
        let trust = crate::store::trust_to_check(&client, approval)
            .and_then(|id| self.trusts.get(&(client.tenant.clone(), id.to_owned())))
            .cloned();
        verified(client, approval, trust.as_ref()).map(Some)
    }

    /// A pending client past its expiry that the sweep has not reclaimed yet.
    fn expired_client(&self, key: &ClientKey, now: UnixTime) -> Option<Client> {
        self.clients
            .get(key)
            .filter(|c| !c.is_live(now))
            .and_then(|c| c.decode(key).ok())
    }

    /// Stores `client` (in its compact form) and, when `with_approval`, its approval record.
    fn put_client(&mut self, client: &Client, with_approval: bool) -> Result<(), StoreError> {
        let stored = StoredClient::encode(client)?;
        let key = ClientKey::of(client);
        if with_approval {
            self.approvals.insert(key.clone(), Approval::of(client));
        }
        self.clients.insert(key, stored);
        Ok(())
    }

    /// Replaces a live client's record, only in the status it had when read, and with it, when
    /// `with_approval`, its approval record (the DynamoDB adapter's conditional transaction).
    fn replace_client(
        &mut self,
        client: &Client,
        with_approval: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let key = ClientKey::text(&client.tenant, &client.client_id);
        let current = self
            .clients
            .get(key.as_str())
            .filter(|c| c.is_live(now))
            .ok_or(StoreError::NotFound)?;
        if current.status != client.status {
            return Err(StoreError::Conflict);
        }
        self.put_client(client, with_approval)?;
        self.note_write(now);
        Ok(())
    }

    /// Counts one registration against the tenant's quota, or refuses it when the current
    /// and previous windows hold `cap` already.
    fn count_registration(
        &mut self,
        tenant: &TenantId,
        quota: crate::store::PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if quota.cap == 0 {
            return Ok(());
        }
        let bucket = quota.bucket(now);
        let current = self.counter(tenant, bucket, now);
        if current + self.counter(tenant, bucket - 1, now) >= quota.cap {
            return Err(StoreError::PendingCapReached);
        }
        if let Some((source, limit)) = quota.source_limit() {
            let key = (tenant.clone(), source, bucket);
            let used = self.source_counters.live_count(&key, now);
            if used >= limit {
                return Err(StoreError::SourceCapReached);
            }
            self.source_counters
                .insert(key, (used + 1, quota.window_end(bucket)));
        }
        self.pending_counters.insert(
            (tenant.clone(), bucket),
            (current + 1, quota.bucket_expiry(bucket)),
        );
        Ok(())
    }

    fn counter(&self, tenant: &TenantId, bucket: i64, now: UnixTime) -> u32 {
        self.pending_counters
            .live_count(&(tenant.clone(), bucket), now)
    }

    #[cfg(test)]
    fn client_count(&self) -> usize {
        self.clients.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ApplicationType, AuthMethod, ClientId, ClientMetadata, ClientStatus, ConsentMethod,
        CreatedByType, ScopeSet,
    };
    use crate::store::{ClientStore, PendingQuota};

    fn pending(now: UnixTime, ttl: i64) -> Client {
        Client {
            tenant: TenantId::parse("demo").unwrap_or_else(|| panic!()),
            client_id: ClientId::generate(),
            secret_hash: None,
            status: ClientStatus::Pending,
            created_by: CreatedByType::Dcr,
            consent_method: ConsentMethod::Required,
            created_at: now,
            expires_at: Some(now + ttl),
            approved_by: None,
            approved_at: None,
            registration_token_hash: None,
            config_version: 1,
            metadata: ClientMetadata {
                client_name: "c".into(),
                redirect_uris: Vec::new(),
                grant_types: Vec::new(),
                response_types: Vec::new(),
                token_endpoint_auth_method: AuthMethod::None,
                scope: ScopeSet::default(),
                application_type: ApplicationType::Web,
                client_uri: None,
                logo_uri: None,
                tos_uri: None,
                policy_uri: None,
                software_id: None,
                software_version: None,
                contacts: Vec::new(),
                id_token_signed_response_alg: None,
            },
            pending_changes: None,
            vendor_trust: None,
            document: None,
        }
    }

    /// A steady flow of registrations holds about rate × lifetime clients, not all of them.
    #[tokio::test]
    async fn writes_reclaim_expired_clients_as_they_go() {
        let store = MemoryStore::new();
        let quota = PendingQuota {
            cap: 0,
            window_secs: 10,
            source: None,
        };
        let (rate, ttl) = (500, 10);
        for now in 1_000..1_060 {
            for _ in 0..rate {
                let c = pending(now, ttl);
                store
                    .create_pending_client(&c, quota, now)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let held = store.lock().client_count();
            assert!(
                held <= (rate * ttl) as usize + rate as usize,
                "{held} at {now}"
            );
        }
        // An approved client outlives the expiry it had while pending.
        let c = pending(2_000, ttl);
        store
            .create_pending_client(&c, quota, 2_000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .approve_client(&c.tenant, &c.client_id, 1, "admin", 2_001)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for now in 2_010..2_020 {
            store
                .create_pending_client(&pending(now, ttl), quota, now)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let read = store.get_client(&c.tenant, &c.client_id, 5_000).await;
        assert!(read.unwrap_or_else(|e| panic!("{e}")).is_some());
    }
}
