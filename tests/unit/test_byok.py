"""BYOK keys in the registry's format: AES-256-GCM, PBKDF2-HMAC-SHA256 (docs/contract.md, "BYOK key format").

The registry's side is written out here with PyCryptodome, an AES-GCM implementation independent
of the layer's (``cryptography`` over OpenSSL), and its own PBKDF2, so a mistake in our format
(nonce position, salt, iterations, tag placement) cannot cancel itself out.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import PBKDF2
from hypothesis import given, settings
from hypothesis import strategies as st

from service.drift.byok import (
    ByokDecryptionError,
    decrypt_api_key,
    derive_key,
    encrypt_api_key,
    open_sealed,
)

PASSPHRASE = "registry passphrase"
REGISTRY_SALT = b"mockforge-byok-api-key-encryption"


def registry_key(passphrase: str) -> bytes:
    return PBKDF2(passphrase.encode(), REGISTRY_SALT, dkLen=32, count=100_000, hmac_hash_module=SHA256)


REGISTRY_KEY = registry_key(PASSPHRASE)


def registry_encrypt(plaintext: str, key: bytes = REGISTRY_KEY) -> str:
    """The registry's encryption: base64(nonce ‖ ciphertext ‖ tag)."""
    nonce = os.urandom(12)
    ciphertext, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(plaintext.encode())
    return base64.b64encode(nonce + ciphertext + tag).decode()


def registry_decrypt(encoded: str, key: bytes = REGISTRY_KEY) -> str:
    raw = base64.b64decode(encoded)
    cipher = AES.new(key, AES.MODE_GCM, nonce=raw[:12])
    return cipher.decrypt_and_verify(raw[12:-16], raw[-16:]).decode()


def test_key_derivation_matches_the_registry():
    assert derive_key(PASSPHRASE) == REGISTRY_KEY


def test_decrypts_what_the_registry_encrypted():
    assert decrypt_api_key(registry_encrypt("sk-live-abc123"), PASSPHRASE) == "sk-live-abc123"


def test_the_registry_decrypts_what_we_encrypted():
    assert registry_decrypt(encrypt_api_key("sk-ours", PASSPHRASE)) == "sk-ours"


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_key_crosses_both_ways(secret: str):
    assert decrypt_api_key(registry_encrypt(secret), PASSPHRASE) == secret
    ours = encrypt_api_key(secret, PASSPHRASE)
    assert registry_decrypt(ours) == secret
    assert decrypt_api_key(ours, PASSPHRASE) == secret


def test_nist_gcm_vector():
    """NIST SP 800-38D / GCM spec test case 14 (AES-256, zero key and nonce, one zero block)."""
    ciphertext_and_tag = bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
    assert open_sealed(bytes(32), bytes(12) + ciphertext_and_tag) == bytes(16)
    with pytest.raises(ByokDecryptionError):
        open_sealed(bytes(32), bytes(12) + ciphertext_and_tag[:-1] + b"\x18")


def test_wrong_passphrase_is_refused():
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(registry_encrypt("sk"), "another passphrase")


@pytest.mark.parametrize(
    "garbage",
    ["", "not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(12 + 16)).decode()],
)
def test_garbage_is_refused(garbage: str):
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(garbage, PASSPHRASE)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_any_altered_byte_is_refused(data: st.DataObject):
    """Nonce, ciphertext or tag: one flipped bit anywhere fails the tag check, never decrypts to something else."""
    raw = bytearray(base64.b64decode(registry_encrypt("sk-abc-0123456789")))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(base64.b64encode(bytes(raw)).decode(), PASSPHRASE)


def test_text_that_is_not_utf8_is_refused():
    nonce = os.urandom(12)
    ciphertext, tag = AES.new(REGISTRY_KEY, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(b"\xff\xfe")
    with pytest.raises(ByokDecryptionError):
        decrypt_api_key(base64.b64encode(nonce + ciphertext + tag).decode(), PASSPHRASE)


def test_key_derivation_is_cached_per_passphrase():
    derive_key.cache_clear()
    derive_key("cached passphrase")
    derive_key("cached passphrase")
    assert derive_key.cache_info().hits == 1


def test_decrypted_key_is_memoised_and_failures_are_not():
    sealed = registry_encrypt("sk-memo")
    decrypt_api_key.cache_clear()
    assert decrypt_api_key(sealed, PASSPHRASE) == decrypt_api_key(sealed, PASSPHRASE) == "sk-memo"
    assert decrypt_api_key.cache_info().hits == 1
    for _ in range(2):
        with pytest.raises(ByokDecryptionError):
            decrypt_api_key(sealed, "wrong")
    assert decrypt_api_key.cache_info().currsize == 1


def test_cryptography_is_loaded_only_by_the_byok_path():
    """Importing the module (as every handler's import does) must not load the native extension."""
    code = (
        "import sys, service.drift.byok as b\n"
        "print('cryptography' in sys.modules)\n"
        f"b.decrypt_api_key({registry_encrypt('sk-lazy')!r}, {PASSPHRASE!r})\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "True"]
