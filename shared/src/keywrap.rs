//! Envelope encryption of private signing keys. Each private key is encrypted (AES-256-GCM)
//! with a data key of its own, and only the data key, wrapped by a key-encryption key, is
//! stored beside it: anyone who reads the table or a backup holds ciphertext and a wrapped
//! data key, and cannot sign a token without the wrapping key.
//!
//! Two wrapping keys:
//! - AWS KMS (`GATEHOUSE_KMS_KEY_ID`): `GenerateDataKey` when a key is created, `Decrypt` when
//!   the token function loads it (once per warm container and key, `crate::keycache::KeyCache`).
//!   The KMS encryption context names the tenant and the key id, so a wrapped data key
//!   copied onto another tenant's record does not decrypt, and CloudTrail shows whose key was
//!   opened. Only the token function's role may call `kms:Decrypt` (`infra/template.yaml`).
//! - A local AES-256 key (`GATEHOUSE_LOCAL_WRAPPING_KEY`, 32 bytes base64url), for development
//!   tables and tests; `gatehouse serve` on its embedded store makes a random one per process
//!   (the store lives in the same process and dies with it).
//!
//! The tenant and key id are the AES-GCM associated data at both layers, so a sealed key moved
//! to another record does not open.

use crate::domain::TenantId;
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// A private signing key as stored: encrypted under its own data key, which is stored only
/// wrapped. All fields base64url.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// Which wrapping key wrapped the data key: `kms` or `local`.
    pub wrapping: String,
    /// The data key, wrapped (for KMS: the `CiphertextBlob`, which names the KMS key).
    pub wrapped_key: String,
    pub nonce: String,
    /// The private key (base64 DER) encrypted with the data key, with the GCM tag.
    pub ciphertext: String,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKey")
            .field("wrapping", &self.wrapping)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// The wrapping key could not be used (KMS unreachable, throttled, access denied).
    #[error("key wrapping unavailable: {0}")]
    Unavailable(String),
    /// The sealed key does not open with this process's wrapping key and context.
    #[error("sealed signing key does not open: {0}")]
    Refused(String),
}

/// The wrapping key the settings name: KMS (`GATEHOUSE_KMS_KEY_ID`) or a local key
/// (`GATEHOUSE_LOCAL_WRAPPING_KEY`); `None` when neither is set. Both set is an error: which
/// one sealed the stored keys would be a guess. (`crate::config::Config::key_wrapper`; the
/// operator CLI reads the variables itself.)
pub fn wrapper(
    kms_key_id: Option<&str>,
    kms_endpoint: Option<&str>,
    local: Option<&str>,
    sdk: &aws_config::SdkConfig,
) -> Result<Option<std::sync::Arc<dyn KeyWrapper>>, String> {
    match (kms_key_id, local) {
        (Some(_), Some(_)) => {
            Err("set GATEHOUSE_KMS_KEY_ID or GATEHOUSE_LOCAL_WRAPPING_KEY, not both".into())
        }
        (Some(id), None) => Ok(Some(std::sync::Arc::new(KmsWrapper::new(
            sdk,
            id.to_owned(),
            kms_endpoint,
        )))),
        (None, Some(text)) => LocalWrapper::parse(text)
            .map(|w| Some(std::sync::Arc::new(w) as std::sync::Arc<dyn KeyWrapper>))
            .ok_or_else(|| {
                "GATEHOUSE_LOCAL_WRAPPING_KEY must be 32 bytes in base64url without padding".into()
            }),
        (None, None) => Ok(None),
    }
}

/// What a process that keeps signing keys in DynamoDB says when no wrapping key is set.
pub const WRAPPING_KEY_REQUIRED: &str = "signing keys in DynamoDB are stored encrypted: set \
     GATEHOUSE_KMS_KEY_ID to the KMS key that wraps them (the stack's SigningKeysKmsKeyArn \
     output), or GATEHOUSE_LOCAL_WRAPPING_KEY on a development table";

/// A wrapping key that cannot be reached is the store being unavailable (`503`, retried by
/// the client); a sealed key that does not open is corrupt data.
impl From<WrapError> for crate::store::StoreError {
    fn from(e: WrapError) -> Self {
        match e {
            WrapError::Unavailable(d) => Self::Unavailable(d),
            WrapError::Refused(d) => Self::Corrupt(d),
        }
    }
}

/// Where a sealed key belongs: its tenant and key id.
#[derive(Debug, Clone, Copy)]
pub struct KeyContext<'a> {
    pub tenant: &'a TenantId,
    pub kid: &'a str,
}

impl KeyContext<'_> {
    fn aad(&self) -> String {
        format!("gatehouse-signing-key|{}|{}", self.tenant, self.kid)
    }

    fn kms_context(&self) -> HashMap<String, String> {
        HashMap::from([
            ("gatehouse:tenant".to_owned(), self.tenant.to_string()),
            ("gatehouse:kid".to_owned(), self.kid.to_owned()),
        ])
    }
}

type DataKey = Zeroizing<[u8; 32]>;

/// A key-encryption key: makes data keys and unwraps them.
#[async_trait]
pub trait KeyWrapper: Send + Sync {
    /// `kms` or `local` (recorded in each [`SealedKey`]).
    fn kind(&self) -> &'static str;
    /// A new data key and its wrapped form.
    async fn new_data_key(&self, context: KeyContext<'_>) -> Result<(DataKey, Vec<u8>), WrapError>;
    /// The data key inside `wrapped`.
    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: KeyContext<'_>,
    ) -> Result<DataKey, WrapError>;
}

/// What the access record (`crate::telemetry::record_db_access`) names a KMS call's resource:
/// the stack's `SigningKeysKey`.
#[cfg(feature = "dynamodb-access-log")]
const KMS_KEY_PREFIX: &str = "SIGNINGKEYS";

/// AWS KMS as the wrapping key.
pub struct KmsWrapper {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsWrapper {
    pub fn new(sdk: &aws_config::SdkConfig, key_id: String, endpoint: Option<&str>) -> Self {
        let mut conf =
            aws_sdk_kms::config::Builder::from(sdk).interceptor(crate::xray::XRaySubsegments);
        if let Some(url) = endpoint {
            conf = conf.endpoint_url(url);
        }
        Self {
            client: aws_sdk_kms::Client::from_conf(conf.build()),
            key_id,
        }
    }
}

fn data_key(plain: Option<&Blob>) -> Result<DataKey, WrapError> {
    let bytes = plain
        .map(Blob::as_ref)
        .ok_or_else(|| WrapError::Refused("KMS returned no plaintext data key".into()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(WrapError::Refused("the data key is not 256 bits".into()));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

#[async_trait]
impl KeyWrapper for KmsWrapper {
    fn kind(&self) -> &'static str {
        "kms"
    }

    async fn new_data_key(&self, context: KeyContext<'_>) -> Result<(DataKey, Vec<u8>), WrapError> {
        #[cfg(feature = "dynamodb-access-log")]
        crate::telemetry::record_db_access("kms:GenerateDataKey", KMS_KEY_PREFIX, None);
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.kms_context()))
            .send()
            .await
            .map_err(|e| {
                WrapError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
            })?;
        let wrapped = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| WrapError::Unavailable("KMS returned no wrapped data key".into()))?;
        Ok((data_key(out.plaintext())?, wrapped))
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: KeyContext<'_>,
    ) -> Result<DataKey, WrapError> {
        #[cfg(feature = "dynamodb-access-log")]
        crate::telemetry::record_db_access("kms:Decrypt", KMS_KEY_PREFIX, None);
        let out = self
            .client
            .decrypt()
            // Naming the key: KMS refuses a blob wrapped by any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context.kms_context()))
            .send()
            .await
            .map_err(|e| {
                let invalid = e
                    .as_service_error()
                    .is_some_and(|s| s.is_invalid_ciphertext_exception());
                let detail = aws_sdk_kms::error::DisplayErrorContext(e).to_string();
                if invalid {
                    WrapError::Refused(detail)
                } else {
                    WrapError::Unavailable(detail)
                }
            })?;
        data_key(out.plaintext())
    }
}

/// A local AES-256 key as the wrapping key.
pub struct LocalWrapper {
    key: LessSafeKey,
}

impl LocalWrapper {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { key: aes_key(key) }
    }

    /// A random key that lives only in this process (the embedded store's).
    pub fn random() -> Self {
        Self::new(&Zeroizing::new(crate::crypto::random_bytes::<32>()))
    }

    /// The key from its configuration text: 32 bytes, base64url without padding.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).ok()?);
        let key: &[u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Self::new(key))
    }
}

#[async_trait]
impl KeyWrapper for LocalWrapper {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn new_data_key(&self, context: KeyContext<'_>) -> Result<(DataKey, Vec<u8>), WrapError> {
        let key = Zeroizing::new(crate::crypto::random_bytes::<32>());
        let (nonce, sealed) = seal_with(&self.key, &context.aad(), key.as_slice())?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&sealed);
        Ok((key, wrapped))
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: KeyContext<'_>,
    ) -> Result<DataKey, WrapError> {
        let (nonce, sealed) = wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| WrapError::Refused("wrapped data key too short".into()))?;
        let plain = Zeroizing::new(open_with(&self.key, &context.aad(), nonce, sealed)?);
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(WrapError::Refused("the data key is not 256 bits".into()));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    // AES-256-GCM takes any 32 bytes; `new` fails only on a wrong length.
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!());
    LessSafeKey::new(unbound)
}

/// Encrypts with a fresh random nonce (each data key seals one value, the local wrapping key
/// one data key per signing key: far below GCM's random-nonce limit).
fn seal_with(
    key: &LessSafeKey,
    aad: &str,
    plain: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), WrapError> {
    let nonce = crate::crypto::random_bytes::<NONCE_LEN>();
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut buf,
    )
    .map_err(|_| WrapError::Refused("encryption failed".into()))?;
    Ok((nonce, buf))
}

fn open_with(
    key: &LessSafeKey,
    aad: &str,
    nonce: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, WrapError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| WrapError::Refused("bad nonce".into()))?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
        .map_err(|_| WrapError::Refused("authentication failed".into()))?;
    Ok(plain.to_vec())
}

/// Encrypts a private key (base64 DER) for `context` under a new data key.
pub async fn seal(
    wrapper: &dyn KeyWrapper,
    context: KeyContext<'_>,
    private_b64: &str,
) -> Result<SealedKey, WrapError> {
    let (data_key, wrapped) = wrapper.new_data_key(context).await?;
    let (nonce, ciphertext) =
        seal_with(&aes_key(&data_key), &context.aad(), private_b64.as_bytes())?;
    Ok(SealedKey {
        wrapping: wrapper.kind().to_owned(),
        wrapped_key: URL_SAFE_NO_PAD.encode(wrapped),
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
    })
}

/// The private key (base64 DER) inside `sealed`, which must belong to `context`.
pub async fn open(
    wrapper: &dyn KeyWrapper,
    context: KeyContext<'_>,
    sealed: &SealedKey,
) -> Result<Zeroizing<String>, WrapError> {
    if sealed.wrapping != wrapper.kind() {
        return Err(WrapError::Refused(format!(
            "key {} was wrapped by a {} key, and this process has a {} key",
            context.kid,
            sealed.wrapping,
            wrapper.kind()
        )));
    }
    let field = |name: &str, value: &str| {
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| WrapError::Refused(format!("{name} is not base64url")))
    };
    let wrapped = field("wrapped_key", &sealed.wrapped_key)?;
    let nonce = field("nonce", &sealed.nonce)?;
    let ciphertext = field("ciphertext", &sealed.ciphertext)?;
    let data_key = wrapper.unwrap_data_key(&wrapped, context).await?;
    let plain = open_with(&aes_key(&data_key), &context.aad(), &nonce, &ciphertext)?;
    String::from_utf8(plain)
        .map(Zeroizing::new)
        .map_err(|_| WrapError::Refused("the private key is not text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).expect("tenant id")
    }

    #[tokio::test]
    async fn a_sealed_key_opens_only_for_its_tenant_and_kid_with_its_wrapping_key() {
        let wrapper = LocalWrapper::random();
        let acme = tenant("acme");
        let ctx = KeyContext {
            tenant: &acme,
            kid: "k1",
        };
        let sealed = seal(&wrapper, ctx, "cHJpdmF0ZQ==").await.expect("seal");
        assert!(!sealed.ciphertext.contains("cHJpdmF0ZQ"));
        assert_eq!(
            open(&wrapper, ctx, &sealed).await.expect("open").as_str(),
            "cHJpdmF0ZQ=="
        );
        let other = tenant("other");
        let moved = KeyContext {
            tenant: &other,
            kid: "k1",
        };
        assert!(open(&wrapper, moved, &sealed).await.is_err());
        let renamed = KeyContext {
            tenant: &acme,
            kid: "k2",
        };
        assert!(open(&wrapper, renamed, &sealed).await.is_err());
        assert!(open(&LocalWrapper::random(), ctx, &sealed).await.is_err());
        let mut tampered = sealed.clone();
        tampered.ciphertext.replace_range(0..1, "A");
        if tampered != sealed {
            assert!(open(&wrapper, ctx, &tampered).await.is_err());
        }
        let relabelled = SealedKey {
            wrapping: "kms".into(),
            ..sealed
        };
        assert!(open(&wrapper, ctx, &relabelled).await.is_err());
    }

    #[test]
    fn the_local_key_is_32_bytes_of_base64url() {
        assert!(LocalWrapper::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_some());
        assert!(LocalWrapper::parse(&URL_SAFE_NO_PAD.encode([7u8; 31])).is_none());
        assert!(LocalWrapper::parse("not base64!").is_none());
        assert!(LocalWrapper::parse("").is_none());
    }
}
