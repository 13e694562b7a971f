//! Access tokens: RFC 9068 JWTs signed with ES256 under a `kid`, and the signing keys behind
//! them. Keys are generated on first use (or by the operator CLI), stored with the private half
//! apart from the public one (IAM lets only the token function read private halves), cached
//! per process, and rotated by adding a newer key: every published key stays in the JWKS, so
//! tokens signed by an older key keep verifying until they expire.
//!
//! [`verify_access_token`] is the reusable verifier for resource servers (the demo MCP endpoint,
//! a tenant's own Rust MCP server, an API Gateway authorizer): signature by a JWKS key, `typ`,
//! `iss`, `aud`, `exp`.

use crate::crypto;
use crate::defaults::{KEY_ACTIVATION_DELAY_SECS, SIGNING_KEY_CACHE_SECS};
use crate::documents::Document;
use crate::domain::{PublicSigningKey, UnixTime};
use crate::jwt_crypto;
use crate::store::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// RFC 9068 §2.2 claims, plus `sid`: the grant the token belongs to (revocation and
/// introspection look it up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed or not signed by this server: {0}")]
    Invalid(String),
    #[error("no signing key is available")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signing key ready to use.
pub struct SigningKey {
    pub kid: String,
    key: EncodingKey,
}

/// The published keys, ready to verify with.
pub struct KeySet {
    pub public: Vec<PublicSigningKey>,
    decoding: HashMap<String, DecodingKey>,
    /// The JWKS, serialised once per key set (`crate::documents`).
    pub document: Document,
}

impl KeySet {
    pub fn from_public(public: Vec<PublicSigningKey>) -> Self {
        let decoding = public
            .iter()
            .filter_map(|k| {
                DecodingKey::from_ec_components(&k.x, &k.y)
                    .ok()
                    .map(|d| (k.kid.clone(), d))
            })
            .collect();
        let document = Document::new(&Self::jwks(&public));
        Self {
            public,
            decoding,
            document,
        }
    }

    /// RFC 7517 JWK Set of the public keys.
    fn jwks(public: &[PublicSigningKey]) -> Value {
        json!({
            "keys": public.iter().map(|k| json!({
                "kty": "EC", "crv": "P-256", "x": k.x, "y": k.y,
                "kid": k.kid, "use": "sig", "alg": "ES256",
            })).collect::<Vec<_>>()
        })
    }
}

/// Generates a P-256 key pair: (public record, private PKCS#8 as base64).
pub fn generate_key(now: UnixTime) -> Result<(PublicSigningKey, String), TokenError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| TokenError::Invalid("key generation failed".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| TokenError::Invalid("generated key unreadable".into()))?;
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
    if point.len() != 65 || point[0] != 4 {
        return Err(TokenError::Invalid("unexpected public key encoding".into()));
    }
    let public = PublicSigningKey {
        kid: crypto::hex(&crypto::random_bytes::<8>()),
        x: URL_SAFE_NO_PAD.encode(&point[1..33]),
        y: URL_SAFE_NO_PAD.encode(&point[33..65]),
        created_at: now,
    };
    Ok((public, STANDARD.encode(pkcs8.as_ref())))
}

/// Adds a new signing key (rotation): it becomes the active key; older keys stay published.
pub async fn rotate(store: &dyn Store, now: UnixTime) -> Result<PublicSigningKey, TokenError> {
    let (public, private) = generate_key(now)?;
    store.add_signing_key(&public, &private).await?;
    Ok(public)
}

/// The key that signs at `now`, from the published keys (newest first). A rotated-in key signs
/// only once every cache had time to publish it (JWKS caches and resource servers' copies):
/// the newest key older than [`KEY_ACTIVATION_DELAY_SECS`]; while none is that old (a first key,
/// or a rotation soon after it), the oldest, which has been published longest.
fn active_key(public: &[PublicSigningKey], now: UnixTime) -> Option<&PublicSigningKey> {
    let activation = i64::try_from(KEY_ACTIVATION_DELAY_SECS).unwrap_or(i64::MAX);
    public
        .iter()
        .find(|k| k.created_at <= now.saturating_sub(activation))
        .or_else(|| public.last())
}

/// Per-process cache of the active signing key and the published key set, each kept for
/// [`SIGNING_KEY_CACHE_SECS`] of the application's clock (`crate::clock`), so that the key
/// activation delay can be tested end to end.
#[derive(Default)]
pub struct KeyCache {
    signing: Mutex<Option<(UnixTime, Arc<SigningKey>)>>,
    verifying: Mutex<Option<(UnixTime, Arc<KeySet>)>>,
}

impl KeyCache {
    fn fresh<T: Clone>(slot: &Mutex<Option<(UnixTime, T)>>, now: UnixTime) -> Option<T> {
        let ttl = i64::try_from(SIGNING_KEY_CACHE_SECS).unwrap_or(i64::MAX);
        let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(at, _)| (*at..at.saturating_add(ttl)).contains(&now))
            .map(|(_, v)| v.clone())
    }

    /// The newest key, creating one on first use when none exists.
    pub async fn signing_key(
        &self,
        store: &dyn Store,
        now: UnixTime,
    ) -> Result<Arc<SigningKey>, TokenError> {
        if let Some(k) = Self::fresh(&self.signing, now) {
            return Ok(k);
        }
        let mut public = store.list_public_keys().await?;
        if public.is_empty() {
            public.push(rotate(store, now).await?);
        }
        let newest = active_key(&public, now).ok_or(TokenError::NoKey)?;
        let private = store
            .get_private_key(&newest.kid)
            .await?
            .ok_or(TokenError::NoKey)?;
        let der = STANDARD
            .decode(private)
            .map_err(|_| TokenError::Invalid("stored private key is not base64".into()))?;
        let key = Arc::new(SigningKey {
            kid: newest.kid.clone(),
            key: EncodingKey::from_ec_der(&der),
        });
        *self.signing.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, Arc::clone(&key)));
        Ok(key)
    }

    /// The published keys; `refresh` forces a re-read.
    pub async fn key_set(
        &self,
        store: &dyn Store,
        refresh: bool,
        now: UnixTime,
    ) -> Result<Arc<KeySet>, TokenError> {
        if !refresh && let Some(k) = Self::fresh(&self.verifying, now) {
            return Ok(k);
        }
        let set = Arc::new(KeySet::from_public(store.list_public_keys().await?));
        *self.verifying.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, Arc::clone(&set)));
        Ok(set)
    }

    /// The published keys as verifying `token` needs them: read again when the token names a
    /// key this process has not seen (a rotation since the cache was filled).
    pub async fn key_set_for(
        &self,
        store: &dyn Store,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<KeySet>, TokenError> {
        let keys = self.key_set(store, false, now).await?;
        let unknown = token_kid(token).is_some_and(|kid| !keys.public.iter().any(|k| k.kid == kid));
        if unknown {
            self.key_set(store, true, now).await
        } else {
            Ok(keys)
        }
    }
}

pub fn sign_access_token(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    jwt_crypto::install();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.key).map_err(|e| TokenError::Invalid(e.to_string()))
}

/// The `kid` a token claims, without verifying anything (to pick the key).
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}

/// Verifies an access token as a resource server must (RFC 9068 §4): `typ` is `at+jwt`, the
/// signature is ES256 by a published key, `iss` is the issuer, `aud` the resource, and it has
/// not expired. `audience: None` skips the audience check (introspection, revocation).
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, TokenError> {
    jwt_crypto::install();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(TokenError::Invalid("alg must be ES256".into()));
    }
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(TokenError::Invalid("typ must be at+jwt".into()));
    }
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
    let key = keys
        .decoding
        .get(&kid)
        .ok_or_else(|| TokenError::Invalid("unknown kid".into()))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud", "iat"]);
    validation.leeway = 30;
    jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://as.example/t/demo".into(),
            sub: "u1".into(),
            aud: "https://as.example/t/demo/mcp".into(),
            client_id: "c1".into(),
            scope: "mcp:execute".into(),
            iat: now,
            exp: now + 60,
            jti: "j1".into(),
            sid: "g1".into(),
        }
    }

    fn key() -> (SigningKey, KeySet) {
        let (public, private) = generate_key(1).unwrap();
        let der = STANDARD.decode(private).unwrap();
        (
            SigningKey {
                kid: public.kid.clone(),
                key: EncodingKey::from_ec_der(&der),
            },
            KeySet::from_public(vec![public]),
        )
    }

    #[test]
    fn signs_and_verifies_rfc_9068_tokens() {
        let now = crate::domain::unix_now();
        let (k, set) = key();
        let token = sign_access_token(&k, &claims(now)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(k.kid.as_str()));
        let got = verify_access_token(
            &token,
            &set,
            "https://as.example/t/demo",
            Some("https://as.example/t/demo/mcp"),
        )
        .unwrap();
        assert_eq!(got, claims(now));
        assert!(verify_access_token(&token, &set, "https://other/t/demo", None).is_err());
        assert!(
            verify_access_token(&token, &set, "https://as.example/t/demo", Some("https://x"))
                .is_err()
        );
        let (_, other_set) = key();
        assert!(
            verify_access_token(&token, &other_set, "https://as.example/t/demo", None).is_err()
        );
        let mut expired = claims(now - 1000);
        expired.exp = now - 500;
        let old = sign_access_token(&k, &expired).unwrap();
        assert!(verify_access_token(&old, &set, "https://as.example/t/demo", None).is_err());
        assert!(verify_access_token("garbage", &set, "https://as.example/t/demo", None).is_err());
    }

    #[test]
    fn a_rotated_in_key_signs_only_after_the_activation_delay() {
        let key = |kid: &str, created_at| PublicSigningKey {
            kid: kid.into(),
            x: String::new(),
            y: String::new(),
            created_at,
        };
        let delay = i64::try_from(KEY_ACTIVATION_DELAY_SECS).unwrap();
        let first = key("first", 1000);
        assert_eq!(
            active_key(std::slice::from_ref(&first), 1000).unwrap().kid,
            "first"
        );
        // Rotated soon after the first key: the first keeps signing until the new one is old.
        let keys = [key("second", 1200), first.clone()];
        assert_eq!(active_key(&keys, 1300).unwrap().kid, "first");
        assert_eq!(active_key(&keys, 1200 + delay - 1).unwrap().kid, "first");
        assert_eq!(active_key(&keys, 1200 + delay).unwrap().kid, "second");
        assert!(active_key(&[], 1000).is_none());
    }

    /// RFC 8725 §2.1/§3.1: the algorithm comes from the key, never from the token: `alg: none`
    /// and HS256 "signed" with the public key are refused, as is a token without `typ: at+jwt`.
    #[test]
    fn refuses_algorithm_confusion_and_untyped_tokens() {
        let now = crate::domain::unix_now();
        let (k, set) = key();
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let payload = b64(&serde_json::to_value(claims(now)).unwrap());
        let none = format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "at+jwt", "kid": k.kid}))
        );
        assert!(verify_access_token(&none, &set, "https://as.example/t/demo", None).is_err());

        // HS256 keyed with the public key's coordinates, signed by hand: the provider
        // (`crate::jwt_crypto`) cannot even produce one.
        let public = &set.public[0];
        let header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": public.kid}));
        let secret = format!("{}{}", public.x, public.y);
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
            format!("{header}.{payload}").as_bytes(),
        );
        let confused = format!(
            "{header}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.as_ref())
        );
        assert!(verify_access_token(&confused, &set, "https://as.example/t/demo", None).is_err());

        let mut untyped = Header::new(Algorithm::ES256);
        untyped.kid = Some(k.kid.clone());
        let plain_jwt = jsonwebtoken::encode(&untyped, &claims(now), &k.key).unwrap();
        assert!(verify_access_token(&plain_jwt, &set, "https://as.example/t/demo", None).is_err());

        let good = sign_access_token(&k, &claims(now)).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload = b64(&json!({"iss": "https://as.example/t/demo", "sub": "admin"}));
        parts[1] = &tampered_payload;
        assert!(
            verify_access_token(&parts.join("."), &set, "https://as.example/t/demo", None).is_err()
        );
    }
}
