"""Wire models of traverse_answer (DESIGN §6): the request, the ``mnem.v1.traverse_answer``
reply and the ``mnem.v1.err`` error envelope."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.storable import StorableStr

REPLY_SCHEMA: Literal["mnem.v1.traverse_answer"] = "mnem.v1.traverse_answer"
ERROR_SCHEMA: Literal["mnem.v1.err"] = "mnem.v1.err"
DEFAULT_GRAPH = "default"

# Seeds found by full-text search (DESIGN §6.5).
MAX_SEEDS = 10
# Nodes listed per hop when the caller does not say; also the per-node fan-out of an
# expansion, which keeps the listed top-N exact while bounding the rows a hub can add.
DEFAULT_MAX_NODES_PER_HOP = 25
MAX_NODES_PER_HOP_BOUNDS = (1, 100)
# Input limits: anything larger is a 400, so no request can make us do unbounded parsing.
MAX_TEXT_CHARS = 4_000
MAX_GRAPH_CHARS = 200
MAX_EDGE_TYPES = 32
MAX_EDGE_TYPE_CHARS = 200


EdgeType = Annotated[StorableStr, Field(min_length=1, max_length=MAX_EDGE_TYPE_CHARS)]


class HaltReason(StrEnum):
    """Why the hop loop stopped."""

    MAX_HOPS = "max_hops"
    EXHAUSTED = "exhausted"
    NO_SEEDS = "no_seeds"
    SOFT_BUDGET = "soft_budget"
    HARD_WALL = "hard_wall"


class TraverseRequest(BaseModel):
    """Body of ``POST /v1/traverse_answer`` and of a direct invoke. Every field is optional."""

    model_config = ConfigDict(extra="ignore")

    text: StorableStr | None = Field(
        default=None,
        max_length=MAX_TEXT_CHARS,
        description="A node UUID (that node is the seed) or free text (full-text search, top 10 seeds).",
    )
    max_hops: StrictInt | None = Field(
        default=None, description="Hops including hop 0 (the seeds); clamped to [1, TRAVERSE_MAX_HOPS]."
    )
    budget_ms: StrictInt | None = Field(
        default=None, description="Wall-clock budget in ms; clamped to [500, TRAVERSE_HARD_WALL_MS]."
    )
    graph: StorableStr = Field(default=DEFAULT_GRAPH, min_length=1, max_length=MAX_GRAPH_CHARS)
    edge_types: list[EdgeType] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EDGE_TYPES,
        description="Follow only edges whose etype is one of these (absent: every edge type).",
    )
    max_nodes_per_hop: StrictInt | None = Field(
        default=None,
        description=f"Nodes listed per hop, best first; clamped to {list(MAX_NODES_PER_HOP_BOUNDS)}, "
        f"default {DEFAULT_MAX_NODES_PER_HOP}. Seeds are never more than {MAX_SEEDS}.",
    )

    def nodes_per_hop(self) -> int:
        low, high = MAX_NODES_PER_HOP_BOUNDS
        wanted = self.max_nodes_per_hop
        return DEFAULT_MAX_NODES_PER_HOP if wanted is None else max(low, min(high, wanted))


class HopNode(BaseModel):
    id: str
    ntype: str | None
    summary: str | None
    score: float


class HopResult(BaseModel):
    hop: int
    nodes: list[HopNode]


class TraverseReply(BaseModel):
    """The 200 reply (DESIGN §6)."""

    schema_: Literal["mnem.v1.traverse_answer"] = Field(default=REPLY_SCHEMA, alias="schema")
    hops_executed: int
    elapsed_ms: int
    hard_wall_ms_effective: int
    max_hops_effective: int
    hard_wall_cutoff: bool
    budget_breached: bool
    anchor_cid: str
    halt_reason: HaltReason
    hops: list[HopResult]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class TraverseError(BaseModel):
    """The ``mnem.v1.err`` envelope; the §5 fields ride along so both functions' errors read alike."""

    schema_: Literal["mnem.v1.err"] = Field(default=ERROR_SCHEMA, alias="schema")
    error: str
    error_code: str
    status: int
    request_id: str | None = None
    details: dict[str, object] | None = None
    remediation_ref: str | None = None
    opt_in: str | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
