//! Table creation for local development and tests (production tables come from the SAM
//! template).

use crate::store::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use std::time::Duration;

use super::*;

impl DynamoStore {
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
        if self.table_exists().await? {
            return Ok(());
        }
        self.create_table().await?;
        self.wait_until_active().await?;
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

    /// `pk`/`sk` keys and the `gsi1` index (`gsi1pk`/`gsi1sk`), as `storage-schema.md` lists them.
    async fn create_table(&self) -> Result<(), StoreError> {
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
        match created {
            Ok(_) => Ok(()),
            // Another process may have created it between our describe and create.
            Err(err) => {
                let text = DisplayErrorContext(&err).to_string();
                if text.contains("ResourceInUse") {
                    Ok(())
                } else {
                    Err(StoreError::Unavailable(text))
                }
            }
        }
    }

    /// Up to 30 s for a new table to become active.
    async fn wait_until_active(&self) -> Result<(), StoreError> {
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
        Ok(())
    }
}
