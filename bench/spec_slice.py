"""Benchmark: slicing a whole OpenAPI document for 25 endpoints (DESIGN §7.2, issue 9).

GitHub's REST description (5.7 MB of JSON, vendored under tests/data/openapi) sliced for 25
endpoints spread over the document, at the prompt's spec budget. Baseline: ``json.loads`` of the
same text, measured in the same run — parsing is the floor of any cold slice.

- **cold**: caches empty, ``parse_document`` + ``slice``; target ≤ 3× ``json.loads``;
- **warm**: the document cached, ``parse_document`` + ``slice`` of the same text object (what an
  S3 spec or a retried request gets); target ≤ 1 ms. Reported beside it, without a target: the
  lookup of an *equal copy* of the text (an inline spec arrives as a new string each invoke and
  is confirmed by a memcmp) and a slice for 25 *other* endpoints (another chunk of one request).

The smoke run slices the small Swagger 2.0 Petstore instead.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, BenchEnv, BenchResult, Check, Sizes, fmt_ms, gc_paused, md_table, median, ms
from service.drift.models import MAX_ENDPOINTS_CONSIDERED, Endpoint
from service.drift.prompt import SPEC_BUDGET_CHARS
from service.drift.spec.cache import clear_cache, content_sha256, parse_document
from service.drift.spec.document import OpenApiDocument
from service.drift.spec.slicing import SpecSlice

DATA = ROOT / "tests" / "data" / "openapi"
COLD_RATIO_TARGET = 3.0
WARM_TARGET_MS = 1.0
_PARAM = re.compile(r"\{[^{}/]+\}")


def load(name: str) -> str:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
        return handle.read()


def spread_endpoints(document: OpenApiDocument, offset: int = 0) -> list[Endpoint]:
    """25 operations spread evenly over the document, templated paths given concrete values."""
    declared = [(m, p) for m, paths in document.declared_paths().items() for p in paths]
    declared.sort(key=lambda pair: (list(document.root["paths"]).index(pair[1]), pair[0]))
    step = max(1, len(declared) // MAX_ENDPOINTS_CONSIDERED)
    chosen = declared[offset % step :: step][:MAX_ENDPOINTS_CONSIDERED]
    return [
        Endpoint(method=method, path=_PARAM.sub("x1", path) if n % 2 else path)
        for n, (method, path) in enumerate(chosen)
    ]


def _times(fn: Callable[[], Any], runs: int, before: Callable[[], None] | None = None) -> list[float]:
    out: list[float] = []
    with gc_paused():
        for _ in range(runs):
            if before is not None:
                before()
            started = time.perf_counter()
            fn()
            out.append(ms(time.perf_counter() - started))
    return out


def _cold(text: str, endpoints: list[Endpoint]) -> SpecSlice:
    document = parse_document(text)
    assert document is not None
    return document.slice(endpoints, SPEC_BUDGET_CHARS)


def run(env: BenchEnv, sizes: Sizes) -> BenchResult:
    del env  # pure CPU
    name = "petstore.swagger2.json.gz" if sizes.smoke else "api.github.com.json.gz"
    cold_runs, warm_runs = (2, 20) if sizes.smoke else (7, 2_000)
    text = load(name)
    copy = (text + " ")[:-1]  # equal, another object
    clear_cache()
    document = parse_document(text)
    assert document is not None
    endpoints = spread_endpoints(document)
    others = spread_endpoints(document, offset=1)

    json_ms = _times(lambda: json.loads(text), cold_runs)
    cold_ms = _times(lambda: _cold(text, endpoints), cold_runs, before=clear_cache)
    parse_only_ms = _times(lambda: parse_document(text), cold_runs, before=clear_cache)
    clear_cache()
    piece = _cold(text, endpoints)
    warm_ms = _times(lambda: _cold(text, endpoints), warm_runs)
    equal_copy_ms = _times(lambda: parse_document(content_sha256(copy)[1]), warm_runs)
    other_ms: list[float] = []
    cached = parse_document(text)
    assert cached is not None
    for _ in range(cold_runs):
        # As a warm process serving chunk 2 after chunk 1: chunk 1's slice made its parts.
        cached._slicer._slices.clear()
        cached._slicer._parts.clear()
        cached.slice(endpoints, SPEC_BUDGET_CHARS)
        other_ms += _times(lambda: cached.slice(others, SPEC_BUDGET_CHARS), 1)

    json_median, cold_median = median(json_ms), median(cold_ms)
    warm_median = median(warm_ms)
    ratio = cold_median / json_median
    result = BenchResult(key="spec_slice", title="8. Spec slicing: a whole OpenAPI document cut for 25 endpoints")
    result.checks = [
        Check(
            "cold parse + slice vs json.loads",
            f"≤ {COLD_RATIO_TARGET:.0f}× json.loads",
            f"{fmt_ms(cold_median)} vs {fmt_ms(json_median)} ({ratio:.2f}×)",
            ratio <= COLD_RATIO_TARGET,
        ),
        Check(
            "warm (document cached) parse + slice",
            f"≤ {WARM_TARGET_MS:.0f} ms",
            f"{fmt_ms(warm_median)} median, {fmt_ms(max(warm_ms))} max",
            warm_median <= WARM_TARGET_MS,
        ),
    ]
    main = "petstore" if sizes.smoke else "github"
    cases = {main: piece}
    rows = [[name, len(text), len(piece.text), ", ".join(piece.dropped) or "nothing"]]
    if not sizes.smoke:
        do_text = load("digitalocean.com.json.gz")
        do_document = parse_document(do_text)
        assert do_document is not None
        cases["digitalocean"] = do_document.slice(spread_endpoints(do_document), SPEC_BUDGET_CHARS)
        rows.append(
            [
                "digitalocean.com.json.gz",
                len(do_text),
                len(cases["digitalocean"].text),
                ", ".join(cases["digitalocean"].dropped) or "nothing",
            ]
        )
        unbounded = {
            key: (document if key == "github" else do_document).slice(
                spread_endpoints(document if key == "github" else do_document), 10**9
            )
            for key in cases
        }
    else:
        unbounded = {main: document.slice(endpoints, 10**9)}
    for row, key in zip(rows, cases, strict=True):
        row.insert(3, len(unbounded[key].text))
    result.figures = {
        "document": name,
        "document_chars": len(text),
        "endpoints": len(endpoints),
        "json_loads_median_ms": round(json_median, 2),
        "cold_median_ms": round(cold_median, 2),
        "parse_only_median_ms": round(median(parse_only_ms), 2),
        "cold_ratio": round(ratio, 3),
        "warm_median_ms": round(warm_median, 4),
        "warm_equal_copy_lookup_median_ms": round(median(equal_copy_ms), 3),
        "warm_other_endpoints_median_ms": round(median(other_ms), 2),
        "slice_chars": {key: len(value.text) for key, value in cases.items()},
        "unbounded_slice_chars": {key: len(value.text) for key, value in unbounded.items()},
        "dropped": {key: value.dropped for key, value in cases.items()},
        "not_in_contract": {key: len(value.not_in_contract) for key, value in cases.items()},
        "budget_chars": SPEC_BUDGET_CHARS,
    }
    result.details = [
        f"{len(endpoints)} operations spread evenly over the document (every other one asked with concrete "
        f"values in place of its parameters, so template matching runs), budget `SPEC_BUDGET_CHARS` = "
        f"{SPEC_BUDGET_CHARS:,} characters. Medians of {cold_runs} cold runs (caches cleared before each) and "
        f"{warm_runs:,} warm runs, garbage collector paused.",
        "",
        *md_table(
            ["", "median"],
            [
                ["`json.loads` of the text (baseline)", fmt_ms(json_median)],
                ["cold: `parse_document` + `slice`", f"{fmt_ms(cold_median)} ({ratio:.2f}× json.loads)"],
                ["  of which `parse_document` alone", fmt_ms(median(parse_only_ms))],
                ["warm: same text object (S3 spec, retried request), same endpoints", fmt_ms(warm_median)],
                ["warm: lookup of an equal copy of the text (inline spec: a memcmp)", fmt_ms(median(equal_copy_ms))],
                ["warm: slice for 25 other endpoints (another chunk)", fmt_ms(median(other_ms))],
            ],
        ),
        "",
        "Slice sizes (characters) for 25 endpoints:",
        "",
        *md_table(["document", "document chars", "slice chars", "unbounded slice chars", "dropped"], rows),
        "",
        "Budget pressure drops, in order: prose (`description`, `example(s)`, `externalDocs`, `x-*`; property "
        "names are kept), then the deepest references (breadth-first from the operations, so the kept ones are "
        "the shallowest), then operation bodies (largest first, down to operationId and parameter names); the "
        "text is cut only if even the skeletons do not fit.",
    ]
    if not sizes.smoke and median(equal_copy_ms) > WARM_TARGET_MS:
        result.findings += [
            f"- Finding (no target): a warm lookup of an *equal copy* of GitHub's text takes "
            f"{fmt_ms(median(equal_copy_ms))}: the content cache confirms a fingerprint hit with `==`, and one emoji "
            "makes CPython store the 5.7 M characters 4 bytes each (23 MB to compare). An inline spec pays this "
            "once per invoke (`load_spec_text` returns the cached object, so the parse lookup is by identity); "
            "an S3 spec does not. Proposed: callers with big specs use `spec_s3_uri`.",
            "",
        ]
    return result
