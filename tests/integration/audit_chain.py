"""An independent reading of the registry's audit hash chain (DESIGN §10.3.5), for the tests.

Nothing here imports the service: the canonical form, the timestamp text and the JSON are
written out again from the contract's words, so a mistake in service.drift.audit cannot agree
with itself. It also writes rows "the registry way" (hash computed here, in Python, as the
registry's own code does) so a test can start a chain before the service's first row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def _json(value: Any) -> str:
    """Compact JSON with sorted keys, strings as JSON writes them (non-ASCII kept)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json(str(key))}:{_json(value[key])}" for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"no canonical JSON for {type(value).__name__} in these tests")


def _timestamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond:06d}Z"
    )


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, uuid.UUID):
        return str(value).lower()
    return str(value)


def canonical(row: dict[str, Any]) -> str:
    """``org_id|user_id|event_type|description|metadata|ip_address|created_at``."""
    return "|".join(
        (
            _field(row["org_id"]),
            _field(row["user_id"]),
            _field(row["event_type"]),
            _field(row["description"]),
            "" if row["metadata"] is None else _json(row["metadata"]),
            _field(row["ip_address"]),
            "" if row["created_at"] is None else _timestamp(row["created_at"]),
        )
    )


def chain_hash(prev_hash: str | None, row: dict[str, Any]) -> str:
    return hashlib.sha256(((prev_hash or "") + "|" + canonical(row)).encode("utf-8")).hexdigest()


COLUMNS = (
    "id",
    "org_id",
    "user_id",
    "event_type",
    "description",
    "metadata",
    "ip_address",
    "user_agent",
    "created_at",
    "prev_hash",
    "entry_hash",
)


def read_chain(db: Any, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every audit row of ``org_id`` in chain order (row-level security: the org is set for the
    reading transaction only)."""
    db.run("BEGIN")
    try:
        db.run("SELECT set_config('app.current_org_id', :org, true)", org=str(org_id))
        rows = db.run(
            "SELECT id, org_id, user_id, event_type::text, description, metadata, ip_address, user_agent, "
            "created_at, prev_hash, entry_hash FROM audit_logs WHERE org_id = :org ORDER BY created_at, id",
            org=org_id,
        )
    finally:
        db.run("COMMIT")
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@dataclass
class ChainReport:
    rows: int = 0
    bad_hashes: list[int] = field(default_factory=list)
    broken_links: list[int] = field(default_factory=list)
    # prev_hash values that more than one row chains to: two writers read the same head.
    forks: int = 0

    @property
    def verifies(self) -> bool:
        return not self.bad_hashes and not self.broken_links and self.forks == 0


def verify_chain(rows: list[dict[str, Any]]) -> ChainReport:
    """Recompute every ``entry_hash``; check each row chains to the one before it, and no fork."""
    report = ChainReport(rows=len(rows))
    previous: str | None = None
    for index, row in enumerate(rows):
        if row["prev_hash"] != previous:
            report.broken_links.append(index)
        if row["entry_hash"] != chain_hash(row["prev_hash"], row):
            report.bad_hashes.append(index)
        previous = row["entry_hash"]
    links = Counter(row["prev_hash"] for row in rows)
    report.forks = sum(count - 1 for count in links.values() if count > 1)
    return report


def write_registry_row(
    db: Any,
    org_id: uuid.UUID,
    *,
    event_type: str,
    description: str,
    metadata: dict[str, Any] | None,
    created_at: datetime,
    user_id: uuid.UUID | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """Append a row as the registry does: read the head, hash in Python, insert (one transaction)."""
    db.run("BEGIN")
    try:
        db.run("SELECT set_config('app.current_org_id', :org, true)", org=str(org_id))
        head = db.run(
            "SELECT entry_hash FROM audit_logs WHERE org_id = :org ORDER BY created_at DESC, id DESC LIMIT 1 "
            "FOR UPDATE",
            org=org_id,
        )
        prev_hash = head[0][0] if head else None
        row = {
            "org_id": org_id,
            "user_id": user_id,
            "event_type": event_type,
            "description": description,
            "metadata": metadata,
            "ip_address": ip_address,
            "created_at": created_at,
        }
        entry = chain_hash(prev_hash, row)
        db.run(
            "INSERT INTO audit_logs (org_id, user_id, event_type, description, metadata, ip_address, user_agent, "
            "created_at, prev_hash, entry_hash) VALUES (:org, :user_id, CAST(:event_type AS audit_event_type), "
            ":description, CAST(:metadata AS jsonb), :ip, :agent, :created_at, :prev, :entry)",
            org=org_id,
            user_id=user_id,
            event_type=event_type,
            description=description,
            metadata=None if metadata is None else json.dumps(metadata),
            ip=ip_address,
            agent=user_agent,
            created_at=created_at,
            prev=prev_hash,
            entry=entry,
        )
        db.run("COMMIT")
    except Exception:
        db.run("ROLLBACK")
        raise
    return {**row, "prev_hash": prev_hash, "entry_hash": entry}


def start_registry_chain(db: Any, org_id: uuid.UUID, owner_id: uuid.UUID, *, ahead_s: float = 0.0) -> list[str]:
    """Three rows the registry wrote before the service's first (a login, a settings change with
    nested non-ASCII metadata, a billing change); the last stamped ``ahead_s`` into the future,
    as a registry host whose clock runs ahead would. Returns their entry hashes."""
    now = datetime.now(UTC)
    rows = [
        write_registry_row(
            db,
            org_id,
            event_type="login",
            description="User logged in",
            metadata={"method": "password"},
            created_at=now - timedelta(minutes=30, microseconds=7),
            user_id=owner_id,
            ip_address="203.0.113.9",
            user_agent="Mozilla/5.0",
        ),
        write_registry_row(
            db,
            org_id,
            event_type="settings_changed",
            description="Organization settings updated",
            metadata={"setting": "byok", "changes": {"enabled": True, "provider": "together"}, "note": "réglé"},
            created_at=now - timedelta(minutes=20),
            user_id=owner_id,
        ),
        write_registry_row(
            db,
            org_id,
            event_type="billing_changed",
            description="Subscription updated",
            metadata=None,
            created_at=now + timedelta(seconds=ahead_s),
        ),
    ]
    return [row["entry_hash"] for row in rows]
