"""Hostile paths against the template-aware sampler (DESIGN §7.1): no error, bounded time, and no
capture sampled for an endpoint that does not own it.

Each capture's response body names its index, so every sample is traced back to its concrete path
and checked against the pure-Python reference (:func:`service.drift.paths.owner_of`). Bounds are
generous (the Lambda's 29 s API Gateway limit): this is about never hanging or failing, not speed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from devtools.seed import add_captures_bulk, make_tenant
from service.db import Database
from service.drift.models import Endpoint
from service.drift.paths import Template, plan_endpoints, shape_of
from service.drift.repository import DriftRepository
from tests.reliability.conftest import Figures, call_route

LAMBDA_BUDGET_S = 29.0
METACHARACTERS = "\\^$.|?*+()[]{}"


class Reference:
    """:func:`service.drift.paths.owner_of` with the candidates parsed once (100k of them here):
    the same rule, the most specific matching candidate, ties to the first."""

    def __init__(self, candidates: list[str]) -> None:
        self.by_length: dict[int, list[tuple[int, Template]]] = {}
        for index, path in enumerate(candidates):
            template = Template.parse(path)
            self.by_length.setdefault(len(template.segments), []).append((index, template))

    def owner(self, path: str) -> int | None:
        matching = [
            (template.specificity, index)
            for index, template in self.by_length.get(path.count("/") + 1, [])
            if path.startswith(template.prefix) and template.matches(path)
        ]
        return min(matching)[1] if matching else None


def insert_paths(db: Any, workspace_id: uuid.UUID, paths: list[str]) -> None:
    add_captures_bulk(
        db,
        """SELECT CAST(:ws AS uuid), now() - make_interval(secs => n::int), 'GET', p, 200, NULL, 'capture-' || n
           FROM unnest(CAST(:paths AS text[])) WITH ORDINALITY AS x(p, n)""",
        ws=workspace_id,
        paths=paths,
    )


def foreign_samples(
    workspace_id: uuid.UUID,
    requested: list[str],
    paths: list[str],
    declared: list[str] | None = None,
    per_endpoint: int = 5,
) -> tuple[list[str], int, float]:
    """Sample, then check each sample against the reference: (problems, samples, seconds).

    A problem is a sample its endpoint does not own, or an endpoint with fewer samples than the
    captures it owns allow.
    """
    endpoints = [Endpoint(method="GET", path=p) for p in requested]
    started = time.perf_counter()
    db = Database()
    try:
        captures = DriftRepository(db).recent_samples(
            workspace_id, endpoints, per_endpoint, {"GET": declared} if declared is not None else None
        )
    finally:
        db.close()
    seconds = time.perf_counter() - started
    kept: list[str] = []
    for path in requested:
        if shape_of(path) not in {shape_of(k) for k in kept}:
            kept.append(path)
    candidates = kept + list(declared or [])
    reference = Reference(candidates)
    owners = {path: reference.owner(path) for path in set(paths)}
    problems: list[str] = []
    for capture in captures:
        path = paths[int((capture.response_body or "capture-0").split("-")[1]) - 1]
        owner = owners[path]
        owned_by = None if owner is None else shape_of(candidates[owner])
        if owned_by != shape_of(capture.endpoint.path):
            problems.append(f"{path!r} sampled for {capture.endpoint.path!r}, owner {owner}")
    for path in kept:
        owned = sum(1 for p in paths if owners[p] == kept.index(path))
        got = sum(1 for c in captures if c.endpoint.path == path)
        if got != min(owned, per_endpoint):
            problems.append(f"{path!r}: {got} samples, owns {owned}")
    return problems, len(captures), seconds


def metacharacter_paths(count: int) -> list[str]:
    out = []
    for i in range(count):
        a, b = METACHARACTERS[i % len(METACHARACTERS)], METACHARACTERS[(i * 7 + 3) % len(METACHARACTERS)]
        out.append(f"/m{a}{b}/{b}{i}{a}/x{a}")
    return out


def test_paths_full_of_regex_metacharacters(service_env, admin_db, figures: Figures):
    tenant = make_tenant(admin_db)
    paths = [*metacharacter_paths(600), "/m.*/.*/x.", "/m(/(/x(", "/m\\/\\\\/x\\", "/m$^/x/x$"]
    insert_paths(admin_db, tenant.workspace_id, paths)
    requested = ["/m{a}/{b}/x{c}", "/m.*/{b}/x.", "/m(/{b}/x(", "/m\\/{b}/x\\", "/m$^/{b}/x$", "/m[/{b}/x["]
    declared = ["/m.*/.*/x.", "/m{a}/(0)/x{c}", "/m|?/{b}/x|"]
    problems, samples, seconds = foreign_samples(tenant.workspace_id, requested, paths, declared)
    assert problems == []
    assert samples >= 5  # the wide template found traffic
    # And through the handler: an HTTP call with such endpoints answers 200.
    body = {
        "org_id": str(tenant.org_id),
        "workspace_id": str(tenant.workspace_id),
        "spec_excerpt": "openapi: 3.0.0",
        "endpoints": [{"method": "GET", "path": p} for p in requested],
    }
    reply = call_route("drift", body)
    assert reply["statusCode"] == 200, reply
    figures.record(
        "hostile_paths_metacharacters",
        captures=len(paths),
        endpoints=len(requested),
        samples=samples,
        foreign_samples=len(problems),
        sampler_ms=round(seconds * 1000, 1),
        http_status=reply["statusCode"],
    )


def test_templates_that_match_everything(service_env, admin_db, figures: Figures):
    tenant = make_tenant(admin_db)
    paths = [f"/p{i}" for i in range(3000)] + [f"/p{i}/q" for i in range(3000)] + ["/", "//", "/me", "/{a}"]
    insert_paths(admin_db, tenant.workspace_id, paths)
    requested = ["/{a}", "/{a}/{b}", "/me", "{a}", "/{x}{y}"]
    problems, samples, seconds = foreign_samples(tenant.workspace_id, requested, paths, ["/p7", "/{a}/q"])
    assert problems == []
    figures.record(
        "hostile_paths_match_everything",
        captures=len(paths),
        endpoints=len(requested),
        samples=samples,
        foreign_samples=len(problems),
        sampler_ms=round(seconds * 1000, 1),
    )
    assert seconds < LAMBDA_BUDGET_S


def test_a_document_declaring_100k_paths(service_env, admin_db, figures: Figures):
    tenant = make_tenant(admin_db)
    declared = [f"/res{i}/items" for i in range(90_000)] + [f"/res{i}/{{id}}" for i in range(10_000)]
    paths = [f"/res{i}/items" for i in range(0, 90_000, 301)] + [f"/res{i}/42" for i in range(0, 20_000, 101)]
    paths += [f"/zzz{i}/42" for i in range(200)] + [f"/x{i}" for i in range(200)]
    insert_paths(admin_db, tenant.workspace_id, paths)
    requested = ["/{a}/{b}", "/{a}", "/res{r}/items", "/{a}/items", "/res7/{id}"]

    started = time.perf_counter()
    plan = plan_endpoints([("GET", p) for p in requested], {"GET": declared})
    plan_seconds = time.perf_counter() - started
    problems, samples, seconds = foreign_samples(tenant.workspace_id, requested, paths, declared)
    assert problems == []
    assert seconds < LAMBDA_BUDGET_S
    figures.record(
        "hostile_paths_100k_document",
        declared_paths=len(declared),
        captures=len(paths),
        endpoints=len(requested),
        samples=samples,
        foreign_samples=len(problems),
        literal_paths_excluded=len(plan.excluded),
        patterns_coarsened=sum(1 for p in plan.endpoints if p is not None and p.coarsened),
        plan_build_ms=round(plan_seconds * 1000, 1),
        sampler_ms_including_plan=round(seconds * 1000, 1),
    )
