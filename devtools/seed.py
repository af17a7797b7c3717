"""Rows for tests, the local demo and the benchmarks, written as the registry writes them.

The registry's tables (``db/registry/stand_in.sql``, DESIGN §10.1) have NOT NULL columns and
foreign keys the service never reads: an organization needs an owner in ``users`` and a
``slug``, a workspace a ``name`` and ``created_by``, a capture a ``hosted_mocks`` deployment, a
``capture_id``, a ``protocol`` and its headers. Every fixture goes through these helpers, so
each row looks like one the registry wrote. Rows are written through the given connection
(the registry owner's, in tests).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

# What the recorder stores for a JSON exchange (JSON text, as it writes every header map).
REQUEST_HEADERS = {"content-type": "application/json", "user-agent": "mockforge-runner/1.0"}
RESPONSE_HEADERS = {"content-type": "application/json"}


# What the registry writes into limits_json when an organization's plan changes. The service has
# no per-plan default of its own (DESIGN §10.3.3: an absent limit is 0), so fixtures carry these.
PLAN_TOKENS_PER_MONTH = {"free": 0, "pro": 100_000, "team": 1_000_000}


def plan_limits(plan: str) -> dict[str, Any]:
    """The ``limits_json`` the registry gives an organization on ``plan``."""
    return {"ai_tokens_per_month": PLAN_TOKENS_PER_MONTH[plan]} if plan in PLAN_TOKENS_PER_MONTH else {}


@dataclass
class Tenant:
    org_id: uuid.UUID
    workspace_id: uuid.UUID
    owner_id: uuid.UUID


def add_user(db: Any) -> uuid.UUID:
    """A registry user (organizations and workspaces must name one)."""
    user_id = uuid.uuid4()
    db.run("INSERT INTO users (id) VALUES (:id)", id=user_id)
    return user_id


def make_tenant(
    db: Any,
    plan: str = "pro",
    limits: dict[str, Any] | None = None,
    *,
    org_id: uuid.UUID | None = None,
    workspace_id: uuid.UUID | None = None,
    name: str | None = None,
) -> Tenant:
    """An organization (its owner a new user) with one workspace and its hosted-mock deployment.

    ``limits_json`` is ``limits`` when given, else what the registry writes for ``plan``
    (:func:`plan_limits`). Ids are new unless given (the demo's are fixed, so ``events/`` can
    name them).
    """
    owner_id = add_user(db)
    org_id = org_id or uuid.uuid4()
    db.run(
        """INSERT INTO organizations (id, name, slug, owner_id, plan, limits_json)
           VALUES (:id, :name, :slug, :owner, :plan, CAST(:limits AS jsonb))""",
        id=org_id,
        name=name or f"org-{plan}",
        slug=f"org-{plan}-{org_id.hex[:12]}",
        owner=owner_id,
        plan=plan,
        limits=json.dumps(plan_limits(plan) if limits is None else limits),
    )
    workspace_id = add_workspace(db, org_id, owner_id, workspace_id=workspace_id)
    return Tenant(org_id, workspace_id, owner_id)


def add_workspace(
    db: Any, org_id: uuid.UUID, created_by: uuid.UUID, *, workspace_id: uuid.UUID | None = None
) -> uuid.UUID:
    """A workspace of ``org_id`` and the hosted-mock deployment its captures are recorded under."""
    workspace_id = workspace_id or uuid.uuid4()
    db.run(
        "INSERT INTO workspaces (id, org_id, name, created_by) VALUES (:id, :org, :name, :by)",
        id=workspace_id,
        org=org_id,
        name=f"workspace-{workspace_id.hex[:12]}",
        by=created_by,
    )
    add_deployment(db, org_id, workspace_id)
    return workspace_id


def deployment_id_for(workspace_id: uuid.UUID) -> uuid.UUID:
    """The deployment a workspace's captures are recorded under: md5 of ``deployment:<id>``,
    which :data:`BULK_CAPTURES_SQL` computes the same way in SQL."""
    return uuid.UUID(hashlib.md5(f"deployment:{workspace_id}".encode()).hexdigest())


def add_deployment(db: Any, org_id: uuid.UUID, workspace_id: uuid.UUID | None = None) -> uuid.UUID:
    """A ``hosted_mocks`` row of ``org_id``: the workspace's own (at most one, idempotent), or a
    new one recording into no workspace when ``workspace_id`` is None."""
    deployment_id = deployment_id_for(workspace_id) if workspace_id else uuid.uuid4()
    db.run(
        """INSERT INTO hosted_mocks (id, org_id, name, slug, config_json)
           VALUES (:id, :org, :name, :slug, CAST(:config AS jsonb))
           ON CONFLICT (id) DO NOTHING""",
        id=deployment_id,
        org=org_id,
        name=f"mock-{deployment_id.hex[:12]}",
        slug=f"mock-{deployment_id.hex[:12]}",
        config=json.dumps({"workspace_id": str(workspace_id) if workspace_id else None, "routes": []}),
    )
    return deployment_id


def add_capture(
    db: Any,
    workspace_id: uuid.UUID | None,
    method: str,
    path: str,
    *,
    minutes_ago: float = 1.0,
    status: int | None = 200,
    request_body: str | None = '{"q": 1}',
    response_body: str | None = '{"id": 1, "extra": true}',
    request_encoding: str = "utf8",
    response_encoding: str = "utf8",
    query_params: dict[str, str] | None = None,
    deployment_id: uuid.UUID | None = None,
) -> None:
    """One HTTP exchange as the registry's recorder writes it.

    Under the workspace's deployment (or ``deployment_id``: a capture with ``workspace_id`` None
    belongs to no workspace), a unique ``capture_id``, protocol ``http``, headers and query as
    JSON text, the status in ``response_status_code`` with ``status_code`` left NULL, both
    encodings written, ``source`` ``hosted``.
    """
    if deployment_id is None:
        if workspace_id is None:
            raise ValueError("a capture without a workspace needs its deployment_id")
        deployment_id = deployment_id_for(workspace_id)
    db.run(
        """INSERT INTO runtime_captures (deployment_id, capture_id, protocol, occurred_at, method, path,
               query_params, request_headers, request_body, request_body_encoding, status_code,
               response_status_code, response_headers, response_body, response_body_encoding,
               workspace_id, source)
           VALUES (:deployment, :capture_id, 'http', now() - make_interval(secs => :secs), :method, :path,
                   :query, :req_headers, :req, :req_enc, NULL,
                   :status, :resp_headers, :resp, :resp_enc,
                   :ws, 'hosted')""",
        deployment=deployment_id,
        capture_id=str(uuid.uuid4()),
        secs=minutes_ago * 60.0,
        method=method,
        path=path,
        query=json.dumps(query_params) if query_params else None,
        req_headers=json.dumps(REQUEST_HEADERS),
        req=request_body,
        req_enc=request_encoding,
        status=status,
        resp_headers=json.dumps(RESPONSE_HEADERS),
        resp=response_body,
        resp_enc=response_encoding,
        ws=workspace_id,
    )


# The set-based twin of add_capture for bulk loads (benchmarks): wraps a SELECT yielding
# (workspace_id, occurred_at, method, path, status, request_body, response_body) and writes each
# row exactly as add_capture does. The workspaces' deployments must exist (add_deployments).
BULK_CAPTURES_SQL = """
INSERT INTO runtime_captures (deployment_id, capture_id, protocol, occurred_at, method, path,
                              query_params, request_headers, request_body, request_body_encoding, status_code,
                              response_status_code, response_headers, response_body, response_body_encoding,
                              workspace_id, source)
SELECT CAST(md5('deployment:' || g.workspace_id) AS uuid), CAST(gen_random_uuid() AS text), 'http', g.occurred_at,
       g.method, g.path, NULL, CAST(:bulk_request_headers AS text), g.request_body, 'utf8', NULL,
       g.status, CAST(:bulk_response_headers AS text), g.response_body, 'utf8', g.workspace_id, 'hosted'
FROM ({rows}) AS g(workspace_id, occurred_at, method, path, status, request_body, response_body)
"""


def add_captures_bulk(
    db: Any,
    rows_sql: str,
    *,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    **params: Any,
) -> None:
    """Insert every row of ``rows_sql`` (see :data:`BULK_CAPTURES_SQL`) in one statement.

    Every row gets the same header maps (:data:`REQUEST_HEADERS`, :data:`RESPONSE_HEADERS` unless
    given: the benchmarks pass a real client's full set, for rows as wide as the recorder's).
    """
    db.run(
        BULK_CAPTURES_SQL.format(rows=rows_sql),
        bulk_request_headers=json.dumps(REQUEST_HEADERS if request_headers is None else request_headers),
        bulk_response_headers=json.dumps(RESPONSE_HEADERS if response_headers is None else response_headers),
        **params,
    )


def add_deployments(db: Any, org_id: uuid.UUID, workspace_ids: list[uuid.UUID]) -> None:
    """The deployments of many workspaces at once (bulk loads; same rows as add_deployment)."""
    for workspace_id in workspace_ids:
        add_deployment(db, org_id, workspace_id)


def set_org_setting(db: Any, org_id: uuid.UUID, key: str, value: Any) -> None:
    db.run(
        """INSERT INTO org_settings (id, org_id, setting_key, setting_value)
           VALUES (:id, :org, :key, CAST(:value AS jsonb))
           ON CONFLICT (org_id, setting_key) DO UPDATE SET setting_value = EXCLUDED.setting_value""",
        id=uuid.uuid4(),
        org=org_id,
        key=key,
        value=json.dumps(value),
    )


def current_period_start() -> date:
    """The first day of the current month in UTC: the usage_counters row platform tokens go to."""
    return datetime.now(UTC).date().replace(day=1)


def set_tokens_used(db: Any, org_id: uuid.UUID, tokens: int, period_start: date | None = None) -> None:
    """The org's ``usage_counters`` row for a month (the current one by default), as the registry keeps it."""
    db.run(
        """INSERT INTO usage_counters (id, org_id, period_start, ai_tokens_used, updated_at)
           VALUES (:id, :org, :period, :tokens, now())
           ON CONFLICT (org_id, period_start) DO UPDATE SET ai_tokens_used = EXCLUDED.ai_tokens_used""",
        id=uuid.uuid4(),
        org=org_id,
        period=period_start or current_period_start(),
        tokens=tokens,
    )


def tokens_used(db: Any, org_id: uuid.UUID) -> int:
    rows = db.run("SELECT coalesce(sum(ai_tokens_used), 0) FROM usage_counters WHERE org_id = :org", org=org_id)
    return int(rows[0][0])


def add_subscription(
    db: Any,
    org_id: uuid.UUID,
    status: str,
    *,
    plan: str = "pro",
    created_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> uuid.UUID:
    """A Stripe subscription row as the registry's webhook writes it (DESIGN §10.1, §10.3.2)."""
    now = datetime.now(UTC)
    created_at = created_at or now
    subscription_id = uuid.uuid4()
    db.run(
        """INSERT INTO subscriptions (id, org_id, stripe_subscription_id, stripe_customer_id, price_id, plan,
               status, current_period_start, current_period_end, cancel_at_period_end, canceled_at,
               created_at, updated_at)
           VALUES (:id, :org, :sub, :customer, :price, :plan, :status, :period_start, :period_end, false,
                   :canceled_at, :created_at, :updated_at)""",
        id=subscription_id,
        org=org_id,
        sub=f"sub_{subscription_id.hex[:24]}",
        customer=f"cus_{org_id.hex[:14]}",
        price=f"price_{plan}_monthly",
        plan=plan,
        status=status,
        period_start=created_at,
        period_end=created_at + timedelta(days=30),
        canceled_at=(updated_at or created_at) if status == "canceled" else None,
        created_at=created_at,
        updated_at=updated_at or created_at,
    )
    return subscription_id


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
