"""BYOK keys in the registry's format: AES-256-GCM, PBKDF2-HMAC-SHA256 (DESIGN §4)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from service.drift.byok import ByokDecryptionError, decrypt_api_key, derive_key, encrypt_api_key

PASSPHRASE = "registry passphrase"


def registry_encrypt(plaintext: str, passphrase: str) -> str:
    """The registry's side, written out independently of our module."""
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), b"mockforge-byok-api-key-encryption", 100_000, 32)
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), None)).decode()


def test_decrypts_what_the_registry_encrypted():
    assert decrypt_api_key(registry_encrypt("sk-live-abc123", PASSPHRASE), PASSPHRASE) == "sk-live-abc123"


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_round_trip_any_key(secret: str):
    assert decrypt_api_key(encrypt_api_key(secret, PASSPHRASE), PASSPHRASE) == secret


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=12, max_size=12), st.binary(max_size=200))
def test_gcm_matches_the_cryptography_package(key: bytes, nonce: bytes, plaintext: bytes):
    from service.drift import byok

    ciphertext, mask = byok._gcm(key, nonce, plaintext)
    assert ciphertext + byok._tag(key, mask, ciphertext) == AESGCM(key).encrypt(nonce, plaintext, None)


def test_nist_gcm_vector():
    """NIST SP 800-38D test case 14 (AES-256, zero key/nonce, one zero block)."""
    from service.drift import byok

    ciphertext, mask = byok._gcm(bytes(32), bytes(12), bytes(16))
    assert ciphertext.hex() == "cea7403d4d606b6e074ec5d3baf39d18"
    assert byok._tag(bytes(32), mask, ciphertext).hex() == "d0d1c8a799996bf0265b98b5d48ab919"


def test_our_encryption_opens_with_the_registry_algorithm():
    sealed = base64.b64decode(encrypt_api_key("sk-ours", PASSPHRASE))
    key = hashlib.pbkdf2_hmac("sha256", PASSPHRASE.encode(), b"mockforge-byok-api-key-encryption", 100_000, 32)
    assert AESGCM(key).decrypt(sealed[:12], sealed[12:], None) == b"sk-ours"


def test_wrong_passphrase_is_refused():
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(registry_encrypt("sk", PASSPHRASE), "another passphrase")


@pytest.mark.parametrize("garbage", ["", "not base64!!", base64.b64encode(b"short").decode()])
def test_garbage_is_refused(garbage: str):
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(garbage, PASSPHRASE)


def test_tampered_ciphertext_is_refused():
    raw = bytearray(base64.b64decode(registry_encrypt("sk-abc", PASSPHRASE)))
    raw[14] ^= 1
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(base64.b64encode(bytes(raw)).decode(), PASSPHRASE)


def test_key_derivation_is_cached_per_passphrase():
    derive_key.cache_clear()
    derive_key("cached passphrase")
    derive_key("cached passphrase")
    assert derive_key.cache_info().hits == 1
