"""BYOK API keys in the registry's format (DESIGN §4).

``api_key`` = base64(12-byte nonce ‖ AES-256-GCM ciphertext+tag), key =
PBKDF2-HMAC-SHA256(passphrase, salt, 100000 iterations, 32 bytes). The derivation costs tens
of milliseconds, so it runs once per passphrase per process.

AES-GCM is written out here over ``pyaes``'s block cipher (GCM = CTR mode + GHASH, NIST SP
800-38D) instead of depending on ``cryptography``, whose 13 MB native extension alone would be
half the layer's size budget. Keys are a few dozen bytes and decrypted once per warm process,
so pure Python costs well under a millisecond; the tests check it against ``cryptography``.
The tag is verified (constant-time) before anything is decrypted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os

import pyaes

SALT = b"mockforge-byok-api-key-encryption"
ITERATIONS = 100_000
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_SEALED_BYTES = 64 * 1024
_GCM_R = 0xE1 << 120


class ByokDecryptionError(ValueError):
    """The stored key is not in the expected format or was encrypted with another passphrase."""


@functools.lru_cache(maxsize=8)
def derive_key(passphrase: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), SALT, ITERATIONS, dklen=32)


def _gf_multiply(x: int, y: int) -> int:
    """Multiplication in GF(2^128) with GCM's bit order."""
    product = 0
    for bit in range(127, -1, -1):
        if (x >> bit) & 1:
            product ^= y
        y = (y >> 1) ^ _GCM_R if y & 1 else y >> 1
    return product


def _ghash(hash_key: int, ciphertext: bytes) -> int:
    """GHASH over the ciphertext (no additional authenticated data) and the lengths block."""
    padded = ciphertext + b"\x00" * (-len(ciphertext) % 16)
    lengths = (0).to_bytes(8, "big") + (len(ciphertext) * 8).to_bytes(8, "big")
    digest = 0
    for offset in range(0, len(padded) + 16, 16):
        block = padded[offset : offset + 16] if offset < len(padded) else lengths
        digest = _gf_multiply(digest ^ int.from_bytes(block, "big"), hash_key)
    return digest


def _gcm(key: bytes, nonce: bytes, data: bytes) -> tuple[bytes, bytes]:
    """CTR keystream applied to ``data`` and the tag input ``E(K, J0)`` for a 96-bit nonce."""
    cipher = pyaes.AES(key)
    counter0 = int.from_bytes(nonce + b"\x00\x00\x00\x01", "big")
    ctr = pyaes.AESModeOfOperationCTR(key, counter=pyaes.Counter(initial_value=counter0 + 1))
    tag_mask = bytes(cipher.encrypt(list(counter0.to_bytes(16, "big"))))
    return ctr.encrypt(data), tag_mask


def _tag(key: bytes, tag_mask: bytes, ciphertext: bytes) -> bytes:
    hash_key = int.from_bytes(bytes(pyaes.AES(key).encrypt([0] * 16)), "big")
    return (_ghash(hash_key, ciphertext) ^ int.from_bytes(tag_mask, "big")).to_bytes(16, "big")


def encrypt_api_key(plaintext: str, passphrase: str, nonce: bytes | None = None) -> str:
    """The registry's encryption (used by tests and the demo data)."""
    nonce = nonce or os.urandom(NONCE_BYTES)
    key = derive_key(passphrase)
    ciphertext, tag_mask = _gcm(key, nonce, plaintext.encode())
    return base64.b64encode(nonce + ciphertext + _tag(key, tag_mask, ciphertext)).decode()


@functools.lru_cache(maxsize=64)
def decrypt_api_key(encoded: str, passphrase: str) -> str:
    """The org's API key; memoised per (sealed key, passphrase) for the warm process.

    Failures are not cached (lru_cache never caches a raise), so a fixed setting is seen at once.
    """
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ByokDecryptionError("BYOK key is not base64") from None
    if not NONCE_BYTES + TAG_BYTES < len(raw) <= MAX_SEALED_BYTES:
        raise ByokDecryptionError("BYOK key has an impossible length")
    nonce, ciphertext, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    key = derive_key(passphrase)
    keystream_mask = _gcm(key, nonce, b"")[1]
    if not hmac.compare_digest(_tag(key, keystream_mask, ciphertext), tag):
        raise ByokDecryptionError("BYOK key does not decrypt with the configured passphrase")
    try:
        return _gcm(key, nonce, ciphertext)[0].decode()
    except UnicodeDecodeError:
        raise ByokDecryptionError("BYOK key is not UTF-8 text") from None
