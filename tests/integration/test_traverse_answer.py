"""traverse_answer end to end on the real PostgreSQL: the hop loop, its halts, its filters."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from devtools.events import http_event, reply_json
from devtools.lambda_context import LocalLambdaContext
from devtools.seed import add_edge, add_node
from service.config import get_settings
from service.db import database
from service.traverse.cid import anchor_cid
from service.traverse.engine import TraverseEngine
from service.traverse.models import TraverseRequest
from service.traverse.repository import GraphRepository
from tests.conftest import INTERNAL_TOKEN
from tests.integration.drift_support import load_handler

# Also run through PgBouncer in transaction mode (DESIGN §11.1; tests/integration/conftest.py).
pytestmark = pytest.mark.through_pgbouncer

PATH = "/v1/traverse_answer"
traverse_app = load_handler("traverse_answer")


@pytest.fixture
def enabled(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TRAVERSE_EXPERIMENTAL_ENABLED", "true")
    get_settings.cache_clear()
    return service_env


def call(body: Any, *, timeout_ms: int = 30_000, token: str | None = INTERNAL_TOKEN, **options: Any) -> tuple[int, Any]:
    event = http_event("POST", PATH, body, token=token, **options)
    reply = traverse_app.lambda_handler(event, LocalLambdaContext("TraverseAnswerFunction", timeout_ms=timeout_ms))
    return reply["statusCode"], reply_json(reply)


def ok(body: Any, **options: Any) -> dict[str, Any]:
    status, reply = call(body, **options)
    assert status == 200, reply
    assert reply["schema"] == "mnem.v1.traverse_answer"
    assert reply["hops_executed"] == len(reply["hops"])
    assert [h["hop"] for h in reply["hops"]] == list(range(len(reply["hops"])))
    return reply


def ids(reply: dict[str, Any]) -> list[list[str]]:
    return [[node["id"] for node in hop["nodes"]] for hop in reply["hops"]]


def scores(reply: dict[str, Any]) -> dict[str, float]:
    return {node["id"]: node["score"] for hop in reply["hops"] for node in hop["nodes"]}


def chain(db: Any, length: int, **node_options: Any) -> list[uuid.UUID]:
    nodes = [add_node(db, f"chain link {i}", **node_options) for i in range(length)]
    for src, dst in itertools.pairwise(nodes):
        add_edge(db, src, dst, graph=node_options.get("graph", "default"))
    return nodes


def test_chain_follows_edges_with_decaying_scores(enabled, admin_db):
    a, b, c, _d = chain(admin_db, 4)
    reply = ok({"text": str(a), "max_hops": 3})
    assert ids(reply) == [[str(a)], [str(b)], [str(c)]]
    assert [n["score"] for h in reply["hops"] for n in h["nodes"]] == pytest.approx([1.0, 0.7, 0.49])
    assert reply["halt_reason"] == "max_hops"
    assert reply["hops_executed"] == 3
    assert reply["max_hops_effective"] == 3
    assert reply["hard_wall_ms_effective"] == 5000
    assert reply["hard_wall_cutoff"] is False
    assert reply["budget_breached"] is False
    assert reply["anchor_cid"] == anchor_cid(str(a), 5000, 3)
    node = reply["hops"][1]["nodes"][0]
    assert node == {"id": str(b), "ntype": "Entity", "summary": "chain link 1", "score": pytest.approx(0.7)}


def test_frontier_that_empties_is_exhausted_and_not_listed(enabled, admin_db):
    a, b = chain(admin_db, 2)
    reply = ok({"text": str(a), "max_hops": 5})
    assert ids(reply) == [[str(a)], [str(b)]]
    assert reply["hops_executed"] == 2
    assert reply["halt_reason"] == "exhausted"


def test_branches_keep_the_best_path_score(enabled, admin_db):
    a, b, c, d = (add_node(admin_db, name) for name in ("root", "strong", "weak", "target"))
    add_edge(admin_db, a, b, weight=1.0)
    add_edge(admin_db, a, c, weight=0.5)
    add_edge(admin_db, b, d, weight=0.2)  # 1 × .7 × 1 × .7 × .2 = .098
    add_edge(admin_db, c, d, weight=1.0)  # 1 × .7 × .5 × .7 × 1 = .245
    reply = ok({"text": str(a), "max_hops": 3})
    assert ids(reply) == [[str(a)], [str(b), str(c)], [str(d)]]
    assert scores(reply)[str(d)] == pytest.approx(0.245)
    assert scores(reply)[str(c)] == pytest.approx(0.35)


def test_visited_nodes_are_never_listed_again(enabled, admin_db, monkeypatch):
    monkeypatch.setenv("TRAVERSE_MAX_HOPS", "6")
    get_settings.cache_clear()
    a, b, c = (add_node(admin_db, f"cycle {i}") for i in range(3))
    add_edge(admin_db, a, b)
    add_edge(admin_db, b, a)
    add_edge(admin_db, b, c)
    add_edge(admin_db, c, c)
    add_edge(admin_db, c, b)
    reply = ok({"text": str(a), "max_hops": 6})
    assert ids(reply) == [[str(a)], [str(b)], [str(c)]]
    assert reply["halt_reason"] == "exhausted"


def test_tombstoned_nodes_are_skipped_everywhere(enabled, admin_db):
    a = add_node(admin_db, "alive start")
    dead = add_node(admin_db, "graveyard", tombstoned=True)
    b = add_node(admin_db, "alive neighbour")
    add_edge(admin_db, a, dead, weight=1.0)
    add_edge(admin_db, a, b, weight=0.1)
    add_edge(admin_db, dead, add_node(admin_db, "behind the dead"))
    reply = ok({"text": str(a), "max_hops": 3})
    assert ids(reply) == [[str(a)], [str(b)]]
    assert reply["halt_reason"] == "exhausted"

    seeded_dead = ok({"text": str(dead)})
    assert seeded_dead["hops"] == [] and seeded_dead["halt_reason"] == "no_seeds"
    assert ok({"text": "graveyard"})["halt_reason"] == "no_seeds"


def test_no_seed_means_no_hops(enabled, admin_db):
    add_node(admin_db, "something else entirely")
    for body in (
        {},
        {"text": ""},
        {"text": "   "},
        {"text": str(uuid.uuid4())},
        {"text": "zzzunknown"},
        {"text": "?!"},
    ):
        reply = ok(body)
        assert reply["hops"] == [], body
        assert reply["hops_executed"] == 0
        assert reply["halt_reason"] == "no_seeds"
        assert reply["hard_wall_cutoff"] is False


def test_uuid_seed_with_blanks_and_upper_case(enabled, admin_db):
    a, b = chain(admin_db, 2)
    reply = ok({"text": f"  {str(a).upper()} "})
    assert ids(reply) == [[str(a)], [str(b)]]


def test_full_text_seeds_rank_top_ten_with_scores_in_unit_interval(enabled, admin_db):
    best = add_node(admin_db, "rocket engine of the acme company")
    for i in range(12):
        add_node(admin_db, f"acme report {i}")
    by_props = add_node(admin_db, "no match in summary", props={"vendor": {"name": "Zephyrcorp"}})
    add_node(admin_db, "unrelated")
    reply = ok({"text": "Which rocket did ACME build?", "max_hops": 1})
    seeds = reply["hops"][0]["nodes"]
    assert len(seeds) == 10
    assert seeds[0]["id"] == str(best)
    assert all(0.0 < node["score"] <= 1.0 for node in seeds)
    assert [n["score"] for n in seeds] == sorted((n["score"] for n in seeds), reverse=True)
    assert ids(ok({"text": "zephyrcorp", "max_hops": 1})) == [[str(by_props)]]


def test_caller_hops_are_clamped_to_the_server_ceiling(enabled, admin_db, monkeypatch):
    monkeypatch.setenv("TRAVERSE_MAX_HOPS", "4")
    get_settings.cache_clear()
    nodes = chain(admin_db, 10)
    reply = ok({"text": str(nodes[0]), "max_hops": 99})
    assert reply["max_hops_effective"] == 4
    assert ids(reply) == [[str(n)] for n in nodes[:4]]
    assert reply["halt_reason"] == "max_hops"

    only_seeds = ok({"text": str(nodes[0]), "max_hops": 0})
    assert only_seeds["max_hops_effective"] == 1
    assert ids(only_seeds) == [[str(nodes[0])]]
    assert only_seeds["halt_reason"] == "max_hops"
    assert ok({"text": str(nodes[0])})["max_hops_effective"] == 4


def test_caller_budget_only_lowers_the_wall(enabled, admin_db):
    a = add_node(admin_db, "x")
    assert ok({"text": str(a), "budget_ms": 100})["hard_wall_ms_effective"] == 500
    assert ok({"text": str(a), "budget_ms": 800})["hard_wall_ms_effective"] == 800
    assert ok({"text": str(a), "budget_ms": 999_999})["hard_wall_ms_effective"] == 5000


def test_lambda_remaining_time_lowers_the_wall_below_the_floor(enabled, admin_db):
    a = add_node(admin_db, "x")
    reply = ok({"text": str(a), "budget_ms": 5000}, timeout_ms=600)
    assert 0 < reply["hard_wall_ms_effective"] <= 600 - 250
    assert reply["anchor_cid"] == anchor_cid(str(a), reply["hard_wall_ms_effective"], 3)


def test_edge_type_filter(enabled, admin_db):
    a, cited, mentioned = (add_node(admin_db, name) for name in ("paper", "cited", "mentioned"))
    add_edge(admin_db, a, cited, etype="cites")
    add_edge(admin_db, a, mentioned, etype="mentions", weight=2.0)
    assert ids(ok({"text": str(a), "edge_types": ["cites"]})) == [[str(a)], [str(cited)]]
    assert ids(ok({"text": str(a), "edge_types": ["cites", "mentions"]})) == [[str(a)], [str(mentioned), str(cited)]]
    assert ok({"text": str(a), "edge_types": ["nothing"]})["halt_reason"] == "exhausted"


def test_hub_is_capped_to_its_heaviest_edges(enabled, admin_db):
    hub = add_node(admin_db, "hub")
    spokes = [add_node(admin_db, f"spoke {i}") for i in range(40)]
    for i, spoke in enumerate(spokes):
        add_edge(admin_db, hub, spoke, weight=(i + 1) / 40)
    reply = ok({"text": str(hub), "max_nodes_per_hop": 5, "max_hops": 2})
    assert ids(reply)[1] == [str(s) for s in reversed(spokes[-5:])]
    assert len(ok({"text": str(hub), "max_hops": 2})["hops"][1]["nodes"]) == 25


def test_non_positive_weights_are_not_followed(enabled, admin_db):
    a, b, c = (add_node(admin_db, name) for name in ("a", "b", "c"))
    add_edge(admin_db, a, b, weight=0.0)
    add_edge(admin_db, a, c, weight=-1.0)
    assert ok({"text": str(a)})["halt_reason"] == "exhausted"


def test_graphs_are_separate(enabled, admin_db):
    a, b = chain(admin_db, 2, graph="other")
    assert ok({"text": str(a)})["halt_reason"] == "no_seeds"
    assert ids(ok({"text": str(a), "graph": "other"})) == [[str(a)], [str(b)]]


def test_direct_invoke_returns_the_plain_reply(enabled, admin_db):
    a, b = chain(admin_db, 2)
    reply = traverse_app.lambda_handler({"text": str(a)}, LocalLambdaContext("TraverseAnswerFunction"))
    assert reply["schema"] == "mnem.v1.traverse_answer"
    assert [[n["id"] for n in h["nodes"]] for h in reply["hops"]] == [[str(a)], [str(b)]]


class StepClock:
    """A clock that moves ``step`` ms each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


def run_with_clock(text: str, step: float) -> Any:
    # Without statement timeouts the engine reads the clock once at start and once per
    # charged hop, so hop n is charged at (n + 1) × step ms.
    engine = TraverseEngine(GraphRepository(database), use_statement_timeout=False, clock=StepClock(step))
    return engine.answer(TraverseRequest(text=text, max_hops=8), settings=get_settings(), remaining_ms=None)


def test_soft_budget_defers_after_the_hop_that_passed_it(enabled, admin_db, monkeypatch):
    monkeypatch.setenv("TRAVERSE_HARD_WALL_MS", "1000")
    monkeypatch.setenv("TRAVERSE_MAX_HOPS", "8")
    get_settings.cache_clear()
    nodes = chain(admin_db, 8)
    reply = run_with_clock(str(nodes[0]), step=300)  # 300 proceed, 600 proceed, 900 > 800 defer
    assert reply.hops_executed == 3
    assert reply.halt_reason == "soft_budget"
    assert reply.budget_breached is True
    assert reply.hard_wall_cutoff is False


def test_hop_past_the_hard_wall_is_dropped(enabled, admin_db, monkeypatch):
    monkeypatch.setenv("TRAVERSE_HARD_WALL_MS", "1000")
    monkeypatch.setenv("TRAVERSE_MAX_HOPS", "8")
    get_settings.cache_clear()
    nodes = chain(admin_db, 8)
    reply = run_with_clock(str(nodes[0]), step=400)  # 400 proceed, 800 proceed (not > soft), 1200 > wall
    assert [h.hop for h in reply.hops] == [0, 1]
    assert reply.halt_reason == "hard_wall"
    assert reply.hard_wall_cutoff is True
    assert reply.budget_breached is False
