//! Envelope encryption with AWS KMS as the wrapping key (`gatehouse_core::keywrap`), against
//! moto's KMS API (the server `tests/run` starts for DynamoDB serves KMS too): a key sealed for
//! one tenant and key id opens only with that encryption context and that KMS key.

use gatehouse_core::domain::TenantId;
use gatehouse_core::keywrap::{self, KeyContext, KeyWrapper, KmsWrapper, WrapError};
use gatehouse_core::store::dynamo::sdk_config;

async fn kms_key(shared: &aws_config::SdkConfig) -> String {
    let conf = aws_sdk_kms::config::Builder::from(shared)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "kms-test",
        ))
        .build();
    let created = aws_sdk_kms::Client::from_conf(conf)
        .create_key()
        .description("gatehouse keywrap test")
        .send()
        .await
        .expect("create a KMS key");
    created
        .key_metadata()
        .map(|m| m.arn().unwrap_or(m.key_id()).to_owned())
        .expect("key metadata")
}

#[tokio::test]
async fn kms_wrapped_keys_open_only_in_their_context_and_under_their_key() {
    let endpoint = std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT")
        .expect("GATEHOUSE_TEST_DYNAMODB_ENDPOINT (moto) is not set: run ./tests/run");
    let shared = sdk_config(Some(&endpoint)).await;
    let key = kms_key(&shared).await;
    let wrapper = KmsWrapper::new(&shared, key, Some(&endpoint));
    assert_eq!(wrapper.kind(), "kms");
    let acme = TenantId::parse("acme").expect("tenant");
    let ctx = KeyContext {
        tenant: &acme,
        kid: "k1",
    };
    let sealed = keywrap::seal(&wrapper, ctx, "cHJpdmF0ZS1rZXk=")
        .await
        .expect("seal with KMS");
    assert_eq!(sealed.wrapping, "kms");
    assert!(!sealed.ciphertext.contains("cHJpdmF0ZS1rZXk"));
    let opened = keywrap::open(&wrapper, ctx, &sealed).await.expect("open");
    assert_eq!(opened.as_str(), "cHJpdmF0ZS1rZXk=");

    // Another tenant's context: KMS refuses the data key (its encryption context differs).
    let other = TenantId::parse("other").expect("tenant");
    let moved = KeyContext {
        tenant: &other,
        kid: "k1",
    };
    assert!(matches!(
        keywrap::open(&wrapper, moved, &sealed).await,
        Err(WrapError::Refused(_) | WrapError::Unavailable(_))
    ));
    // Another KMS key cannot open it either.
    let stranger = KmsWrapper::new(&shared, kms_key(&shared).await, Some(&endpoint));
    assert!(keywrap::open(&stranger, ctx, &sealed).await.is_err());
    // Nor a local wrapping key (the record says which kind wrapped it).
    let local = keywrap::LocalWrapper::random();
    assert!(matches!(
        keywrap::open(&local, ctx, &sealed).await,
        Err(WrapError::Refused(_))
    ));
}
