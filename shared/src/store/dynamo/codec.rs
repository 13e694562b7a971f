//! Item encoding: each item keeps the domain record as a JSON document in `doc` and lifts into
//! native attributes only what keys, conditions, the GSI and TTL need.

use crate::domain::{
    Approval, AuthorizationCode, Client, Grant, RefreshToken, Tenant, TenantId, UnixTime, User,
};
use crate::store::{StoreError, client_cursor};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

use super::*;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Mutable state lives in native attributes (so conditions can test it) and overrides the
/// JSON document's copy on read.
pub(super) fn number_attr(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(super) fn decode_code(item: &Item) -> Result<AuthorizationCode, StoreError> {
    let mut code: AuthorizationCode = decode(item)?;
    if let Some(AttributeValue::S(g)) = item.get("redeemed_grant") {
        code.redeemed_grant = Some(g.clone());
    }
    Ok(code)
}

pub(super) fn decode_grant(item: &Item) -> Result<Grant, StoreError> {
    let mut grant: Grant = decode(item)?;
    if let Some(at) = number_attr(item, "revoked_at") {
        grant.revoked_at = Some(at);
    }
    Ok(grant)
}

pub(super) fn decode_refresh(item: &Item) -> Result<RefreshToken, StoreError> {
    let mut token: RefreshToken = decode(item)?;
    if let Some(at) = number_attr(item, "rotated_at") {
        token.rotated_at = Some(at);
    }
    Ok(token)
}

pub(super) fn with_ttl(mut item: Item, expires_at: UnixTime) -> Item {
    item.insert(TTL_ATTRIBUTE.into(), n(expires_at));
    item
}

pub(super) fn key_map((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn doc_item<T: serde::Serialize>(
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

pub(super) fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    match item.get("doc") {
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("item without a doc attribute".into())),
    }
}

pub(super) fn client_item(client: &Client) -> Result<Item, StoreError> {
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
pub(super) fn indexed(mut item: Item, pk: String, sk: &str) -> Item {
    item.insert("gsi1pk".into(), s(pk));
    item.insert("gsi1sk".into(), s(sk));
    item
}

pub(super) fn tenant_item(tenant: &Tenant) -> Result<Item, StoreError> {
    Ok(indexed(
        doc_item(tenant_key(&tenant.id), "tenant", tenant)?,
        TENANTS_GSI_PK.into(),
        tenant.id.as_str(),
    ))
}

pub(super) fn user_item(user: &User) -> Result<Item, StoreError> {
    Ok(indexed(
        doc_item(user_key(&user.tenant, &user.email), "user", user)?,
        users_gsi_pk(&user.tenant),
        user.email.as_str(),
    ))
}

pub(super) fn approval_item(client: &Client) -> Result<Item, StoreError> {
    doc_item(
        approval_key(&client.tenant, &client.client_id),
        "approval",
        &Approval::of(client),
    )
}

pub(super) fn live_client(
    item: &Item,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<Option<Client>, StoreError> {
    let client: Client = decode(item)?;
    Ok((client.tenant == *tenant && client.is_live(now)).then_some(client))
}
