"""BYOK API keys in the registry's format (DESIGN §4).

``api_key`` = base64(12-byte nonce ‖ AES-256-GCM ciphertext+tag), key =
PBKDF2-HMAC-SHA256(passphrase, salt, 100000 iterations, 32 bytes). The derivation costs tens
of milliseconds, so it runs once per passphrase per process.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALT = b"mockforge-byok-api-key-encryption"
ITERATIONS = 100_000
NONCE_BYTES = 12


class ByokDecryptionError(ValueError):
    """The stored key is not in the expected format or was encrypted with another passphrase."""


@functools.lru_cache(maxsize=8)
def derive_key(passphrase: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), SALT, ITERATIONS, dklen=32)


def encrypt_api_key(plaintext: str, passphrase: str, nonce: bytes | None = None) -> str:
    """The registry's encryption (used by tests and the demo data)."""
    nonce = nonce or os.urandom(NONCE_BYTES)
    sealed = AESGCM(derive_key(passphrase)).encrypt(nonce, plaintext.encode(), None)
    return base64.b64encode(nonce + sealed).decode()


def decrypt_api_key(encoded: str, passphrase: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ByokDecryptionError("BYOK key is not base64") from None
    if len(raw) <= NONCE_BYTES + 16:
        raise ByokDecryptionError("BYOK key is too short")
    try:
        plain = AESGCM(derive_key(passphrase)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
        return plain.decode()
    except (InvalidTag, UnicodeDecodeError):
        raise ByokDecryptionError("BYOK key does not decrypt with the configured passphrase") from None
