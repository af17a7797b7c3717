"""What every benchmark shares: sizes (full and smoke), timing statistics, the result shape, Postgres.

Absolute times on a shared 2-core machine are noisy, so every benchmark measures its own
baseline in the same run and states its claim as a ratio (or as a bound next to one).
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER_DIR = ROOT / "layers" / "shared"
FUNCTIONS_DIR = ROOT / "functions"
BULK_IO_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs. :data:`FULL` is the issue's; :data:`SMOKE` only proves the code works."""

    smoke: bool
    sampler_rows: int
    sampler_workspaces: int
    sampler_paths: int
    sampler_runs: int
    sampler_registry_runs: int
    scaling_rows: tuple[int, ...]
    scaling_runs: int
    scaling_budget_s: float
    index_build_quiet_s: float
    index_build_lead_s: float
    index_build_writer_interval_s: float
    wall_runs: int
    wall_ms: int
    slow_hop_ms: int
    overhead_invokes: int
    cold_start_runs: int
    cold_start_functions: tuple[str, ...]
    run_sam_build: bool
    traverse_nodes: int
    traverse_fanouts: tuple[int, ...]
    traverse_main_fanout: int
    traverse_runs: int
    byok_warm_calls: int
    prompt_body_chars: int


FULL = Sizes(
    smoke=False,
    sampler_rows=1_000_000,
    sampler_workspaces=40,
    sampler_paths=400,
    sampler_runs=31,
    sampler_registry_runs=3,
    scaling_rows=(100_000, 1_000_000, 10_000_000),
    scaling_runs=21,
    scaling_budget_s=420.0,
    index_build_quiet_s=10.0,
    index_build_lead_s=1.0,
    index_build_writer_interval_s=0.005,
    wall_runs=50,
    wall_ms=500,
    slow_hop_ms=1_000,
    overhead_invokes=10_000,
    cold_start_runs=10,
    cold_start_functions=("contract_drift", "traverse_answer"),
    run_sam_build=True,
    traverse_nodes=100_000,
    traverse_fanouts=(3, 10, 25),
    traverse_main_fanout=10,
    traverse_runs=200,
    byok_warm_calls=1_000,
    prompt_body_chars=1_000_000,
)

SMOKE = Sizes(
    smoke=True,
    sampler_rows=3_000,
    sampler_workspaces=3,
    sampler_paths=30,
    sampler_runs=3,
    sampler_registry_runs=2,
    scaling_rows=(1_000, 3_000),
    scaling_runs=3,
    scaling_budget_s=60.0,
    index_build_quiet_s=0.5,
    index_build_lead_s=0.2,
    index_build_writer_interval_s=0.005,
    wall_runs=2,
    wall_ms=500,
    # As the full run: the lock must outlast the wall even when the first call starts late (a
    # cold token fetch alone takes ~150 ms); 600 ms left 100 ms of slack and flaked once.
    slow_hop_ms=1_000,
    overhead_invokes=30,
    cold_start_runs=1,
    cold_start_functions=("traverse_answer",),
    run_sam_build=False,
    traverse_nodes=300,
    traverse_fanouts=(2, 4),
    traverse_main_fanout=4,
    traverse_runs=5,
    byok_warm_calls=5,
    prompt_body_chars=20_000,
)


@dataclass
class Check:
    """One target of the issue: what was measured against what was promised."""

    name: str
    target: str
    measured: str
    met: bool

    @property
    def verdict(self) -> str:
        return "met" if self.met else "MISSED"


@dataclass
class BenchResult:
    """A benchmark's outcome: its targets, the figures behind them, and Markdown for the doc."""

    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    # Missed targets and findings: cause, evidence, proposed fix (collected in one section of the doc).
    findings: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(check.met for check in self.checks)

    def summary_lines(self) -> list[str]:
        lines = [f"== {self.title}"]
        lines += [f"   {c.name}: {c.measured}  [target {c.target}] -> {c.verdict}" for c in self.checks]
        return lines


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in [0, 1]) — no interpolation, so p99 is a real sample."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call in milliseconds, and its result."""
    started = time.perf_counter()
    result = fn()
    return ms(time.perf_counter() - started), result


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector out of tight timing loops (it would land on random samples)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Powertools writes EMF metrics and logs to stdout on every invoke; keep them out of the report.

    The Logger's handler keeps the stream it was built with, so its stream is swapped too.
    """
    import logging

    from service.observability import logger

    sink = io.StringIO()
    handlers = [h for h in logger._logger.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(sink) for h in handlers]
    saved = sys.stdout
    sys.stdout = sink
    try:
        yield
    finally:
        sys.stdout = saved
        for handler, stream in zip(handlers, streams, strict=True):
            if stream is not None:
                handler.setStream(stream)


def fmt_ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def code_block(text: str, lang: str = "") -> list[str]:
    return [f"```{lang}", *text.rstrip("\n").splitlines(), "```"]


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


class BenchEnv:
    """The embedded PostgreSQL and the environment of a deployed function, started once per run."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self._base_dir = base_dir
        # Restored by close(): inside the test suite the bench must not leave its server's URLs behind.
        self._saved_environ = dict(os.environ)
        self._postgres: Any = None
        self._moto: Any = None
        self._aws_endpoint: str | None = None

    @property
    def postgres(self) -> Any:
        if self._postgres is None:
            from devtools.postgres import start_postgres

            self._postgres = start_postgres(self._base_dir)
            os.environ["DATABASE_URL"] = self._postgres.url
            _reset_service_caches()
            from service.db import database

            database.close()  # a warm connection (e.g. the test suite's) would point at another server
        return self._postgres

    @property
    def aws_endpoint(self) -> str:
        """A moto Secrets Manager, reached through ``AWS_ENDPOINT_URL`` exactly as in tests."""
        if self._aws_endpoint is None:
            import logging

            from devtools.aws import start_moto, use_local_aws

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
            self._moto, self._aws_endpoint = start_moto()
            use_local_aws(self._aws_endpoint)
        return self._aws_endpoint

    def connect(self) -> Any:
        """A connection of the benchmark's own (data generation, locks, EXPLAIN), as the registry owner.

        Its socket waits up to an hour for a reply: a bulk load of millions of rows is one statement.
        """
        from service.db import parse_database_url

        return parse_database_url(self.postgres.owner_url).connect(io_timeout_s=BULK_IO_TIMEOUT_S)

    def close(self) -> None:
        from service.db import database

        database.close()
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        os.environ.clear()
        os.environ.update(self._saved_environ)
        _reset_service_caches()
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()


def _reset_service_caches() -> None:
    from service.config import get_settings

    get_settings.cache_clear()


def function_env(**extra: str) -> dict[str, str]:
    """Variables a deployed function has (tracing off: there is no X-Ray daemon here)."""
    return {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        **extra,
    }


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the duration of a benchmark (and the settings cache with them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    _reset_service_caches()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_service_caches()
