"""A hop made slow by the database itself is cut at the wall, and the earlier hops still come back.

Another session holds ``ACCESS EXCLUSIVE`` on graph_edges, so hop 0 (which reads only
graph_nodes) completes while hop 1's expansion waits on the lock until its statement
timeout (= the wall time left) makes Postgres cancel it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.lambda_context import LocalLambdaContext
from devtools.postgres import EmbeddedPostgres
from devtools.seed import add_edge, add_node
from service.config import get_settings
from tests.integration.test_traverse_answer import call, traverse_app

WALL_MS = 500
# Generous: the cancel is Postgres' own timer, the rest is a round trip and the reply.
OVERRUN_MARGIN_MS = 300


@contextlib.contextmanager
def edges_locked(postgres: EmbeddedPostgres) -> Iterator[None]:
    locker = postgres.connect()
    locker.run("BEGIN")
    locker.run("LOCK TABLE graph_edges IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        locker.run("ROLLBACK")
        locker.close()


@pytest.fixture
def seeded(service_env: dict[str, str], admin_db: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("TRAVERSE_EXPERIMENTAL_ENABLED", "true")
    get_settings.cache_clear()
    a, b = add_node(admin_db, "before the lock"), add_node(admin_db, "behind the lock")
    add_edge(admin_db, a, b)
    return str(a), str(b)


def test_slow_hop_is_cut_at_the_wall_over_http(seeded, postgres):
    start, behind = seeded
    assert call({"text": start, "budget_ms": WALL_MS, "max_hops": 1})[0] == 200  # warm: token cached, connected
    with edges_locked(postgres):
        started = time.monotonic()
        status, reply = call({"text": start, "budget_ms": WALL_MS, "max_hops": 3})
        elapsed_ms = (time.monotonic() - started) * 1000
    assert status == 200, reply
    assert reply["hard_wall_ms_effective"] == WALL_MS
    assert elapsed_ms <= WALL_MS + OVERRUN_MARGIN_MS
    assert reply["hard_wall_cutoff"] is True
    assert reply["budget_breached"] is False
    assert reply["halt_reason"] == "hard_wall"
    assert reply["hops_executed"] == 1
    assert [[n["id"] for n in h["nodes"]] for h in reply["hops"]] == [[start]]

    # Lock released: the same warm connection walks the edge it could not reach.
    status, reply = call({"text": start, "budget_ms": WALL_MS, "max_hops": 3})
    assert status == 200
    assert (reply["hard_wall_cutoff"], reply["halt_reason"]) == (False, "exhausted")
    assert [[n["id"] for n in h["nodes"]] for h in reply["hops"]] == [[start], [behind]]


def test_slow_hop_is_cut_at_the_wall_on_direct_invoke(seeded, postgres):
    start, _ = seeded
    with edges_locked(postgres):
        started = time.monotonic()
        reply = traverse_app.lambda_handler({"text": start, "budget_ms": WALL_MS}, LocalLambdaContext("Traverse"))
        elapsed_ms = (time.monotonic() - started) * 1000
    assert elapsed_ms <= WALL_MS + OVERRUN_MARGIN_MS
    assert (reply["hard_wall_cutoff"], reply["halt_reason"], reply["hops_executed"]) == (True, "hard_wall", 1)
