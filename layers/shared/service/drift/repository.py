"""SQL of the contract-drift scorer: organization context, sampling, metering."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from service.db import Database
from service.drift.models import Endpoint

ORG_CONTEXT_SQL = """
SELECT o.plan,
       o.limits_json,
       EXISTS (SELECT 1 FROM workspaces w WHERE w.id = :workspace_id AND w.org_id = o.id),
       (SELECT s.setting_value FROM org_settings s WHERE s.org_id = o.id AND s.setting_key = 'byok'),
       (SELECT s.setting_value FROM org_settings s WHERE s.org_id = o.id AND s.setting_key = 'quota'),
       COALESCE((SELECT u.ai_tokens_used FROM usage_counters u
                 WHERE u.org_id = o.id AND u.period_start = :period_start), 0)
FROM organizations o
WHERE o.id = :org_id
"""

# All endpoints in one round trip: the wanted pairs are unnested with their request order, and
# a LATERAL subquery walks the (workspace_id, upper(method), path, occurred_at DESC) index for
# each, stopping after :per_endpoint rows.
SAMPLES_SQL = """
SELECT w.ord, w.method, w.path, c.status_code, c.occurred_at,
       left(c.request_body, :body_prefix), length(c.request_body), c.request_body_encoding,
       left(c.response_body, :body_prefix), length(c.response_body), c.response_body_encoding
FROM unnest(CAST(:methods AS text[]), CAST(:paths AS text[])) WITH ORDINALITY AS w(method, path, ord)
CROSS JOIN LATERAL (
    SELECT rc.status_code, rc.occurred_at, rc.request_body, rc.request_body_encoding,
           rc.response_body, rc.response_body_encoding
    FROM runtime_captures rc
    WHERE rc.workspace_id = :workspace_id
      AND upper(rc.method) = w.method
      AND rc.path = w.path
      AND rc.occurred_at >= now() - interval '24 hours'
    ORDER BY rc.occurred_at DESC
    LIMIT :per_endpoint
) c
ORDER BY w.ord, c.occurred_at DESC
"""

# Only this much of each body leaves the database: the prompt keeps at most 6000 characters, and
# 32768 base64 characters still decode to more than 6000 characters of any UTF-8 text. A
# megabyte body costs no more than a small one.
BODY_PREFIX_CHARS = 32_768

# Run under the org's advisory lock: admitted (a row returned) only while the month's usage plus
# the other live reservations stays below the limit. Re-reserving the same request id replaces it.
RESERVE_SQL = """
INSERT INTO usage_reservations (request_id, org_id, period_start, tokens, expires_at)
SELECT :request_id, :org_id, :period_start, :tokens, now() + make_interval(secs => :ttl_seconds)
WHERE COALESCE((SELECT u.ai_tokens_used FROM usage_counters u
                WHERE u.org_id = :org_id AND u.period_start = :period_start), 0)
    + COALESCE((SELECT sum(r.tokens) FROM usage_reservations r
                WHERE r.org_id = :org_id AND r.period_start = :period_start
                  AND r.expires_at > now() AND r.request_id <> :request_id), 0)
    < :limit
ON CONFLICT (request_id) DO UPDATE SET tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at
RETURNING tokens
"""

RELEASE_SQL = "DELETE FROM usage_reservations WHERE request_id = :request_id"

# Idempotent per request id: a retried statement (or a retried invocation) charges once. The
# call's reservation (if any) goes in the same statement, so usage never counts a call twice.
METER_SQL = """
WITH released AS (
    DELETE FROM usage_reservations WHERE request_id = :request_id
), charged AS (
    INSERT INTO usage_ledger (request_id, org_id, period_start, tokens)
    VALUES (:request_id, :org_id, :period_start, :tokens)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING org_id, period_start, tokens
)
INSERT INTO usage_counters (org_id, period_start, ai_tokens_used)
SELECT org_id, period_start, tokens FROM charged
ON CONFLICT (org_id, period_start)
DO UPDATE SET ai_tokens_used = usage_counters.ai_tokens_used + EXCLUDED.ai_tokens_used
"""


@dataclass(frozen=True)
class OrgContext:
    """What routing and quota need to know about the calling organization."""

    plan: str
    limits: dict[str, Any]
    workspace_belongs: bool
    byok_setting: dict[str, Any] | None
    quota_setting: dict[str, Any] | None
    tokens_used_this_month: int


@dataclass(frozen=True)
class Capture:
    """One captured exchange: the first :data:`BODY_PREFIX_CHARS` of each body as stored
    (decoding is the prompt builder's job), and each body's stored length."""

    endpoint: Endpoint
    status_code: int | None
    occurred_at: datetime
    request_body: str | None
    request_body_encoding: str | None
    response_body: str | None
    response_body_encoding: str | None
    request_body_chars: int | None = None
    response_body_chars: int | None = None


def _as_json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def samples_parameters(workspace_id: UUID, endpoints: list[Endpoint], per_endpoint: int) -> dict[str, Any]:
    """The parameters of :data:`SAMPLES_SQL` (the benchmark's EXPLAIN uses the same ones)."""
    return {
        "methods": [e.method.upper() for e in endpoints],
        "paths": [e.path for e in endpoints],
        "workspace_id": workspace_id,
        "per_endpoint": per_endpoint,
        "body_prefix": BODY_PREFIX_CHARS,
    }


def month_start(today: date) -> date:
    return today.replace(day=1)


class DriftRepository:
    """Data access of the scorer over a :class:`~service.db.Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def org_context(self, org_id: UUID, workspace_id: UUID, period_start: date) -> OrgContext | None:
        rows = self._db.query(ORG_CONTEXT_SQL, org_id=org_id, workspace_id=workspace_id, period_start=period_start)
        if not rows:
            return None
        plan, limits, workspace_ok, byok, quota, used = rows[0]
        return OrgContext(
            plan=str(plan),
            limits=_as_json_object(limits) or {},
            workspace_belongs=bool(workspace_ok),
            byok_setting=_as_json_object(byok),
            quota_setting=_as_json_object(quota),
            tokens_used_this_month=int(used),
        )

    def recent_samples(self, workspace_id: UUID, endpoints: list[Endpoint], per_endpoint: int) -> list[Capture]:
        """Newest captures of the last 24 h for every endpoint, in one SQL statement."""
        if not endpoints:
            return []
        rows = self._db.query(SAMPLES_SQL, **samples_parameters(workspace_id, endpoints, per_endpoint))
        return [
            Capture(
                endpoint=Endpoint(method=method, path=path),
                status_code=status,
                occurred_at=occurred_at,
                request_body=req_body,
                request_body_encoding=req_enc,
                response_body=resp_body,
                response_body_encoding=resp_enc,
                request_body_chars=req_len,
                response_body_chars=resp_len,
            )
            for (
                _ord,
                method,
                path,
                status,
                occurred_at,
                req_body,
                req_len,
                req_enc,
                resp_body,
                resp_len,
                resp_enc,
            ) in rows
        ]

    def reserve_platform_tokens(
        self, request_id: str, org_id: UUID, period_start: date, tokens: int, limit: int, ttl_seconds: float
    ) -> bool:
        """Hold ``tokens`` of the month's quota for a call in flight; False when it does not fit."""
        rows = self._db.query(
            RESERVE_SQL,
            lock_key=f"usage:{org_id}:{period_start.isoformat()}",
            request_id=request_id,
            org_id=org_id,
            period_start=period_start,
            tokens=tokens,
            limit=limit,
            ttl_seconds=ttl_seconds,
        )
        return bool(rows)

    def release_reservation(self, request_id: str) -> None:
        self._db.query(RELEASE_SQL, request_id=request_id)

    def meter_platform_tokens(self, request_id: str, org_id: UUID, period_start: date, tokens: int) -> None:
        """Add ``tokens`` to the month's counter atomically, once per ``request_id``."""
        self._db.query(METER_SQL, request_id=request_id, org_id=org_id, period_start=period_start, tokens=tokens)
