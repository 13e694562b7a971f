//! One helper per repeated call shape (get, put, conditional put, GSI query, batch read,
//! transaction with retries) and the mapping of SDK errors to [`StoreError`].

use crate::domain::{Approval, Client, ClientId, ClientStatus, TenantId, UnixTime};
use crate::store::{ClientStore, StoreError, TokenStore, approved};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::Duration;

use super::*;

pub(super) fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&err).to_string())
}

pub(super) fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt(format!("request builder: {err}"))
}

pub(super) fn cancellation_codes(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<Option<String>>> {
    match err {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(tc) => Some(
                tc.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

pub(super) type TransactResult = Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// Sends a transaction, retrying briefly when DynamoDB cancelled it only because a concurrent
/// transaction touched the same item (`TransactionConflict`; the SDK does not retry those).
/// Two parallel refreshes or registrations then serialise instead of failing with a 503.
pub(super) async fn send_transaction(
    req: aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder,
) -> TransactResult {
    let mut attempt: u64 = 0;
    loop {
        let result = req.clone().send().await;
        let conflict_only = result
            .as_ref()
            .err()
            .and_then(cancellation_codes)
            .is_some_and(|codes| {
                codes
                    .iter()
                    .any(|c| c.as_deref() == Some("TransactionConflict"))
                    && !codes
                        .iter()
                        .any(|c| c.as_deref() == Some("ConditionalCheckFailed"))
            });
        if !conflict_only || attempt >= 4 {
            return result;
        }
        attempt += 1;
        let jitter = u64::from(crate::crypto::random_bytes::<1>()[0] % 20);
        tokio::time::sleep(Duration::from_millis(attempt * 15 + jitter)).await;
    }
}

pub(super) fn condition_failed(codes: &[Option<String>], index: usize) -> bool {
    codes.get(index).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
}

impl DynamoStore {
    /// An unconditional `DeleteItem` (deleting what is not there is not an error).
    pub(super) async fn delete(&self, key: (String, String)) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A transaction step that holds only while the client exists and has not expired.
    pub(super) fn client_is_live(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(tenant, id))))
            .condition_expression(LIVE)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub(super) async fn get(
        &self,
        key: (String, String),
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// A transaction item that writes `item`; with `only_if_new`, only if no item has its key.
    pub(super) fn put_item(
        &self,
        item: Item,
        only_if_new: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if only_if_new {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// The approval of a pending client as a transaction item: exactly once, only while still
    /// pending and unexpired. Removing the TTL attribute takes the client out of the sweeper's
    /// reach.
    pub(super) fn approval_item(
        &self,
        client: &Client,
        approver: &str,
        now: UnixTime,
    ) -> Result<([TransactWriteItem; 2], Client), StoreError> {
        let updated = approved(client.clone(), approver, now);
        let doc =
            serde_json::to_string(&updated).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(&client.tenant, &client.client_id))))
            .update_expression("SET #status = :approved, #doc = :doc REMOVE #ttl")
            .condition_expression("#status = :pending AND #ttl > :now AND #cv = :cv")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#doc", "doc")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#cv", CONFIG_VERSION_ATTRIBUTE)
            .expression_attribute_values(":cv", n(client.config_version))
            .expression_attribute_values(":approved", s(ClientStatus::Approved.as_str()))
            .expression_attribute_values(":pending", s(ClientStatus::Pending.as_str()))
            .expression_attribute_values(":doc", s(doc))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(approval_item(&updated)?))
            .build()
            .map_err(build_error)?;
        Ok((
            [
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().put(record).build(),
            ],
            updated,
        ))
    }

    /// After a failed approval condition: "someone else approved it, or it changed since it
    /// was read" (it is still there) or "it expired or vanished".
    pub(super) async fn approval_failure(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> StoreError {
        match self.get_client(tenant, id, now).await {
            Ok(Some(_)) => StoreError::Conflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// One page of a GSI partition in sort-key order, after `after` (exclusive), at most
    /// `limit` items read (`None`: DynamoDB's 1 MB page). Returns the items and whether more
    /// may follow.
    pub(super) async fn query_gsi(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: Option<i32>,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", s(pk))
            .set_limit(limit);
        q = match after {
            Some(after) => q
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after)),
            None => q.key_condition_expression("gsi1pk = :pk"),
        };
        let page = q.send().await.map_err(unavailable)?;
        let more = page
            .last_evaluated_key
            .as_ref()
            .is_some_and(|k| !k.is_empty());
        Ok((page.items.unwrap_or_default(), more))
    }

    /// A whole GSI partition, decoded.
    pub(super) async fn query_all<T>(
        &self,
        pk: &str,
        decoder: impl Fn(&Item) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (items, more) = self.query_gsi(pk, after.as_deref(), None).await?;
            for item in &items {
                if let Some(v) = decoder(item)? {
                    out.push(v);
                }
            }
            after = match items.last().and_then(|i| i.get("gsi1sk")) {
                Some(AttributeValue::S(sk)) if more => Some(sk.clone()),
                _ => break,
            };
        }
        Ok(out)
    }

    /// Revokes every live grant of a client (found through the GSI).
    pub(super) async fn revoke_client_grants(
        &self,
        tenant: &TenantId,
        id: &ClientId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let grants = self
            .query_all(&grants_gsi_pk(tenant, id), |item| {
                decode_grant(item).map(Some)
            })
            .await?;
        for grant in grants.iter().filter(|g| g.revoked_at.is_none()) {
            self.revoke_grant(tenant, &grant.id, now).await?;
        }
        Ok(())
    }

    /// A strongly consistent read, decoded.
    pub(super) async fn get_as<T>(
        &self,
        key: (String, String),
        decoder: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.get(key, true)
            .await?
            .map(|item| decoder(&item))
            .transpose()
    }

    /// Puts an item; `only_if_new` makes it a create. A create carries a random write id, so
    /// that when the SDK retries an attempt that committed but whose answer was lost, the
    /// refused retry is recognised as this very write rather than reported as a duplicate.
    pub(super) async fn put(&self, mut item: Item, only_if_new: bool) -> Result<(), StoreError> {
        // Only a create needs its write id and key back.
        let create = only_if_new.then(|| {
            let write_id = crate::crypto::new_id();
            item.insert(WRITE_ID_ATTRIBUTE.into(), s(&write_id));
            let key = match (item.get("pk"), item.get("sk")) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                    Some((pk.clone(), sk.clone()))
                }
                _ => None,
            };
            (key, write_id)
        });
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if only_if_new {
            req = req.condition_expression("attribute_not_exists(pk)");
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(err) => match err {
                SdkError::ServiceError(ref se)
                    if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    match create {
                        Some((Some(key), write_id)) => self.own_write(key, &write_id).await,
                        _ => Err(StoreError::AlreadyExists),
                    }
                }
                other => Err(unavailable(other)),
            },
        }
    }

    /// Whether an item exists (consistent read). The code-issuing, redeeming and rotating
    /// transactions use it when they fail, to tell a retry of their own committed attempt (its
    /// answer lost to an attempt timeout) from a real conflict: each writes one item with a
    /// fresh random key that nothing else writes (the code, the grant, the new refresh token).
    /// For upgrades from releases that kept approval in the client record alone: records, for
    /// every approved client of `tenant` that has no approval record yet, its configuration as
    /// approved (an operator's action: it trusts the client records as they are). Clients that
    /// already have one are left alone, agreeing or not. Returns how many were recorded.
    pub async fn record_missing_approvals(
        &self,
        tenant: &TenantId,
        now: UnixTime,
    ) -> Result<usize, StoreError> {
        let approved: Vec<Client> = self
            .query_all(&clients_gsi_pk(tenant), |item| {
                live_client(item, tenant, now)
            })
            .await?
            .into_iter()
            .filter(|c| c.status == ClientStatus::Approved)
            .collect();
        let mut recorded = 0;
        for client in approved {
            let key = approval_key(&client.tenant, &client.client_id);
            if self.get(key, true).await?.is_some() {
                continue;
            }
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(approval_item(&client)?))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(unavailable)?;
            recorded += 1;
        }
        Ok(recorded)
    }

    /// Replaces a client's record, only while it is live and in the status it had when read
    /// (an approved one has no TTL), and with it, when `with_approval`, its approval record:
    /// one transaction (see [`ClientStore::update_client`] and
    /// [`ClientStore::update_approved_client`]).
    pub(super) async fn replace_client(
        &self,
        client: &Client,
        with_approval: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(client_item(client)?))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":status", s(client.status.as_str()));
        put = if with_approval {
            put.condition_expression(
                "attribute_exists(pk) AND #status = :status AND attribute_not_exists(#ttl)",
            )
        } else {
            put.condition_expression(
                "attribute_exists(pk) AND #status = :status AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            )
            .expression_attribute_values(":now", n(now))
        };
        let mut req = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(put.build().map_err(build_error)?)
                .build(),
        );
        if with_approval {
            let record = Put::builder()
                .table_name(&self.table)
                .set_item(Some(approval_item(client)?))
                .build()
                .map_err(build_error)?;
            req = req.transact_items(TransactWriteItem::builder().put(record).build());
        }
        match send_transaction(req).await {
            Ok(_) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => {
                    match self
                        .get_client(&client.tenant, &client.client_id, now)
                        .await?
                    {
                        Some(_) => Err(StoreError::Conflict),
                        None => Err(StoreError::NotFound),
                    }
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    /// Items by key (at most 100), strongly consistent, in as few `BatchGetItem` calls as
    /// DynamoDB allows: throttled keys come back unprocessed and are retried with a short
    /// backoff. Absent items are simply missing from the answer.
    pub(super) async fn batch_get(&self, mut wanted: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut attempt: u64 = 0;
        while !wanted.is_empty() {
            let out = self
                .client
                .batch_get_item()
                .request_items(
                    &self.table,
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut wanted)))
                        .consistent_read(true)
                        .build()
                        .map_err(build_error)?,
                )
                .send()
                .await
                .map_err(unavailable)?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            if let Some(rest) = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .filter(|k| !k.is_empty())
            {
                attempt += 1;
                if attempt > 4 {
                    return Err(StoreError::Unavailable(
                        "batch reads kept being throttled".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(attempt * 20)).await;
                wanted = rest;
            }
        }
        Ok(found)
    }

    /// Listed clients checked against their approval records: one `BatchGetItem` per 100
    /// approved clients (pending clients have none to check).
    pub(super) async fn verify_all(&self, clients: Vec<Client>) -> Result<Vec<Client>, StoreError> {
        let mut records: HashMap<String, Approval> = HashMap::new();
        let approved: Vec<&Client> = clients
            .iter()
            .filter(|c| c.status == ClientStatus::Approved)
            .collect();
        for chunk in approved.chunks(100) {
            let keys = chunk
                .iter()
                .map(|c| key_map(approval_key(&c.tenant, &c.client_id)))
                .collect();
            for item in self.batch_get(keys).await? {
                if let Some(AttributeValue::S(pk)) = item.get("pk") {
                    records.insert(pk.clone(), decode(&item)?);
                }
            }
        }
        let mut out = Vec::with_capacity(clients.len());
        for c in clients {
            let approval = records.get(&approval_key(&c.tenant, &c.client_id).0);
            let trust = match crate::store::trust_to_check(&c, approval) {
                Some(id) => self.read_trust(&c.tenant, id).await?,
                None => None,
            };
            out.push(crate::store::verified(c, approval, trust.as_ref())?);
        }
        Ok(out)
    }

    pub(super) async fn exists(&self, key: (String, String)) -> Result<bool, StoreError> {
        Ok(self.get(key, true).await?.is_some())
    }

    /// After a refused create: `Ok` when the item at `key` carries this create's write id (an
    /// SDK retry of an attempt that committed but whose answer was lost), else
    /// [`StoreError::AlreadyExists`]. The id is random per create, so an earlier identical
    /// create is never mistaken for this one.
    pub(super) async fn own_write(
        &self,
        key: (String, String),
        write_id: &str,
    ) -> Result<(), StoreError> {
        let item = self.get(key, true).await?;
        match item.as_ref().and_then(|i| i.get(WRITE_ID_ATTRIBUTE)) {
            Some(AttributeValue::S(w)) if w == write_id => Ok(()),
            _ => Err(StoreError::AlreadyExists),
        }
    }

    pub(super) async fn counter(
        &self,
        tenant: &TenantId,
        bucket: i64,
        now: UnixTime,
    ) -> Result<u32, StoreError> {
        let Some(item) = self.get(pending_counter_key(tenant, bucket), true).await? else {
            return Ok(0);
        };
        let expired = matches!(item.get(TTL_ATTRIBUTE), Some(AttributeValue::N(t)) if t.parse::<i64>().is_ok_and(|t| t <= now));
        if expired {
            return Ok(0);
        }
        match item.get("n") {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Corrupt("pending counter is not a number".into())),
            _ => Ok(0),
        }
    }
}
