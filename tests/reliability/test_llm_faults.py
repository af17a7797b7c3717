"""Case 4: LLM faults the integration suite does not cover yet, and a table of all of them.

Each scenario scripts the fake provider, calls the drift function over HTTP and records the
status, the attempts made, how long it took and what was metered. The rule checked everywhere:
tokens are metered for a completed call only, exactly once, and never for a failed request.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.fake_llm import Step
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.llm import MAX_ATTEMPTS
from tests.reliability.conftest import call_route, drift_body

LAMBDA_MS = 3_000


@pytest.fixture
def tenant(service_env: dict[str, str], admin_db: Any) -> Tenant:
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    return tenant


DROP = Step(drop_connection=True)
SCENARIOS: dict[str, tuple[list[Step], int]] = {
    # name: (script, expected status)
    "connection dropped, then a reply": ([DROP], 200),
    "dropped twice, then a reply": ([DROP, DROP], 200),
    "dropped on every attempt": ([DROP, DROP, DROP, DROP], 502),
    "503, dropped, then a reply": ([Step(status=503, body=b"{}"), DROP], 200),
    "503 on every attempt": ([Step(status=503, body=b"{}")] * 4, 502),
    "429 without Retry-After on every attempt": ([Step(status=429, body=b"{}")] * 4, 502),
    "529 overloaded, then a reply": ([Step(status=529, body=b"{}")], 200),
    "Retry-After: nan": ([Step(status=429, body=b"{}", headers={"Retry-After": "nan"})], 200),
    "Retry-After: -5": ([Step(status=429, body=b"{}", headers={"Retry-After": "-5"})], 200),
    "Retry-After: inf": ([Step(status=429, body=b"{}", headers={"Retry-After": "inf"})], 502),
    "Retry-After: HTTP date": (
        [Step(status=429, body=b"{}", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})],
        200,
    ),
    "500 with a completion body": ([Step(status=500)], 200),
    "200 with usage but no choices": ([Step(body=b'{"usage": {"total_tokens": 999}}')], 502),
    "200 with empty content": ([Step(text="")], 502),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_llm_fault_scenario(name, tenant, admin_db, llm_server, figures):
    script, expected = SCENARIOS[name]
    llm_server.enqueue(*script)
    started = time.monotonic()
    reply = call_route("drift", drift_body(tenant), timeout_ms=LAMBDA_MS)
    elapsed_ms = (time.monotonic() - started) * 1000
    status = int(reply["statusCode"])
    metered = tokens_used(admin_db, tenant.org_id)
    attempts = len(llm_server.requests)
    completed = llm_server.completed_tokens
    figures.record(
        "llm_faults",
        **{
            name: {
                "status": status,
                "attempts": attempts,
                "elapsed_ms": round(elapsed_ms),
                "tokens_metered": metered,
                "provider_completed_tokens": completed,
            }
        },
    )
    assert status == expected, reply["body"]
    assert attempts <= MAX_ATTEMPTS
    assert elapsed_ms < LAMBDA_MS  # every reply comes back inside the Lambda's time
    if status == 200:
        # exactly the one completed call is charged; dropped and failed attempts cost nothing
        assert metered == completed > 0
        assert f'"tokens_used":{metered}' in reply["body"]
    else:
        # only a completion the provider finished costs: one without findings JSON too (DESIGN §10.3.6)
        assert metered == completed


def test_provider_finishing_after_we_gave_up_is_not_metered(tenant, admin_db, llm_server, figures):
    """A reply slower than the time left: 504 inside the Lambda's time; the provider completes later
    (and bills the platform), the org is charged nothing."""
    llm_server.enqueue(Step(delay_s=2.0))
    started = time.monotonic()
    reply = call_route("drift", drift_body(tenant), timeout_ms=1_500)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert int(reply["statusCode"]) == 504
    assert elapsed_ms < 1_500
    deadline = time.monotonic() + 3.0
    while llm_server.completed_tokens == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    figures.record(
        "llm_late_completion",
        status=504,
        lambda_timeout_ms=1_500,
        reply_after_ms=round(elapsed_ms),
        provider_completed_tokens=llm_server.completed_tokens,
        tokens_metered=tokens_used(admin_db, tenant.org_id),
    )
    assert llm_server.completed_tokens > 0
    assert tokens_used(admin_db, tenant.org_id) == 0
