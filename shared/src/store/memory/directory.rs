//! [`Directory`] on the embedded store: tenants, users, API tokens.

use super::*;
use crate::domain::{ApiToken, Email, Tenant, TenantId, UnixTime, User};
use crate::store::{Directory, StoreError};
use async_trait::async_trait;

#[async_trait]
impl Directory for MemoryStore {
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
}
