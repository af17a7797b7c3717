"""Benchmark 7: the prompt for the worst input the caps allow stays under ``PROMPT_CEILING_CHARS``.

Worst case: 25 endpoints with the longest method and path the request accepts, 5 samples
each with huge request and response bodies (plain and base64), the longest status code and
timestamp, and a spec excerpt of the largest size accepted. The bodies reach the builder as the
sampler's SQL returns them: the first ``BODY_PREFIX_CHARS`` characters and the stored length.
Baseline: the raw size of that input, to show what the caps cut away.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from bench.common import BenchEnv, BenchResult, Check, Sizes, timed_ms
from service.drift.models import (
    MAX_ENDPOINTS_CONSIDERED,
    MAX_PATH_CHARS,
    MAX_SPEC_EXCERPT_CHARS,
    SAMPLES_PER_ENDPOINT_BOUNDS,
    Endpoint,
)
from service.drift.prompt import BODY_MAX_CHARS, PROMPT_CEILING_CHARS, SPEC_BUDGET_CHARS, build_prompt
from service.drift.repository import BODY_PREFIX_CHARS, Capture

METHOD = "M" * 16


def worst_case(body_chars: int) -> tuple[str, list[Endpoint], list[Capture]]:
    endpoints = [
        Endpoint(method=METHOD, path=f"/{n:03d}" + "p" * (MAX_PATH_CHARS - 4)) for n in range(MAX_ENDPOINTS_CONSIDERED)
    ]
    # Bodies of multi-byte text with control characters (each replaced, never dropped) and fence look-alikes.
    chunk = 'é漢\x01<<<DATA- DATA->>> {"k": [1, 2, 3]} '
    body = (chunk * (body_chars // len(chunk) + 1))[:body_chars]
    encoded = base64.b64encode(body.encode()).decode()
    occurred = datetime(2026, 11, 24, 4, 10, 27, 295237, tzinfo=UTC)
    captures = [
        Capture(
            endpoint=endpoint,
            status_code=-2_147_483_648,
            occurred_at=occurred,
            request_body=(encoded if sample % 2 else body)[:BODY_PREFIX_CHARS],
            request_body_encoding="base64" if sample % 2 else "utf8",
            response_body=body[:BODY_PREFIX_CHARS],
            response_body_encoding="utf8",
            request_body_chars=len(encoded if sample % 2 else body),
            response_body_chars=len(body),
        )
        for endpoint in endpoints
        for sample in range(SAMPLES_PER_ENDPOINT_BOUNDS[1])
    ]
    spec = ("openapi: 3.1.0\n" + "x" * MAX_SPEC_EXCERPT_CHARS)[:MAX_SPEC_EXCERPT_CHARS]
    return spec, endpoints, captures


def run(env: BenchEnv, sizes: Sizes) -> BenchResult:
    del env  # pure CPU
    spec, endpoints, captures = worst_case(sizes.prompt_body_chars)
    raw_chars = len(spec) + sum((c.request_body_chars or 0) + (c.response_body_chars or 0) for c in captures)
    labels = {e.label for e in endpoints}  # every endpoint marked 'not in the contract': the longest headings
    build_ms, prompt = timed_ms(lambda: build_prompt(spec, endpoints, captures, not_in_contract=labels))
    # Baseline: the same prompt from bodies already at the per-body cap (what the LLM gets is the same size).
    capped_spec, capped_endpoints, capped = worst_case(BODY_MAX_CHARS)
    capped_ms, capped_prompt = timed_ms(lambda: build_prompt(capped_spec[:SPEC_BUDGET_CHARS], capped_endpoints, capped))
    size = prompt.size_chars
    result = BenchResult(key="prompt_bound", title="7. Prompt bound for the worst input the caps allow")
    result.checks = [
        Check(
            "prompt size vs PROMPT_CEILING_CHARS",
            f"≤ {PROMPT_CEILING_CHARS:,} chars",
            f"{size:,} chars ({size / PROMPT_CEILING_CHARS:.1%} of the ceiling)",
            size <= PROMPT_CEILING_CHARS,
        )
    ]
    result.figures = {
        "endpoints": len(endpoints),
        "samples": len(captures),
        "body_chars": sizes.prompt_body_chars,
        "spec_chars": len(spec),
        "raw_input_chars": raw_chars,
        "prompt_chars": size,
        "ceiling_chars": PROMPT_CEILING_CHARS,
        "share_of_ceiling": round(size / PROMPT_CEILING_CHARS, 4),
        "build_ms": round(build_ms, 1),
        "capped_input_build_ms": round(capped_ms, 1),
        "capped_input_prompt_chars": capped_prompt.size_chars,
    }
    result.details = [
        f"{len(endpoints)} endpoints (16-character method, {MAX_PATH_CHARS}-character path) × "
        f"{SAMPLES_PER_ENDPOINT_BOUNDS[1]} samples, each with a {sizes.prompt_body_chars:,}-character request body "
        "(every other one base64) and response body of multi-byte text with control characters and fence "
        f"look-alikes, status −2³¹, and a {len(spec):,}-character spec excerpt: {raw_chars:,} characters of input. "
        f"The prompt is **{size:,}** characters, {size / PROMPT_CEILING_CHARS:.1%} of `PROMPT_CEILING_CHARS` "
        f"({PROMPT_CEILING_CHARS:,}), and {raw_chars / size:,.0f}× smaller than its input.",
        "",
        f"Build time: {build_ms:.0f} ms for this input against {capped_ms:.1f} ms for bodies already at the "
        f"{BODY_MAX_CHARS:,}-character cap ({capped_prompt.size_chars:,}-character prompt) — "
        f"{build_ms / max(capped_ms, 1e-3):.1f}× for a prompt of the same size: the sampler's SQL hands the "
        f"builder at most {BODY_PREFIX_CHARS:,} characters of each body, so its time no longer grows with the "
        "captured bodies.",
    ]
    if build_ms > 10 * max(capped_ms, 1e-3):
        result.findings += [
            f"- Finding (no target): `build_prompt` took {build_ms:.0f} ms for the worst input against "
            f"{capped_ms:.1f} ms for the same-size prompt from bodies already at the cap: its time grows with "
            "the captured bodies again; check that the sampler still fetches bounded prefixes.",
            "",
        ]
    return result
