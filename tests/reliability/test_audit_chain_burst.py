"""DESIGN §10.3.5 under a burst: 20 concurrent platform calls of one org extend its audit chain
by 20 rows, with no fork, on an empty chain and on one the registry started.

Every call ends in its own audit append at about the same moment (the fake LLM answers at once).
Two appends that read the same head would fork the chain: the independent verifier
(tests/integration/audit_chain.py, no service code) recomputes every entry_hash and counts rows
that chain to the same predecessor.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.fake_llm import FakeLlmServer
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.db import Database
from service.drift.audit import APPEND_SQL
from tests.integration.audit_chain import read_chain, start_registry_chain, verify_chain
from tests.reliability.conftest import APPS, Figures, context, drift_body

# The 20 calls are one payload on purpose: each is its own completion, not a replay.
pytestmark = pytest.mark.usefixtures("idempotency_off")

CALLS = 20


def _burst(tenant: Tenant) -> list[dict[str, Any]]:
    app = APPS["drift"][0]
    gate = threading.Barrier(CALLS)

    def one(_: int) -> dict[str, Any]:
        gate.wait()
        reply: dict[str, Any] = app.lambda_handler(drift_body(tenant), context("ContractDriftFunction"))
        return reply

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        return list(pool.map(one, range(CALLS)))


@pytest.mark.parametrize("chain", ["empty", "registry-started"])
def test_concurrent_calls_extend_the_chain_without_forking(
    chain: str, service_env: dict[str, str], admin_db: Any, llm_server: FakeLlmServer, figures: Figures
) -> None:
    tenant = make_tenant(admin_db, "team", {"ai_tokens_per_month": -1})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    registry_rows = len(start_registry_chain(admin_db, tenant.org_id, tenant.owner_id)) if chain != "empty" else 0

    started = time.monotonic()
    replies = _burst(tenant)
    elapsed = time.monotonic() - started

    rows = read_chain(admin_db, tenant.org_id)
    report = verify_chain(rows)
    ours = rows[registry_rows:]
    figures.record(
        "audit_chain_burst",
        **{
            chain: {
                "concurrent_calls": CALLS,
                "replies_200": sum(1 for reply in replies if reply["provider"] == "platform"),
                "llm_requests": len(llm_server.requests),
                "registry_rows_before": registry_rows,
                "new_rows": len(rows) - registry_rows,
                "ai_usage_rows": sum(1 for row in ours if row["event_type"] == "ai_usage"),
                "hashes_recomputed": report.rows,
                "bad_hashes": len(report.bad_hashes),
                "broken_links": len(report.broken_links),
                "forks": report.forks,
                "chain_verifies": report.verifies,
                "burst_seconds": round(elapsed, 2),
            }
        },
    )
    assert len(replies) == CALLS and len(llm_server.requests) == CALLS
    assert len(rows) == registry_rows + CALLS
    assert all(row["event_type"] == "ai_usage" for row in ours)
    assert report.verifies, report
    if registry_rows:
        assert ours[0]["prev_hash"] == rows[registry_rows - 1]["entry_hash"]
    assert sum(row["metadata"]["total_tokens"] for row in ours) == tokens_used(admin_db, tenant.org_id)


def test_control_the_same_burst_without_the_org_lock_forks(
    service_env: dict[str, str],
    admin_db: Any,
    llm_server: FakeLlmServer,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: the audit append's advisory lock taken away (everything else as shipped).
    The burst really does collide, and the verifier sees the forks that the lock prevents."""
    original = Database.query

    def without_audit_lock(self: Database, sql: str, **kwargs: Any) -> list[list[Any]]:
        if sql == APPEND_SQL:
            kwargs["lock_key"] = None
        return original(self, sql, **kwargs)

    monkeypatch.setattr(Database, "query", without_audit_lock)
    tenant = make_tenant(admin_db, "team", {"ai_tokens_per_month": -1})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    replies = _burst(tenant)
    report = verify_chain(read_chain(admin_db, tenant.org_id))
    figures.record(
        "audit_chain_burst",
        **{
            "empty, control: no advisory lock": {
                "concurrent_calls": CALLS,
                "replies_200": sum(1 for reply in replies if reply["provider"] == "platform"),
                "new_rows": report.rows,
                "hashes_recomputed": report.rows,
                "bad_hashes": len(report.bad_hashes),
                "broken_links": len(report.broken_links),
                "forks": report.forks,
                "chain_verifies": report.verifies,
            }
        },
    )
    assert report.rows == CALLS
    assert report.forks > 0 and not report.verifies
