"""BYOK API keys in the registry's format (docs/contract.md, "BYOK key format").

``api_key`` = base64(12-byte nonce ‖ AES-256-GCM ciphertext+tag), key =
PBKDF2-HMAC-SHA256(passphrase, salt, 100000 iterations, 32 bytes).

AES-GCM is the ``cryptography`` package's (OpenSSL), never hand-written: its ``decrypt``
verifies the tag before it returns anything. It is imported on the BYOK path only, so a cold
start that never decrypts a key does not load its 13 MB native extension. The derivation costs
tens of milliseconds and the decrypted key is the same for the life of the process, so both
are memoised per warm process.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALT = b"mockforge-byok-api-key-encryption"
ITERATIONS = 100_000
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_SEALED_BYTES = 64 * 1024


class ByokDecryptionError(ValueError):
    """The stored key is not in the expected format or was encrypted with another passphrase."""


@functools.lru_cache(maxsize=8)
def derive_key(passphrase: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), SALT, ITERATIONS, dklen=KEY_BYTES)


def _cipher(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # lazy: only the BYOK path pays for it

    return AESGCM(key)


def seal(key: bytes, plaintext: bytes, nonce: bytes | None = None) -> bytes:
    """``nonce ‖ ciphertext ‖ tag`` under a 32-byte key (a random nonce unless one is given)."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the format's nonce is {NONCE_BYTES} bytes")
    return nonce + _cipher(key).encrypt(nonce, plaintext, None)


def _check_length(raw: bytes) -> None:
    if not NONCE_BYTES + TAG_BYTES < len(raw) <= MAX_SEALED_BYTES:
        raise ByokDecryptionError("BYOK key has an impossible length")


def open_sealed(key: bytes, raw: bytes) -> bytes:
    """The plaintext of ``nonce ‖ ciphertext ‖ tag``; a wrong key or any altered byte fails the tag."""
    from cryptography.exceptions import InvalidTag

    _check_length(raw)
    try:
        return _cipher(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
    except InvalidTag:
        raise ByokDecryptionError("BYOK key does not decrypt with the configured passphrase") from None


def encrypt_api_key(plaintext: str, passphrase: str, nonce: bytes | None = None) -> str:
    """The registry's encryption (used by the demo data and the tests)."""
    return base64.b64encode(seal(derive_key(passphrase), plaintext.encode(), nonce)).decode()


@functools.lru_cache(maxsize=64)
def decrypt_api_key(encoded: str, passphrase: str) -> str:
    """The org's API key; memoised per (sealed key, passphrase) for the warm process.

    Failures are not cached (lru_cache never caches a raise), so a fixed setting is seen at once.
    """
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ByokDecryptionError("BYOK key is not base64") from None
    _check_length(raw)  # before the derivation: garbage costs no PBKDF2
    plaintext = open_sealed(derive_key(passphrase), raw)
    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        raise ByokDecryptionError("BYOK key is not UTF-8 text") from None
