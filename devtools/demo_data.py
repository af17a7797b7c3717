"""Demo data of the local API and the local invoke (fixed ids, so ``events/`` can refer to them).

Three organizations, one per plan, each with a workspace whose fresh captures drift from
:data:`DEMO_SPEC_EXCERPT` (a renamed field, an undocumented enum value, a request field
spelled differently), and a small knowledge graph for ``/v1/traverse_answer``. Captures are
written relative to ``now()``, so they are inside the sampler's 24 h window whenever the
stack is started.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from devtools.seed import add_capture, make_tenant, set_org_setting
from service.drift.byok import encrypt_api_key

DEMO_TOKEN = "local-demo-token"
"""Token the ``events/`` files carry; ``devtools.invoke`` stores it (the local API makes a fresh one)."""

FREE_ORG_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
FREE_WORKSPACE_ID = uuid.UUID("11111111-1111-4111-8111-0000000000a1")
PRO_ORG_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
PRO_WORKSPACE_ID = uuid.UUID("22222222-2222-4222-8222-0000000000a2")
TEAM_ORG_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
TEAM_WORKSPACE_ID = uuid.UUID("33333333-3333-4333-8333-0000000000a3")

DEMO_SPEC_EXCERPT = """\
openapi: 3.0.3
info: {title: Shop API, version: 1.4.0}
paths:
  /users/{id}:
    get:
      responses:
        '200':
          content:
            application/json:
              schema:
                type: object
                required: [id, name, email]
                additionalProperties: false
                properties:
                  id: {type: integer}
                  name: {type: string}
                  email: {type: string, format: email}
  /users/me:
    get:
      responses:
        '200':
          content:
            application/json:
              schema: {type: object, required: [id, name], properties: {id: {type: integer}, name: {type: string}}}
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [sku, quantity]
              properties:
                sku: {type: string}
                quantity: {type: integer, minimum: 1}
      responses:
        '201':
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: {type: string}
                  status: {type: string, enum: [pending, paid, shipped]}
  /orders/{id}:
    get:
      responses:
        '200':
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: {type: string}
                  status: {type: string, enum: [pending, paid, shipped]}
"""

DEMO_ENDPOINTS: list[dict[str, str]] = [
    {"method": "GET", "path": "/users/{id}"},
    {"method": "POST", "path": "/orders"},
    {"method": "GET", "path": "/orders/{id}"},
]

# (method, path, status, request body, response body, minutes ago): each drifts from the spec.
# Captured paths are concrete, as a proxy records them; `/users/me` is declared by the spec, so its
# capture is no sample of `GET /users/{id}` (the most specific candidate owns it).
DEMO_CAPTURES: list[tuple[str, str, int, str | None, str, float]] = [
    ("GET", "/users/7", 200, None, '{"id": 7, "name": "Ada", "email_address": "ada@example.com"}', 5),
    ("GET", "/users/8", 200, None, '{"id": 8, "name": "Lin", "email_address": "lin@example.com"}', 12),
    ("GET", "/users/me", 200, None, '{"id": 1, "name": "Demo"}', 2),
    ("POST", "/orders", 201, '{"sku": "A-1", "qty": 2}', '{"id": "o-19", "status": "pending"}', 3),
    ("POST", "/orders", 201, '{"sku": "B-7", "qty": 1}', '{"id": "o-20", "status": "pending"}', 9),
    ("GET", "/orders/o-11", 200, None, '{"id": "o-11", "status": "refunded", "refunded_at": "2024-05-01"}', 7),
]


def _node(key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"demo-graph:{key}")


# (key, ntype, summary, props)
DEMO_NODES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("checkout", "service", "Checkout service: turns a cart into a paid order", {"team": "payments"}),
    ("payments", "service", "Payments gateway adapter for card and wallet payments", {"team": "payments"}),
    ("orders-db", "datastore", "Orders database (PostgreSQL) holding orders and refunds", {}),
    ("refunds", "feature", "Refund flow: marks an order refunded and returns the payment", {}),
    ("fraud", "service", "Fraud scoring of payments before capture", {"team": "risk"}),
    ("runbook", "document", "Runbook: what to do when checkout latency spikes", {"owner": "sre"}),
    ("old-cart", "service", "Legacy cart service (retired)", {}),
]
# (key, src, dst, etype, weight)
DEMO_EDGES: list[tuple[str, str, str, str, float]] = [
    ("e1", "checkout", "payments", "calls", 1.0),
    ("e2", "checkout", "orders-db", "writes", 0.9),
    ("e3", "payments", "fraud", "calls", 0.8),
    ("e4", "refunds", "orders-db", "writes", 1.0),
    ("e5", "refunds", "payments", "calls", 0.7),
    ("e6", "runbook", "checkout", "documents", 0.6),
    ("e7", "checkout", "old-cart", "replaced", 1.0),
]
DEMO_TOMBSTONED = frozenset({"old-cart"})
CHECKOUT_NODE_ID = _node("checkout")


@dataclass(frozen=True)
class DemoLlm:
    """The LLM the user pointed the local run at (``None`` everywhere = no provider)."""

    endpoint: str
    provider: str
    model: str
    api_key: str


def drift_request(org_id: uuid.UUID, workspace_id: uuid.UUID) -> dict[str, Any]:
    """A DESIGN §5 request for a demo workspace."""
    return {
        "org_id": str(org_id),
        "workspace_id": str(workspace_id),
        "spec_excerpt": DEMO_SPEC_EXCERPT,
        "endpoints": DEMO_ENDPOINTS,
    }


TRAVERSE_REQUEST: dict[str, Any] = {"text": "checkout", "max_hops": 3, "budget_ms": 2000}


def load_demo_data(db: Any, *, byok_passphrase: str, llm: DemoLlm | None) -> None:
    """Write the demo rows (idempotent: earlier demo rows are replaced).

    The team org's BYOK key is the user's own key, encrypted as the registry does, so it is
    enabled only when an LLM was given; without one it stays stored but disabled and the team
    org falls back to the (unconfigured) platform key like the pro org.
    """
    orgs = (
        (FREE_ORG_ID, FREE_WORKSPACE_ID, "Demo Free", "free"),
        (PRO_ORG_ID, PRO_WORKSPACE_ID, "Demo Pro", "pro"),
        (TEAM_ORG_ID, TEAM_WORKSPACE_ID, "Demo Team (BYOK)", "team"),
    )
    workspace_ids = [ws for _, ws, _, _ in orgs]
    org_ids = [org for org, _, _, _ in orgs]
    db.run("DELETE FROM runtime_captures WHERE workspace_id = ANY(CAST(:ids AS uuid[]))", ids=workspace_ids)
    db.run("DELETE FROM hosted_mocks WHERE org_id = ANY(CAST(:ids AS uuid[]))", ids=org_ids)
    db.run("DELETE FROM org_settings WHERE org_id = ANY(CAST(:ids AS uuid[]))", ids=org_ids)
    db.run("DELETE FROM workspaces WHERE org_id = ANY(CAST(:ids AS uuid[]))", ids=org_ids)
    db.run("DELETE FROM usage_counters WHERE org_id = ANY(CAST(:ids AS uuid[]))", ids=org_ids)
    owners = db.run("DELETE FROM organizations WHERE id = ANY(CAST(:ids AS uuid[])) RETURNING owner_id", ids=org_ids)
    db.run("DELETE FROM users WHERE id = ANY(CAST(:ids AS uuid[]))", ids=[row[0] for row in owners])
    for org_id, workspace_id, name, plan in orgs:
        make_tenant(db, plan, org_id=org_id, workspace_id=workspace_id, name=name)
        for method, path, status, request_body, response_body, minutes_ago in DEMO_CAPTURES:
            add_capture(
                db,
                workspace_id,
                method,
                path,
                minutes_ago=minutes_ago,
                status=status,
                request_body=request_body,
                response_body=response_body,
            )
    # An org's own key speaks OpenAI or Anthropic; Bedrock is only ever the platform's model.
    own_key = llm if llm is not None and llm.provider != "bedrock" else None
    byok: dict[str, Any] = {
        "provider": own_key.provider if own_key else "openai",
        "api_key": encrypt_api_key(own_key.api_key if own_key else "sk-demo-not-a-real-key", byok_passphrase),
        "enabled": own_key is not None,
    }
    if own_key:
        byok.update(base_url=own_key.endpoint, model=own_key.model)
    set_org_setting(db, TEAM_ORG_ID, "byok", byok)
    _load_graph(db)


def _load_graph(db: Any) -> None:
    node_ids = [_node(key) for key, _, _, _ in DEMO_NODES]
    db.run("DELETE FROM graph_edges WHERE graph = 'default' AND src = ANY(CAST(:ids AS uuid[]))", ids=node_ids)
    db.run("DELETE FROM graph_nodes WHERE graph = 'default' AND id = ANY(CAST(:ids AS uuid[]))", ids=node_ids)
    for key, ntype, summary, props in DEMO_NODES:
        db.run(
            """INSERT INTO graph_nodes (graph, id, ntype, summary, props, tombstoned)
               VALUES ('default', :id, :ntype, :summary, CAST(:props AS jsonb), :tombstoned)""",
            id=_node(key),
            ntype=ntype,
            summary=summary,
            props=json.dumps(props),
            tombstoned=key in DEMO_TOMBSTONED,
        )
    for key, src, dst, etype, weight in DEMO_EDGES:
        db.run(
            """INSERT INTO graph_edges (graph, id, etype, src, dst, weight)
               VALUES ('default', :id, :etype, :src, :dst, :weight)""",
            id=_node(f"edge:{key}"),
            etype=etype,
            src=_node(src),
            dst=_node(dst),
            weight=weight,
        )
