//! [`TrustStore`] on the DynamoDB store. Trust records (`TRUST#`) are written by the admin
//! function's role alone; the register function may only check one inside the transaction
//! that creates a client it approves.

use super::*;
use crate::domain::{Client, TenantId, UnixTime, VendorTrust};
use crate::store::{PendingQuota, StoreError, TrustStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};

fn decode_trust(item: &Item, tenant: &TenantId) -> Result<VendorTrust, StoreError> {
    let mut trust: VendorTrust = decode(item)?;
    trust.tenant = Some(tenant.clone());
    if let Some(at) = number_attr(item, "revoked_at") {
        trust.revoked_at = Some(at);
    }
    Ok(trust)
}

impl DynamoStore {
    /// A trust, strongly consistent (verifying a client it approved).
    pub(super) async fn read_trust(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<VendorTrust>, StoreError> {
        self.get(trust_key(tenant, id), true)
            .await?
            .map(|item| decode_trust(&item, tenant))
            .transpose()
    }
}

#[async_trait]
impl TrustStore for DynamoStore {
    async fn put_trust(&self, trust: &VendorTrust) -> Result<(), StoreError> {
        let tenant = trust
            .tenant
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("a trust without its tenant".into()))?;
        let item = indexed(
            doc_item(trust_key(tenant, &trust.id), "trust", trust)?,
            trusts_gsi_pk(tenant),
            &format!("{:012}#{}", trust.created_at.max(0), trust.id),
        );
        self.put(item, false).await
    }

    async fn get_trust(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<VendorTrust>, StoreError> {
        self.read_trust(tenant, id).await
    }

    async fn list_trusts(&self, tenant: &TenantId) -> Result<Vec<VendorTrust>, StoreError> {
        let mut out = self
            .query_all(&trusts_gsi_pk(tenant), |item| {
                decode_trust(item, tenant).map(Some)
            })
            .await?;
        out.reverse();
        Ok(out)
    }

    async fn revoke_trust(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(trust_key(tenant, id))))
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
                Err(StoreError::NotFound)
            }
            Err(other) => Err(unavailable(other)),
        }
    }

    async fn create_trusted_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let trust = client.vendor_trust.as_deref().ok_or(StoreError::Conflict)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(client_item(client)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let active = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(trust_key(&client.tenant, trust))))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .build()
            .map_err(build_error)?;
        let mut tx = self
            .client
            .transact_write_items()
            .client_request_token(crate::crypto::new_id())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().condition_check(active).build());
        if quota.cap > 0 {
            tx = tx.transact_items(self.quota_increment(&client.tenant, quota, now).await?);
            // Only with a cap (`policy::pending_quota`): index 3.
            if let Some(step) = self.source_increment(&client.tenant, quota, now)? {
                tx = tx.transact_items(step);
            }
        }
        match send_transaction(tx).await {
            Ok(_) => Ok(()),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if condition_failed(&codes, 1) => Err(StoreError::Conflict),
                Some(codes) if condition_failed(&codes, 2) => Err(StoreError::PendingCapReached),
                Some(codes) if condition_failed(&codes, 3) => Err(StoreError::SourceCapReached),
                Some(codes) if condition_failed(&codes, 0) => Err(StoreError::AlreadyExists),
                _ => Err(unavailable(e)),
            },
        }
    }
}
