"""Benchmark 10: the sampler's latency as ``runtime_captures`` grows (100k, 1M, 10M captures).

Traffic arrives at a constant rate, so a bigger table is a longer history: each size appends
older days to the same table, and the 24 h window always holds the same day of traffic. The
sampler reads only inside that window through its indexes, so its latency should stay flat
while the table grows a hundredfold. Literal and templated endpoints are measured on the same
table (their traffic lives under ``/api/v1`` and ``/api/v2``), rows as wide as benchmark 1's.

The time it takes grows with the table (bulk load, two index builds, VACUUM ANALYZE: minutes at
10M on two shared cores), so a size whose load is estimated past the time budget is not run; the
report then names the largest size that was.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import BenchEnv, BenchResult, Check, Sizes, fmt_ms, md_table, median, percentile, timed_ms
from bench.sampler import (
    GENERATE_SQL,
    PER_ENDPOINT,
    SAMPLER_INDEXES,
    TEMPLATE_HOT_PATHS,
    TEMPLATED_SQL,
    add_traffic,
    plain_index_statements,
    prepare_bulk_load,
    requested_endpoints,
    templated_declared,
    templated_endpoints,
    workspace_id,
)
from devtools.postgres import CountingDatabase
from service.drift.repository import DriftRepository

FLAT_TARGET = 2.0  # largest size's median / smallest size's median


def _load(connection: Any, sizes: Sizes, *, rows: int, from_days: float, to_days: float) -> None:
    """Append ``rows`` captures (half literal, half templated traffic) dated between ``from_days``
    and ``to_days`` ago, then rebuild the sampler's indexes and VACUUM ANALYZE."""
    for name in SAMPLER_INDEXES:
        connection.run(f"DROP INDEX IF EXISTS {name}")
    half = rows // 2
    add_traffic(connection, GENERATE_SQL, sizes, rows=half, from_days=from_days, to_days=to_days)
    ids = TEMPLATE_HOT_PATHS if not sizes.smoke else 50
    add_traffic(connection, TEMPLATED_SQL, sizes, rows=rows - half, from_days=from_days, to_days=to_days, ids=ids)
    # Nobody else writes this table here: the plain build is the fastest (benchmark 11 measures
    # the migration's concurrent build against writers).
    for statement in plain_index_statements():
        connection.run(statement)
    connection.run("VACUUM ANALYZE runtime_captures")


def _sizes_of(connection: Any) -> tuple[int, int, int]:
    rows, table, indexes = connection.run(
        "SELECT count(*), pg_table_size('runtime_captures'), pg_indexes_size('runtime_captures') FROM runtime_captures"
    )[0]
    return int(rows), int(table), int(indexes)


def run(env: BenchEnv, sizes: Sizes) -> BenchResult:
    env.postgres  # noqa: B018 - start the server (sets DATABASE_URL) before the first query
    targets = sorted(sizes.scaling_rows)
    per_day = targets[0]  # captures per day: the smallest size is exactly one day of traffic
    workspace = workspace_id()
    literal = requested_endpoints(sizes.sampler_paths)
    templated = templated_endpoints(sizes.sampler_paths)
    declared = templated_declared(sizes.sampler_paths)
    connection = env.connect()
    connection.run("SET maintenance_work_mem = '512MB'")  # index builds of the bulk load only
    db = CountingDatabase()
    repository = DriftRepository(db)
    measured: list[dict[str, Any]] = []
    skipped: list[int] = []
    started = time.perf_counter()
    try:
        prepare_bulk_load(connection, sizes)
        connection.run("SELECT setseed(0.75)")
        loaded = 0
        seconds_per_row = 0.0
        for target in targets:
            estimate_s = seconds_per_row * (target - loaded)
            if measured and time.perf_counter() - started + estimate_s > sizes.scaling_budget_s:
                skipped.append(target)
                continue
            load_started = time.perf_counter()
            _load(connection, sizes, rows=target - loaded, from_days=loaded / per_day, to_days=target / per_day)
            load_s = time.perf_counter() - load_started
            seconds_per_row = load_s / (target - loaded)
            loaded = target
            rows, table_bytes, index_bytes = _sizes_of(connection)
            window = connection.run(
                "SELECT count(*) FROM runtime_captures WHERE occurred_at >= now() - interval '24 hours'"
            )[0][0]

            def sample_literal() -> Any:
                return repository.recent_samples(workspace, literal, PER_ENDPOINT)

            def sample_templated() -> Any:
                return repository.recent_samples(workspace, templated, PER_ENDPOINT, declared)

            literal_rows = len(sample_literal())  # warm: connection, plan cache, buffers
            templated_rows = len(sample_templated())
            literal_ms: list[float] = []
            templated_ms: list[float] = []
            for round_ in range(sizes.scaling_runs):
                pair = [(literal_ms, sample_literal), (templated_ms, sample_templated)]
                for out, fn in pair if round_ % 2 == 0 else pair[::-1]:
                    out.append(timed_ms(fn)[0])
            measured.append(
                {
                    "rows": rows,
                    "history_days": round(target / per_day, 1),
                    "window_rows": int(window),
                    "table_mib": round(table_bytes / 1024 / 1024),
                    "indexes_mib": round(index_bytes / 1024 / 1024),
                    "load_s": round(load_s, 1),
                    "literal_median_ms": round(median(literal_ms), 3),
                    "literal_p95_ms": round(percentile(literal_ms, 0.95), 3),
                    "literal_rows": literal_rows,
                    "templated_median_ms": round(median(templated_ms), 3),
                    "templated_p95_ms": round(percentile(templated_ms, 0.95), 3),
                    "templated_rows": templated_rows,
                }
            )
    finally:
        db.close()
        # Give the disk back (10M rows are ~10 GB); the indexes stay, empty, as the migration left them.
        connection.run("TRUNCATE runtime_captures RESTART IDENTITY")
        connection.close()
    return _report(sizes, measured, skipped, per_day)


def _report(sizes: Sizes, measured: list[dict[str, Any]], skipped: list[int], per_day: int) -> BenchResult:
    first, last = measured[0], measured[-1]
    literal_growth = last["literal_median_ms"] / first["literal_median_ms"]
    templated_growth = last["templated_median_ms"] / first["templated_median_ms"]
    span = f"{first['rows']:,} → {last['rows']:,} rows"
    result = BenchResult(key="sampler_scaling", title="12. Sampler latency as runtime_captures grows")
    result.checks = [
        Check(
            f"literal endpoints: median at {last['rows']:,} / at {first['rows']:,} rows",
            f"≤ {FLAT_TARGET:.0f}× (flat)",
            f"{literal_growth:.2f}× ({fmt_ms(first['literal_median_ms'])} → {fmt_ms(last['literal_median_ms'])})",
            literal_growth <= FLAT_TARGET,
        ),
        Check(
            f"templated endpoints: median at {last['rows']:,} / at {first['rows']:,} rows",
            f"≤ {FLAT_TARGET:.0f}× (flat)",
            f"{templated_growth:.2f}× ({fmt_ms(first['templated_median_ms'])} → {fmt_ms(last['templated_median_ms'])})",
            templated_growth <= FLAT_TARGET,
        ),
        Check(
            "largest size measured",
            f"{max(sizes.scaling_rows):,} rows",
            f"{last['rows']:,} rows" + (f" (not run: {', '.join(f'{n:,}' for n in skipped)})" if skipped else ""),
            not skipped,
        ),
    ]
    result.figures = {
        "sizes": measured,
        "skipped_sizes": skipped,
        "captures_per_day": per_day,
        "runs_each": sizes.scaling_runs,
        "literal_growth": round(literal_growth, 2),
        "templated_growth": round(templated_growth, 2),
    }
    rows = [
        [
            f"{m['rows']:,}",
            f"{m['history_days']:g} d",
            f"{m['window_rows']:,}",
            f"{m['table_mib']:,} / {m['indexes_mib']:,} MiB",
            f"{m['load_s']:.0f} s",
            f"{fmt_ms(m['literal_median_ms'])} ({fmt_ms(m['literal_p95_ms'])})",
            f"{fmt_ms(m['templated_median_ms'])} ({fmt_ms(m['templated_p95_ms'])})",
        ]
        for m in measured
    ]
    result.details = [
        f"One table grown in place ({span}): traffic arrives at {per_day:,} captures a day, so each size appends "
        "older days and the 24 h window always holds the same day. Rows as in benchmark 1 (the recorder's columns "
        "and full header maps), half literal traffic (`/api/v1/r{k}/items`), half templated (`/api/v2/...`); "
        f"{sizes.sampler_workspaces} workspaces, the sampled one holding 10 %. After each append: the sampler's "
        "two indexes rebuilt, `VACUUM ANALYZE`. The sampler runs as in production (one statement, "
        f"`DriftRepository.recent_samples`, the functions' role): 25 literal endpoints and 25 templated ones "
        f"(the document declaring {len(templated_declared(sizes.sampler_paths)['GET']):,} paths per method), "
        f"{sizes.scaling_runs} alternating runs each per size.",
        "",
        *md_table(
            [
                "captures",
                "history",
                "in the 24 h window",
                "table / indexes",
                "load + index + vacuum",
                "literal: median (p95)",
                "templated: median (p95)",
            ],
            rows,
        ),
        "",
        f"Growth from {first['rows']:,} to {last['rows']:,} captures: literal **{literal_growth:.2f}×**, templated "
        f"**{templated_growth:.2f}×** (target: flat, ≤ {FLAT_TARGET:.0f}×). Each literal endpoint is one descent "
        "of `runtime_captures_path_idx` to its (workspace, method, path) and a walk of its newest 5 rows; a "
        "templated one probes its prefix range and skip-scans the window inside it, which the older days do "
        "not enter. Only the indexes' depth grows with the table.",
    ]
    if skipped:
        result.details += [
            "",
            f"**Not run: {', '.join(f'{n:,}' for n in skipped)} captures.** The load alone was estimated (from the "
            f"previous size's seconds per row) to take the run past its budget of {sizes.scaling_budget_s:.0f} s "
            f"on this machine; {last['rows']:,} is the largest size that fits.",
        ]
        result.findings += [
            f"- **Scaling measured up to {last['rows']:,} captures, not {max(sizes.scaling_rows):,}:** the load "
            "of the larger size did not fit the benchmark's time budget on this machine (see section 10).",
            "",
        ]
    for growth, kind in ((literal_growth, "literal"), (templated_growth, "templated")):
        if growth > FLAT_TARGET:
            result.findings += [
                f"- **Sampler latency ({kind}) grew {growth:.2f}× from {first['rows']:,} to {last['rows']:,} "
                "captures.** See the table in section 10.",
                "",
            ]
    return result
