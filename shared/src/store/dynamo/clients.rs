//! [`ClientStore`] on the DynamoDB store: registrations against the pending quota,
//! approval with its approval record, edits, deletion with everything the client was issued.

use super::*;
use crate::domain::{Client, ClientId, ClientStatus, TenantId, UnixTime};
use crate::store::{ClientStore, FlowKeys, FlowStore, PendingQuota, StoreError, client_cursor};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

impl DynamoStore {
    /// The transaction step that counts one registration against the tenant's pending quota
    /// (`PendingCapReached` when the previous window already used it up). The previous window
    /// is closed (only the current one is incremented), so reading it first and conditioning
    /// the increment of the current one on the remainder is exact.
    pub(super) async fn quota_increment(
        &self,
        tenant: &TenantId,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let bucket = quota.bucket(now);
        let previous = self.counter(tenant, bucket - 1, now).await?;
        if previous >= quota.cap {
            return Err(StoreError::PendingCapReached);
        }
        self.counter_increment(
            pending_counter_key(tenant, bucket),
            quota.cap - previous,
            quota.bucket_expiry(bucket),
        )
    }

    /// A transaction step adding one to the counter item at `key` (`n`), only while it is
    /// below `limit`, and setting its expiry.
    fn counter_increment(
        &self,
        key: (String, String),
        limit: u32,
        expires: UnixTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let increment = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .update_expression("SET #n = if_not_exists(#n, :zero) + :one, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(expires))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(increment).build())
    }

    /// The transaction step that counts one registration against its source's share of the
    /// tenant's quota in the current window (`None`: no per-source count). Its condition
    /// failing is `SourceCapReached`.
    pub(super) fn source_increment(
        &self,
        tenant: &TenantId,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let Some((source, limit)) = quota.source_limit() else {
            return Ok(None);
        };
        let bucket = quota.bucket(now);
        self.counter_increment(
            source_counter_key(tenant, source, bucket),
            limit,
            quota.window_end(bucket),
        )
        .map(Some)
    }
}

#[async_trait]
impl ClientStore for DynamoStore {
    async fn create_pending_client(
        &self,
        client: &Client,
        quota: PendingQuota,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut item = client_item(client)?;
        let write_id = crate::crypto::new_id();
        item.insert(WRITE_ID_ATTRIBUTE.into(), s(&write_id));
        // New, or replacing a pending record that expired but that the TTL sweeper has not
        // removed yet (a Client ID Metadata Document URL comes back under the same id).
        const NEW_OR_EXPIRED: &str = "attribute_not_exists(pk) OR #ttl <= :now";
        if quota.cap == 0 {
            return self
                .put_client_unless_live(item, client, &write_id, NEW_OR_EXPIRED, now)
                .await;
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(NEW_OR_EXPIRED)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        let put = TransactWriteItem::builder().put(put).build();
        let increment = self.quota_increment(&client.tenant, quota, now).await?;
        // The source's count last (index 2), so the other steps keep their indexes.
        let per_source = self.source_increment(&client.tenant, quota, now)?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(increment)
            .transact_items(put);
        if let Some(step) = per_source {
            tx = tx.transact_items(step);
        }
        let result = send_transaction(tx).await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => Err(StoreError::PendingCapReached),
                Some(codes) if condition_failed(&codes, 2) => Err(StoreError::SourceCapReached),
                Some(codes) if condition_failed(&codes, 1) => {
                    self.own_write(client_key(&client.tenant, &client.client_id), &write_id)
                        .await
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        // The client (only if new) and its approval record, in one transaction; an answer
        // lost after the commit is recognised by the write id, like any create.
        let write_id = crate::crypto::new_id();
        let mut item = client_item(client)?;
        item.insert(WRITE_ID_ATTRIBUTE.into(), s(&write_id));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(approval_item(client)?))
            .build()
            .map_err(build_error)?;
        let result = send_transaction(
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().put(record).build()),
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => {
                    self.own_write(client_key(&client.tenant, &client.client_id), &write_id)
                        .await
                }
                _ => Err(unavailable(err)),
            },
        }
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

    async fn delete_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        // Grants are revoked before and after the client's deletion. Before: if a revocation
        // fails, the delete answers 503 with the client still there, and a retry does it all
        // again. After: a grant redeemed between the first pass and the deletion is caught (no
        // grant can be redeemed after it: redemption checks that the client exists). A repeated
        // delete of a gone client still runs the passes, so a retry after a partial failure
        // finishes the revocation even though it answers "not found".
        self.revoke_client_grants(tenant, id, now).await?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(tenant, id))))
            .condition_expression(LIVE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        let existed = match result {
            Ok(_) => true,
            Err(SdkError::ServiceError(ref se))
                if matches!(
                    se.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                false
            }
            Err(other) => return Err(unavailable(other)),
        };
        self.revoke_client_grants(tenant, id, now).await?;
        // The approval record goes with the client (a metadata-document URL can come back as
        // a new client; its approval starts from nothing).
        self.delete(approval_key(tenant, id)).await?;
        if existed {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn reject_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        // A pending client has no grants and no approval record: the client item is all there
        // is, deleted only while still pending.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(tenant, id))))
            .condition_expression(format!("{LIVE} AND #status = :pending"))
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ref se))
                if matches!(
                    se.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                // Which condition failed: gone, or approved meanwhile.
                match self.get_client(tenant, id, now).await? {
                    Some(_) => Err(StoreError::Conflict),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(other) => Err(unavailable(other)),
        }
    }

    async fn approve_client(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        version: u32,
        approver: &str,
        now: UnixTime,
    ) -> Result<Client, StoreError> {
        let current = self
            .get_client(tenant, id, now)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.status != ClientStatus::Pending || current.config_version != version {
            return Err(StoreError::Conflict);
        }
        let ([approval, record], updated) = self.approval_item(&current, approver, now)?;
        let result = send_transaction(
            self.client
                .transact_write_items()
                .transact_items(approval)
                .transact_items(record),
        )
        .await;
        match result {
            Ok(_) => Ok(updated),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => {
                    Err(self.approval_failure(tenant, id, now).await)
                }
                _ => Err(unavailable(err)),
            },
        }
    }
}

impl DynamoStore {
    /// A lone conditional `PutItem` of a client record (no quota to count against); a refused
    /// retry that finds its own write id is the same write (its first answer was lost).
    async fn put_client_unless_live(
        &self,
        item: Item,
        client: &Client,
        write_id: &str,
        condition: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ref se))
                if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                self.own_write(client_key(&client.tenant, &client.client_id), write_id)
                    .await
            }
            Err(other) => Err(unavailable(other)),
        }
    }
}
