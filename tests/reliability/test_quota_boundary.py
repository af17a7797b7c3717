"""Case 5: the monthly quota at its boundary under concurrent calls — measure the overshoot.

Each platform call reserves an upper estimate of its tokens before calling the LLM, under the
org's advisory lock, and is admitted only while usage plus the reservations in flight stays
below the limit; the charge replaces the reservation when the call settles. So however many
calls arrive together, the overshoot is at most one call's tokens (when its estimate holds):
with a check-then-charge design it was (calls admitted before the first charge lands) × (tokens
per call), and a burst of 20 at the boundary overshot by 20 calls.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.fake_llm import Step
from devtools.seed import Tenant, add_capture, make_tenant, set_tokens_used, tokens_used
from service.drift import scorer as scorer_module
from service.drift.prompt import PROMPT_CEILING_CHARS
from service.errors import ResourceLimitExceeded
from service.llm import MAX_OUTPUT_TOKENS
from tests.reliability.conftest import APPS, context, drift_body

# Each test repeats one request on purpose: see the fixture.
pytestmark = pytest.mark.usefixtures("idempotency_off")

CALLS = 20
LIMIT = 10_000


def _burst(tenant: Tenant, calls: int) -> tuple[list[dict[str, Any]], int]:
    """``calls`` concurrent direct invokes released together: (replies, refusals)."""
    app = APPS["drift"][0]
    gate = threading.Barrier(calls)
    replies: list[dict[str, Any]] = []
    refused = 0
    lock = threading.Lock()

    def one(_: int) -> None:
        nonlocal refused
        gate.wait()
        try:
            reply = app.lambda_handler(drift_body(tenant), context("ContractDriftFunction"))
        except ResourceLimitExceeded:
            with lock:
                refused += 1
            return
        with lock:
            replies.append(reply)

    with ThreadPoolExecutor(max_workers=calls) as pool:
        list(pool.map(one, range(calls)))
    return replies, refused


@pytest.fixture
def usage_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The month's usage each admitted call read when its quota was checked (wraps the scorer's provider choice)."""
    seen: list[int] = []
    lock = threading.Lock()
    original = scorer_module.choose_provider

    def recording(org: Any, settings: Any) -> Any:
        choice = original(org, settings)
        with lock:
            seen.append(int(org.tokens_used_this_month))
        return choice

    monkeypatch.setattr(scorer_module, "choose_provider", recording)
    return seen


@pytest.mark.parametrize("llm_delay_s", [0.5, 0.0], ids=["slow-llm", "fast-llm"])
def test_quota_overshoot_under_a_concurrent_burst_is_bounded(
    llm_delay_s, service_env, admin_db, llm_server, usage_seen, figures
):
    tenant = make_tenant(admin_db, "pro", {"ai_tokens_per_month": LIMIT})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    # one call first, to learn what a call costs (same prompt size every time)
    probe = APPS["drift"][0].lambda_handler(drift_body(tenant), context("ContractDriftFunction"))
    per_call = int(probe["tokens_used"])
    headroom = 1
    set_tokens_used(admin_db, tenant.org_id, LIMIT - headroom)  # one token below the limit
    llm_server.reset()
    llm_server.enqueue(*[Step(delay_s=llm_delay_s) for _ in range(CALLS)])
    usage_seen.clear()

    started = time.monotonic()
    replies, refused = _burst(tenant, CALLS)
    elapsed = time.monotonic() - started
    admitted = len(replies)
    final = tokens_used(admin_db, tenant.org_id)
    overshoot = final - LIMIT
    bound = admitted * per_call - headroom
    worst_case_per_call = PROMPT_CEILING_CHARS // 4 + MAX_OUTPUT_TOKENS
    # Calls that passed the plan/usage check before any charge landed: all of them were still
    # stopped by the reservation of the one admitted call.
    passed_usage_check = sum(1 for used in usage_seen if used == LIMIT - headroom)
    figures.record(
        f"quota_boundary_{'slow' if llm_delay_s else 'fast'}_llm",
        passed_usage_check_before_any_charge=passed_usage_check,
        limit=LIMIT,
        used_before=LIMIT - headroom,
        concurrent_calls=CALLS,
        admitted=admitted,
        refused=refused,
        tokens_per_call=per_call,
        final_usage=final,
        overshoot_tokens=overshoot,
        bound_admitted_x_tokens_per_call=bound,
        llm_delay_s=llm_delay_s,
        burst_seconds=round(elapsed, 2),
        worst_case_tokens_per_call_estimate=worst_case_per_call,
    )
    assert admitted + refused == CALLS
    # One token of headroom: the first reservation (an estimate of thousands of tokens) fills it, so
    # exactly one call is admitted whatever the timing, and the overshoot is that call's tokens.
    assert admitted == 1
    assert final == LIMIT - headroom + sum(int(r["tokens_used"]) for r in replies)  # exact metering, no loss
    assert overshoot == per_call - headroom <= bound
    assert overshoot < worst_case_per_call
    assert all(used < LIMIT for used in usage_seen)  # nobody was let in at or over the limit
    count = admin_db.run(
        "SELECT count(*) FROM contract_drift.usage_reservations WHERE org_id = :org", org=tenant.org_id
    )
    assert count[0][0] == 0  # every reservation was settled or released
    # once the burst is metered, the org is over its limit and the next call is refused
    with pytest.raises(ResourceLimitExceeded):
        APPS["drift"][0].lambda_handler(drift_body(tenant), context("ContractDriftFunction"))


def test_calls_one_at_a_time_stop_at_the_limit(service_env, admin_db, llm_server, figures):
    """Sequentially the overshoot is at most one call's tokens: the check sees every earlier charge."""
    tenant = make_tenant(admin_db, "pro", {"ai_tokens_per_month": 2_000})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    app = APPS["drift"][0]
    admitted = per_call = 0
    for _ in range(50):
        try:
            reply = app.lambda_handler(drift_body(tenant), context("ContractDriftFunction"))
        except ResourceLimitExceeded:
            break
        admitted += 1
        per_call = max(per_call, int(reply["tokens_used"]))
    final = tokens_used(admin_db, tenant.org_id)
    figures.record(
        "quota_sequential",
        limit=2_000,
        admitted=admitted,
        tokens_per_call=per_call,
        final_usage=final,
        overshoot_tokens=final - 2_000,
    )
    assert final >= 2_000
    assert final - 2_000 < per_call
