//! [`Directory`] on the DynamoDB store: tenants, users, API tokens.

use super::*;
use crate::domain::{ApiToken, Email, Tenant, TenantId, UnixTime, User};
use crate::store::{Directory, StoreError};
use async_trait::async_trait;

#[async_trait]
impl Directory for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.put(tenant_item(tenant)?, true).await
    }

    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.put(tenant_item(tenant)?, false).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        // Settings are cached per container anyway; an eventually consistent read is enough.
        self.get(tenant_key(id), false)
            .await?
            .map(|item| decode(&item))
            .transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.query_all(TENANTS_GSI_PK, |item| decode(item).map(Some))
            .await
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.put(user_item(user)?, true).await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.put(user_item(user)?, false).await
    }

    async fn get_user(&self, tenant: &TenantId, email: &Email) -> Result<Option<User>, StoreError> {
        self.get_as(user_key(tenant, email), decode).await
    }

    async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        self.query_all(&users_gsi_pk(tenant), |item| decode(item).map(Some))
            .await
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let item = doc_item(
            api_token_key(&token.tenant, &token.token_hash),
            "apitoken",
            token,
        )?;
        self.put(with_ttl(item, token.expires_at), true).await
    }

    async fn get_api_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ApiToken>, StoreError> {
        let token: Option<ApiToken> = self
            .get_as(api_token_key(tenant, token_hash), decode)
            .await?;
        Ok(token.filter(|t| t.is_live(now) && t.tenant == *tenant))
    }

    async fn delete_api_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        self.delete(api_token_key(tenant, token_hash)).await?;
        Ok(())
    }
}
