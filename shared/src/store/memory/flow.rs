//! [`FlowStore`] on the embedded store: parked requests, sessions, consents,
//! codes, sign-in counters, and the transaction that ends an authorization.

use super::*;
use crate::domain::{
    Approval, AuthorizationCode, AuthorizationRequest, ClientId, ClientStatus, Consent, Session,
    TenantId, UnixTime,
};
use crate::store::{Finish, FlowItems, FlowKeys, FlowStore, StoreError, approved};
use async_trait::async_trait;

#[async_trait]
impl FlowStore for MemoryStore {
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
                Some(id) => inner.client(&ClientKey::new(&t, id), now)?,
                None => None,
            },
            session: keys.session_hash.and_then(|h| {
                inner
                    .sessions
                    .get(&(t.clone(), h.to_owned()))
                    .filter(|s| s.is_live(now))
                    .cloned()
            }),
            expired_client: match keys.client_id {
                Some(id) => inner.expired_client(&ClientKey::new(&t, id), now),
                None => None,
            },
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
        let client_key = ClientKey::new(&code.tenant, &code.client_id);
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
        let approval = match finish.approve {
            Some((as_read, approver)) => {
                let updated = approved(as_read.clone(), approver, now);
                Some((Approval::of(&updated), StoredClient::encode(&updated)?))
            }
            None => None,
        };
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
        if let Some((approval, stored)) = approval {
            inner.approvals.insert(client_key.clone(), approval);
            inner.clients.insert(client_key, stored);
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
        let key = (tenant.clone(), account.to_owned(), window);
        let count = inner
            .signin_failures
            .live_count(&key, now)
            .saturating_add(1);
        inner.signin_failures.insert(key, (count, expires_at));
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
        self.lock().signin_failures.update(
            &(tenant.clone(), account.to_owned(), window),
            |entry| {
                entry.0 = entry.0.saturating_sub(1);
            },
        );
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
}
