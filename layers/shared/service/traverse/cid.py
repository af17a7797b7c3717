"""Anchor CID of a traverse request (DESIGN §6.6).

The CID names *what was asked under which ceilings*: the same text, wall and hop count
always give the same CID, so a logged guard report can be matched to its request and a
replay can be recognised. Built by hand (a few lines) rather than with a multiformats
dependency in the layer.
"""

from __future__ import annotations

import base64
import hashlib
import struct

CID_VERSION = 1
RAW_CODEC = 0x55
SHA2_256 = 0x12
SHA2_256_LENGTH = 32
BASE32_LOWER_PREFIX = "b"


def _varint(value: int) -> bytes:
    """Unsigned LEB128, the varint of multiformats."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def raw_cid(data: bytes) -> str:
    """CIDv1 of ``data`` with codec raw and a sha2-256 multihash, as base32-lower multibase."""
    digest = hashlib.sha256(data).digest()
    binary = _varint(CID_VERSION) + _varint(RAW_CODEC) + _varint(SHA2_256) + _varint(SHA2_256_LENGTH) + digest
    return BASE32_LOWER_PREFIX + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def anchor_preimage(text: str, wall_ms: int, hops: int) -> bytes:
    """``utf8(text) ‖ u32le(wall) ‖ u32le(hops)``."""
    return text.encode("utf-8") + struct.pack("<II", wall_ms, hops)


def anchor_cid(text: str, wall_ms: int, hops: int) -> str:
    """The reply's ``anchor_cid`` for the effective wall and hop count."""
    return raw_cid(anchor_preimage(text, wall_ms, hops))
