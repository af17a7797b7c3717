"""Benchmark 10: what explicit transactions cost a scoring call's database time (DESIGN §11.1).

Every statement now runs in a transaction of its own: one message with ``BEGIN`` and the
transaction's settings, the statement, ``COMMIT`` (2 round trips more than an autocommit
statement, whose session-level ``statement_timeout`` a pooler would leak). Both ways are timed
in the same run, interleaved, on the four statements of a platform scoring call (org context,
the sampler, the quota reservation under its advisory lock, the metering), straight to
PostgreSQL and through PgBouncer in transaction mode. "Before" is the previous ``Database``
statement path, kept here only as the baseline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import BenchEnv, BenchResult, Check, Sizes, md_table, percentile, timed_ms
from devtools.pgbouncer import start_pgbouncer
from devtools.seed import add_capture, make_tenant
from service.config import get_settings
from service.db import Database
from service.drift.models import Endpoint
from service.drift.repository import DriftRepository

TARGET_GROWTH_MS = 1.0
ENDPOINTS = 25
CAPTURES_PER_ENDPOINT = 8


class AutocommitDatabase(Database):
    """The baseline: statements in autocommit, ``statement_timeout`` set for the session."""

    def _execute(
        self,
        sql: str,
        wait_s: float,
        timeout_ms: int | None,
        lock_key: str | None,
        tx_settings: Any,
        params: dict[str, Any],
    ) -> list[list[Any]]:
        connection = self._connection(wait_s, wait_s)
        wanted = f"{max(1, int(timeout_ms))}ms" if timeout_ms is not None else "0"
        if getattr(self._local, "timeout", "0") != wanted:
            connection.run("SELECT set_config('statement_timeout', :value, false)", value=wanted)
            self._local.timeout = wanted
        if lock_key is None:
            return connection.run(sql, **params) or []
        connection.run("BEGIN")
        try:
            connection.run("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))", key=lock_key)
            rows = connection.run(sql, **params) or []
            connection.run("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):
                connection.run("ROLLBACK")
            raise
        return rows

    def close(self) -> None:
        super().close()
        self._local.timeout = "0"


def _scoring_statements(db: Database, tenant: Any, endpoints: list[Endpoint]) -> Callable[[], None]:
    repository = DriftRepository(db)
    period = dt.date.today().replace(day=1)

    def call() -> None:
        request_id = str(uuid.uuid4())
        repository.org_context(tenant.org_id, tenant.workspace_id, period)
        repository.recent_samples(tenant.workspace_id, endpoints, 3)
        repository.reserve_platform_tokens(request_id, tenant.org_id, period, 3000, 10**12, 60.0)
        repository.meter_platform_tokens(request_id, tenant.org_id, period, 525)

    return call


def _connected(kind: type[Database], url: str) -> Database:
    """A Database whose connection goes to ``url`` (it keeps it after the environment moves on)."""
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db = kind()
    db.query("SELECT 1")
    return db


def run(env: BenchEnv, sizes: Sizes) -> BenchResult:
    postgres = env.postgres
    endpoints_n, per_endpoint = (5, 2) if sizes.smoke else (ENDPOINTS, CAPTURES_PER_ENDPOINT)
    rounds = 5 if sizes.smoke else 300
    admin = env.connect()
    try:
        tenant = make_tenant(admin, "team", {"ai_tokens_per_month": 10**12})
        endpoints = [Endpoint(method="GET", path=f"/bench/tx/{i}") for i in range(endpoints_n)]
        for endpoint in endpoints:
            for minute in range(per_endpoint):
                add_capture(admin, tenant.workspace_id, "GET", endpoint.path, minutes_ago=minute + 1)
    finally:
        admin.close()

    bouncer = start_pgbouncer(postgres.base_dir / "pgbouncer", postgres.url, run_as=postgres.server.system_user)
    direct_url = postgres.url
    pooled_url = bouncer.url_for(direct_url)
    databases: dict[str, Database] = {}
    try:
        for route, url in (("direct", direct_url), ("pgbouncer", pooled_url)):
            for label, kind in (("before", AutocommitDatabase), ("after", Database)):
                databases[f"{route} {label}"] = _connected(kind, url)
        os.environ["DATABASE_URL"] = direct_url
        get_settings.cache_clear()
        calls = {name: _scoring_statements(db, tenant, endpoints) for name, db in databases.items()}
        samplers = {
            name: (lambda db=db: DriftRepository(db).recent_samples(tenant.workspace_id, endpoints, 3))
            for name, db in databases.items()
        }
        for fn in (*calls.values(), *samplers.values()):  # warm: plans, buffers
            fn()
        call_ms: dict[str, list[float]] = {name: [] for name in calls}
        sampler_ms: dict[str, list[float]] = {name: [] for name in calls}
        errors: dict[str, int] = {name: 0 for name in calls}
        names = list(calls)
        for round_ in range(rounds):
            order = names if round_ % 2 == 0 else list(reversed(names))
            for name in order:
                try:
                    call_ms[name].append(timed_ms(calls[name])[0])
                    sampler_ms[name].append(timed_ms(samplers[name])[0])
                except Exception:  # noqa: BLE001 - autocommit through a pooler may fail; counted
                    errors[name] += 1
    finally:
        for db in databases.values():
            db.close()
        bouncer.stop()
        os.environ["DATABASE_URL"] = direct_url
        get_settings.cache_clear()

    def p50(samples: list[float]) -> float:
        return percentile(samples, 0.5) if samples else float("nan")

    calls_p50 = {name: p50(v) for name, v in call_ms.items()}
    sampler_p50 = {name: p50(v) for name, v in sampler_ms.items()}
    growth = {route: calls_p50[f"{route} after"] - calls_p50[f"{route} before"] for route in ("direct", "pgbouncer")}
    result = BenchResult(key="transactions", title="10. Explicit transactions: a scoring call's database time")
    result.checks = [
        Check(
            "p50 growth of a scoring call's 4 statements, straight to Postgres",
            f"≤ {TARGET_GROWTH_MS:g} ms",
            f"{growth['direct']:+.3f} ms",
            growth["direct"] <= TARGET_GROWTH_MS,
        ),
        Check(
            "p50 growth through PgBouncer (transaction mode)",
            f"≤ {TARGET_GROWTH_MS:g} ms",
            f"{growth['pgbouncer']:+.3f} ms",
            growth["pgbouncer"] <= TARGET_GROWTH_MS,
        ),
        Check(
            "explicit transactions through PgBouncer never fail",
            "0 errors",
            f"{errors['pgbouncer after']} errors",
            errors["pgbouncer after"] == 0,
        ),
    ]
    result.figures = {
        "rounds": rounds,
        "endpoints": endpoints_n,
        "scoring_statements_p50_ms": {name: round(v, 3) for name, v in calls_p50.items()},
        "sampler_statement_p50_ms": {name: round(v, 3) for name, v in sampler_p50.items()},
        "growth_p50_ms": {name: round(v, 3) for name, v in growth.items()},
        "errors": errors,
        "round_trips_per_statement": {"before": "3 (+3 when the timeout changes)", "after": "5"},
    }
    result.details = [
        f"{rounds} rounds, the four ways interleaved (order reversed every other round), one warm connection "
        f"each; {endpoints_n} endpoints with {per_endpoint} captures each, 3 samples per endpoint; PgBouncer 1.18 "
        "`pool_mode = transaction`, `default_pool_size = 5`, on 127.0.0.1 in front of the embedded server's socket.",
        "",
        *md_table(
            ["way", "4 statements p50", "p99", "sampler statement p50", "errors"],
            [
                [
                    name,
                    f"{calls_p50[name]:.3f} ms",
                    f"{percentile(call_ms[name], 0.99):.3f} ms" if call_ms[name] else "-",
                    f"{sampler_p50[name]:.3f} ms",
                    errors[name],
                ]
                for name in names
            ],
        ),
        "",
        "Round trips per parameterised statement: before 3 (pg8000's Parse, Describe and Bind/Execute, each "
        "closed by a Sync), plus 3 more whenever the statement timeout changed; after 5: `BEGIN` with the "
        "transaction's settings (and the advisory lock, when there is one) in one simple-query message, the "
        "same 3, `COMMIT`. The locked reservation went from 8 to 5.",
    ]
    return result
