"""Benchmark 3: what one warm invoke costs in process on paths with no I/O, and who spends it.

Each path is timed at several depths of the same call, so the differences attribute the time:

- ``handler``: ``functions/*/app.py`` ``lambda_handler`` (Powertools Logger/Tracer/Metrics decorators,
  EMF flush) — what Lambda calls;
- ``handle``: ``service.api.*.handle`` (dispatch, token check, gate, body pre-checks, then Powertools),
  no decorators;
- ``powertools``: Powertools' own ``APIGatewayHttpResolver.resolve`` on our resolver, skipping our
  pre-routing checks (routing, body validation, the route);
- ``domain``: our own code with no Powertools: parse the body with pydantic, score, serialise.

The token comes from Secrets Manager (moto) on the first invoke and from the warm cache after,
as on Lambda. Depths are interleaved in small blocks so load changes land on all of them.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from bench.common import (
    BenchEnv,
    BenchResult,
    Check,
    Sizes,
    environment,
    function_env,
    md_table,
    percentile,
    quiet_stdout,
)
from devtools.aws import put_secret
from devtools.events import http_event, reply_json
from devtools.handlers import load_handler
from devtools.lambda_context import LocalLambdaContext

TOKEN = "bench-internal-token-0123456789"
TOKEN_SECRET = "bench/internal-token"
TARGET_P50_MS = 1.0
BLOCK = 100
DRIFT_PATH = "/api/v1/internal/contract-diff/score"
TRAVERSE_PATH = "/v1/traverse_answer"
ZERO_UUID = "00000000-0000-4000-8000-000000000000"


def _measure(depths: dict[str, Callable[[], Any]], invokes: int, after: Callable[[], None]) -> dict[str, list[float]]:
    """Per-call milliseconds of every depth, ``invokes`` each, interleaved in blocks."""
    samples: dict[str, list[float]] = {name: [] for name in depths}
    for fn in depths.values():  # warm: first token read, imports done lazily, caches
        fn()
        after()
    done = 0
    while done < invokes:
        block = min(BLOCK, invokes - done)
        for name, fn in depths.items():
            out = samples[name]
            for _ in range(block):
                started = time.perf_counter_ns()
                fn()
                out.append((time.perf_counter_ns() - started) / 1e6)
                after()
        done += block
    return samples


def _package_of(filename: str) -> str:
    for marker, label in (
        ("aws_lambda_powertools", "Powertools"),
        ("pydantic", "pydantic"),
        ("/service/", "service (our layer)"),
        ("/functions/", "service (our layer)"),
        ("/devtools/", "bench harness"),
        ("/bench/", "bench harness"),
    ):
        if marker in filename:
            return label
    return "stdlib / builtins / other"


def profile_by_package(fn: Callable[[], Any], calls: int, after: Callable[[], None]) -> list[tuple[str, float]]:
    """Share of own time per package over ``calls`` invokes (cProfile; its overhead inflates small functions)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
        after()
    profiler.disable()
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = _package_of(filename)
        totals[label] = totals.get(label, 0.0) + tottime
    whole = sum(totals.values()) or 1.0
    return sorted(((label, value / whole) for label, value in totals.items()), key=lambda item: -item[1])


def run(env: BenchEnv, sizes: Sizes) -> BenchResult:
    endpoint = env.aws_endpoint
    put_secret(TOKEN_SECRET, TOKEN, endpoint)
    variables = function_env(
        INTERNAL_TOKEN_SECRET_ID=TOKEN_SECRET,
        INTERNAL_TOKEN_CACHE_SECONDS="3600",
        TRAVERSE_EXPERIMENTAL_ENABLED="false",
    )
    with environment(variables), quiet_stdout():
        return _run(sizes)


def _run(sizes: Sizes) -> BenchResult:
    import service.api.drift_api as drift_api
    import service.api.traverse_api as traverse_api
    from service.drift.models import ScoreRequest
    from service.observability import metrics

    drift = load_handler("contract_drift").lambda_handler
    traverse = load_handler("traverse_answer").lambda_handler
    context = LocalLambdaContext("ContractDriftFunction", timeout_ms=3_600_000)
    body = {"org_id": ZERO_UUID, "workspace_id": ZERO_UUID, "spec_excerpt": "openapi: 3.1.0", "endpoints": []}
    drift_event = http_event("POST", DRIFT_PATH, body, token=TOKEN)
    traverse_event = http_event("POST", TRAVERSE_PATH, {"text": "anything"}, token=TOKEN)
    raw_body = drift_event["body"]

    drift_reply = drift(drift_event, context)
    traverse_reply = traverse(traverse_event, context)
    drift_ok = drift_reply["statusCode"] == 200 and reply_json(drift_reply)["no_traffic"] is True
    traverse_ok = traverse_reply["statusCode"] == 410

    def domain() -> str:
        request = ScoreRequest.model_validate_json(raw_body)
        reply = drift_api.score_once(request, context)
        return json.dumps(reply.model_dump(mode="json"))

    drift_depths: dict[str, Callable[[], Any]] = {
        "handler": lambda: drift(drift_event, context),
        "handle": lambda: drift_api.handle(drift_event, context),
        "powertools": lambda: APIGatewayHttpResolver.resolve(drift_api.app, drift_event, context),
        "domain": domain,
    }
    traverse_depths: dict[str, Callable[[], Any]] = {
        "handler": lambda: traverse(traverse_event, context),
        "handle": lambda: traverse_api.handle(traverse_event, context),
    }
    # Without the log_metrics decorator the shallower depths would pile metrics up in memory.
    drift_ms = _measure(drift_depths, sizes.overhead_invokes, metrics.clear_metrics)
    traverse_ms = _measure(traverse_depths, sizes.overhead_invokes, metrics.clear_metrics)
    profile_calls = max(10, sizes.overhead_invokes // 5)
    drift_profile = profile_by_package(drift_depths["handler"], profile_calls, metrics.clear_metrics)

    def p50(samples: list[float]) -> float:
        return percentile(samples, 0.50)

    d = {name: (p50(v), percentile(v, 0.99)) for name, v in drift_ms.items()}
    t = {name: (p50(v), percentile(v, 0.99)) for name, v in traverse_ms.items()}
    whole = d["handler"][0]
    shares = {
        "Powertools decorators (Logger context, Tracer, Metrics flush)": (d["handler"][0] - d["handle"][0]) / whole,
        "token check, body pre-checks, dispatch (ours)": (d["handle"][0] - d["powertools"][0]) / whole,
        "Powertools routing + body validation": (d["powertools"][0] - d["domain"][0]) / whole,
        "domain: pydantic parse, scorer, serialise (ours)": d["domain"][0] / whole,
    }
    routing_share = shares["Powertools routing + body validation"]
    traverse_decorator_share = (t["handler"][0] - t["handle"][0]) / t["handler"][0]

    result = BenchResult(key="overhead", title="3. Per-invoke overhead in process, warm, no I/O")
    result.checks = [
        Check("contract_drift p50 (empty endpoints, HTTP)", "≤ 1 ms", f"{d['handler'][0]:.3f} ms", whole <= 1.0),
        Check(
            "traverse_answer p50 (gate off, HTTP)",
            "≤ 1 ms",
            f"{t['handler'][0]:.3f} ms",
            t["handler"][0] <= TARGET_P50_MS,
        ),
        Check(
            "replies are the real ones (200 no_traffic; 410 gate)",
            "yes",
            "yes" if drift_ok and traverse_ok else "no",
            drift_ok and traverse_ok,
        ),
    ]
    result.figures = {
        "invokes_each": sizes.overhead_invokes,
        "drift_p50_ms": round(d["handler"][0], 4),
        "drift_p99_ms": round(d["handler"][1], 4),
        "traverse_p50_ms": round(t["handler"][0], 4),
        "traverse_p99_ms": round(t["handler"][1], 4),
        "drift_depths_p50_ms": {name: round(v[0], 4) for name, v in d.items()},
        "traverse_depths_p50_ms": {name: round(v[0], 4) for name, v in t.items()},
        "drift_powertools_routing_validation_share": round(routing_share, 3),
        "drift_shares": {name: round(value, 3) for name, value in shares.items()},
        "traverse_decorator_share": round(traverse_decorator_share, 3),
        "drift_profile_shares": {name: round(value, 3) for name, value in drift_profile},
    }
    result.details = [
        f"{sizes.overhead_invokes:,} invokes per depth, interleaved in blocks of {BLOCK}, one warm process, "
        "API Gateway v2 events with the right token (read once from Secrets Manager on moto, then cached), "
        "a `LocalLambdaContext`, tracing disabled (no X-Ray daemon), metrics and logs written to an in-memory sink.",
        "",
        *md_table(
            ["path and depth", "p50", "p99"],
            [[f"contract_drift `{name}`", f"{v[0]:.3f} ms", f"{v[1]:.3f} ms"] for name, v in d.items()]
            + [[f"traverse_answer `{name}`", f"{v[0]:.3f} ms", f"{v[1]:.3f} ms"] for name, v in t.items()],
        ),
        "",
        "contract_drift, where the p50 goes (differences between depths):",
        "",
        *md_table(["part", "share of the handler's p50"], [[k, f"{v:.0%}"] for k, v in shares.items()]),
        "",
        f"traverse_answer with the gate off never reaches Powertools' routing (the gate answers 410 first): "
        f"Powertools decorators are {traverse_decorator_share:.0%} of its p50, the rest is the token check "
        "and the 410 envelope.",
        "",
        f"cProfile of {profile_calls:,} contract_drift handler invokes, own time by package "
        "(the profiler's per-call cost inflates the many small Python functions):",
        "",
        *md_table(["package", "share of own time"], [[name, f"{value:.0%}"] for name, value in drift_profile]),
    ]
    return result
