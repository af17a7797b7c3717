"""SQL of traverse_answer: seeds (hop 0) and one-statement frontier expansions (hop n).

Every method takes the statement timeout of its query, so the engine can bound each hop by
the wall time left; Postgres cancels the statement itself and the caller gets
:class:`~service.db.StatementTimeout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from service.db import Database

# The same expression as the graph_nodes_fts_idx index, so the GIN index answers the match.
NODE_SEARCH_VECTOR = (
    "to_tsvector('simple', coalesce(n.summary, '') || ' ' || "
    "coalesce(jsonb_path_query_array(n.props, 'strict $.**')::text, ''))"
)

# Nodes ranked per branch of the full-text seed search (see SEED_BY_TEXT_SQL).
SEED_CANDIDATES = 1_000

SEED_BY_ID_SQL = """
SELECT n.id, n.ntype, n.summary
FROM graph_nodes n
WHERE n.graph = :graph AND n.id = CAST(:id AS uuid) AND NOT n.tombstoned
"""

# Any word of the text may match (OR of its lexemes), because a question rarely shares every
# word with a node; ts_rank (normalisation 32 maps it into (0, 1)) puts nodes sharing more
# words first. A word that is in most nodes ('the': the 'simple' configuration keeps every
# word) would make the ranking read the whole graph, so ranking is over a bounded candidate
# set: up to :candidates nodes holding every word (the most relevant ones) plus up to
# :candidates holding any word.
SEED_BY_TEXT_SQL = f"""
WITH words AS (
    SELECT ARRAY(
        SELECT quote_literal(lexeme) FROM unnest(tsvector_to_array(to_tsvector('simple', :text))) AS lexeme
    ) AS lexemes
),
q AS (
    SELECT to_tsquery('simple', array_to_string(lexemes, ' | ')) AS any_word,
           to_tsquery('simple', array_to_string(lexemes, ' & ')) AS all_words
    FROM words
    WHERE cardinality(lexemes) > 0
),
candidates AS (
    (SELECT n.id FROM graph_nodes n, q
     WHERE n.graph = :graph AND NOT n.tombstoned AND {NODE_SEARCH_VECTOR} @@ q.all_words
     LIMIT :candidates)
    UNION
    (SELECT n.id FROM graph_nodes n, q
     WHERE n.graph = :graph AND NOT n.tombstoned AND {NODE_SEARCH_VECTOR} @@ q.any_word
     LIMIT :candidates)
)
SELECT n.id, n.ntype, n.summary, ts_rank({NODE_SEARCH_VECTOR}, q.any_word, 32) AS score
FROM candidates c
JOIN graph_nodes n ON n.graph = :graph AND n.id = c.id
CROSS JOIN q
ORDER BY score DESC, n.id
LIMIT :limit
"""

# One round trip per hop. For each frontier node, a LATERAL walk of the
# (graph, src, weight DESC) index takes its heaviest :fanout edges to live, unvisited
# nodes (optionally of the wanted edge types), so a hub with a million edges adds at most
# :fanout rows. A node reached from several parents keeps its best score. With :fanout equal
# to :limit the listed top-:limit is exact: a child outside its parent's :limit heaviest
# edges has :limit better-scored siblings ahead of it.
EXPAND_SQL = """
WITH frontier AS (
    SELECT f.id, f.score
    FROM unnest(CAST(:frontier_ids AS uuid[]), CAST(:frontier_scores AS double precision[])) AS f(id, score)
),
reached AS (
    SELECT DISTINCT ON (x.dst) x.dst, x.ntype, x.summary, f.score * :decay * x.weight AS score
    FROM frontier f
    CROSS JOIN LATERAL (
        SELECT e.dst, e.weight, n.ntype, n.summary
        FROM graph_edges e
        JOIN graph_nodes n ON n.graph = e.graph AND n.id = e.dst
        WHERE e.graph = :graph
          AND e.src = f.id
          AND e.weight > 0
          AND NOT n.tombstoned
          AND e.dst <> ALL (CAST(:visited AS uuid[]))
          AND (CAST(:edge_types AS text[]) IS NULL OR e.etype = ANY (CAST(:edge_types AS text[])))
        ORDER BY e.weight DESC
        LIMIT :fanout
    ) x
    ORDER BY x.dst, score DESC
)
SELECT r.dst, r.ntype, r.summary, r.score
FROM reached r
ORDER BY r.score DESC, r.dst
LIMIT :limit
"""


@dataclass(frozen=True)
class ScoredNode:
    """A node reached by a hop, with its best score so far."""

    id: UUID
    ntype: str | None
    summary: str | None
    score: float


def _uuid(value: object) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


class GraphRepository:
    """Data access of the hop loop over a :class:`~service.db.Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def seed_by_id(self, graph: str, node_id: UUID, *, timeout_ms: int | None) -> list[ScoredNode]:
        """The node itself with score 1.0, when it exists and is not tombstoned."""
        rows = self._db.query(SEED_BY_ID_SQL, timeout_ms=timeout_ms, graph=graph, id=str(node_id))
        return [ScoredNode(_uuid(nid), ntype, summary, 1.0) for nid, ntype, summary in rows]

    def seeds_by_text(self, graph: str, text: str, limit: int, *, timeout_ms: int | None) -> list[ScoredNode]:
        """Top ``limit`` live nodes by full-text rank, scores in (0, 1]."""
        rows = self._db.query(
            SEED_BY_TEXT_SQL,
            timeout_ms=timeout_ms,
            graph=graph,
            text=text,
            limit=limit,
            candidates=SEED_CANDIDATES,
        )
        return [
            ScoredNode(_uuid(nid), ntype, summary, min(1.0, max(float(score), 1e-9)))
            for nid, ntype, summary, score in rows
        ]

    def expand(
        self,
        graph: str,
        frontier: Sequence[ScoredNode],
        visited: Sequence[UUID],
        *,
        decay: float,
        edge_types: Sequence[str] | None,
        limit: int,
        timeout_ms: int | None,
    ) -> list[ScoredNode]:
        """The best ``limit`` nodes one edge away from ``frontier``, never ``visited`` or tombstoned."""
        if not frontier:
            return []
        rows = self._db.query(
            EXPAND_SQL,
            timeout_ms=timeout_ms,
            graph=graph,
            frontier_ids=[str(node.id) for node in frontier],
            frontier_scores=[float(node.score) for node in frontier],
            visited=[str(node_id) for node_id in visited],
            edge_types=list(edge_types) if edge_types is not None else None,
            decay=decay,
            fanout=limit,
            limit=limit,
        )
        return [ScoredNode(_uuid(nid), ntype, summary, float(score)) for nid, ntype, summary, score in rows]
