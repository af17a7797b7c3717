"""Hostile OpenAPI documents: parsing and slicing end in bounded time and memory, never raise,
and the slice holds nothing that was not asked for (DESIGN §7.2, issue 9 item 6).

Each case runs ``parse_document`` then ``slice`` on a cold cache, once timed and once under
tracemalloc for the peak. Bounds are generous (a shared 2-core machine); the figures go to
docs/reliability.md. Every path of these documents carries a marker (``/p123``, ``op123``) so a
foreign path or operation in the slice is found by a scan.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from service.drift.models import Endpoint
from service.drift.prompt import SPEC_BUDGET_CHARS
from service.drift.spec.cache import clear_cache, parse_document
from service.drift.spec.parsing import MAX_DOCUMENT_CHARS
from tests.reliability.conftest import Figures

SECTION = "hostile_documents"
MARKER = re.compile(r"/p(\d+)\b|\bop(\d+)\b")


def eps(*labels: str) -> list[Endpoint]:
    return [Endpoint(method=label.split(" ", 1)[0], path=label.split(" ", 1)[1]) for label in labels]


def measure(text: str, endpoints: list[Endpoint]) -> tuple[dict[str, Any], Any]:
    """Parse + slice on a cold cache: timings, tracemalloc peak, and the slice (None if unparsed)."""
    clear_cache()
    started = time.perf_counter()
    document = parse_document(text)
    parsed = time.perf_counter()
    piece = document.slice(endpoints, SPEC_BUDGET_CHARS) if document is not None else None
    sliced = time.perf_counter()
    clear_cache()
    tracemalloc.start()
    try:
        again = parse_document(text)
        if again is not None:
            again.slice(endpoints, SPEC_BUDGET_CHARS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        clear_cache()
    row = {
        "text_chars": len(text),
        "parsed": document is not None,
        "parse_ms": round((parsed - started) * 1000, 1),
        "slice_ms": round((sliced - parsed) * 1000, 1),
        "peak_mib": round(peak / 2**20, 1),
        "slice_chars": len(piece.text) if piece is not None else 0,
        "dropped": ", ".join(piece.dropped) if piece is not None and piece.dropped else "",
    }
    return row, piece


def foreign_markers(text: str, allowed: set[str]) -> set[str]:
    found = {m.group(1) or m.group(2) for m in MARKER.finditer(text)}
    return found - allowed


def check_bounds(row: dict[str, Any], seconds: float, mib: float) -> None:
    assert (row["parse_ms"] + row["slice_ms"]) / 1000 <= seconds, row
    assert row["peak_mib"] <= mib, row


def test_ref_cycles_terminate_and_bring_nothing_foreign(figures: Figures):
    count = 20_000
    schemas: dict[str, Any] = {
        f"S{i}": {
            "type": "object",
            "properties": {
                "next": {"$ref": f"#/components/schemas/S{(i + 1) % count}"},
                "self": {"$ref": f"#/components/schemas/S{i}"},
                "back": {"$ref": "#/components/schemas/S0"},
            },
        }
        for i in range(count)
    }
    schemas["Loop"] = {"$ref": "#/components/schemas/Loop"}
    schemas["Ping"] = {"$ref": "#/components/schemas/Pong"}
    schemas["Pong"] = {"$ref": "#/components~1schemas/Ping"}  # not a real pointer: stays as written
    paths = {
        f"/p{n}/{{id}}": {
            "get": {
                "operationId": f"op{n}",
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/S{n * 150}"}}}},
                    "500": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Loop"}}}},
                    "409": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ping"}}}},
                },
            }
        }
        for n in range(100)
    }
    text = json.dumps(
        {"openapi": "3.0.3", "info": {"title": "cycles"}, "paths": paths, "components": {"schemas": schemas}}
    )
    endpoints = eps(*(f"GET /p{n}/{n}" for n in range(0, 100, 4)))
    row, piece = measure(text, endpoints)
    assert piece is not None
    assert foreign_markers(piece.text, {str(n) for n in range(0, 100, 4)}) == set()
    assert piece.not_in_contract == [] and len(piece.text) <= SPEC_BUDGET_CHARS
    # Unbounded, the closure is every schema once: the cycles were followed to their end, not forever.
    document = parse_document(text)
    assert document is not None
    whole = json.loads(document.slice(endpoints, 10**9).text)
    assert len(whole["referenced"]) == count + 3
    figures.record(SECTION, **{"$ref cycles (20,000-schema ring, self and mutual refs)": row})
    check_bounds(row, seconds=20, mib=400)


def billion_laughs(levels: int, fan_out: int, where: str) -> str:
    lines = ["openapi: 3.0.0", "info: {title: lol}", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * fan_out)}]")
    if where == "paths":
        lines += ["paths:", "  /p1:", "    get:", "      operationId: op1", f"      x-lol: *l{levels}"]
    else:
        lines += ["paths: {}"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("YAML billion laughs (9 levels × 9)", billion_laughs(9, 9, "top")),
        ("YAML alias bomb inside an operation (40 levels × 2)", billion_laughs(40, 2, "paths")),
        ("YAML recursive alias", "openapi: 3.0.0\npaths: &a\n  /p1: {get: {x: *a}}\n"),
        ("YAML nested 1,000,000 deep (crashes libyaml's composer)", "openapi: 3.0.0\npaths: " + "[" * 1_000_000),
        (
            "YAML 6,000,000 characters of tiny aliases",
            "openapi: 3.0.0\npaths: {}\na: &a [1]\nb: [" + "*a, " * 1_499_989 + "*a]\n",
        ),
    ],
    ids=lambda value: value[:30] if isinstance(value, str) else None,
)
def test_yaml_bombs_are_refused_quickly(figures: Figures, name: str, text: str):
    assert len(text) <= MAX_DOCUMENT_CHARS
    endpoints = eps("GET /p1")
    row, piece = measure(text, endpoints)
    figures.record(SECTION, **{name: row})
    if "tiny aliases" in name:
        # 1.5 M aliases of one 2-node list: 4.5 M nodes expanded from 1.5 M distinct, under 10×: accepted,
        # and the slice does not include the unrelated top-level keys.
        assert piece is not None and "referenced" not in piece.text and piece.not_in_contract == ["GET /p1"]
        check_bounds(row, seconds=60, mib=1024)
        return
    assert piece is None and row["parsed"] is False
    check_bounds(row, seconds=10, mib=200)


def hundred_thousand_paths() -> str:
    paths: dict[str, Any] = {f"/p{n}/{{id}}": {"get": {"operationId": f"op{n}"}} for n in range(100_000)}
    paths["/{anything}"] = {"get": {"operationId": "op100000"}}
    text = json.dumps({"openapi": "3.0.0", "info": {"title": "wide"}, "paths": paths}, separators=(",", ":"))
    assert len(text) <= MAX_DOCUMENT_CHARS
    return text


@pytest.mark.slow
def test_hundred_thousand_paths_and_a_template_matching_everything(figures: Figures):
    text = hundred_thousand_paths()
    asked = [17, 99_999, 50_000, 123]
    endpoints = eps(
        "GET /p17/{x}",  # equal up to the parameter's name
        "GET /p99999/42",  # concrete: its template, found among 100,000
        "GET /p50000/{id}",
        "get /p123/abc",
        "GET /catch-me",  # only /{anything} matches it
        "GET /nope/1/2",  # nothing declared has three segments
        "POST /p17/1",  # no such method
        *(f"GET /p{n}x/1" for n in range(18)),  # near misses: /{anything} has one segment, these two
    )
    row, piece = measure(text, endpoints)
    assert piece is not None
    assert piece.operations["GET /catch-me"] == "GET /{anything}"
    assert piece.operations["GET /p99999/42"] == "GET /p99999/{id}"
    assert piece.not_in_contract[:2] == ["GET /nope/1/2", "POST /p17/1"] and len(piece.not_in_contract) == 20
    sliced = json.loads(piece.text)
    assert set(sliced["paths"]) == {f"/p{n}/{{id}}" for n in asked} | {"/{anything}"}
    # Markers of the requested labels (in "requested") and of the declared operations only.
    allowed = {str(n) for n in asked} | {"100000"} | {f"{n}" for n in range(18)}
    assert foreign_markers(piece.text, allowed) == set()
    figures.record(SECTION, **{"100,001 paths (5.3 MB JSON) with /{anything}": row})
    check_bounds(row, seconds=30, mib=1024)


def test_paths_full_of_regex_metacharacters_match_literally(figures: Figures):
    adjacent = "".join(f"{{v{i}}}" for i in range(24)) + "!"  # would backtrack for ever as a regex
    declared = {
        "/p1/.*/{id}": "op1",
        "/p2/(a|b)+/x": "op2",
        "/p3/[^/]+/{name}.{ext}": "op3",
        "/p4/\\d+/$^/{n}": "op4",
        "/p5/a{2,3}b": "op5",
        f"/p6/{adjacent}": "op6",
        "/p7/?q=1&r=(2)": "op7",
        "/p8/{id}": "op8",
    }
    text = json.dumps(
        {
            "openapi": "3.1.0",
            "info": {"title": "metacharacters"},
            "paths": {path: {"get": {"operationId": op}} for path, op in declared.items()},
        }
    )
    endpoints = eps(
        "GET /p1/.*/42",
        "GET /p1/anything/42",  # ".*" is literal text, not a pattern
        "GET /p2/(a|b)+/x",
        "GET /p2/ab/x",
        "GET /p3/[^/]+/report.pdf",
        "GET /p4/\\d+/$^/7",
        "GET /p5/aXb",  # {2,3} is a parameter: matches
        "GET /p6/" + "a" * 400,  # no "!": must fail fast
        "GET /p6/" + "a" * 400 + "!",
        "GET /p7/?q=1&r=(2)",
        "GET /p8/[a-z]*",
    )
    row, piece = measure(text, endpoints)
    assert piece is not None
    assert piece.operations == {
        "GET /p1/.*/42": "GET /p1/.*/{id}",
        "GET /p2/(a|b)+/x": "GET /p2/(a|b)+/x",
        "GET /p3/[^/]+/report.pdf": "GET /p3/[^/]+/{name}.{ext}",
        "GET /p4/\\d+/$^/7": "GET /p4/\\d+/$^/{n}",
        "GET /p5/aXb": "GET /p5/a{2,3}b",
        "GET /p6/" + "a" * 400 + "!": f"GET /p6/{adjacent}",
        "GET /p7/?q=1&r=(2)": "GET /p7/?q=1&r=(2)",
        "GET /p8/[a-z]*": "GET /p8/{id}",
    }
    assert piece.not_in_contract == ["GET /p1/anything/42", "GET /p2/ab/x", "GET /p6/" + "a" * 400]
    assert foreign_markers(piece.text, {str(n) for n in range(1, 9)}) == set()
    figures.record(SECTION, **{"paths full of regex metacharacters, 24 adjacent parameters": row})
    check_bounds(row, seconds=5, mib=100)


def _plan_hostile_template(queue: Any) -> None:
    from service.drift.spec.sampling_plan import plan_endpoints

    started = time.perf_counter()
    plan_endpoints([("GET", "/" + "".join(f"{{p{i}}}" for i in range(6)) + "!")], {"GET": ["/" + "a" * 300]})
    queue.put(time.perf_counter() - started)


def run_with_timeout(target: Callable[[Any], None], seconds: float) -> float | None:
    """Seconds ``target`` took in a child process, or None when it was still running after ``seconds``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(queue,), daemon=True)
    process.start()
    process.join(seconds)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return float(queue.get(timeout=5))


@pytest.mark.slow
def test_sampler_plan_with_adjacent_parameters_against_a_long_declared_path_is_quick():
    assert run_with_timeout(_plan_hostile_template, seconds=10) is not None
