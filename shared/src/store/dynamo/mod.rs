//! DynamoDB adapter. One table; key patterns, attributes and TTLs are in
//! `shared/storage-schema.md`. Each item keeps the domain record as a JSON document in `doc`
//! and lifts into native attributes only what keys, conditions, the GSI and TTL need.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

mod audit;
mod calls;
mod clients;
mod codec;
mod directory;
mod flow;
mod keys;
mod setup;
mod table;
mod tokens;
mod trust;

use calls::*;
use codec::*;
use keys::*;
pub use keys::{GSI1, TTL_ATTRIBUTE};
pub use setup::{sdk_client, sdk_config, sdk_config_in};

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// SDK types re-exported for binaries that build a [`DynamoStore`] without depending on the SDK.
pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as SdkClient;

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
}
