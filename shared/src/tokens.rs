//! Access tokens: RFC 9068 JWTs signed with ES256 under a `kid`, and the signing keys behind
//! them. Keys are generated on first use (or by the operator CLI), stored with the private half
//! apart from the public one (IAM lets only the token function read private halves), cached
//! per process, and rotated by adding a newer key: every published key stays in the JWKS, so
//! tokens signed by an older key keep verifying until they expire.
//!
//! [`verify_access_token`] is the reusable verifier for resource servers (the demo MCP endpoint,
//! a tenant's own Rust MCP server, an API Gateway authorizer): signature by a JWKS key, `typ`,
//! `iss`, `aud`, `exp`.

use crate::defaults::KEY_ACTIVATION_DELAY_SECS;
use crate::documents::Document;
use crate::domain::{PublicSigningKey, SigningAlg, UnixTime};
use crate::jwt_crypto;
pub use crate::keygen::{Keys, ensure_keys, generate_key, rotate};
use crate::store::StoreError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

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
    #[error(transparent)]
    Key(#[from] crate::keygen::KeyError),
}

/// A signing key ready to use.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    key: EncodingKey,
}

impl SigningKey {
    /// Reads a stored private key: PKCS#8 for ES256, PKCS#1 for RS256 (base64).
    pub(crate) fn from_stored(
        public: &PublicSigningKey,
        private_b64: &str,
    ) -> Result<Self, TokenError> {
        let der = STANDARD
            .decode(private_b64)
            .map_err(|_| TokenError::Invalid("stored private key is not base64".into()))?;
        let key = match public.alg {
            SigningAlg::ES256 => EncodingKey::from_ec_der(&der),
            SigningAlg::RS256 => EncodingKey::from_rsa_der(&der),
        };
        Ok(Self {
            kid: public.kid.clone(),
            alg: public.alg,
            key,
        })
    }
}

/// The published keys, ready to verify with.
pub struct KeySet {
    pub public: Vec<PublicSigningKey>,
    decoding: HashMap<String, (SigningAlg, DecodingKey)>,
    /// The JWKS, serialised once per key set (`crate::documents`).
    pub document: Document,
}

impl KeySet {
    pub fn from_public(public: Vec<PublicSigningKey>) -> Self {
        let decoding = public
            .iter()
            .filter_map(|k| {
                let key = match k.alg {
                    SigningAlg::ES256 => DecodingKey::from_ec_components(&k.x, &k.y),
                    SigningAlg::RS256 => DecodingKey::from_rsa_components(&k.n, &k.e),
                };
                key.ok().map(|d| (k.kid.clone(), (k.alg, d)))
            })
            .collect();
        let document = Document::new(&Self::jwks(&public));
        Self {
            public,
            decoding,
            document,
        }
    }

    /// The key published under `kid` for `alg`: a token naming a key of another algorithm
    /// finds none (RFC 8725 §3.1).
    fn decoding_key(&self, kid: &str, alg: SigningAlg) -> Option<&DecodingKey> {
        self.decoding
            .get(kid)
            .filter(|(a, _)| *a == alg)
            .map(|(_, k)| k)
    }

    /// RFC 7517 JWK Set of the public keys (RFC 7518 §6.2 and §6.3 members).
    fn jwks(public: &[PublicSigningKey]) -> Value {
        json!({
            "keys": public.iter().map(|k| match k.alg {
                SigningAlg::ES256 => json!({
                    "kty": "EC", "crv": "P-256", "x": k.x, "y": k.y,
                    "kid": k.kid, "use": "sig", "alg": "ES256",
                }),
                SigningAlg::RS256 => json!({
                    "kty": "RSA", "n": k.n, "e": k.e,
                    "kid": k.kid, "use": "sig", "alg": "RS256",
                }),
            }).collect::<Vec<_>>()
        })
    }
}

/// The key of `alg` that signs at `now`, from the published keys (newest first). A rotated-in
/// key signs only once every cache had time to publish it (JWKS caches and resource servers'
/// copies): the newest key older than [`KEY_ACTIVATION_DELAY_SECS`]; while none is that old (a
/// first key, or a rotation soon after it), the oldest, which has been published longest.
pub(crate) fn active_key(
    public: &[PublicSigningKey],
    alg: SigningAlg,
    now: UnixTime,
) -> Option<&PublicSigningKey> {
    let activation = i64::try_from(KEY_ACTIVATION_DELAY_SECS).unwrap_or(i64::MAX);
    let mut of_alg = public.iter().filter(|k| k.alg == alg);
    of_alg
        .clone()
        .find(|k| k.created_at <= now.saturating_sub(activation))
        .or_else(|| of_alg.next_back())
}

fn jws_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
    }
}

/// A compact JWS of `claims` by `key`, with its algorithm, `kid` and `typ`.
fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, TokenError> {
    jwt_crypto::install();
    let mut header = Header::new(jws_alg(key.alg));
    header.typ = Some(typ.into());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.key).map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Signs an RFC 9068 access token (`typ: at+jwt`) with `key`, of the tenant's access-token
/// algorithm.
pub fn sign_access_token(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    sign(key, "at+jwt", claims)
}

/// Signs an OpenID Connect ID token (Core §2) with `key`, RS256 or ES256 as the client
/// registered (`id_token_signed_response_alg`), with `typ: JWT`.
pub fn sign_id_token(key: &SigningKey, claims: &Value) -> Result<String, TokenError> {
    sign(key, "JWT", claims)
}

/// Verifies an ID token of this server as a relying party does (Core §3.1.3.7): signed by the
/// published key its `kid` names, with that key's algorithm; `iss`; `aud` is `client_id`;
/// not expired. Returns the claims.
pub fn verify_id_token(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
) -> Result<Value, TokenError> {
    decode_id_token(token, keys, issuer, client_id, true)
}

/// The `sub` of an `id_token_hint` (Core §3.1.2.1): an ID token this server issued to
/// `client_id`, verified like [`verify_id_token`] except that it may have expired (a hint is
/// typically an old ID token, sent to renew a session silently).
pub fn id_token_hint_subject(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
) -> Result<String, TokenError> {
    let claims = decode_id_token(token, keys, issuer, client_id, false)?;
    claims["sub"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| TokenError::Invalid("sub must be a string".into()))
}

fn decode_id_token(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
    check_expiry: bool,
) -> Result<Value, TokenError> {
    jwt_crypto::install();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
    // An access token (`at+jwt`) is no ID token, whatever its audience (RFC 9068 §2.1).
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
    {
        return Err(TokenError::Invalid("typ must be JWT".into()));
    }
    let key = published_key(&header, keys)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.validate_exp = check_expiry;
    let required: &[&str] = if check_expiry {
        &["exp", "iss", "sub", "aud", "iat"]
    } else {
        &["iss", "sub", "aud", "iat"]
    };
    validation.set_required_spec_claims(required);
    validation.leeway = 30;
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// The `kid` a token claims, without verifying anything (to pick the key).
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}

/// The published key a token's header names, if it was published for the algorithm the header
/// claims: the algorithm comes from the key, never from the token alone (RFC 8725 §3.1), so
/// `none`, HMAC and any pairing of a key with another algorithm find nothing.
fn published_key<'k>(header: &Header, keys: &'k KeySet) -> Result<&'k DecodingKey, TokenError> {
    let alg = match header.alg {
        Algorithm::ES256 => SigningAlg::ES256,
        Algorithm::RS256 => SigningAlg::RS256,
        _ => return Err(TokenError::Invalid("alg must be ES256 or RS256".into())),
    };
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
    keys.decoding_key(kid, alg)
        .ok_or_else(|| TokenError::Invalid("unknown kid".into()))
}

/// Verifies an access token as a resource server must (RFC 9068 §4): `typ` is `at+jwt`, the
/// signature is by a published key with its algorithm (ES256 or RS256), `iss` is the issuer,
/// `aud` the resource, and it has not expired. `audience: None` skips the audience check (introspection, revocation).
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, TokenError> {
    jwt_crypto::install();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(TokenError::Invalid("typ must be at+jwt".into()));
    }
    let key = published_key(&header, keys)?;
    let mut validation = Validation::new(header.alg);
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
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

    fn key_of(alg: SigningAlg) -> (SigningKey, KeySet) {
        let (public, private) = generate_key(alg, 1).unwrap();
        (
            SigningKey::from_stored(&public, &private).unwrap(),
            KeySet::from_public(vec![public]),
        )
    }

    fn key() -> (SigningKey, KeySet) {
        key_of(SigningAlg::ES256)
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
            alg: SigningAlg::ES256,
            x: String::new(),
            y: String::new(),
            n: String::new(),
            e: String::new(),
            created_at,
        };
        let es = SigningAlg::ES256;
        let delay = i64::try_from(KEY_ACTIVATION_DELAY_SECS).unwrap();
        let first = key("first", 1000);
        assert_eq!(
            active_key(std::slice::from_ref(&first), es, 1000)
                .unwrap()
                .kid,
            "first"
        );
        // Rotated soon after the first key: the first keeps signing until the new one is old.
        let keys = [key("second", 1200), first.clone()];
        assert_eq!(active_key(&keys, es, 1300).unwrap().kid, "first");
        assert_eq!(
            active_key(&keys, es, 1200 + delay - 1).unwrap().kid,
            "first"
        );
        assert_eq!(active_key(&keys, es, 1200 + delay).unwrap().kid, "second");
        assert!(active_key(&[], es, 1000).is_none());
        // Each algorithm has its own active key: an RS256 key never signs access tokens.
        let rsa = PublicSigningKey {
            alg: SigningAlg::RS256,
            ..key("rsa", 900)
        };
        let mixed = [key("ec", 1000), rsa];
        assert_eq!(active_key(&mixed, es, 1000).unwrap().kid, "ec");
        assert_eq!(
            active_key(&mixed, SigningAlg::RS256, 1000).unwrap().kid,
            "rsa"
        );
        assert!(active_key(&[key("ec", 1)], SigningAlg::RS256, 1000).is_none());
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

    /// ID tokens verify with the key and algorithm they were signed with, RS256 and ES256; a
    /// token whose header names another algorithm than its key's is refused.
    #[test]
    fn id_tokens_sign_and_verify_with_either_algorithm() {
        let now = crate::domain::unix_now();
        let claims = json!({
            "iss": "https://as.example/t/demo", "sub": "u1", "aud": "c1",
            "iat": now, "exp": now + 60, "nonce": "n-1",
        });
        let (rs, rs_set) = key_of(SigningAlg::RS256);
        let (es, es_set) = key();
        assert_eq!(rs_set.public[0].e, "AQAB");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&rs_set.public[0].n).unwrap().len(),
            256
        );
        for (k, set) in [(&rs, &rs_set), (&es, &es_set)] {
            let token = sign_id_token(k, &claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, jws_alg(k.alg));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            let got = verify_id_token(&token, set, "https://as.example/t/demo", "c1").unwrap();
            assert_eq!(got["nonce"], "n-1");
            assert!(verify_id_token(&token, set, "https://as.example/t/demo", "c2").is_err());
        }
        // The RS256 key's kid, presented with an ES256 header: no such key.
        let rs_token = sign_id_token(&rs, &claims).unwrap();
        let mut parts: Vec<String> = rs_token.split('.').map(str::to_owned).collect();
        parts[0] = URL_SAFE_NO_PAD
            .encode(json!({"alg": "ES256", "typ": "JWT", "kid": rs.kid}).to_string());
        assert!(
            verify_id_token(&parts.join("."), &rs_set, "https://as.example/t/demo", "c1").is_err()
        );
        // An RS256 access token (a tenant whose verifier knows only RSA) verifies as one.
        let rs_access = sign_access_token(&rs, &self::claims(now)).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&rs_access).unwrap().alg,
            Algorithm::RS256
        );
        assert!(
            verify_access_token(&rs_access, &rs_set, "https://as.example/t/demo", None).is_ok()
        );
        assert!(
            verify_access_token(&rs_access, &es_set, "https://as.example/t/demo", None).is_err()
        );
        // An expired ID token is still a hint (its subject), never an ID token.
        let mut old = claims.clone();
        old["exp"] = json!(now - 3600);
        old["iat"] = json!(now - 7200);
        let expired = sign_id_token(&rs, &old).unwrap();
        assert!(verify_id_token(&expired, &rs_set, "https://as.example/t/demo", "c1").is_err());
        assert_eq!(
            id_token_hint_subject(&expired, &rs_set, "https://as.example/t/demo", "c1").unwrap(),
            "u1"
        );
        assert!(
            id_token_hint_subject(&expired, &rs_set, "https://as.example/t/demo", "c2").is_err()
        );
        assert!(
            id_token_hint_subject(&rs_access, &rs_set, "https://as.example/t/demo", "c1").is_err()
        );
        let jwks = KeySet::jwks(&rs_set.public);
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
    }
}
