//! [`FlowStore`] on the DynamoDB store: parked requests, sessions, consents,
//! codes, sign-in counters, and the transaction that ends an authorization.

use super::*;
use crate::domain::{
    Approval, AuthorizationCode, AuthorizationRequest, Client, ClientId, Consent, Session,
    TenantId, UnixTime,
};
use crate::store::{Finish, FlowItems, FlowKeys, FlowStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValue, TransactWriteItem};

#[async_trait]
impl FlowStore for DynamoStore {
    async fn load_flow(&self, keys: FlowKeys<'_>, now: UnixTime) -> Result<FlowItems, StoreError> {
        let mut wanted: Vec<Item> = Vec::new();
        if let Some(id) = keys.request_id {
            wanted.push(key_map(authorization_request_key(keys.tenant, id)));
        }
        if let Some(id) = keys.client_id {
            wanted.push(key_map(client_key(keys.tenant, id)));
            wanted.push(key_map(approval_key(keys.tenant, id)));
        }
        if let Some(h) = keys.session_hash {
            wanted.push(key_map(session_key(keys.tenant, h)));
        }
        let mut items = FlowItems::default();
        let mut approval: Option<Approval> = None;
        for item in self.batch_get(wanted).await? {
            match item.get("kind") {
                Some(AttributeValue::S(k)) if k == "authreq" => {
                    let r: AuthorizationRequest = decode(&item)?;
                    items.request = r.is_live(now).then_some(r);
                }
                Some(AttributeValue::S(k)) if k == "client" => {
                    let client: Client = decode(&item)?;
                    if client.tenant == *keys.tenant {
                        if client.is_live(now) {
                            items.client = Some(client);
                        } else {
                            items.expired_client = Some(client);
                        }
                    }
                }
                Some(AttributeValue::S(k)) if k == "approval" => {
                    approval = Some(decode(&item)?);
                }
                Some(AttributeValue::S(k)) if k == "session" => {
                    let session: Session = decode(&item)?;
                    items.session = session.is_live(now).then_some(session);
                }
                _ => return Err(StoreError::Corrupt("unexpected item in flow batch".into())),
            }
        }
        items.client = match items.client {
            Some(c) => {
                let trust = match crate::store::trust_to_check(&c, approval.as_ref()) {
                    Some(id) => self.read_trust(keys.tenant, id).await?,
                    None => None,
                };
                Some(crate::store::verified(
                    c,
                    approval.as_ref(),
                    trust.as_ref(),
                )?)
            }
            None => None,
        };
        Ok(items)
    }

    async fn finish_authorization(
        &self,
        finish: Finish<'_>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let code = finish.code;
        let mut req = self.client.transact_write_items();
        let mut request_index = None;
        let mut approve_index = None;
        let mut index = 0;
        if let Some(r) = finish.request {
            req = req.transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(authorization_request_key(&r.tenant, &r.id))))
                            .condition_expression("attribute_exists(pk) AND #ttl > :now")
                            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                            .expression_attribute_values(":now", n(now))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            );
            request_index = Some(index);
            index += 1;
        }
        let code_item = with_ttl(
            doc_item(code_key(&code.tenant, &code.code_hash), "code", code)?,
            code.expires_at,
        );
        req = req.transact_items(self.put_item(code_item, true)?);
        index += 1;
        if let Some(c) = finish.consent {
            let item = doc_item(
                consent_key(&c.tenant, &c.client_id, &c.user_id),
                "consent",
                c,
            )?;
            req = req.transact_items(self.put_item(item, false)?);
            index += 1;
        }
        if let Some((client, approver)) = finish.approve {
            let ([approval, record], _) = self.approval_item(client, approver, now)?;
            req = req.transact_items(approval).transact_items(record);
            approve_index = Some(index);
        }
        match send_transaction(req).await {
            Ok(_) => Ok(()),
            // Our own attempt committed (the code is ours alone); its answer was lost.
            Err(err)
                if cancellation_codes(&err).is_some()
                    && self
                        .exists(code_key(&finish.code.tenant, &finish.code.code_hash))
                        .await? =>
            {
                Ok(())
            }
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if request_index.is_some_and(|i| condition_failed(&codes, i)) => {
                    Err(StoreError::NotFound)
                }
                Some(codes) if approve_index.is_some_and(|i| condition_failed(&codes, i)) => {
                    Err(self
                        .approval_failure(&code.tenant, &code.client_id, now)
                        .await)
                }
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c.as_deref() == Some("ConditionalCheckFailed")) =>
                {
                    Err(StoreError::AlreadyExists)
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn count_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
        expires_at: UnixTime,
        _now: UnixTime,
    ) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(signin_failures_key(tenant, account, window))))
            .update_expression("ADD #n :one SET #ttl = :exp")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        match out.attributes().and_then(|a| a.get("n")) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Corrupt("counter is not a number".into())),
            _ => Err(StoreError::Corrupt(
                "counter increment returned no count".into(),
            )),
        }
    }

    async fn uncount_signin_attempt(
        &self,
        tenant: &TenantId,
        account: &str,
        window: i64,
    ) -> Result<(), StoreError> {
        // Only an existing counter is decremented: a retried answer never creates one.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(signin_failures_key(tenant, account, window))))
            .update_expression("ADD #n :minus_one")
            .condition_expression("attribute_exists(pk) AND #n > :zero")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
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

    async fn take_authorization_request(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<AuthorizationRequest>, StoreError> {
        // Exactly once: the conditional delete succeeds for one caller only, and only while the
        // request is unexpired (the TTL sweeper may not have removed an expired one yet).
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(authorization_request_key(tenant, id))))
            .condition_expression("attribute_exists(pk) AND #ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(|item| decode(&item)).transpose(),
            Err(SdkError::ServiceError(ref se))
                if matches!(
                    se.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(None)
            }
            Err(other) => Err(unavailable(other)),
        }
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
}
