"""The anchor CID of DESIGN §6.6 against known vectors."""

from __future__ import annotations

import struct

from service.traverse.cid import anchor_cid, anchor_preimage, raw_cid


def test_raw_cid_of_hello_world_matches_the_ipfs_vector():
    assert raw_cid(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_raw_cid_of_empty_bytes_matches_the_ipfs_vector():
    assert raw_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_anchor_preimage_is_text_then_two_little_endian_u32():
    assert anchor_preimage("hé", 5000, 3) == "hé".encode() + b"\x88\x13\x00\x00" + b"\x03\x00\x00\x00"
    assert anchor_cid("q", 500, 1) == raw_cid(b"q" + struct.pack("<II", 500, 1))


def test_anchor_changes_with_every_input():
    base = anchor_cid("text", 5000, 3)
    assert base.startswith("bafkrei")
    assert len({base, anchor_cid("text", 4999, 3), anchor_cid("text", 5000, 2), anchor_cid("texT", 5000, 3)}) == 4
    assert anchor_cid("text", 5000, 3) == base
