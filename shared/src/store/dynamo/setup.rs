//! The SDK set-up every process shares: timeouts and retries, region, TLS, and the interceptor
//! that counts (and, for the IAM policy test, records) every DynamoDB call.

#[cfg(feature = "dynamodb-access-log")]
use super::{GSI1, Item};
use crate::defaults;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

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
pub(super) struct CountCalls;

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
pub(super) fn key_prefix(pk: &str) -> &str {
    pk.find('#').map_or(pk, |i| &pk[..=i])
}

#[cfg(feature = "dynamodb-access-log")]
/// Every item access a request makes, as IAM evaluates it: `(action, partition key, index)`.
/// A transaction's parts are the actions they stand for (`Put` → `PutItem`, `ConditionCheck`
/// → `ConditionCheckItem`); a query names the partition key its key condition fixes.
/// Table-level operations (only `gatehouse serve` creates tables) record the table itself.
pub(super) fn item_accesses(
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
        .interceptor(crate::xray::XRaySubsegments)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}
