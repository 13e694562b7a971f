//! DynamoDB adapter. One table; key patterns, attributes and TTLs are in
//! `shared/storage-schema.md`. Each item keeps the domain record as a JSON document in `doc`
//! and lifts into native attributes only what keys, conditions, the GSI and TTL need.

use super::{
    Finish, FlowItems, FlowKeys, PendingQuota, Store, StoreError, approved, client_cursor,
};
use crate::defaults;
use crate::domain::{
    ApiToken, Approval, AuthorizationCode, AuthorizationRequest, Client, ClientId, ClientStatus,
    Consent, Email, Grant, PublicSigningKey, RefreshToken, Session, Tenant, TenantId, UnixTime,
    User,
};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

pub const GSI1: &str = "gsi1";
pub const TTL_ATTRIBUTE: &str = "ttl";
/// A client's `config_version`, lifted out of `doc` so that an approval can be conditional on the
/// configuration the administrator saw.
const CONFIG_VERSION_ATTRIBUTE: &str = "cv";

#[derive(Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Bounded timeouts and retries: a stalled database becomes a `503` within seconds.
pub async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    sdk_config_in(endpoint, None).await
}

/// [`sdk_config`] with an explicit region (the operator CLI's `--region`).
pub async fn sdk_config_in(endpoint: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(defaults::DYNAMODB_CONNECT_TIMEOUT_MS))
        .operation_attempt_timeout(Duration::from_millis(defaults::DYNAMODB_ATTEMPT_TIMEOUT_MS))
        .operation_timeout(Duration::from_millis(
            defaults::DYNAMODB_OPERATION_TIMEOUT_MS,
        ))
        .build();
    // Explicit region, then AWS_REGION / AWS_DEFAULT_REGION, then the shared config profile,
    // then us-east-1. No instance-metadata lookup: Lambda always sets AWS_REGION, and locally a
    // metadata probe would only add start-up time (pass --region on EC2 without a profile).
    let region = aws_config::meta::region::RegionProviderChain::first_try(
        region.map(|r| aws_config::Region::new(r.to_owned())),
    )
    .or_else(aws_config::environment::EnvironmentVariableRegionProvider::new())
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(aws_config::Region::new("us-east-1"));
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .region(region)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(defaults::DYNAMODB_MAX_ATTEMPTS));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Counts every DynamoDB operation (once per operation, retries included in the one count)
/// against the request being served, for the per-request `dynamodb_calls` log field.
#[derive(Debug)]
struct CountCalls;

impl aws_sdk_dynamodb::config::Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "gatehouse-count-calls"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        crate::telemetry::count_db_call();
        #[cfg(feature = "dynamodb-access-log")]
        if crate::telemetry::db_access_log_enabled() {
            for (action, pk, index) in item_accesses(context.input()) {
                crate::telemetry::record_db_access(action, key_prefix(&pk), index);
            }
        }
        #[cfg(not(feature = "dynamodb-access-log"))]
        let _ = context;
        Ok(())
    }
}

#[cfg(feature = "dynamodb-access-log")]
/// The item-type prefix of a partition key, as the IAM policies name it in
/// `dynamodb:LeadingKeys`: up to and including the first `#` (`CLIENT#`), or the whole key when
/// it has none (`JWKS`).
fn key_prefix(pk: &str) -> &str {
    pk.find('#').map_or(pk, |i| &pk[..=i])
}

#[cfg(feature = "dynamodb-access-log")]
/// Every item access a request makes, as IAM evaluates it: `(action, partition key, index)`.
/// A transaction's parts are the actions they stand for (`Put` → `PutItem`, `ConditionCheck`
/// → `ConditionCheckItem`); a query names the partition key its key condition fixes.
/// Table-level operations (only `gatehouse serve` creates tables) record the table itself.
fn item_accesses(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Vec<(&'static str, String, Option<&'static str>)> {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemInput, delete_item::DeleteItemInput, get_item::GetItemInput,
        put_item::PutItemInput, query::QueryInput, transact_write_items::TransactWriteItemsInput,
        update_item::UpdateItemInput,
    };
    let pk = |item: Option<&Item>| {
        item.and_then(|i| i.get("pk"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        out.push(("GetItem", pk(i.key()), None));
    } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
        out.push(("PutItem", pk(i.item()), None));
    } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        out.push(("UpdateItem", pk(i.key()), None));
    } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        out.push(("DeleteItem", pk(i.key()), None));
    } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        for keys in i.request_items().into_iter().flat_map(|m| m.values()) {
            for key in keys.keys() {
                out.push(("BatchGetItem", pk(Some(key)), None));
            }
        }
    } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        for item in i.transact_items() {
            if let Some(p) = item.put() {
                out.push(("PutItem", pk(Some(p.item())), None));
            }
            if let Some(u) = item.update() {
                out.push(("UpdateItem", pk(Some(u.key())), None));
            }
            if let Some(d) = item.delete() {
                out.push(("DeleteItem", pk(Some(d.key())), None));
            }
            if let Some(c) = item.condition_check() {
                out.push(("ConditionCheckItem", pk(Some(c.key())), None));
            }
        }
    } else if let Some(i) = input.downcast_ref::<QueryInput>() {
        // `pk = :x` or `gsi1pk = :x`: the value of the first placeholder in the condition.
        let fixed = i
            .key_condition_expression()
            .and_then(|e| e.split(':').nth(1))
            .map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                format!(":{name}")
            })
            .and_then(|name| i.expression_attribute_values().and_then(|v| v.get(&name)))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let index = i.index_name().map(|_| GSI1);
        out.push(("Query", fixed, index));
    } else {
        out.push(("TableOperation", String::new(), None));
    }
    out
}

/// The DynamoDB client every process uses: the shared SDK configuration plus the call counter.
pub fn sdk_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(CountCalls)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&err).to_string())
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt(format!("request builder: {err}"))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

// ---- key patterns (storage-schema.md) ----
// Every partition key starts with its item type, so IAM can grant each function exactly the
// item types it needs with `dynamodb:LeadingKeys` (e.g. only the sign-in path reads `USER#`).

fn tenant_key(id: &TenantId) -> (String, String) {
    (format!("TENANT#{id}"), "TENANT".into())
}

/// The random id of the create that wrote an item (see `put` and `own_write`).
const WRITE_ID_ATTRIBUTE: &str = "wid";

fn client_key(tenant: &TenantId, id: &ClientId) -> (String, String) {
    (format!("CLIENT#{tenant}#{id}"), "CLIENT".into())
}

/// A client's approval record: its own partition (IAM's `dynamodb:LeadingKeys` sees partition
/// keys only), so that only the admin function's role can write it.
fn approval_key(tenant: &TenantId, id: &ClientId) -> (String, String) {
    (format!("APPROVAL#{tenant}#{id}"), "APPROVAL".into())
}

fn approval_item(client: &Client) -> Result<Item, StoreError> {
    doc_item(
        approval_key(&client.tenant, &client.client_id),
        "approval",
        &Approval::of(client),
    )
}

fn clients_gsi_pk(tenant: &TenantId) -> String {
    format!("CLIENTS#{tenant}")
}

fn user_key(tenant: &TenantId, email: &Email) -> (String, String) {
    (format!("USER#{tenant}#{email}"), "USER".into())
}

fn users_gsi_pk(tenant: &TenantId) -> String {
    format!("USERS#{tenant}")
}

/// Every tenant item is also in one GSI partition, for the operator's `tenant list`.
const TENANTS_GSI_PK: &str = "TENANTS";

fn grants_gsi_pk(tenant: &TenantId, client: &ClientId) -> String {
    format!("GRANTS#{tenant}#{client}")
}

fn api_token_key(tenant: &TenantId, token_hash: &str) -> (String, String) {
    (format!("APITOKEN#{tenant}#{token_hash}"), "APITOKEN".into())
}

fn signin_failures_key(tenant: &TenantId, account: &str, window: i64) -> (String, String) {
    (format!("SIGNIN#{tenant}#{account}"), format!("W#{window}"))
}

fn pending_counter_key(tenant: &TenantId, bucket: i64) -> (String, String) {
    (format!("PENDING#{tenant}"), format!("W#{bucket}"))
}

fn authorization_request_key(tenant: &TenantId, id: &str) -> (String, String) {
    (format!("AUTHREQ#{tenant}#{id}"), "AUTHREQ".into())
}

fn session_key(tenant: &TenantId, id_hash: &str) -> (String, String) {
    (format!("SESSION#{tenant}#{id_hash}"), "SESSION".into())
}

fn consent_key(tenant: &TenantId, client: &ClientId, user_id: &str) -> (String, String) {
    (
        format!("CONSENT#{tenant}#{client}#{user_id}"),
        "CONSENT".into(),
    )
}

fn code_key(tenant: &TenantId, code_hash: &str) -> (String, String) {
    (format!("CODE#{tenant}#{code_hash}"), "CODE".into())
}

fn grant_key(tenant: &TenantId, id: &str) -> (String, String) {
    (format!("GRANT#{tenant}#{id}"), "GRANT".into())
}

fn refresh_key(tenant: &TenantId, token_hash: &str) -> (String, String) {
    (format!("REFRESH#{tenant}#{token_hash}"), "REFRESH".into())
}

/// Public signing keys share one partition (a handful of items), newest last by sort key.
const JWKS_PK: &str = "JWKS";

fn private_key_key(kid: &str) -> (String, String) {
    (format!("SIGNKEY#{kid}"), "SIGNKEY".into())
}

/// Mutable state lives in native attributes (so conditions can test it) and overrides the
/// JSON document's copy on read.
fn number_attr(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn decode_code(item: &Item) -> Result<AuthorizationCode, StoreError> {
    let mut code: AuthorizationCode = decode(item)?;
    if let Some(AttributeValue::S(g)) = item.get("redeemed_grant") {
        code.redeemed_grant = Some(g.clone());
    }
    Ok(code)
}

fn decode_grant(item: &Item) -> Result<Grant, StoreError> {
    let mut grant: Grant = decode(item)?;
    if let Some(at) = number_attr(item, "revoked_at") {
        grant.revoked_at = Some(at);
    }
    Ok(grant)
}

fn decode_refresh(item: &Item) -> Result<RefreshToken, StoreError> {
    let mut token: RefreshToken = decode(item)?;
    if let Some(at) = number_attr(item, "rotated_at") {
        token.rotated_at = Some(at);
    }
    Ok(token)
}

fn cancellation_codes(
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

type TransactResult = Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// Sends a transaction, retrying briefly when DynamoDB cancelled it only because a concurrent
/// transaction touched the same item (`TransactionConflict`; the SDK does not retry those).
/// Two parallel refreshes or registrations then serialise instead of failing with a 503.
async fn send_transaction(
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

fn condition_failed(codes: &[Option<String>], index: usize) -> bool {
    codes.get(index).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
}

fn with_ttl(mut item: Item, expires_at: UnixTime) -> Item {
    item.insert(TTL_ATTRIBUTE.into(), n(expires_at));
    item
}

fn key_map((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn doc_item<T: serde::Serialize>(
    key: (String, String),
    kind: &str,
    doc: &T,
) -> Result<Item, StoreError> {
    let json = serde_json::to_string(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut item = key_map(key);
    item.insert("kind".into(), s(kind));
    item.insert("doc".into(), s(json));
    Ok(item)
}

fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    match item.get("doc") {
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("item without a doc attribute".into())),
    }
}

fn client_item(client: &Client) -> Result<Item, StoreError> {
    let mut item = doc_item(
        client_key(&client.tenant, &client.client_id),
        "client",
        client,
    )?;
    item.insert("status".into(), s(client.status.as_str()));
    item.insert(CONFIG_VERSION_ATTRIBUTE.into(), n(client.config_version));
    item.insert("gsi1pk".into(), s(clients_gsi_pk(&client.tenant)));
    item.insert("gsi1sk".into(), s(client_cursor(client)));
    if let Some(exp) = client.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), n(exp));
    }
    Ok(item)
}

/// Puts an item into a GSI partition, sorted by `sk`.
fn indexed(mut item: Item, pk: String, sk: &str) -> Item {
    item.insert("gsi1pk".into(), s(pk));
    item.insert("gsi1sk".into(), s(sk));
    item
}

fn tenant_item(tenant: &Tenant) -> Result<Item, StoreError> {
    Ok(indexed(
        doc_item(tenant_key(&tenant.id), "tenant", tenant)?,
        TENANTS_GSI_PK.into(),
        tenant.id.as_str(),
    ))
}

fn user_item(user: &User) -> Result<Item, StoreError> {
    Ok(indexed(
        doc_item(user_key(&user.tenant, &user.email), "user", user)?,
        users_gsi_pk(&user.tenant),
        user.email.as_str(),
    ))
}

fn live_client(
    item: &Item,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<Option<Client>, StoreError> {
    let client: Client = decode(item)?;
    Ok((client.tenant == *tenant && client.is_live(now)).then_some(client))
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client (tests use it to set up states only an older release could leave).
    pub fn sdk(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Whether the table exists (the operator CLI checks before it writes).
    pub async fn table_exists(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), DescribeTableError::ResourceNotFoundException(_)) =>
            {
                Ok(false)
            }
            Err(other) => Err(unavailable(other)),
        }
    }

    /// Creates the table (keys, GSI, on-demand billing, TTL) when it does not exist. The SAM
    /// template creates the production table; this serves local runs and tests.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => match err.into_service_error() {
                DescribeTableError::ResourceNotFoundException(_) => {}
                other => {
                    return Err(StoreError::Unavailable(
                        DisplayErrorContext(&other).to_string(),
                    ));
                }
            },
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key("gsi1pk", KeyType::Hash)?)
            .key_schema(key("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        if let Err(err) = created {
            // Another process may have created it between our describe and create.
            let text = DisplayErrorContext(&err).to_string();
            if !text.contains("ResourceInUse") {
                return Err(StoreError::Unavailable(text));
            }
        }
        for _ in 0..60 {
            let desc = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(unavailable)?;
            if desc.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(
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
    fn put_item(&self, item: Item, only_if_new: bool) -> Result<TransactWriteItem, StoreError> {
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
    fn approval_item(
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
    async fn approval_failure(
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
    async fn query_gsi(
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
    async fn query_all<T>(
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
    async fn revoke_client_grants(
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
    async fn get_as<T>(
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
    async fn put(&self, mut item: Item, only_if_new: bool) -> Result<(), StoreError> {
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
    /// one transaction (see [`Store::update_client`], [`Store::update_approved_client`]).
    async fn replace_client(
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
    async fn batch_get(&self, mut wanted: Vec<Item>) -> Result<Vec<Item>, StoreError> {
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
    async fn verify_all(&self, clients: Vec<Client>) -> Result<Vec<Client>, StoreError> {
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
        clients
            .into_iter()
            .map(|c| {
                let key = approval_key(&c.tenant, &c.client_id).0;
                super::verified(c, records.get(&key))
            })
            .collect()
    }

    async fn exists(&self, key: (String, String)) -> Result<bool, StoreError> {
        Ok(self.get(key, true).await?.is_some())
    }

    /// After a refused create: `Ok` when the item at `key` carries this create's write id (an
    /// SDK retry of an attempt that committed but whose answer was lost), else
    /// [`StoreError::AlreadyExists`]. The id is random per create, so an earlier identical
    /// create is never mistaken for this one.
    async fn own_write(&self, key: (String, String), write_id: &str) -> Result<(), StoreError> {
        let item = self.get(key, true).await?;
        match item.as_ref().and_then(|i| i.get(WRITE_ID_ATTRIBUTE)) {
            Some(AttributeValue::S(w)) if w == write_id => Ok(()),
            _ => Err(StoreError::AlreadyExists),
        }
    }

    async fn counter(
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
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(NEW_OR_EXPIRED)
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(SdkError::ServiceError(ref se))
                    if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    self.own_write(client_key(&client.tenant, &client.client_id), &write_id)
                        .await
                }
                Err(other) => Err(unavailable(other)),
            };
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
        // The previous window is closed (only the current one is incremented), so reading it
        // first and conditioning the increment of the current one on the remainder is exact.
        let bucket = quota.bucket(now);
        let previous = self.counter(&client.tenant, bucket - 1, now).await?;
        if previous >= quota.cap {
            return Err(StoreError::PendingCapReached);
        }
        let limit = quota.cap - previous;
        let increment = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(pending_counter_key(&client.tenant, bucket))))
            .update_expression("SET #n = if_not_exists(#n, :zero) + :one, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":ttl", n(quota.bucket_expiry(bucket)))
            .build()
            .map_err(build_error)?;
        let result = send_transaction(
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(increment).build())
                .transact_items(put),
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if condition_failed(&codes, 0) => Err(StoreError::PendingCapReached),
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
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            )
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
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(approval_key(tenant, id))))
            .send()
            .await
            .map_err(unavailable)?;
        if existed {
            Ok(())
        } else {
            Err(StoreError::NotFound)
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
                    items.client = live_client(&item, keys.tenant, now)?;
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
        items.client = items
            .client
            .map(|c| super::verified(c, approval.as_ref()))
            .transpose()?;
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
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(api_token_key(tenant, token_hash))))
            .send()
            .await
            .map_err(unavailable)?;
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
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(session_key(tenant, id_hash))))
            .send()
            .await
            .map_err(unavailable)?;
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
        let client_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(client_key(&code.tenant, &code.client_id))))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            )
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        req = req.transact_items(
            TransactWriteItem::builder()
                .condition_check(client_exists)
                .build(),
        );
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

    async fn add_signing_key(
        &self,
        public: &PublicSigningKey,
        private_pkcs8_b64: &str,
    ) -> Result<(), StoreError> {
        let public_item = doc_item(
            (
                JWKS_PK.to_owned(),
                format!("{:012}#{}", public.created_at, public.kid),
            ),
            "jwk",
            public,
        )?;
        let mut private_item = key_map(private_key_key(&public.kid));
        private_item.insert("kind".into(), s("signkey"));
        private_item.insert("pkcs8".into(), s(private_pkcs8_b64));
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

/// SDK types re-exported for binaries that build a [`DynamoStore`] without depending on the SDK.
pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as SdkClient;
