//! [`TokenStore`] on the DynamoDB store: code redemption, grants, refresh rotation
//! (with its grace window), revocation, signing keys.

use super::*;
use crate::domain::{AuthorizationCode, Grant, PublicSigningKey, RefreshToken, TenantId, UnixTime};
use crate::keywrap::SealedKey;
use crate::store::{FlowStore, StoreError, TokenStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

#[async_trait]
impl TokenStore for DynamoStore {
    async fn redeem_code(
        &self,
        code: &AuthorizationCode,
        grant: &Grant,
        refresh: Option<&RefreshToken>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(code_key(&code.tenant, &code.code_hash))))
            .update_expression("SET redeemed_grant = :g")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(redeemed_grant) AND #ttl > :now",
            )
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":g", s(&grant.id))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        let grant_item = with_ttl(
            indexed(
                doc_item(grant_key(&grant.tenant, &grant.id), "grant", grant)?,
                grants_gsi_pk(&grant.tenant, &grant.client_id),
                &grant.id,
            ),
            grant.expires_at,
        );
        let mut req = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .transact_items(self.put_item(grant_item, true)?);
        let mut items = 2;
        if let Some(t) = refresh {
            let item = with_ttl(
                doc_item(refresh_key(&t.tenant, &t.token_hash), "refresh", t)?,
                t.expires_at,
            );
            req = req.transact_items(self.put_item(item, true)?);
            items += 1;
        }
        // The client must still exist: a grant issued after the client's deletion would escape
        // the revocation that deletion performs.
        req = req.transact_items(self.client_is_live(&code.tenant, &code.client_id, now)?);
        match send_transaction(req).await {
            Ok(_) => Ok(()),
            // Our own attempt committed (the grant id is ours alone) and its answer was lost:
            // without this, the SDK's retry would look like a replay and revoke the grant.
            Err(err)
                if cancellation_codes(&err).is_some()
                    && self.exists(grant_key(&grant.tenant, &grant.id)).await? =>
            {
                Ok(())
            }
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, items) => Err(StoreError::NotFound),
                Some(codes) if condition_failed(&codes, 0) => {
                    // Tell a replay (redeemed) from a missing or expired code.
                    match self.get_code(&code.tenant, &code.code_hash, now).await? {
                        Some(c) if c.redeemed_grant.is_some() => Err(StoreError::Conflict),
                        _ => Err(StoreError::NotFound),
                    }
                }
                Some(codes)
                    if codes
                        .iter()
                        .skip(1)
                        .take(items - 1)
                        .any(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
                {
                    Err(StoreError::AlreadyExists)
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn get_grant(&self, tenant: &TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        self.get_as(grant_key(tenant, id), decode_grant).await
    }

    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(grant_key(tenant, id))))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ref se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(())
            }
            Err(other) => Err(unavailable(other)),
        }
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

    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        grace_secs: i64,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let check_grant = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(grant_key(&old.tenant, &old.grant_id))))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .build()
            .map_err(build_error)?;
        let mark_old = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(refresh_key(&old.tenant, &old.token_hash))))
            .update_expression("SET rotated_at = if_not_exists(rotated_at, :now)")
            .condition_expression(
                "attribute_exists(pk) AND #ttl > :now AND (attribute_not_exists(rotated_at) OR rotated_at > :cutoff)",
            )
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":cutoff", n(now - grace_secs))
            .build()
            .map_err(build_error)?;
        let put_new = self.put_item(
            with_ttl(
                doc_item(refresh_key(&new.tenant, &new.token_hash), "refresh", new)?,
                new.expires_at,
            ),
            true,
        )?;
        // Retried on TransactionConflict: parallel refreshes of one token (a client refreshing
        // from several tabs or threads) must serialise, not fail and log the user out.
        let result = send_transaction(
            self.client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(check_grant)
                        .build(),
                )
                .transact_items(TransactWriteItem::builder().update(mark_old).build())
                .transact_items(put_new),
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            // Our own attempt committed (the new token is ours alone); its answer was lost.
            Err(err)
                if cancellation_codes(&err).is_some()
                    && self
                        .exists(refresh_key(&new.tenant, &new.token_hash))
                        .await? =>
            {
                Ok(())
            }
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => Err(StoreError::NotFound),
                Some(codes) if condition_failed(&codes, 1) => {
                    match self
                        .get_refresh_token(&old.tenant, &old.token_hash, now)
                        .await?
                    {
                        Some(t) if t.rotated_at.is_some() => Err(StoreError::Conflict),
                        _ => Err(StoreError::NotFound),
                    }
                }
                Some(codes) if condition_failed(&codes, 2) => Err(StoreError::AlreadyExists),
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn list_public_keys(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<PublicSigningKey>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(jwks_pk(tenant)))
            .scan_index_forward(false)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        page.items().iter().map(decode).collect()
    }

    async fn get_private_key(
        &self,
        tenant: &TenantId,
        kid: &str,
    ) -> Result<Option<SealedKey>, StoreError> {
        let Some(item) = self.get(private_key_key(tenant, kid), true).await? else {
            return Ok(None);
        };
        let field = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(StoreError::Corrupt(format!(
                "signing key {kid} has no {name}"
            ))),
        };
        Ok(Some(SealedKey {
            wrapping: field("wrapping")?,
            wrapped_key: field("wrapped_key")?,
            nonce: field("nonce")?,
            ciphertext: field("ciphertext")?,
        }))
    }

    async fn add_signing_key(
        &self,
        tenant: &TenantId,
        public: &PublicSigningKey,
        private: &SealedKey,
    ) -> Result<(), StoreError> {
        let public_item = doc_item(
            (
                jwks_pk(tenant),
                format!("{:012}#{}", public.created_at, public.kid),
            ),
            "jwk",
            public,
        )?;
        let mut private_item = key_map(private_key_key(tenant, &public.kid));
        private_item.insert("kind".into(), s("signkey"));
        private_item.insert("wrapping".into(), s(&private.wrapping));
        private_item.insert("wrapped_key".into(), s(&private.wrapped_key));
        private_item.insert("nonce".into(), s(&private.nonce));
        private_item.insert("ciphertext".into(), s(&private.ciphertext));
        self.client
            .transact_write_items()
            .transact_items(self.put_item(private_item, true)?)
            .transact_items(self.put_item(public_item, true)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
