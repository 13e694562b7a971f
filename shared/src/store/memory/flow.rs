//! The hosted flow's reads and once-only writes on the embedded store.

use crate::domain::{Approval, AuthorizationRequest, ClientStatus, TenantId, UnixTime};
use crate::store::{Finish, FlowItems, FlowKeys, StoreError, approved};

use super::*;

impl MemoryStore {
    pub(super) async fn tx_finish_authorization(
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

    pub(super) async fn tx_load_flow(
        &self,
        keys: FlowKeys<'_>,
        now: UnixTime,
    ) -> Result<FlowItems, StoreError> {
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

    pub(super) async fn tx_take_authorization_request(
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

    pub(super) async fn tx_count_signin_attempt(
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

    pub(super) async fn tx_uncount_signin_attempt(
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
}
