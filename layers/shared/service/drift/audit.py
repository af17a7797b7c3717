"""The registry's audit trail: one hash-chained ``ai_usage`` row per completion (DESIGN §10.3.5).

Each row's ``entry_hash`` is the lower-case hex SHA-256 of ``(prev_hash or "") + "|" +
canonical``, ``prev_hash`` being the org's latest ``entry_hash`` (by ``created_at``, then
``id``). A chain forks when two writers read the same latest row, so every append runs in one
transaction that first takes a transaction-scoped advisory lock per org: it also serializes the
first rows of an empty chain, where ``FOR UPDATE`` has no row to lock, and the statement that
reads the latest row starts after the lock is granted, so (READ COMMITTED) it sees the row the
previous holder committed. ``app.current_org_id`` (the row-level security policy's setting) is
set for that transaction only: the functions run behind a transaction pooler (DESIGN §11.1).

The write is best effort: a failure is a warning and an ``AuditWriteFailed`` metric, never a
failed call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit

from service.db import Database
from service.llm import Completion
from service.observability import logger, metrics

EVENT_TYPE = "ai_usage"
HANDLER = "contract_drift.score"
ORG_SETTING = "app.current_org_id"
# How long an append may wait for the org's lock before it gives up (best effort: the call
# has its reply already; 20 concurrent appends of one org take a few milliseconds each).
LOCK_TIMEOUT = "2s"
AUDIT_FAILED_METRIC = "AuditWriteFailed"

# The canonical form's timestamp: RFC 3339 in UTC, exactly 6 fractional digits, "Z".
_SQL_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

# One statement, run after the org's lock is granted: the latest entry (locked, so a writer
# that locks rows instead of taking our advisory lock waits for us), then the new row hashed
# over it. created_at is the database's clock at this point, so it follows the previous
# holder's; it is kept one microsecond past the latest entry's when a writer with a clock ahead
# of ours stamped that one, since "latest by created_at" is what the next append chains to.
# The canonical text is built in Python up to created_at, which only this statement knows.
APPEND_SQL = f"""
WITH latest AS (
    SELECT a.entry_hash, a.created_at FROM audit_logs a
    WHERE a.org_id = :org_id
    ORDER BY a.created_at DESC, a.id DESC
    LIMIT 1
    FOR UPDATE
), stamped AS (
    SELECT (SELECT l.entry_hash FROM latest l) AS prev_hash,
           greatest(date_trunc('microseconds', clock_timestamp()),
                    (SELECT l.created_at FROM latest l) + interval '1 microsecond') AS created_at
)
INSERT INTO audit_logs (org_id, user_id, event_type, description, metadata, ip_address, user_agent,
                        created_at, prev_hash, entry_hash)
SELECT :org_id, CAST(NULL AS uuid), CAST(:event_type AS audit_event_type), :description,
       CAST(:metadata AS jsonb), CAST(NULL AS varchar), CAST(NULL AS text), s.created_at, s.prev_hash,
       encode(sha256(convert_to(
           coalesce(s.prev_hash, '') || '|' || :canonical_head
               || to_char(s.created_at AT TIME ZONE 'UTC', '{_SQL_TIMESTAMP_FORMAT}'),
           'UTF8')), 'hex')
FROM stamped s
RETURNING prev_hash, entry_hash, created_at
"""


def canonical_json(metadata: Mapping[str, Any]) -> str:
    """Compact JSON (``,`` and ``:`` with no spaces), keys sorted, non-ASCII as is."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_timestamp(moment: datetime) -> str:
    """``2026-12-05T07:09:09.123456Z``: UTC, microseconds, always six digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: object) -> str:
    """NULL is empty; a uuid is lower-case with hyphens (``str(UUID)``)."""
    return "" if value is None else str(value)


@dataclass(frozen=True)
class AuditEvent:
    """An audit row before the chain places it (``created_at``, ``prev_hash``, ``entry_hash``)."""

    org_id: UUID
    description: str
    metadata: dict[str, Any]
    event_type: str = EVENT_TYPE
    user_id: UUID | None = None
    ip_address: str | None = None

    def canonical_head(self) -> str:
        """``org_id|user_id|event_type|description|metadata|ip_address|``: the canonical form
        up to ``created_at``, which the database stamps."""
        parts = (
            _text(self.org_id),
            _text(self.user_id),
            self.event_type,
            self.description,
            canonical_json(self.metadata),
            _text(self.ip_address),
            "",
        )
        return "|".join(parts)

    def canonical(self, created_at: datetime) -> str:
        return self.canonical_head() + canonical_timestamp(created_at)


def entry_hash(prev_hash: str | None, canonical: str) -> str:
    return hashlib.sha256(f"{prev_hash or ''}|{canonical}".encode()).hexdigest()


def ai_usage_event(org_id: UUID, kind: Literal["byok", "platform"], completion: Completion) -> AuditEvent:
    """The row the registry writes for one AI completion."""
    return AuditEvent(
        org_id=org_id,
        description=f"AI completion via {kind} provider",
        metadata={
            "completion_tokens": completion.completion_tokens,
            "handler": HANDLER,
            "prompt_tokens": completion.prompt_tokens,
            "provider": kind,
            "total_tokens": completion.tokens_used,
        },
    )


@dataclass(frozen=True)
class AuditEntry:
    """What the chain made of an appended event."""

    prev_hash: str | None
    entry_hash: str
    created_at: datetime


class AuditTrail:
    """Appends events to an org's hash chain in ``audit_logs``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, event: AuditEvent) -> AuditEntry:
        """One row extending ``event.org_id``'s chain, in one transaction (raises on failure)."""
        rows = self._db.query(
            APPEND_SQL,
            lock_key=f"audit:{event.org_id}",
            tx_settings={ORG_SETTING: str(event.org_id), "lock_timeout": LOCK_TIMEOUT},
            org_id=event.org_id,
            event_type=event.event_type,
            description=event.description,
            metadata=canonical_json(event.metadata),
            canonical_head=event.canonical_head(),
        )
        prev_hash, new_hash, created_at = rows[0]
        return AuditEntry(prev_hash=prev_hash, entry_hash=str(new_hash), created_at=created_at)

    def record_completion(self, org_id: UUID, kind: Literal["byok", "platform"], completion: Completion) -> None:
        """Best effort: the completion happened whether or not its row can be written."""
        try:
            self.append(ai_usage_event(org_id, kind, completion))
        except Exception as exc:  # noqa: BLE001 - best effort by contract (DESIGN §10.3.5)
            logger.warning(
                "Audit row not written", extra={"org_id": str(org_id), "provider": kind, "error": type(exc).__name__}
            )
            metrics.add_metric(name=AUDIT_FAILED_METRIC, unit=MetricUnit.Count, value=1)
