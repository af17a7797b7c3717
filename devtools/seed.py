"""Rows for tests, the local demo and the benchmarks, written with the registry's columns only."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Tenant:
    org_id: uuid.UUID
    workspace_id: uuid.UUID


def make_tenant(db: Any, plan: str = "pro", limits: dict[str, Any] | None = None) -> Tenant:
    org_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    db.run(
        "INSERT INTO organizations (id, name, plan, limits_json) VALUES (:id, :name, :plan, CAST(:limits AS jsonb))",
        id=org_id,
        name=f"org-{plan}",
        plan=plan,
        limits=json.dumps(limits or {}),
    )
    db.run("INSERT INTO workspaces (id, org_id) VALUES (:id, :org)", id=workspace_id, org=org_id)
    return Tenant(org_id, workspace_id)


def add_capture(
    db: Any,
    workspace_id: uuid.UUID,
    method: str,
    path: str,
    *,
    minutes_ago: float = 1.0,
    status: int = 200,
    request_body: str | None = '{"q": 1}',
    response_body: str | None = '{"id": 1, "extra": true}',
    request_encoding: str = "utf8",
    response_encoding: str = "utf8",
) -> None:
    db.run(
        """INSERT INTO runtime_captures (workspace_id, occurred_at, method, path, status_code, request_body,
               request_body_encoding, response_body, response_body_encoding)
           VALUES (:ws, now() - make_interval(secs => :secs), :method, :path, :status,
                   :req, :req_enc, :resp, :resp_enc)""",
        ws=workspace_id,
        secs=minutes_ago * 60.0,
        method=method,
        path=path,
        status=status,
        req=request_body,
        req_enc=request_encoding,
        resp=response_body,
        resp_enc=response_encoding,
    )


def set_org_setting(db: Any, org_id: uuid.UUID, key: str, value: Any) -> None:
    db.run(
        """INSERT INTO org_settings (org_id, setting_key, setting_value) VALUES (:org, :key, CAST(:value AS jsonb))
           ON CONFLICT (org_id, setting_key) DO UPDATE SET setting_value = EXCLUDED.setting_value""",
        org=org_id,
        key=key,
        value=json.dumps(value),
    )


def tokens_used(db: Any, org_id: uuid.UUID) -> int:
    rows = db.run("SELECT coalesce(sum(ai_tokens_used), 0) FROM usage_counters WHERE org_id = :org", org=org_id)
    return int(rows[0][0])


# --- knowledge graph (traverse_answer) ------------------------------------------------


def add_node(
    db: Any,
    summary: str | None = None,
    *,
    graph: str = "default",
    ntype: str | None = "Entity",
    props: dict[str, Any] | None = None,
    tombstoned: bool = False,
    node_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """One graph node; returns its id."""
    node_id = node_id or uuid.uuid4()
    db.run(
        """INSERT INTO graph_nodes (graph, id, ntype, summary, props, tombstoned)
           VALUES (:graph, :id, :ntype, :summary, CAST(:props AS jsonb), :tombstoned)""",
        graph=graph,
        id=node_id,
        ntype=ntype,
        summary=summary,
        props=json.dumps(props or {}),
        tombstoned=tombstoned,
    )
    return node_id


def add_edge(
    db: Any,
    src: uuid.UUID,
    dst: uuid.UUID,
    *,
    graph: str = "default",
    etype: str | None = "related_to",
    weight: float = 1.0,
) -> uuid.UUID:
    """One directed edge ``src → dst``; returns its id."""
    edge_id = uuid.uuid4()
    db.run(
        """INSERT INTO graph_edges (graph, id, etype, src, dst, weight)
           VALUES (:graph, :id, :etype, :src, :dst, :weight)""",
        graph=graph,
        id=edge_id,
        etype=etype,
        src=src,
        dst=dst,
        weight=weight,
    )
    return edge_id


def generated_node_id(graph: str, index: int) -> uuid.UUID:
    """The id :func:`generate_graph` gives node ``index`` (md5 of graph and index, as in its SQL)."""
    return uuid.UUID(hashlib.md5(f"{graph}:{index}".encode()).hexdigest())


def generate_graph(db: Any, *, nodes: int, edges_per_node: int, graph: str = "bench", seed: float = 0.42) -> None:
    """A random graph built inside Postgres with generate_series (no rows cross the wire).

    Node ``i`` has id :func:`generated_node_id` ``(graph, i)``, summary ``"node i topic-(i % 1000)"``
    and ``edges_per_node`` out-edges to pseudo-random nodes, weights in [0.1, 1.0), edge types
    ``t0``..``t4``. ``ANALYZE`` is run so plans are those of a settled table.
    """
    db.run("SELECT setseed(:seed)", seed=seed)
    db.run(
        """INSERT INTO graph_nodes (graph, id, ntype, summary, props)
           SELECT :graph, CAST(md5(:graph || ':' || i) AS uuid), 'Entity',
                  'node ' || i || ' topic-' || (i % 1000), jsonb_build_object('rank', i % 97)
           FROM generate_series(0, :n - 1) AS i""",
        graph=graph,
        n=nodes,
    )
    db.run(
        """INSERT INTO graph_edges (graph, id, etype, src, dst, weight)
           SELECT :graph, gen_random_uuid(), 't' || (k % 5),
                  CAST(md5(:graph || ':' || i) AS uuid),
                  CAST(md5(:graph || ':' || floor(random() * :n)::int) AS uuid),
                  0.1 + 0.9 * random()
           FROM generate_series(0, :n - 1) AS i, generate_series(1, :k) AS k""",
        graph=graph,
        n=nodes,
        k=edges_per_node,
    )
    db.run("ANALYZE graph_nodes")
    db.run("ANALYZE graph_edges")
