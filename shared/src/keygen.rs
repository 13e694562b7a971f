//! Signing key generation: a P-256 key pair for ES256 (ring) and a 2048-bit RSA key pair for
//! RS256. ring signs with both but cannot generate RSA keys, so the `rsa` crate generates them
//! (from the OS RNG, constant-time crypto-bigint arithmetic) and nothing else: this is the one
//! file that names it (`tests/blackbox/test_dependencies.py`). Private halves are stored apart
//! from public ones (`crate::store::TokenStore::add_signing_key`).

use crate::crypto;
use crate::domain::{PublicSigningKey, SigningAlg, TenantId, UnixTime};
use crate::keywrap::{self, KeyContext, KeyWrapper};
use crate::store::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key generation failed: {0}")]
    Generation(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// RSA modulus size for RS256 keys: the size OpenID providers publish, and the smallest ring
/// verifies.
const RSA_BITS: usize = 2048;

/// Generates a key pair for `alg`: (public record, private key as base64 DER: PKCS#8 for
/// ES256, PKCS#1 for RS256).
pub fn generate_key(
    alg: SigningAlg,
    now: UnixTime,
) -> Result<(PublicSigningKey, String), KeyError> {
    let mut public = PublicSigningKey {
        kid: crypto::hex(&crypto::random_bytes::<8>()),
        alg,
        x: String::new(),
        y: String::new(),
        n: String::new(),
        e: String::new(),
        created_at: now,
    };
    let private = match alg {
        SigningAlg::ES256 => {
            let (x, y, pkcs8) = generate_p256()?;
            (public.x, public.y) = (x, y);
            pkcs8
        }
        SigningAlg::RS256 => {
            let (n, e, pkcs1) = generate_rsa()?;
            (public.n, public.e) = (n, e);
            pkcs1
        }
    };
    Ok((public, STANDARD.encode(private)))
}

/// A P-256 key pair from ring: (x, y, PKCS#8).
fn generate_p256() -> Result<(String, String, Vec<u8>), KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generation("no key pair"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| KeyError::Generation("unreadable key pair"))?;
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
    if point.len() != 65 || point[0] != 4 {
        return Err(KeyError::Generation("unexpected public key encoding"));
    }
    Ok((
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
        pkcs8.as_ref().to_vec(),
    ))
}

/// An RSA key pair (ring cannot generate RSA keys; the `rsa` crate does, from the OS RNG, and
/// ring signs with it): (n, e, PKCS#1).
fn generate_rsa() -> Result<(String, String, Vec<u8>), KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
        .map_err(|_| KeyError::Generation("no key pair"))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|_| KeyError::Generation("unreadable key pair"))?;
    Ok((
        URL_SAFE_NO_PAD.encode(key.n_bytes()),
        URL_SAFE_NO_PAD.encode(key.e_bytes()),
        der.as_bytes().to_vec(),
    ))
}

/// Where signing keys live: the store, and the key that wraps their private halves
/// (`crate::keywrap`).
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub store: &'a dyn Store,
    pub wrapper: &'a dyn KeyWrapper,
}

/// Adds a new signing key for `alg` to the tenant's set (rotation): it becomes that
/// algorithm's active key once published long enough; older keys stay published. The private
/// half is stored only sealed.
pub async fn rotate(
    keys: Keys<'_>,
    tenant: &TenantId,
    alg: SigningAlg,
    now: UnixTime,
) -> Result<PublicSigningKey, KeyError> {
    let (public, private) = generate_key(alg, now)?;
    let context = KeyContext {
        tenant,
        kid: &public.kid,
    };
    let sealed = keywrap::seal(keys.wrapper, context, &private)
        .await
        .map_err(StoreError::from)?;
    keys.store.add_signing_key(tenant, &public, &sealed).await?;
    Ok(public)
}

/// Creates a key for every algorithm the tenant has none of yet (a new tenant, or one from
/// before RS256), so its JWKS lists them before the first token; returns what it created.
pub async fn ensure_keys(
    keys: Keys<'_>,
    tenant: &TenantId,
    now: UnixTime,
) -> Result<Vec<PublicSigningKey>, KeyError> {
    let existing = keys.store.list_public_keys(tenant).await?;
    let mut created = Vec::new();
    for alg in SigningAlg::ALL {
        if !existing.iter().any(|k| k.alg == alg) {
            created.push(rotate(keys, tenant, alg, now).await?);
        }
    }
    Ok(created)
}
