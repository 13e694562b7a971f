//! The storage port. Protocol code talks to [`Store`]; two adapters implement it with the same
//! semantics, proven by one contract suite (`shared/tests/store_contract/`):
//! [`memory::MemoryStore`] (embedded, the local runner's default) and
//! [`dynamo::DynamoStore`] (DynamoDB). Every key, attribute and TTL is documented in
//! `shared/storage-schema.md`.
//!
//! Contract rules every adapter follows:
//! - Reads take `now` and treat an item past its expiry as absent, because DynamoDB's TTL
//!   sweeper deletes lazily (sometimes days late).
//! - Anything that must happen once is one conditional write or one transaction.
//! - Reads that a following step depends on (a client right after its registration or approval)
//!   are strongly consistent.

pub mod dynamo;
pub mod memory;

use crate::domain::{
    AccessRequest, ApiToken, AuditEvent, AuthorizationCode, AuthorizationRequest, Client, ClientId,
    Consent, Email, Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime,
    User, VendorTrust,
};
use crate::keywrap::SealedKey;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional create found the item already there.
    #[error("the item already exists")]
    AlreadyExists,
    /// The item does not exist (or exists only past its expiry).
    #[error("the item does not exist")]
    NotFound,
    /// A conditional update found the item in another state (e.g. approving a client that is
    /// no longer pending).
    #[error("the item is not in the expected state")]
    Conflict,
    /// The tenant's pending-client quota for the current window is used up.
    #[error("the tenant's pending-client cap is reached")]
    PendingCapReached,
    /// The registration's source used up its share of the tenant's quota in this window.
    #[error("the source's share of the pending-client cap is reached")]
    SourceCapReached,
    /// The database did not answer in time, throttled beyond retries, or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be decoded: a bug or manual tampering, never a user error.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

/// The quota applied to a pending registration: at most `cap` registrations counted over the
/// current and the previous window of `window_secs` (the pending lifetime). `cap == 0` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingQuota {
    pub cap: u32,
    pub window_secs: u64,
    /// Where the registration comes from (an IPv4 address, or an IPv6 address cut to its /64)
    /// and how many registrations that source may make per window (current window only);
    /// `None`: no per-source count (client ID metadata documents, a source unknown).
    pub source: Option<(std::net::IpAddr, u32)>,
}

impl PendingQuota {
    /// The source counted and its limit, when there is one to apply.
    pub fn source_limit(&self) -> Option<(std::net::IpAddr, u32)> {
        self.source.filter(|(_, limit)| *limit > 0)
    }

    /// The window a registration at `now` counts towards.
    pub fn bucket(&self, now: UnixTime) -> i64 {
        let window = i64::try_from(self.window_secs.max(1)).unwrap_or(i64::MAX);
        now.div_euclid(window)
    }

    /// When a window ends (a per-source counter counts one window only).
    pub fn window_end(&self, bucket: i64) -> UnixTime {
        let window = i64::try_from(self.window_secs.max(1)).unwrap_or(i64::MAX);
        bucket.saturating_add(1).saturating_mul(window)
    }

    /// When a window's counter can be forgotten: once no pending client it counted can be alive.
    pub fn bucket_expiry(&self, bucket: i64) -> UnixTime {
        let window = i64::try_from(self.window_secs.max(1)).unwrap_or(i64::MAX);
        bucket.saturating_add(2).saturating_mul(window)
    }
}

/// Tenants, their users and administrators' API tokens.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Creates a tenant; [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Creates or replaces a tenant's record (settings changes).
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant, by id.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Creates a user; [`StoreError::AlreadyExists`] if the email is taken in the tenant.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// Creates or replaces a user.
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, tenant: &TenantId, email: &Email) -> Result<Option<User>, StoreError>;
    /// Every user of a tenant, by email.
    async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError>;
    /// Stores a new admin API token (keyed by its hash) until its `expires_at`.
    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError>;
    /// A live admin API token by its hash, or `None` (strongly consistent).
    async fn get_api_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ApiToken>, StoreError>;
    /// Removes an admin API token. Idempotent.
    async fn delete_api_token(&self, tenant: &TenantId, token_hash: &str)
    -> Result<(), StoreError>;
}

/// Clients: pending registrations against the tenant's quota, approval with its approval record, administrators' edits, deletion with everything the client was issued.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Stores a new pending client, counting it against the tenant's pending quota, in one
    /// atomic step: either the client is stored and counted, or nothing is written.
    /// Errors: [`StoreError::PendingCapReached`], [`StoreError::AlreadyExists`] (id collision).
    async fn create_pending_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Stores a client an administrator created (approved, never expiring) with its approval
    /// record. Errors: [`StoreError::AlreadyExists`] (id collision).
    async fn create_client(&self, client: &Client) -> Result<(), StoreError>;
    /// A live client of `tenant` (strongly consistent), or `None` when it does not exist,
    /// belongs to another tenant, or is pending past its expiry. Every read of a client (here,
    /// in [`FlowStore::load_flow`], in listings) reads its approval record with it: an approved
    /// client that does not agree with its approval ([`Client::agrees_with`]) is
    /// [`StoreError::Corrupt`], never a usable client.
    async fn get_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError>;
    /// All live clients of a tenant, oldest first.
    async fn list_clients(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<Vec<Client>, StoreError>;
    /// One page of a tenant's live clients, oldest first, starting after the cursor `after`
    /// (a [`client_cursor`] of the last client of the previous page). Returns the page and the
    /// cursor of the next one (`None` on the last page). `limit` is at least 1.
    async fn list_clients_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<Client>, Option<String>), StoreError>;
    /// Replaces a client's own record (an RFC 7592 update, a metadata-document refresh, an edit
    /// of a pending client), only while it is live and still in the status it had when read:
    /// an edit can never undo a concurrent approval or resurrect a deleted client. It never
    /// writes the approval record, so it cannot change what an administrator approved.
    /// Errors: [`StoreError::NotFound`] (gone or expired), [`StoreError::Conflict`] (its
    /// status changed meanwhile).
    async fn update_client(&self, client: &Client, now: UnixTime) -> Result<(), StoreError>;
    /// An administrator's change to an approved client (consent method, scope, name, approved
    /// pending changes): the record and its approval record, in one step, under the same
    /// conditions as [`ClientStore::update_client`]. Only the admin function's role may do this.
    async fn update_approved_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Deletes a live client and revokes every grant issued to it (so its refresh and access
    /// tokens stop working). Errors: [`StoreError::NotFound`].
    async fn delete_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Approves a pending client exactly once, in configuration `version` (the one the
    /// administrator saw): succeeds only while the client is pending, not expired and still in
    /// that version; clears its expiry (and the TTL attribute), and returns the approved client.
    /// Errors: [`StoreError::NotFound`] (missing or expired), [`StoreError::Conflict`]
    /// (already approved, or changed since).
    async fn approve_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        version: u32,
        approver: &str,
        now: UnixTime,
    ) -> Result<Client, StoreError>;
    /// Deletes a client only while it is pending and live (an administrator's rejection): a
    /// rejection decided on a queue shown before a concurrent approval never deletes the
    /// approved client. Errors: [`StoreError::NotFound`] (gone or expired),
    /// [`StoreError::Conflict`] (approved meanwhile).
    async fn reject_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError>;
}

/// The audit trail and users' requests for an administrator's approval.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Stores an audit event until its `expires_at` (the tenant's retention).
    async fn put_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// One page of a tenant's live audit events, newest first, starting after the cursor
    /// `before` (the [`AuditEvent::sort_key`] of the last event of the previous page). Returns
    /// the page and the next cursor (`None` on the last page). `limit` is at least 1.
    async fn list_audit_events(
        &self,
        tenant: &TenantId,
        before: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError>;
    /// Records a user's request that an administrator approve a pending client, once per user
    /// and client, only while the client is pending and live (one transaction). `Ok(true)`: a
    /// new request; `Ok(false)`: this user had asked already (nothing written).
    /// Errors: [`StoreError::NotFound`] (the client is gone, expired or approved meanwhile).
    async fn request_access(
        &self,
        request: &AccessRequest,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// The live requests for one client (`Some`) or for every client of the tenant, oldest
    /// first.
    async fn list_access_requests(
        &self,
        tenant: &TenantId,
        client: Option<&ClientId>,
        now: UnixTime,
    ) -> Result<Vec<AccessRequest>, StoreError>;
}

/// Vendor trusts: written by the admin function alone; the register function creates a client
/// approved by one only while it is active.
#[async_trait]
pub trait TrustStore: Send + Sync + 'static {
    /// Creates or replaces (re-activates) a trust.
    async fn put_trust(&self, trust: &VendorTrust) -> Result<(), StoreError>;
    async fn get_trust(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<VendorTrust>, StoreError>;
    /// Every trust of a tenant, newest first.
    async fn list_trusts(&self, tenant: &TenantId) -> Result<Vec<VendorTrust>, StoreError>;
    /// Marks a trust revoked (idempotent: the first time stays). Clients it approved stay.
    /// Errors: [`StoreError::NotFound`].
    async fn revoke_trust(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Stores a new client approved by the trust it names (`client.vendor_trust`), in one
    /// transaction that holds only while that trust exists and is not revoked, counted against
    /// the tenant's registration quota like a pending client (an approved client never expires,
    /// so a flood of registrations matching a trust must not fill the table either).
    /// Errors: [`StoreError::Conflict`] (no such active trust), [`StoreError::AlreadyExists`],
    /// [`StoreError::PendingCapReached`].
    async fn create_trusted_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError>;
}

/// The hosted flow: parked authorization requests, sessions, consents, codes, sign-in attempt counters, and the one transaction that ends an authorization.
#[async_trait]
pub trait FlowStore: Send + Sync + 'static {
    /// The items one step of the hosted flow needs, in one round trip (strongly consistent):
    /// the parked authorization request, the client and the session, each only if asked for
    /// and live.
    async fn load_flow(&self, keys: FlowKeys<'_>, now: UnixTime) -> Result<FlowItems, StoreError>;
    /// Ends an authorization with a code, in one transaction: consumes the parked request
    /// (exactly once; `None` when the code is issued straight from the authorization request),
    /// stores the code, records consent, and approves the pending client when `approve` is
    /// given — only while it is still pending in the configuration version it was read in.
    /// Errors: [`StoreError::NotFound`] (the request is gone, or the pending client expired),
    /// [`StoreError::Conflict`] (the client is no longer pending, or changed since it was read).
    async fn finish_authorization(
        &self,
        finish: Finish<'_>,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// Counts one sign-in attempt for an account (`account`: the SHA-256 of its lowercased
    /// email, whether or not it exists) in fixed window `window` of the tenant, atomically, and
    /// returns the count including it — the same count for every process (Lambda container),
    /// so of any number of concurrent attempts exactly the first N are let through. The counter
    /// lives until `expires_at` (the end of its window) and is never dropped before.
    async fn count_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u32, StoreError>;
    /// Takes back one counted attempt that succeeded: only failures count against an account.
    async fn uncount_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
    ) -> Result<(), StoreError>;
    /// Parks an authorization request until its `expires_at`.
    async fn put_authorization_request(&self, req: &AuthorizationRequest)
    -> Result<(), StoreError>;
    /// A live authorization request (strongly consistent), or `None`.
    async fn get_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError>;
    /// Removes a live authorization request and returns it, exactly once: of two concurrent
    /// calls one gets the request and the other `None` (a replayed consent form).
    async fn take_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError>;
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// A live session of `tenant` by the SHA-256 of its id, or `None`.
    async fn get_session(
        &self,
        tenant: &TenantId,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError>;
    /// Ends a session (sign-out). Idempotent.
    async fn delete_session(&self, tenant: &TenantId, id_hash: &str) -> Result<(), StoreError>;
    /// Records (or replaces) a user's consent to a client.
    async fn put_consent(&self, consent: &Consent) -> Result<(), StoreError>;
    async fn get_consent(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        user_id: &str,
    ) -> Result<Option<Consent>, StoreError>;
    /// Stores a new authorization code (keyed by its hash) until its `expires_at`.
    async fn create_code(&self, code: &AuthorizationCode) -> Result<(), StoreError>;
    /// A live code by its hash, or `None` (strongly consistent). Redeemed codes are returned
    /// with `redeemed_grant` set, so a replay can be recognised.
    async fn get_code(
        &self,
        tenant: &TenantId,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationCode>, StoreError>;
}

/// The token side: code redemption, grants, refresh rotation, signing keys.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Redeems a live code exactly once: marks it redeemed by `grant` and stores the grant and
    /// its first refresh token, all in one transaction, only while the code's client exists
    /// (so no grant can appear after the client's deletion revoked its grants).
    /// Errors: [`StoreError::Conflict`] (already redeemed), [`StoreError::NotFound`] (missing
    /// or expired, or the client is gone).
    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// A grant by id, revoked or not (callers check [`Grant::is_active`]).
    async fn get_grant(&self, tenant: &TenantId, id: &str) -> Result<Option<Grant>, StoreError>;
    /// Revokes a grant and so every token of it. Idempotent; the first revocation time stays.
    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// A live refresh token by its hash (strongly consistent), rotated or not.
    async fn get_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<RefreshToken>, StoreError>;
    /// Exchanges `old` for `new` in one transaction: only while the grant is not revoked, and
    /// only if `old` was not rotated, or was rotated less than `grace_secs` ago (concurrent
    /// refreshes). Errors: [`StoreError::Conflict`] (reuse after the grace window),
    /// [`StoreError::NotFound`] (grant revoked or gone, or `old` expired).
    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        grace_secs: i64,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// The tenant's published signing keys, newest first. Each tenant has its own key set:
    /// one tenant's JWKS never verifies another's tokens.
    async fn list_public_keys(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<PublicSigningKey>, StoreError>;
    /// The private half of one of the tenant's signing keys, sealed (`crate::keywrap`). Only
    /// the token function may read it.
    async fn get_private_key(
        &self,
        tenant: &TenantId,
        kid: &str,
    ) -> Result<Option<SealedKey>, StoreError>;
    /// Adds a signing key to the tenant's set: both halves in one transaction.
    /// Errors: [`StoreError::AlreadyExists`] (the key id is taken).
    async fn add_signing_key(
        &self,
        tenant: &TenantId,
        public: &PublicSigningKey,
        private: &SealedKey,
    ) -> Result<(), StoreError>;
}

/// The whole port, as protocol code holds it (`Arc<dyn Store>`). Its parts are separate traits
/// so that each adapter implements one topic per file; bring the parts a module calls into
/// scope (`use crate::store::{ClientStore, ...}`).
pub trait Store:
    Directory + ClientStore + FlowStore + TokenStore + AuditStore + TrustStore
{
}

impl<T: Directory + ClientStore + FlowStore + TokenStore + AuditStore + TrustStore> Store for T {}

/// What [`FlowStore::load_flow`] reads.
#[derive(Debug, Clone, Copy)]
pub struct FlowKeys<'a> {
    pub tenant: &'a TenantId,
    pub request_id: Option<&'a str>,
    pub client_id: Option<&'a ClientId>,
    pub session_hash: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct FlowItems {
    pub request: Option<AuthorizationRequest>,
    pub client: Option<Client>,
    pub session: Option<Session>,
    /// The asked-for client when it is a pending client past its expiry that is still stored
    /// (DynamoDB's sweeper deletes lazily), so that its expiry can be reported; never usable.
    pub expired_client: Option<Client>,
}

/// What [`FlowStore::finish_authorization`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Finish<'a> {
    pub request: Option<&'a AuthorizationRequest>,
    pub code: &'a AuthorizationCode,
    pub consent: Option<&'a Consent>,
    /// Approve this pending client (as loaded), recording this administrator's user id.
    pub approve: Option<(&'a Client, &'a str)>,
}

/// The listing order and pagination cursor of a client: creation time, then id.
pub fn client_cursor(client: &Client) -> String {
    format!("{:012}#{}", client.created_at.max(0), client.client_id)
}

/// A client as read, checked against its approval record: an approved client is believed only
/// while it agrees with what the administrator approved. Disagreement means a record was
/// written by code that may not approve (or by hand): it is refused as corrupt, loudly, and
/// never used. Shared by both adapters.
///
/// A client a vendor trust approved at its registration has no approval record: it is believed
/// while the trust record (written by the admin function alone) admits it
/// ([`VendorTrust::admits`]). Adapters read the trust only for such clients.
pub(crate) fn verified(
    client: Client,
    approval: Option<&crate::domain::Approval>,
    trust: Option<&VendorTrust>,
) -> Result<Client, StoreError> {
    if client.status == crate::domain::ClientStatus::Pending
        || approval.is_some_and(|a| client.agrees_with(a))
        || (approval.is_none() && trust.is_some_and(|t| t.admits(&client)))
    {
        return Ok(client);
    }
    tracing::error!(
        client_id = %client.client_id,
        has_approval_record = approval.is_some(),
        "a client record claims an approval its approval record does not hold; refusing it"
    );
    Err(StoreError::Corrupt(format!(
        "client {} does not agree with its approval record",
        client.client_id
    )))
}

/// The vendor trust an adapter must read to verify `client` ([`verified`]): only for an
/// approved client without an approval record that names one.
pub(crate) fn trust_to_check<'c>(
    client: &'c Client,
    approval: Option<&crate::domain::Approval>,
) -> Option<&'c str> {
    (client.status == crate::domain::ClientStatus::Approved && approval.is_none())
        .then_some(client.vendor_trust.as_deref())
        .flatten()
}

/// Access requests in listing order: oldest first, then by user (both adapters).
pub(crate) fn sort_requests(requests: &mut [AccessRequest]) {
    requests.sort_by(|a, b| {
        (a.requester.requested_at, &a.requester.user_id)
            .cmp(&(b.requester.requested_at, &b.requester.user_id))
    });
}

/// Approval as a pure state change, shared by both adapters so they cannot drift apart.
pub(crate) fn approved(mut client: Client, approver: &str, now: UnixTime) -> Client {
    client.status = crate::domain::ClientStatus::Approved;
    client.expires_at = None;
    client.approved_by = Some(approver.to_owned());
    client.approved_at = Some(now);
    client
}
