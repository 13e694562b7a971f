//! Random secrets, hashing at rest, constant-time comparison and password hashing.
//!
//! Machine secrets (client secrets, tokens) are 256-bit values from the OS RNG: SHA-256 is the
//! right at-rest hash for them (no dictionary to attack), and it keeps argon2 off every path that
//! does not check a human password. Human passwords use argon2id with OWASP parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` bytes from the operating system's RNG. Failure of the OS RNG is not recoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    OsRng
        .try_fill_bytes(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

/// A 256-bit secret, base64url without padding (43 characters).
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A 128-bit identifier, lowercase hex (32 characters). Identifiers are not secrets.
pub fn new_id() -> String {
    hex(&random_bytes::<16>())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// SHA-256 of a machine secret, lowercase hex: the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Constant-time check of a presented secret against its stored hash.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    let presented_hash = hash_secret(presented);
    presented_hash
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Constant-time equality of two strings (CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    #[allow(clippy::expect_used)]
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> String {
    let salt_bytes = random_bytes::<16>();
    #[allow(clippy::expect_used)]
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt encodes");
    #[allow(clippy::expect_used)]
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|v| v.len()).ok(), Some(32));
    }

    #[test]
    fn secret_hash_round_trip() {
        let s = new_secret();
        let h = hash_secret(&s);
        assert_eq!(h.len(), 64);
        assert!(verify_secret(&s, &h));
        assert!(!verify_secret("wrong", &h));
        assert!(!verify_secret(&s, "not-a-hash"));
    }

    #[test]
    fn password_hash_is_argon2id_with_owasp_parameters() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("battery staple", &h));
        assert!(!verify_password("correct horse", "garbage"));
    }
}
