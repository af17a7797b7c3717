"""DESIGN §7.1 through the real sampler on PostgreSQL: templates, ownership, one statement."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.postgres import CountingDatabase
from devtools.seed import add_capture, add_captures_bulk, make_tenant
from service.db import Database
from service.drift.models import Endpoint
from service.drift.paths import owner_of, shape_of
from service.drift.repository import SAMPLES_SQL, DriftRepository, samples_parameters


def insert_paths(db: Any, workspace_id: uuid.UUID, method: str, paths: list[str]) -> None:
    """One capture per path, the first newest (one minute apart), bodies naming the path's index."""
    add_captures_bulk(
        db,
        """SELECT CAST(:ws AS uuid), now() - make_interval(mins => n::int), CAST(:method AS text), p, 200, NULL,
                  'capture-' || n
           FROM unnest(CAST(:paths AS text[])) WITH ORDINALITY AS x(p, n)""",
        ws=workspace_id,
        method=method,
        paths=paths,
    )


def sample(
    workspace_id: uuid.UUID,
    endpoints: list[tuple[str, str]],
    per_endpoint: int = 5,
    declared: dict[str, list[str]] | None = None,
) -> list[tuple[str, str]]:
    """(endpoint label, response body) of every sample, in the order the sampler returned them."""
    wanted = [Endpoint(method=m, path=p) for m, p in endpoints]
    db = Database()
    try:
        captures = DriftRepository(db).recent_samples(workspace_id, wanted, per_endpoint, declared)
    finally:
        db.close()
    return [(c.endpoint.label, c.response_body or "") for c in captures]


def bodies(result: list[tuple[str, str]], label: str) -> list[str]:
    return [body for got, body in result if got == label]


def test_a_template_samples_concrete_paths_newest_first(service_env, admin_db):
    tenant = make_tenant(admin_db)
    insert_paths(admin_db, tenant.workspace_id, "get", ["/users/1", "/users/{id}", "/users", "/users/", "/users/2/x"])
    insert_paths(admin_db, tenant.workspace_id, "POST", ["/users/3"])
    result = sample(tenant.workspace_id, [("GET", "/users/{user_id}")])
    assert result == [("GET /users/{user_id}", "capture-1"), ("GET /users/{user_id}", "capture-2")]


def test_partial_segment_templates_and_metacharacters(service_env, admin_db):
    tenant = make_tenant(admin_db)
    paths = ["/files/a.txt", "/files/atxt", "/files/.txt", "/v1/(x)+$/7", "/v1/xx/7", "/v1/(x)+$/7/8"]
    insert_paths(admin_db, tenant.workspace_id, "GET", paths)
    result = sample(tenant.workspace_id, [("GET", "/files/{name}.{ext}"), ("GET", "/v1/(x)+$/{n}")])
    assert bodies(result, "GET /files/{name}.{ext}") == ["capture-1"]
    assert bodies(result, "GET /v1/(x)+$/{n}") == ["capture-4"]


def test_the_most_specific_requested_endpoint_owns_a_capture(service_env, admin_db):
    tenant = make_tenant(admin_db)
    insert_paths(admin_db, tenant.workspace_id, "GET", ["/users/me", "/users/7", "/a/1/c", "/a/1/d"])
    result = sample(
        tenant.workspace_id, [("GET", "/users/{id}"), ("GET", "/users/me"), ("GET", "/a/{x}/{y}"), ("GET", "/a/{x}/c")]
    )
    assert bodies(result, "GET /users/{id}") == ["capture-2"]
    assert bodies(result, "GET /users/me") == ["capture-1"]
    assert bodies(result, "GET /a/{x}/{y}") == ["capture-4"]
    assert bodies(result, "GET /a/{x}/c") == ["capture-3"]


def test_declared_paths_keep_their_captures_from_a_template(service_env, admin_db):
    tenant = make_tenant(admin_db)
    insert_paths(admin_db, tenant.workspace_id, "GET", ["/users/me", "/users/7", "/users/8.json", "/users/9"])
    insert_paths(admin_db, tenant.workspace_id, "POST", ["/users/me"])
    endpoints = [("GET", "/users/{id}"), ("POST", "/users/{id}")]
    without = sample(tenant.workspace_id, endpoints)
    assert bodies(without, "GET /users/{id}") == ["capture-1", "capture-2", "capture-3", "capture-4"]
    declared = {"GET": ["/users/me", "/users/{id}.json", "/users/{id}"], "POST": ["/users/{id}"]}
    with_document = sample(tenant.workspace_id, endpoints, declared=declared)
    assert bodies(with_document, "GET /users/{id}") == ["capture-2", "capture-4"]
    assert bodies(with_document, "POST /users/{id}") == ["capture-1"]  # declared for GET only


def test_window_limit_order_and_isolation(service_env, admin_db):
    tenant, other = make_tenant(admin_db), make_tenant(admin_db)
    for minute in (1, 2, 3, 4, 5, 6):
        add_capture(
            admin_db, tenant.workspace_id, "get", f"/o/{minute}", minutes_ago=minute, response_body=f"o{minute}"
        )
    add_capture(admin_db, tenant.workspace_id, "GET", "/o/old", minutes_ago=24 * 60 + 1, response_body="stale")
    add_capture(admin_db, other.workspace_id, "GET", "/o/1", minutes_ago=0.5, response_body="foreign")
    add_capture(admin_db, tenant.workspace_id, "GET", "/first", minutes_ago=9, response_body="literal")
    result = sample(tenant.workspace_id, [("GET", "/first"), ("GET", "/o/{id}")], per_endpoint=4)
    assert result == [("GET /first", "literal")] + [("GET /o/{id}", f"o{m}") for m in (1, 2, 3, 4)]


def test_literal_endpoints_keep_exact_matching(service_env, admin_db):
    tenant = make_tenant(admin_db)
    insert_paths(admin_db, tenant.workspace_id, "GET", ["/a", "/A", "/a/", "/{x}", "/b"])
    result = sample(tenant.workspace_id, [("GET", "/{x}"), ("GET", "/a")])
    assert bodies(result, "GET /a") == ["capture-1"]
    assert bodies(result, "GET /{x}") == ["capture-2", "capture-4", "capture-5"]


def test_one_statement_and_index_scans_only(service_env, admin_db):
    tenant, busy = make_tenant(admin_db), make_tenant(admin_db)
    add_captures_bulk(
        admin_db,
        """SELECT CASE WHEN i % 5 = 0 THEN CAST(:ws AS uuid) ELSE CAST(:busy AS uuid) END,
                  now() - i * interval '10 seconds',
                  (ARRAY['GET', 'POST', 'get'])[1 + i % 3], '/r' || i % 50 || '/items/' || i, 200, NULL, NULL
           FROM generate_series(1, 30000) AS i""",
        ws=tenant.workspace_id,
        busy=busy.workspace_id,
    )
    admin_db.run("VACUUM ANALYZE runtime_captures")
    endpoints = [Endpoint(method="GET", path="/r0/items/{id}"), Endpoint(method="GET", path="/r{n}/items/{id}")]
    endpoints += [Endpoint(method="POST", path="/r1/items/5"), Endpoint(method="GET", path="/cold/{x}")]
    counting = CountingDatabase()
    try:
        captures = DriftRepository(counting).recent_samples(tenant.workspace_id, endpoints, 3)
        assert counting.statements == 1
        params = samples_parameters(tenant.workspace_id, endpoints, 3)
        plan = "\n".join(str(r[0]) for r in counting.query(f"EXPLAIN (COSTS OFF) {SAMPLES_SQL}", **params))
    finally:
        counting.close()
    assert [c.endpoint.label for c in captures] == ["GET /r0/items/{id}"] * 3 + ["GET /r{n}/items/{id}"] * 3
    assert "Seq Scan on runtime_captures" not in plan, plan
    assert "runtime_captures_path_idx" in plan and "runtime_captures_recent_idx" in plan


SEGMENT_CHARS = st.sampled_from([*"ab.+(*$\\[^|?é𝄞 {}", "{p}", "{q}", "x"])
SEGMENTS = st.lists(SEGMENT_CHARS, min_size=0, max_size=3).map("".join)
TEMPLATES = st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda segments: "/" + "/".join(segments))
FILLERS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1, max_size=3)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    requested = draw(st.lists(TEMPLATES, min_size=1, max_size=4))
    declared = draw(st.lists(TEMPLATES, max_size=4))
    paths: list[str] = []
    for template in requested + declared:
        for _ in range(draw(st.integers(0, 3))):
            concrete = template.replace("{p}", draw(FILLERS)).replace("{q}", draw(FILLERS))
            paths.append(concrete)
    paths += draw(st.lists(TEMPLATES, max_size=3))
    return requested, declared, paths


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario())
def test_sql_ownership_equals_the_python_reference(service_env, admin_db, case):
    requested, declared, paths = case
    tenant = make_tenant(admin_db)
    insert_paths(admin_db, tenant.workspace_id, "GET", paths)
    result = sample(tenant.workspace_id, [("GET", p) for p in requested], per_endpoint=5, declared={"GET": declared})

    kept: list[str] = []
    for path in requested:
        if shape_of(path) not in {shape_of(k) for k in kept}:
            kept.append(path)
    candidates = kept + declared
    expected: list[tuple[str, str]] = []
    for path in kept:
        owned = [
            f"capture-{n}"
            for n, capture in enumerate(paths, start=1)
            if (owner := owner_of(capture, candidates)) is not None and shape_of(candidates[owner]) == shape_of(path)
        ]
        expected += [(f"GET {path}", body) for body in owned[:5]]
    assert result == expected, (requested, declared, paths)
