"""DESIGN §8 under a burst: 20 identical direct invokes spend once.

Step Functions retries, redriven executions and re-run jobs send the same payload again, each as
its own Lambda invocation (its own request id, so the metering's per-invocation guard does not
apply). Each caller here retries ``RequestInProgress`` as the state machine does, so every one
ends with a reply: the one that scored, or its replay.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.fake_llm import FakeLlmServer, Step
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.config import get_settings
from service.errors import RequestInProgress
from tests.reliability.conftest import APPS, Figures, context, drift_body

CALLS = 20
RETRY_INTERVAL_S = 0.1
MAX_ATTEMPTS = 100


def _ledger_charges(db: Any, tenant: Tenant) -> int:
    rows = db.run("SELECT count(*) FROM contract_drift.usage_ledger WHERE org_id = :org", org=tenant.org_id)
    return int(rows[0][0])


def _burst(tenant: Tenant) -> tuple[list[dict[str, Any]], Counter[str], int]:
    """``CALLS`` identical direct invokes released together, each retrying ``RequestInProgress``.

    Returns the final replies, how each call's first attempt ended, and the retries made.
    """
    app = APPS["drift"][0]
    gate = threading.Barrier(CALLS)
    first_outcomes: Counter[str] = Counter()
    retries = 0
    lock = threading.Lock()

    def one(_: int) -> dict[str, Any]:
        nonlocal retries
        gate.wait()
        for attempt in range(MAX_ATTEMPTS):
            try:
                reply: dict[str, Any] = app.lambda_handler(drift_body(tenant), context("ContractDriftFunction"))
            except RequestInProgress:
                with lock:
                    retries += attempt > 0
                    if attempt == 0:
                        first_outcomes["request_in_progress"] += 1
                time.sleep(RETRY_INTERVAL_S)
                continue
            with lock:
                retries += attempt > 0
                if attempt == 0:
                    first_outcomes["replayed" if reply["replayed"] else "scored"] += 1
            return reply
        raise AssertionError("still in progress after every retry")

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        replies = list(pool.map(one, range(CALLS)))
    return replies, first_outcomes, retries


@pytest.mark.parametrize("llm_delay_s", [0.5, 0.0], ids=["slow-llm", "fast-llm"])
def test_a_burst_of_identical_invokes_calls_the_llm_once_and_charges_once(
    llm_delay_s: float, service_env: dict[str, str], admin_db: Any, llm_server: FakeLlmServer, figures: Figures
) -> None:
    tenant = make_tenant(admin_db, "team")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    llm_server.enqueue(*[Step(delay_s=llm_delay_s) for _ in range(CALLS)])

    started = time.monotonic()
    replies, first_outcomes, retries = _burst(tenant)
    elapsed = time.monotonic() - started

    scored = [r for r in replies if not r["replayed"]]
    charges = _ledger_charges(admin_db, tenant)
    figures.record(
        "idempotent_burst",
        **{
            f"{'slow' if llm_delay_s else 'fast'} LLM ({llm_delay_s} s)": {
                "invokes": CALLS,
                "llm_requests": len(llm_server.requests),
                "metered_charges": charges,
                "tokens_metered": tokens_used(admin_db, tenant.org_id),
                "tokens_per_call": scored[0]["tokens_used"] if scored else None,
                "first_attempt": dict(sorted(first_outcomes.items())),
                "replies_replayed": len(replies) - len(scored),
                "in_progress_retries": retries,
                "burst_seconds": round(elapsed, 2),
            }
        },
    )
    assert len(llm_server.requests) == 1
    assert charges == 1
    assert len(scored) == 1
    assert tokens_used(admin_db, tenant.org_id) == scored[0]["tokens_used"] > 0
    assert all({**r, "replayed": False} == scored[0] for r in replies)  # every caller got the same findings
    if llm_delay_s:
        # every duplicate arrived while the first was still with the LLM
        assert first_outcomes == Counter(scored=1, request_in_progress=CALLS - 1)


def test_without_idempotency_the_same_burst_spends_once_per_invoke(
    service_env: dict[str, str],
    admin_db: Any,
    llm_server: FakeLlmServer,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The baseline the figure above is measured against: what a retry storm cost before §8."""
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "0")
    get_settings.cache_clear()
    tenant = make_tenant(admin_db, "team")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")

    replies, _, _ = _burst(tenant)

    charges = _ledger_charges(admin_db, tenant)
    figures.record(
        "idempotent_burst",
        **{
            "idempotency off (IDEMPOTENCY_TTL_SECONDS=0)": {
                "invokes": CALLS,
                "llm_requests": len(llm_server.requests),
                "metered_charges": charges,
                "tokens_metered": tokens_used(admin_db, tenant.org_id),
                "tokens_per_call": replies[0]["tokens_used"],
                "replies_replayed": sum(1 for r in replies if r["replayed"]),
            }
        },
    )
    assert len(llm_server.requests) == CALLS
    assert charges == CALLS
