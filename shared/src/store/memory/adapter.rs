//! The storage port ([`Store`]) on the embedded store; operations that must happen once or all
//! together are in `clients.rs`, `flow.rs` and `grants.rs`, each under the one lock.

use crate::domain::{
    ApiToken, AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus, Consent,
    Email, Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime, User,
};
use crate::store::{Finish, FlowItems, FlowKeys, PendingQuota, Store, StoreError, client_cursor};
use async_trait::async_trait;

use super::*;

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

    async fn get_grant(&self, tenant: &TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .lock()
            .grants
            .get(&(tenant.clone(), id.to_owned()))
            .cloned())
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

    async fn list_public_keys(&self) -> Result<Vec<PublicSigningKey>, StoreError> {
        let mut keys = self.lock().public_keys.clone();
        keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        Ok(keys)
    }

    async fn get_private_key(&self, kid: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().private_keys.get(kid).cloned())
    }

    async fn create_pending_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_create_pending_client(client, quota, now).await
    }

    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        self.tx_create_client(client).await
    }

    async fn delete_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_delete_client(tenant, id, now).await
    }

    async fn approve_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        version: u32,
        approver: &str,
        now: UnixTime,
    ) -> Result<Client, StoreError> {
        self.tx_approve_client(tenant, id, version, approver, now)
            .await
    }

    async fn finish_authorization(
        &self,
        finish: Finish<'_>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_finish_authorization(finish, now).await
    }

    async fn load_flow(&self, keys: FlowKeys<'_>, now: UnixTime) -> Result<FlowItems, StoreError> {
        self.tx_load_flow(keys, now).await
    }

    async fn take_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        self.tx_take_authorization_request(tenant, id, now).await
    }

    async fn count_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u32, StoreError> {
        self.tx_count_signin_attempt(tenant, account, window, expires_at, now)
            .await
    }

    async fn uncount_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
    ) -> Result<(), StoreError> {
        self.tx_uncount_signin_attempt(tenant, account, window)
            .await
    }

    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_redeem_code(code, grant, refresh, now).await
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        grace_secs: i64,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_rotate_refresh_token(old, new, grace_secs, now)
            .await
    }

    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.tx_revoke_grant(tenant, id, now).await
    }

    async fn add_signing_key(
        &self,
        public: &PublicSigningKey,
        private_pkcs8_b64: &str,
    ) -> Result<(), StoreError> {
        self.tx_add_signing_key(public, private_pkcs8_b64).await
    }
}
