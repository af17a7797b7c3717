"""Case 7: tenant isolation as a property over random organizations, workspaces and traffic.

Every capture carries a tag naming its workspace. Whatever the layout, the prompt the LLM
receives for (org, workspace) holds tags of that workspace only, and a workspace of another
organization is refused before any sampling or LLM call. traverse_answer's ``graph`` is the
same kind of boundary for the knowledge graph: no node of another graph is ever returned.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.postgres import truncate_app_tables
from devtools.seed import Tenant, add_capture, add_edge, add_node, add_workspace, make_tenant
from service.errors import InvalidRequest
from tests.reliability.conftest import APPS, call_route, context
from tests.reliability.prompt_support import split_prompt

ENDPOINTS = [("GET", "/users"), ("get", "/users"), ("POST", "/users"), ("GET", "/orders"), ("DELETE", "/users/1")]
TAG = re.compile(r"\[ws:([0-9a-f-]{36})\]")
HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

layouts = st.lists(  # orgs -> workspaces -> captures (endpoint index, minutes ago)
    st.lists(
        st.lists(
            st.tuples(st.integers(0, len(ENDPOINTS) - 1), st.sampled_from([1.0, 30.0, 600.0, 2000.0])), max_size=4
        ),
        min_size=1,
        max_size=3,
    ),
    min_size=2,
    max_size=4,
)


def _build(db: Any, layout: list[list[list[tuple[int, float]]]]) -> list[Tenant]:
    """Orgs with their workspaces and tagged captures; returns one Tenant per (org, workspace)."""
    tenants = []
    for workspaces in layout:
        first = make_tenant(db, "team")
        for index, captures in enumerate(workspaces):
            workspace_id = first.workspace_id if index == 0 else add_workspace(db, first.org_id, first.owner_id)
            for endpoint, minutes_ago in captures:
                method, path = ENDPOINTS[endpoint]
                add_capture(
                    db,
                    workspace_id,
                    method,
                    path,
                    minutes_ago=minutes_ago,
                    request_body=f"[ws:{workspace_id}]",
                    response_body=f'{{"owner": "[ws:{workspace_id}]"}}',
                )
            tenants.append(Tenant(first.org_id, workspace_id, first.owner_id))
    return tenants


def _payload(org: Any, workspace: Any, wanted: list[int]) -> dict[str, Any]:
    return {
        "org_id": str(org),
        "workspace_id": str(workspace),
        "spec_excerpt": "openapi: 3.0.0",
        "endpoints": [{"method": ENDPOINTS[i][0], "path": ENDPOINTS[i][1]} for i in wanted],
        "max_samples_per_endpoint": 5,
    }


def test_no_capture_of_another_workspace_reaches_a_prompt(service_env, admin_db, llm_server, figures):
    seen = {"requests": 0, "prompts": 0, "tags_checked": 0, "foreign_tags": 0, "cross_org_refused": 0}
    drift = APPS["drift"][0]

    @HYPOTHESIS
    @given(layout=layouts, pick=st.integers(0, 100), other=st.integers(0, 100), wanted=st.sets(st.integers(0, 4)))
    def run(layout: list[list[list[tuple[int, float]]]], pick: int, other: int, wanted: set[int]) -> None:
        truncate_app_tables(admin_db)
        llm_server.reset()
        tenants = _build(admin_db, layout)
        me = tenants[pick % len(tenants)]
        order = sorted(wanted) or [0]
        drift.lambda_handler(_payload(me.org_id, me.workspace_id, order), context("ContractDriftFunction"))
        seen["requests"] += 1
        for request in llm_server.requests:
            seen["prompts"] += 1
            prompt = split_prompt(request)
            tags = TAG.findall(request.user_prompt)
            seen["tags_checked"] += len(tags)
            foreign = [t for t in tags if t != str(me.workspace_id)]
            seen["foreign_tags"] += len(foreign)
            assert foreign == []
            assert all(TAG.search(d) or not d.strip("{} ") for d in prompt.data)
        # a workspace of another organization is refused, and nothing is sampled or sent
        strangers = [t for t in tenants if t.org_id != me.org_id]
        stranger = strangers[other % len(strangers)]
        llm_server.reset()
        with pytest.raises(InvalidRequest, match="Workspace not found"):
            drift.lambda_handler(_payload(me.org_id, stranger.workspace_id, order), context("ContractDriftFunction"))
        assert llm_server.requests == []
        status = call_route("drift", _payload(me.org_id, stranger.workspace_id, order))
        assert status["statusCode"] == 400 and "Workspace not found" in status["body"]
        seen["cross_org_refused"] += 2

    run()
    figures.record("tenant_isolation", **seen)
    assert seen["prompts"] > 0 and seen["tags_checked"] > 0


def test_traverse_never_returns_a_node_of_another_graph(traverse_on, admin_db, figures):
    """Same words, same ids, linked across graphs by edges filed under each graph: no crossing."""
    graphs = ["tenant-a", "tenant-b", "default"]
    crossings = checked = 0
    shared_id = uuid.uuid4()
    for graph in graphs:
        add_node(admin_db, f"alpha secret of {graph}", graph=graph, node_id=shared_id)
        tail = add_node(admin_db, f"beta secret of {graph}", graph=graph)
        add_edge(admin_db, shared_id, tail, graph=graph)
    for graph in graphs:
        for text in ("alpha", "secret", str(shared_id), "beta"):
            reply = call_route("traverse", {"text": text, "graph": graph, "max_hops": 3})
            assert reply["statusCode"] == 200
            for other in graphs:
                if other != graph and f"of {other}" in reply["body"]:
                    crossings += 1
            checked += 1
    figures.record("traverse_graph_isolation", requests=checked, nodes_from_another_graph=crossings)
    assert crossings == 0
