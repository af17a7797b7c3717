"""The benchmark suite at smoke sizes, so its code cannot rot between full runs.

Behaviour only: every benchmark runs to completion and returns well-formed results, and the
report renders. No timing is asserted — speed claims live in docs/benchmarks.md, measured by
`make bench` against same-run baselines.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.common import SMOKE
from bench.run import BenchRun, benchmarks, render, run_all
from devtools.migrate import head_revision


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> BenchRun:
    return run_all(SMOKE, base_dir=Path(tmp_path_factory.mktemp("bench-postgres")))


@pytest.mark.slow
def test_every_benchmark_runs_and_reports_its_targets(smoke_run: BenchRun) -> None:
    assert [r.key for r in smoke_run.results] == list(benchmarks())
    for result in smoke_run.results:
        assert "error" not in result.figures, result.details
        assert result.checks, result.key
        for check in result.checks:
            assert check.name and check.target and check.measured
            assert isinstance(check.met, bool)
        assert result.details
        for value in result.figures.values():
            if isinstance(value, float):
                assert math.isfinite(value), result.figures


@pytest.mark.slow
def test_results_are_the_real_behaviour(smoke_run: BenchRun) -> None:
    by_key = {r.key: r.figures for r in smoke_run.results}
    sampler = by_key["sampler"]
    assert (sampler["round_trips_sampler"], sampler["round_trips_loop"], sampler["round_trips_registry"]) == (1, 25, 25)
    assert sampler["same_rows"] is True and sampler["registry_same_rows"] is True
    assert sampler["sampler_median_ms"] > 0 and sampler["loop_median_ms"] > 0 and sampler["registry_median_ms"] > 0
    # The baseline had the registry's indexes only, never the sampler's.
    assert sampler["baseline_indexes"] == ["runtime_captures_deployment_id_capture_id_key", "runtime_captures_pkey"]
    assert sampler["templated_registry_same_rows"] is True
    scaling = by_key["sampler_scaling"]
    assert [size["rows"] for size in scaling["sizes"]] == sorted(SMOKE.scaling_rows)
    assert all(size["literal_rows"] > 0 and size["templated_rows"] > 0 for size in scaling["sizes"])
    build = by_key["index_build"]
    assert build["migration"] == {"before": "0002", "after": head_revision()}
    assert all(build["indexes_valid"].values()) and len(build["indexes_valid"]) == 2
    assert build["concurrent_build"]["failed"] == 0 and build["concurrent_build"]["inserts"] > 0
    assert build["rows_written_during_concurrent_phase"] == build["inserts_acknowledged_during_concurrent_phase"]
    assert by_key["hard_wall"]["all_cut_at_wall"] is True
    assert by_key["overhead"]["invokes_each"] == SMOKE.overhead_invokes
    assert 0 <= by_key["overhead"]["drift_powertools_routing_validation_share"] <= 1
    assert by_key["cold_start"]["import_median_s"]["lambda"]["traverse_answer"] > 0
    assert by_key["traverse_scale"]["runs"] == SMOKE.traverse_runs
    assert by_key["byok"]["first_decrypt_ms"] > 0
    prompt = by_key["prompt_bound"]
    assert prompt["samples"] == 125 and prompt["prompt_chars"] <= prompt["ceiling_chars"]
    replay = by_key["replay"]
    assert (replay["llm_requests_during_replays"], replay["charges_during_replays"]) == (0, 0)
    assert replay["full_median_ms"] > 0 and replay["replay_median_ms"] > 0


@pytest.mark.slow
def test_report_renders_every_benchmark_and_the_machine(smoke_run: BenchRun) -> None:
    doc = render(smoke_run.results, smoke_run.machine)
    assert doc.startswith("# Benchmarks\n")
    assert "make bench" in doc
    for needle in ("cores", "PostgreSQL", "Python", "## Summary"):
        assert needle in doc
    for result in smoke_run.results:
        assert f"## {result.title}" in doc


@pytest.mark.slow
def test_spec_slice_benchmark_slices_a_real_document(smoke_run: BenchRun) -> None:
    figures = next(r.figures for r in smoke_run.results if r.key == "spec_slice")
    assert figures["endpoints"] == 20  # the Petstore's 20 operations, all declared
    assert figures["not_in_contract"] == {"petstore": 0}
    assert 0 < figures["slice_chars"]["petstore"] <= figures["budget_chars"]
    assert figures["json_loads_median_ms"] > 0 and figures["cold_median_ms"] > 0 and figures["warm_median_ms"] > 0
