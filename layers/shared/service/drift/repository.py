"""SQL of the contract-drift scorer: organization context, sampling, metering."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from service.db import Database
from service.drift.models import Endpoint
from service.drift.spec.paths import shape_of
from service.drift.spec.sampling_plan import plan_endpoints

# One round trip: the org, its settings, the month's usage and its latest subscription (the
# registry's effective plan, DESIGN §10.3.2), with the database's clock to age that subscription
# by (the registry stamps updated_at on the same server, so no Lambda clock skew enters).
ORG_CONTEXT_SQL = """
SELECT o.plan,
       o.limits_json,
       EXISTS (SELECT 1 FROM workspaces w WHERE w.id = :workspace_id AND w.org_id = o.id),
       (SELECT s.setting_value FROM org_settings s WHERE s.org_id = o.id AND s.setting_key = 'byok'),
       (SELECT s.setting_value FROM org_settings s WHERE s.org_id = o.id AND s.setting_key = 'quota'),
       COALESCE((SELECT u.ai_tokens_used FROM usage_counters u
                 WHERE u.org_id = o.id AND u.period_start = :period_start), 0),
       sub.status,
       sub.updated_at,
       now()
FROM organizations o
LEFT JOIN LATERAL (
    SELECT s.status, s.updated_at FROM subscriptions s
    WHERE s.org_id = o.id
    ORDER BY s.created_at DESC NULLS LAST, s.id DESC
    LIMIT 1
) sub ON true
WHERE o.id = :org_id
"""

# All endpoints in one round trip, each capture sampled for at most one endpoint (DESIGN §7.1).
# One row per endpoint is unnested with its plan (service.drift.spec.sampling_plan); three UNION ALL branches
# are gated on the plan alone, so Postgres runs only one of them per endpoint (one-time filters):
# - literal: today's exact-match walk of runtime_captures_path_idx, newest first;
# - template, cold (the probe found fewer than :probe_cap matches in the window within the
#   literal-prefix range): the probe read them all, so its newest :per_endpoint are the samples
#   (no second scan of the range);
# - template, hot, or no usable prefix: runtime_captures_recent_idx newest first, the pattern
#   as a filter, stopping after :per_endpoint matches.
# Branches read ids from the indexes only; the bodies of the winners are fetched by primary key.
# The status is response_status_code, where the recorder writes it for HTTP captures (leaving
# status_code NULL), else status_code (DESIGN §10.3.1). A capture whose workspace_id is NULL
# matches no workspace (`=` is never true for NULL).
# Templates skip the paths of literal candidates (`excluded`, a hashed NOT IN built once).
SAMPLES_SQL = """
WITH excluded AS MATERIALIZED (
    SELECT * FROM unnest(CAST(:excluded_methods AS text[]), CAST(:excluded_paths AS text[])) AS x(method, path)
)
SELECT w.ord, coalesce(rc.response_status_code, rc.status_code), rc.occurred_at,
       left(rc.request_body, :body_prefix), length(rc.request_body), rc.request_body_encoding,
       left(rc.response_body, :body_prefix), length(rc.response_body), rc.response_body_encoding
FROM unnest(CAST(:methods AS text[]), CAST(:paths AS text[]), CAST(:kinds AS text[]),
            CAST(:patterns AS text[]), CAST(:lowers AS text[]), CAST(:uppers AS text[]))
     WITH ORDINALITY AS w(method, path, kind, pattern, lower_bound, upper_bound, ord)
CROSS JOIN LATERAL (
    SELECT count(*) AS hits,
           array_agg(probed.id ORDER BY probed.occurred_at DESC, probed.id DESC) AS ids,
           array_agg(probed.occurred_at ORDER BY probed.occurred_at DESC, probed.id DESC) AS ats
    FROM (SELECT p.id, p.occurred_at FROM runtime_captures p
          WHERE w.kind = 'template'
            AND p.workspace_id = :workspace_id
            AND upper(p.method) = w.method
            AND p.path ~>=~ w.lower_bound AND p.path ~<~ w.upper_bound
            AND p.occurred_at >= now() - interval '24 hours'
            AND p.path ~ w.pattern
            AND (w.method, p.path) NOT IN (SELECT x.method, x.path FROM excluded x)
          LIMIT :probe_cap) probed
) probe
CROSS JOIN LATERAL (
    (SELECT e.id, e.occurred_at FROM runtime_captures e
     WHERE w.kind = 'literal'
       AND e.workspace_id = :workspace_id
       AND upper(e.method) = w.method
       AND e.path = w.path
       AND e.occurred_at >= now() - interval '24 hours'
     ORDER BY e.occurred_at DESC
     LIMIT :per_endpoint)
    UNION ALL
    (SELECT r.id, r.occurred_at FROM unnest(probe.ids, probe.ats) WITH ORDINALITY AS r(id, occurred_at, n)
     WHERE w.kind = 'template' AND probe.hits < :probe_cap AND r.n <= :per_endpoint)
    UNION ALL
    (SELECT t.id, t.occurred_at FROM runtime_captures t
     WHERE (w.kind = 'walk' OR (w.kind = 'template' AND probe.hits >= :probe_cap))
       AND t.workspace_id = :workspace_id
       AND upper(t.method) = w.method
       AND t.occurred_at >= now() - interval '24 hours'
       AND t.path ~ w.pattern
       AND (w.method, t.path) NOT IN (SELECT x.method, x.path FROM excluded x)
     ORDER BY t.occurred_at DESC
     LIMIT :per_endpoint)
) s
JOIN runtime_captures rc ON rc.id = s.id
ORDER BY w.ord, s.occurred_at DESC, s.id DESC
"""

# When every endpoint is literal: today's statement, unchanged (one LATERAL index walk each).
LITERAL_SAMPLES_SQL = """
SELECT w.ord, c.status, c.occurred_at,
       left(c.request_body, :body_prefix), length(c.request_body), c.request_body_encoding,
       left(c.response_body, :body_prefix), length(c.response_body), c.response_body_encoding
FROM unnest(CAST(:methods AS text[]), CAST(:paths AS text[])) WITH ORDINALITY AS w(method, path, ord)
CROSS JOIN LATERAL (
    SELECT coalesce(rc.response_status_code, rc.status_code) AS status, rc.occurred_at,
           rc.request_body, rc.request_body_encoding,
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

# Matches of a template counted in its prefix range before it is taken for hot: under it the range
# is read whole (cheap, few rows) and the probe's own rows are the samples; at it the newest-first
# walk finds :per_endpoint matches after reading about window rows x per_endpoint / matches, at
# most a twentieth of the method's window. 100 rather than 200: the probe is most of the
# statement's work (12.0 -> 8.8 ms on the benchmark's 25 templates), and the walk stays bounded.
PROBE_CAP = 100

# Only this much of each body leaves the database: the prompt keeps at most 6000 characters, and
# 32768 base64 characters still decode to more than 6000 characters of any UTF-8 text. A
# megabyte body costs no more than a small one.
BODY_PREFIX_CHARS = 32_768

# Run under the org's advisory lock: admitted (a row returned) only while the month's usage plus
# the other live reservations stays below the limit. Re-reserving the same request id replaces it.
RESERVE_SQL = """
INSERT INTO contract_drift.usage_reservations (request_id, org_id, period_start, tokens, expires_at)
SELECT :request_id, :org_id, :period_start, :tokens, now() + make_interval(secs => :ttl_seconds)
WHERE COALESCE((SELECT u.ai_tokens_used FROM usage_counters u
                WHERE u.org_id = :org_id AND u.period_start = :period_start), 0)
    + COALESCE((SELECT sum(r.tokens) FROM contract_drift.usage_reservations r
                WHERE r.org_id = :org_id AND r.period_start = :period_start
                  AND r.expires_at > now() AND r.request_id <> :request_id), 0)
    < :limit
ON CONFLICT (request_id) DO UPDATE SET tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at
RETURNING tokens
"""

RELEASE_SQL = "DELETE FROM contract_drift.usage_reservations WHERE request_id = :request_id"

# Idempotent per request id: a retried statement (or a retried invocation) charges once. The
# call's reservation (if any) goes in the same statement, so usage never counts a call twice.
# The registry's usage_counters gives id and updated_at no default on insert (its trigger keeps
# updated_at on update), so the month's first row is written with both.
METER_SQL = """
WITH released AS (
    DELETE FROM contract_drift.usage_reservations WHERE request_id = :request_id
), charged AS (
    INSERT INTO contract_drift.usage_ledger (request_id, org_id, period_start, tokens)
    VALUES (:request_id, :org_id, :period_start, :tokens)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING org_id, period_start, tokens
)
INSERT INTO usage_counters (id, org_id, period_start, ai_tokens_used, updated_at)
SELECT gen_random_uuid(), org_id, period_start, tokens, now() FROM charged
ON CONFLICT (org_id, period_start)
DO UPDATE SET ai_tokens_used = usage_counters.ai_tokens_used + EXCLUDED.ai_tokens_used
"""


@dataclass(frozen=True)
class Subscription:
    """The org's latest subscription row (by ``created_at``), as far as billing cares."""

    status: str
    updated_at: datetime | None


@dataclass(frozen=True)
class OrgContext:
    """What routing and quota need to know about the calling organization."""

    plan: str
    limits: dict[str, Any]
    workspace_belongs: bool
    byok_setting: dict[str, Any] | None
    quota_setting: dict[str, Any] | None
    tokens_used_this_month: int
    # None: the org has no subscription row at all.
    subscription: Subscription | None = None
    # The database's clock when the context was read (subscriptions are aged against it).
    read_at: datetime | None = None


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


def samples_parameters(
    workspace_id: UUID,
    endpoints: list[Endpoint],
    per_endpoint: int,
    declared_paths: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The parameters of :data:`SAMPLES_SQL` (the benchmark's EXPLAIN uses the same ones).

    A repeat of an earlier endpoint (same method and path up to parameter names) gets no row.
    """
    plan = plan_endpoints([(e.method, e.path) for e in endpoints], declared_paths)
    kept = [(e, p) for e, p in zip(endpoints, plan.endpoints, strict=True) if p is not None]
    return {
        "methods": [e.method.upper() for e, _ in kept],
        "paths": [e.path for e, _ in kept],
        "kinds": [p.kind for _, p in kept],
        "patterns": [p.pattern for _, p in kept],
        "lowers": [p.lower for _, p in kept],
        "uppers": [p.upper for _, p in kept],
        "excluded_methods": [method for method, _ in plan.excluded],
        "excluded_paths": [path for _, path in plan.excluded],
        "workspace_id": workspace_id,
        "per_endpoint": per_endpoint,
        "probe_cap": PROBE_CAP,
        "body_prefix": BODY_PREFIX_CHARS,
    }


def samples_sql(params: dict[str, Any]) -> str:
    """The statement for these :func:`samples_parameters`: today's when every endpoint is literal."""
    return LITERAL_SAMPLES_SQL if all(kind == "literal" for kind in params["kinds"]) else SAMPLES_SQL


def _kept_endpoints(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints :func:`samples_parameters` keeps, in the order of its rows."""
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    kept: list[Endpoint] = []
    for endpoint in endpoints:
        key = (endpoint.method.upper(), shape_of(endpoint.path))
        if key not in seen:
            seen.add(key)
            kept.append(endpoint)
    return kept


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
        plan, limits, workspace_ok, byok, quota, used, sub_status, sub_updated_at, read_at = rows[0]
        return OrgContext(
            plan=str(plan),
            limits=_as_json_object(limits) or {},
            workspace_belongs=bool(workspace_ok),
            byok_setting=_as_json_object(byok),
            quota_setting=_as_json_object(quota),
            tokens_used_this_month=int(used),
            subscription=None if sub_status is None else Subscription(str(sub_status), sub_updated_at),
            read_at=read_at,
        )

    def recent_samples(
        self,
        workspace_id: UUID,
        endpoints: list[Endpoint],
        per_endpoint: int,
        declared_paths: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Capture]:
        """Newest captures of the last 24 h for every endpoint, in one SQL statement.

        ``declared_paths`` maps an upper-case method to the document's paths for it: more
        specific ones keep their captures from a templated endpoint (DESIGN §7.1).
        """
        if not endpoints:
            return []
        params = samples_parameters(workspace_id, endpoints, per_endpoint, declared_paths)
        kept = _kept_endpoints(endpoints)
        rows = self._db.query(samples_sql(params), **params)
        return [
            Capture(
                endpoint=kept[int(ordinal) - 1],
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
                ordinal,
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
