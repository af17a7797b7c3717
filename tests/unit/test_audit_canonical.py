"""The audit row's canonical form and hash (DESIGN §10.3.5), against vectors computed outside Python.

The expected digests were computed with coreutils' ``sha256sum`` over the literal strings below
(``printf '%s' '|<canonical>' | sha256sum``), so a slip in our formatting cannot agree with itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from service.drift.audit import (
    AuditEvent,
    ai_usage_event,
    canonical_json,
    canonical_timestamp,
    entry_hash,
)
from service.llm import Completion

ORG = UUID("3F1C0A52-6A1E-4C4A-9D63-0B8F5F8A2E11")
CREATED = datetime(2026, 12, 5, 7, 9, 9, 123, tzinfo=UTC)
CANONICAL = (
    "3f1c0a52-6a1e-4c4a-9d63-0b8f5f8a2e11||ai_usage|AI completion via platform provider|"
    '{"completion_tokens":5,"handler":"contract_drift.score","prompt_tokens":7,"provider":"platform",'
    '"total_tokens":12}||2026-12-05T07:09:09.000123Z'
)
FIRST_HASH = "573d9dc0fd3c709eb8c5dc56a369233a9c4b4b4dbb5d4e229451be062fabe706"
SECOND_HASH = "955bdfece0e1e54312c7ef4d93db4328d3758a1e75f2f463c3df1c1b99ae987d"


def completion(prompt: int = 7, output: int = 5, total: int = 12) -> Completion:
    return Completion(text="", tokens_used=total, model="m", prompt_tokens=prompt, completion_tokens=output)


def test_ai_usage_row_is_the_registrys():
    event = ai_usage_event(ORG, "platform", completion())
    assert event.event_type == "ai_usage" and event.user_id is None and event.ip_address is None
    assert event.description == "AI completion via platform provider"
    assert event.metadata == {
        "completion_tokens": 5,
        "handler": "contract_drift.score",
        "prompt_tokens": 7,
        "provider": "platform",
        "total_tokens": 12,
    }
    assert ai_usage_event(ORG, "byok", completion()).description == "AI completion via byok provider"


def test_canonical_form_and_hash_match_the_vectors():
    event = ai_usage_event(ORG, "platform", completion())
    assert event.canonical(CREATED) == CANONICAL
    assert event.canonical_head() == CANONICAL[: -len("2026-12-05T07:09:09.000123Z")]
    assert entry_hash(None, CANONICAL) == FIRST_HASH
    assert entry_hash("", CANONICAL) == FIRST_HASH
    assert entry_hash(FIRST_HASH, CANONICAL) == SECOND_HASH


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 12, 5, 7, 9, 9, 123456, tzinfo=UTC), "2026-12-05T07:09:09.123456Z"),
        (datetime(2026, 12, 5, 7, 9, 9, tzinfo=UTC), "2026-12-05T07:09:09.000000Z"),
        (datetime(2026, 12, 5, 9, 9, 9, 5, tzinfo=timezone(timedelta(hours=2))), "2026-12-05T07:09:09.000005Z"),
        (datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2026-12-31T23:30:00.000000Z"),
    ],
)
def test_timestamps_are_utc_with_six_digits(moment: datetime, text: str):
    assert canonical_timestamp(moment) == text


def test_metadata_is_compact_with_sorted_keys_at_every_level():
    assert canonical_json({"b": 1, "a": {"z": [1, 2], "y": None}}) == '{"a":{"y":null,"z":[1,2]},"b":1}'
    assert canonical_json({"é": "ü"}) == '{"é":"ü"}'


def test_nulls_are_empty_and_uuids_lower_case():
    event = AuditEvent(
        org_id=ORG,
        description="d|e",
        metadata={},
        event_type="login",
        user_id=UUID("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"),
        ip_address="10.0.0.1",
    )
    assert event.canonical(CREATED) == (
        "3f1c0a52-6a1e-4c4a-9d63-0b8f5f8a2e11|aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee|login|d|e|{}|10.0.0.1|"
        "2026-12-05T07:09:09.000123Z"
    )
