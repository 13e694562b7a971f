"""One crypto implementation in the binaries: ring, for TLS (rustls, the SDK's HTTPS client)
and for JWTs (shared/src/jwt_crypto.rs, jsonwebtoken's CryptoProvider). A second P-256 (or an
RSA, P-384, Ed25519 back end nobody calls) would only add size and a slower code path; a C
crypto library would add a toolchain to the Lambda build. Read from Cargo.lock; no build needed.

One exception: ring cannot generate RSA keys, so the `rsa` crate generates the RS256 ID-token
keys, in shared/src/keygen.rs only, with its signing and encryption features off; ring signs.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_LINKED = {
    "p256": "RustCrypto P-256 (jsonwebtoken's rust_crypto back end)",
    "p384": "RustCrypto P-384",
    "ecdsa": "RustCrypto ECDSA",
    "ed25519-dalek": "Ed25519",
    "aws-lc-rs": "aws-lc (C)",
    "aws-lc-sys": "aws-lc (C)",
    "openssl-sys": "OpenSSL (C)",
}


RSA_ONLY_IN = REPO / "shared" / "src" / "keygen.rs"


def locked_packages(lock: Path) -> set[str]:
    return {p["name"] for p in tomllib.loads(lock.read_text())["package"]}


def test_the_workspace_links_ring_and_no_other_crypto_back_end():
    packages = locked_packages(REPO / "Cargo.lock")
    assert "ring" in packages and "jsonwebtoken" in packages
    found = {name: why for name, why in NOT_LINKED.items() if name in packages}
    assert not found, f"Cargo.lock has crypto back ends besides ring: {found}"


def test_the_fuzz_crate_is_locked_to_the_same_back_end():
    packages = locked_packages(REPO / "fuzz" / "Cargo.lock")
    found = sorted(name for name in NOT_LINKED if name in packages)
    assert not found, f"fuzz/Cargo.lock has crypto back ends besides ring: {found}"


def test_the_rsa_crate_only_generates_keys():
    manifest = tomllib.loads((REPO / "Cargo.toml").read_text())
    rsa = manifest["workspace"]["dependencies"]["rsa"]
    assert rsa.get("default-features") is False, rsa
    # No `pkcs1v15`, `sha1`, `hazmat`: nothing in the build can sign or decrypt with it.
    assert set(rsa.get("features", [])) == {"std", "encoding"}, rsa
    users = sorted(str(p.relative_to(REPO)) for p in (REPO / "shared").rglob("*.rs")
                   if "rsa::" in p.read_text())
    assert users == [str(RSA_ONLY_IN.relative_to(REPO))], users
    source = RSA_ONLY_IN.read_text()
    assert "PrivateKey::new" in source and ".sign(" not in source
