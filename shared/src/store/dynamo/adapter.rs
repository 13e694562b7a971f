//! The storage port ([`Store`]) on DynamoDB. Operations that must happen once are conditional
//! writes or transactions; their bodies are in `clients.rs`, `flow.rs` and `grants.rs`.

use crate::domain::{
    ApiToken, AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus, Consent,
    Email, Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime, User,
};
use crate::store::{Finish, FlowItems, FlowKeys, PendingQuota, Store, StoreError, client_cursor};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::*;

#[async_trait]
impl Store for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.put(tenant_item(tenant)?, true).await
    }

    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.put(tenant_item(tenant)?, false).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.query_all(TENANTS_GSI_PK, |item| decode(item).map(Some))
            .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        // Settings are cached per container anyway; an eventually consistent read is enough.
        self.get(tenant_key(id), false)
            .await?
            .map(|item| decode(&item))
            .transpose()
    }

    async fn get_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        // The client and its approval record in one round trip.
        let flow = self
            .load_flow(
                FlowKeys {
                    tenant,
                    request_id: None,
                    client_id: Some(id),
                    session_hash: None,
                },
                now,
            )
            .await?;
        Ok(flow.client)
    }

    async fn list_clients(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<Vec<Client>, StoreError> {
        let clients = self
            .query_all(&clients_gsi_pk(tenant), |item| {
                live_client(item, tenant, now)
            })
            .await?;
        self.verify_all(clients).await
    }

    async fn list_clients_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<Client>, Option<String>), StoreError> {
        // Read one more than asked, to know whether a next page exists; expired pending
        // clients the sweeper has not removed yet are skipped, so keep reading until full.
        let limit = limit.max(1);
        let want = limit + 1;
        let read = i32::try_from(want).unwrap_or(i32::MAX);
        let mut out: Vec<Client> = Vec::new();
        let mut after = after.map(str::to_owned);
        loop {
            let (items, more) = self
                .query_gsi(&clients_gsi_pk(tenant), after.as_deref(), Some(read))
                .await?;
            for item in &items {
                if let Some(client) = live_client(item, tenant, now)? {
                    out.push(client);
                }
            }
            after = match items.last().and_then(|i| i.get("gsi1sk")) {
                Some(AttributeValue::S(sk)) if more && out.len() < want => Some(sk.clone()),
                _ => break,
            };
        }
        out.truncate(want);
        let next = (out.len() > limit).then(|| client_cursor(&out[limit - 1]));
        out.truncate(limit);
        Ok((self.verify_all(out).await?, next))
    }

    async fn update_client(&self, client: &Client, now: UnixTime) -> Result<(), StoreError> {
        self.replace_client(client, false, now).await
    }

    async fn update_approved_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if client.status != ClientStatus::Approved {
            return Err(StoreError::Conflict);
        }
        self.replace_client(client, true, now).await
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

    async fn put_authorization_request(
        &self,
        req: &AuthorizationRequest,
    ) -> Result<(), StoreError> {
        let item = doc_item(
            authorization_request_key(&req.tenant, &req.id),
            "authreq",
            req,
        )?;
        self.put(with_ttl(item, req.expires_at), true).await
    }

    async fn get_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        let found = self
            .get_as(
                authorization_request_key(tenant, id),
                decode::<AuthorizationRequest>,
            )
            .await?;
        Ok(found.filter(|r| r.is_live(now)))
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let item = doc_item(
            session_key(&session.tenant, &session.id_hash),
            "session",
            session,
        )?;
        self.put(with_ttl(item, session.expires_at), true).await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        let found = self
            .get_as(session_key(tenant, id_hash), decode::<Session>)
            .await?;
        Ok(found.filter(|s| s.is_live(now)))
    }

    async fn delete_session(&self, tenant: &TenantId, id_hash: &str) -> Result<(), StoreError> {
        self.delete(session_key(tenant, id_hash)).await?;
        Ok(())
    }

    async fn put_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        let item = doc_item(
            consent_key(&consent.tenant, &consent.client_id, &consent.user_id),
            "consent",
            consent,
        )?;
        self.put(item, false).await
    }

    async fn get_consent(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        user_id: &str,
    ) -> Result<Option<Consent>, StoreError> {
        self.get_as(consent_key(tenant, client, user_id), decode)
            .await
    }

    async fn create_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let item = doc_item(code_key(&code.tenant, &code.code_hash), "code", code)?;
        self.put(with_ttl(item, code.expires_at), true).await
    }

    async fn get_code(
        &self,
        tenant: &TenantId,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        let found = self
            .get_as(code_key(tenant, code_hash), decode_code)
            .await?;
        Ok(found.filter(|c| c.is_live(now)))
    }

    async fn get_grant(&self, tenant: &TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        self.get_as(grant_key(tenant, id), decode_grant).await
    }

    async fn get_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let found = self
            .get_as(refresh_key(tenant, token_hash), decode_refresh)
            .await?;
        Ok(found.filter(|t| t.is_live(now)))
    }

    async fn list_public_keys(&self) -> Result<Vec<PublicSigningKey>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(JWKS_PK))
            .scan_index_forward(false)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        page.items().iter().map(decode).collect()
    }

    async fn get_private_key(&self, kid: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(private_key_key(kid), true)
            .await?
            .and_then(|item| match item.get("pkcs8") {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            }))
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

    async fn load_flow(&self, keys: FlowKeys<'_>, now: UnixTime) -> Result<FlowItems, StoreError> {
        self.tx_load_flow(keys, now).await
    }

    async fn count_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
        expires_at: UnixTime,
        _now: UnixTime,
    ) -> Result<u32, StoreError> {
        self.tx_count_signin_attempt(tenant, account, window, expires_at, _now)
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

    async fn take_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        self.tx_take_authorization_request(tenant, id, now).await
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
