"""Latency of traverse_answer on a large graph, and the overrun of a lock-slowed hop.

Starts its own embedded Postgres, generates a graph in SQL (generate_series, default 100k
nodes × 10 out-edges = 1M edges), then times warm 3-hop walks through the real engine and
repository (same code path as the Lambda, minus HTTP parsing):

    .venv/bin/python bench/traverse_scale.py [--nodes 100000] [--edges-per-node 10] [--runs 200]

It also measures how far past the wall a hop blocked by ``LOCK TABLE graph_edges`` ends,
with the statement timeout (the default) — the original design (guard checked only between
hops) would wait for the lock forever, so it is not run against the lock.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from devtools.postgres import start_postgres  # noqa: E402
from devtools.seed import generate_graph, generated_node_id  # noqa: E402
from service.config import get_settings  # noqa: E402
from service.db import database  # noqa: E402
from service.observability import metrics  # noqa: E402
from service.traverse.engine import TraverseEngine  # noqa: E402
from service.traverse.models import TraverseRequest  # noqa: E402
from service.traverse.repository import GraphRepository  # noqa: E402

GRAPH = "bench"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(label: str, samples: list[float]) -> str:
    return (
        f"{label}: n={len(samples)} p50={percentile(samples, 0.5):.1f} ms p95={percentile(samples, 0.95):.1f} ms "
        f"max={max(samples):.1f} ms mean={statistics.fmean(samples):.1f} ms"
    )


def time_walks(engine: TraverseEngine, texts: list[str], runs: int) -> tuple[list[float], list[int]]:
    settings = get_settings()
    latencies, listed = [], []
    for i in range(runs):
        request = TraverseRequest(text=texts[i % len(texts)], max_hops=3, graph=GRAPH)
        started = time.perf_counter()
        reply = engine.answer(request, settings=settings, remaining_ms=29_000)
        latencies.append((time.perf_counter() - started) * 1000)
        metrics.clear_metrics()  # the bench reads its own clock; keep EMF lines out of the output
        assert reply.hops_executed == 3 and not reply.hard_wall_cutoff, reply
        listed.append(sum(len(h.nodes) for h in reply.hops))
    return latencies, listed


def slow_hop_overruns(server: object, engine: TraverseEngine, seed: str, wall_ms: int, runs: int) -> list[float]:
    overruns = []
    for _ in range(runs):
        locker = server.connect()  # type: ignore[attr-defined]
        locker.run("BEGIN")
        locker.run("LOCK TABLE graph_edges IN ACCESS EXCLUSIVE MODE")
        try:
            started = time.perf_counter()
            reply = engine.answer(
                TraverseRequest(text=seed, budget_ms=wall_ms, graph=GRAPH), settings=get_settings(), remaining_ms=29_000
            )
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            locker.run("ROLLBACK")
            locker.close()
        metrics.clear_metrics()
        assert reply.hard_wall_cutoff and reply.hops_executed == 1, reply
        overruns.append(elapsed - wall_ms)
    return overruns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges-per-node", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--overrun-runs", type=int, default=5)
    args = parser.parse_args()

    server = start_postgres()
    try:
        os.environ.update(
            DATABASE_URL=server.url,
            TRAVERSE_EXPERIMENTAL_ENABLED="true",
            TRAVERSE_HARD_WALL_MS="5000",
            TRAVERSE_MAX_HOPS="3",
        )
        get_settings.cache_clear()
        admin = server.connect()
        started = time.perf_counter()
        generate_graph(admin, nodes=args.nodes, edges_per_node=args.edges_per_node, graph=GRAPH)
        counts = admin.run("SELECT (SELECT count(*) FROM graph_nodes), (SELECT count(*) FROM graph_edges), version()")[
            0
        ]
        print(f"graph: {counts[0]} nodes, {counts[1]} edges, built in {time.perf_counter() - started:.1f} s")
        print(f"postgres: {counts[2].split(',')[0]}; python {sys.version.split()[0]}")

        rng = random.Random(7)
        uuid_seeds = [str(generated_node_id(GRAPH, rng.randrange(args.nodes))) for _ in range(args.runs)]
        # "node" and "topic" are in every summary: the worst case of the any-word seed search.
        text_seeds = [f"which node is about topic-{rng.randrange(1000)}" for _ in range(args.runs)]
        engine = TraverseEngine(GraphRepository(database))
        original = TraverseEngine(GraphRepository(database), use_statement_timeout=False)

        time_walks(engine, uuid_seeds, args.warmup)
        for label, eng, seeds in (
            ("3 hops, UUID seed, statement timeout (default)", engine, uuid_seeds),
            ("3 hops, UUID seed, no statement timeout (original design)", original, uuid_seeds),
            ("3 hops, full-text seeds (10), statement timeout", engine, text_seeds),
        ):
            latencies, listed = time_walks(eng, seeds, args.runs)
            print(summary(label, latencies) + f" nodes/reply={statistics.fmean(listed):.0f}")

        wall = 500
        overruns = slow_hop_overruns(server, engine, uuid_seeds[0], wall, args.overrun_runs)
        print(
            f"slow hop (graph_edges locked), wall {wall} ms: overrun elapsed-wall = "
            + ", ".join(f"{o:.1f}" for o in overruns)
            + f" ms (max {max(overruns):.1f})"
        )
        admin.close()
    finally:
        database.close()
        server.stop()


if __name__ == "__main__":
    main()
