"""One crypto implementation in the binaries: ring, for TLS (rustls, the SDK's HTTPS client)
and for JWTs (shared/src/jwt_crypto.rs, jsonwebtoken's CryptoProvider). A second P-256 (or an
RSA, P-384, Ed25519 back end nobody calls) would only add size and a slower code path; a C
crypto library would add a toolchain to the Lambda build. Read from Cargo.lock; no build needed.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_LINKED = {
    "p256": "RustCrypto P-256 (jsonwebtoken's rust_crypto back end)",
    "p384": "RustCrypto P-384",
    "ecdsa": "RustCrypto ECDSA",
    "rsa": "RustCrypto RSA",
    "ed25519-dalek": "Ed25519",
    "aws-lc-rs": "aws-lc (C)",
    "aws-lc-sys": "aws-lc (C)",
    "openssl-sys": "OpenSSL (C)",
}


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
