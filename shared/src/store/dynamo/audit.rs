//! [`AuditStore`] on the DynamoDB store: a tenant's audit trail (one partition, newest first)
//! and users' requests for an administrator's approval of a pending client.

use super::*;
use crate::domain::{AccessRequest, AuditEvent, ClientId, TenantId, UnixTime};
use crate::store::{AuditStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};

fn decode_event(item: &Item) -> Result<AuditEvent, StoreError> {
    let mut event: AuditEvent = decode(item)?;
    event.expires_at = number_attr(item, TTL_ATTRIBUTE).unwrap_or(i64::MAX);
    Ok(event)
}

fn decode_request(item: &Item, now: UnixTime) -> Result<Option<AccessRequest>, StoreError> {
    let request: AccessRequest = decode(item)?;
    Ok((request.expires_at > now).then_some(request))
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn put_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let key = (audit_pk(&event.tenant), event.sort_key());
        let item = with_ttl(doc_item(key, "audit", event)?, event.expires_at);
        self.put(item, false).await
    }

    async fn list_audit_events(
        &self,
        tenant: &TenantId,
        before: Option<&str>,
        limit: usize,
        now: UnixTime,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError> {
        let limit = limit.max(1);
        let mut out: Vec<AuditEvent> = Vec::new();
        let mut start: Option<Item> = None;
        // Expired events the TTL sweeper has not removed yet are filtered out after `Limit`
        // applies, so a page is read in as many queries as it takes to fill it (and one more
        // live event, to know whether another page follows).
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .scan_index_forward(false)
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":pk", s(audit_pk(tenant)))
                .expression_attribute_values(":now", n(now))
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            q = match before {
                Some(b) => q
                    .key_condition_expression("pk = :pk AND sk < :before")
                    .expression_attribute_values(":before", s(b)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(unavailable)?;
            for item in page.items() {
                out.push(decode_event(item)?);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if out.len() > limit || start.is_none() {
                break;
            }
        }
        if out.len() > limit {
            out.truncate(limit);
            let next = out.last().map(AuditEvent::sort_key);
            return Ok((out, next));
        }
        Ok((out, None))
    }

    async fn request_access(
        &self,
        request: &AccessRequest,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let user = &request.requester.user_id;
        let key = access_request_key(&request.tenant, &request.client_id, user);
        let item = indexed(
            with_ttl(
                doc_item(key, "access_request", request)?,
                request.expires_at,
            ),
            access_requests_gsi_pk(&request.tenant),
            &format!("{}#{user}", request.client_id),
        );
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        let pending = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(
                &request.tenant,
                &request.client_id,
            ))))
            .condition_expression(format!("{LIVE} AND #status = :pending"))
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .build()
            .map_err(build_error)?;
        // The token makes an SDK retry of a transaction that committed but whose answer was
        // lost succeed again, rather than fail its own condition as "asked already".
        let tx = self
            .client
            .transact_write_items()
            .client_request_token(crate::crypto::new_id())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(pending)
                    .build(),
            );
        match send_transaction(tx).await {
            Ok(_) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if condition_failed(&codes, 1) => Err(StoreError::NotFound),
                Some(codes) if condition_failed(&codes, 0) => Ok(false),
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn list_access_requests(
        &self,
        tenant: &TenantId,
        client: Option<&ClientId>,
        now: UnixTime,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let mut out = match client {
            Some(client) => {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(access_requests_pk(tenant, client)))
                    .send()
                    .await
                    .map_err(unavailable)?;
                let mut out = Vec::new();
                for item in page.items() {
                    out.extend(decode_request(item, now)?);
                }
                out
            }
            None => {
                self.query_all(&access_requests_gsi_pk(tenant), |item| {
                    decode_request(item, now)
                })
                .await?
            }
        };
        crate::store::sort_requests(&mut out);
        Ok(out)
    }
}
