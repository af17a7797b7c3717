"""The hop loop of traverse_answer (DESIGN §6.3-6.5) under the budget guard.

Hop 0 is the seeds, hop n one expansion of the previous hop's nodes. After each hop the
guard is charged: proceed, defer (keep this hop, stop), or hard wall (drop this hop, stop).
By default every query also runs under a statement timeout equal to the wall time left, so
a hop that is slow *inside* the database is cancelled by Postgres at the wall instead of
being noticed only after it returns.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from service.budget import BudgetGuard, HardWallExceeded, Verdict, monotonic_ms
from service.config import Settings
from service.db import StatementTimeout
from service.observability import logger, metrics, tracer
from service.traverse.cid import anchor_cid
from service.traverse.limits import EffectiveLimits
from service.traverse.models import MAX_SEEDS, HaltReason, HopNode, HopResult, TraverseReply, TraverseRequest
from service.traverse.repository import GraphRepository, ScoredNode

# Score carried over one edge: parent score × DECAY × edge weight.
DECAY_PER_HOP = 0.7
GUARD_LABEL = "traverse_answer"


class _WallReached(Exception):
    """No wall time left to start (or finish) a hop's query."""


def parse_node_id(text: str) -> uuid.UUID | None:
    """``text`` as a node UUID, if it is one (surrounding blanks tolerated)."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


@dataclass
class _Walk:
    """State of one request's loop."""

    request: TraverseRequest
    guard: BudgetGuard
    per_hop: int
    frontier: list[ScoredNode]
    visited: set[uuid.UUID]


class TraverseEngine:
    """Runs one traverse request against a :class:`GraphRepository`.

    ``use_statement_timeout=False`` is the original design (the guard is only consulted
    between hops); it exists so the benchmark can compare the two, and is never the default.
    """

    def __init__(
        self,
        repository: GraphRepository,
        *,
        use_statement_timeout: bool = True,
        clock: Callable[[], float] = monotonic_ms,
    ) -> None:
        self._repository = repository
        self._use_statement_timeout = use_statement_timeout
        self._clock = clock

    @tracer.capture_method
    def answer(self, request: TraverseRequest, *, settings: Settings, remaining_ms: float | None) -> TraverseReply:
        limits = EffectiveLimits.resolve(
            caller_budget_ms=request.budget_ms,
            caller_max_hops=request.max_hops,
            server_wall_ms=settings.traverse_hard_wall_ms,
            server_max_hops=settings.traverse_max_hops,
            remaining_ms=remaining_ms,
        )
        cid = anchor_cid(request.text or "", limits.wall_ms, limits.max_hops)
        guard = BudgetGuard.start(GUARD_LABEL, limits.soft_ms, float(limits.wall_ms), anchor_cid=cid, clock=self._clock)
        walk = _Walk(request=request, guard=guard, per_hop=request.nodes_per_hop(), frontier=[], visited=set())
        hops, halt = self._loop(walk, limits.max_hops)
        reply = TraverseReply(
            hops_executed=len(hops),
            elapsed_ms=math.ceil(guard.elapsed_ms()),
            hard_wall_ms_effective=limits.wall_ms,
            max_hops_effective=limits.max_hops,
            hard_wall_cutoff=guard.hard_exceeded,
            budget_breached=guard.soft_exceeded and not guard.hard_exceeded,
            anchor_cid=cid,
            halt_reason=halt,
            hops=hops,
        )
        self._record(reply, guard)
        return reply

    def _loop(self, walk: _Walk, max_hops: int) -> tuple[list[HopResult], HaltReason]:
        hops: list[HopResult] = []
        for hop in range(max_hops):
            stage = f"hop-{hop}"
            try:
                nodes = self._seeds(walk) if hop == 0 else self._expand(walk)
            except (StatementTimeout, _WallReached):
                walk.guard.mark_hard_wall(stage)
                return hops, HaltReason.HARD_WALL
            if not nodes:
                # The empty hop is neither counted nor listed (DESIGN §6.5).
                return hops, HaltReason.NO_SEEDS if hop == 0 else HaltReason.EXHAUSTED
            try:
                verdict = walk.guard.charge(stage)
            except HardWallExceeded:
                return hops, HaltReason.HARD_WALL
            hops.append(HopResult(hop=hop, nodes=[_wire(node) for node in nodes]))
            walk.frontier = nodes
            walk.visited.update(node.id for node in nodes)
            if hop + 1 == max_hops:
                break
            if verdict is Verdict.DEFER:
                return hops, HaltReason.SOFT_BUDGET
        return hops, HaltReason.MAX_HOPS

    def _timeout_ms(self, guard: BudgetGuard) -> int | None:
        """The statement timeout of the next query: the wall time left (``None`` in the original design)."""
        if not self._use_statement_timeout:
            return None
        left = guard.remaining_ms()
        if left < 1.0:
            raise _WallReached
        return math.floor(left)

    def _seeds(self, walk: _Walk) -> list[ScoredNode]:
        text = (walk.request.text or "").strip()
        if not text:
            return []
        limit = min(MAX_SEEDS, walk.per_hop)
        node_id = parse_node_id(text)
        timeout = self._timeout_ms(walk.guard)
        if node_id is not None:
            return self._repository.seed_by_id(walk.request.graph, node_id, timeout_ms=timeout)
        return self._repository.seeds_by_text(walk.request.graph, text, limit, timeout_ms=timeout)

    def _expand(self, walk: _Walk) -> list[ScoredNode]:
        return self._repository.expand(
            walk.request.graph,
            walk.frontier,
            sorted(walk.visited),
            decay=DECAY_PER_HOP,
            edge_types=walk.request.edge_types,
            limit=walk.per_hop,
            timeout_ms=self._timeout_ms(walk.guard),
        )

    @staticmethod
    def _record(reply: TraverseReply, guard: BudgetGuard) -> None:
        metrics.add_metric(
            name="TraverseHardWallMsEffective", unit=MetricUnit.Milliseconds, value=reply.hard_wall_ms_effective
        )
        metrics.add_metric(name="TraverseMaxHopsEffective", unit=MetricUnit.Count, value=reply.max_hops_effective)
        metrics.add_metric(name="TraverseHardWallExceeded", unit=MetricUnit.Count, value=int(reply.hard_wall_cutoff))
        logger.info(
            "traverse_answer guard report",
            extra={
                "guard": guard.report().model_dump(mode="json"),
                "halt_reason": reply.halt_reason.value,
                "hops_executed": reply.hops_executed,
            },
        )


def _wire(node: ScoredNode) -> HopNode:
    return HopNode(id=str(node.id), ntype=node.ntype, summary=node.summary, score=node.score)
