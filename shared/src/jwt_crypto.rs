//! The cryptography behind jsonwebtoken: ES256 and RS256, on ring.
//!
//! jsonwebtoken 11 leaves its signature back end to a process-wide `CryptoProvider`. Its
//! built-in back ends are aws-lc (a C library the Lambda binaries avoid) and RustCrypto (pure
//! Rust, about eight times slower for P-256, and it links RSA, P-384 and Ed25519 code that
//! Gatehouse never uses, because the algorithm is chosen at run time). ring is already linked
//! for TLS (rustls, the SDK's HTTPS client), so JWTs use it too: one P-256 implementation per
//! binary, with ring's constant-time assembly.
//!
//! Only ES256 (access and ID tokens) and RS256 (ID tokens, OpenID Connect's default) are
//! provided: Gatehouse signs nothing else (`crate::tokens`), and each verifier is built for the
//! algorithm its key was published with, so a token cannot choose another (RFC 8725 §3.1).
//! Every other algorithm, and every key utility (JWK thumbprints and components, which
//! Gatehouse computes itself), is an `InvalidAlgorithm` error, never a panic.

use jsonwebtoken::DecodingKeyKind;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use std::sync::Once;

type JwtResult<T> = Result<T, Error>;

fn unsupported<T>() -> JwtResult<T> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

/// Signs with a P-256 key pair read from PKCS#8 (how `crate::tokens` stores private keys).
struct Es256Signer(EcdsaKeyPair);

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let sig = self
            .0
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| signature::Error::new())?;
        Ok(sig.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// Verifies against an uncompressed SEC1 point (`DecodingKey::from_ec_components`).
struct Es256Verifier(DecodingKey);

impl Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let point = self
            .0
            .try_get_as_bytes()
            .map_err(signature::Error::from_source)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// Signs with an RSA key read from PKCS#1 DER (`EncodingKey::from_rsa_der`, how
/// `crate::tokens` stores RSA private keys).
struct Rs256Signer(RsaKeyPair);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| signature::Error::new())?;
        Ok(sig)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// Verifies against a published modulus and exponent (`DecodingKey::from_rsa_components`);
/// ring refuses moduli under 2048 bits.
struct Rs256Verifier(DecodingKey);

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let DecodingKeyKind::RsaModulusExponent { n, e } = self.0.kind() else {
            return Err(signature::Error::new());
        };
        RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    if *alg == Algorithm::RS256 && key.family() == AlgorithmFamily::Rsa {
        let pair = RsaKeyPair::from_der(key.as_bytes())
            .map_err(|_| Error::from(ErrorKind::InvalidRsaKey("unreadable RSA key".into())))?;
        return Ok(Box::new(Rs256Signer(pair)));
    }
    if *alg != Algorithm::ES256 || key.family() != AlgorithmFamily::Ec {
        return unsupported();
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        key.as_bytes(),
        &SystemRandom::new(),
    )
    .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    Ok(Box::new(Es256Signer(pair)))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match (alg, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) => Ok(Box::new(Es256Verifier(key.clone()))),
        (Algorithm::RS256, AlgorithmFamily::Rsa) => Ok(Box::new(Rs256Verifier(key.clone()))),
        _ => unsupported(),
    }
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| unsupported(),
        rsa_pub_components_from_public_key: |_| unsupported(),
        ec_pub_components_from_private_key:
            |_, _| -> JwtResult<(EllipticCurve, Vec<u8>, Vec<u8>)> { unsupported() },
        ed_pub_components_from_private_key: |_, _| unsupported(),
        compute_digest: |_, _: ThumbprintHash| unsupported(),
    },
};

/// Installs the ring provider for this process; cheap after the first call. Called by every
/// signing and verifying function in `crate::tokens`, so that a resource server using
/// `verify_access_token` needs no set-up of its own. An embedding program that installed its
/// own provider first keeps it (jsonwebtoken allows one per process).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation};

    #[test]
    fn other_algorithms_are_refused_not_panicked_on() {
        install();
        let hs = EncodingKey::from_secret(b"secret");
        let err = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &"{}", &hs).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidAlgorithm);
        // An HS256 token offered to a verifier that expects HS256 is refused by the provider.
        let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let err = jsonwebtoken::decode::<serde_json::Value>(
            forged,
            &jsonwebtoken::DecodingKey::from_secret(b"secret"),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidAlgorithm);
    }
}
