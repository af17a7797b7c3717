"""DESIGN §10.3.5 under a burst: 20 concurrent platform calls of one org extend its audit chain
by 20 rows, with no fork, on an empty chain and on one the registry started.

The 20 calls run whole and concurrently; only their audit appends are lined up at a barrier just
before the append is sent, so all 20 reach the database together even on a busy machine, where
the calls of a burst drift apart. Two appends that read the same head would fork the chain: the
independent verifier
(tests/integration/audit_chain.py, no service code) recomputes every entry_hash and counts rows
that chain to the same predecessor.
"""

from __future__ import annotations

import contextlib
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


def line_up_audit_appends(monkeypatch: pytest.MonkeyPatch, *, drop_lock: bool = False) -> None:
    """Hold every audit append until all ``CALLS`` have reached it, then let them go at once
    (``drop_lock``: without the append's advisory lock, for the control)."""
    original = Database.query
    lined_up = threading.Barrier(CALLS)

    def lining_up(self: Database, sql: str, **kwargs: Any) -> list[list[Any]]:
        if sql == APPEND_SQL:
            if drop_lock:
                kwargs["lock_key"] = None
            with contextlib.suppress(threading.BrokenBarrierError):  # a call that failed earlier
                lined_up.wait(timeout=20)
        return original(self, sql, **kwargs)

    monkeypatch.setattr(Database, "query", lining_up)


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
    chain: str,
    service_env: dict[str, str],
    admin_db: Any,
    llm_server: FakeLlmServer,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line_up_audit_appends(monkeypatch)
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


@pytest.mark.parametrize("chain", ["empty", "registry-started"])
def test_control_the_same_burst_without_the_org_lock_forks(
    chain: str,
    service_env: dict[str, str],
    admin_db: Any,
    llm_server: FakeLlmServer,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: the same lined-up burst with the append's advisory lock taken away
    (everything else as shipped): the verifier sees the forks that the lock prevents. On a
    started chain ``FOR UPDATE`` still locks the head, yet a waiter, once the head is released,
    goes on with the head it found (READ COMMITTED) rather than the row just added."""
    line_up_audit_appends(monkeypatch, drop_lock=True)
    tenant = make_tenant(admin_db, "team", {"ai_tokens_per_month": -1})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    registry_rows = len(start_registry_chain(admin_db, tenant.org_id, tenant.owner_id)) if chain != "empty" else 0
    replies = _burst(tenant)
    report = verify_chain(read_chain(admin_db, tenant.org_id))
    figures.record(
        "audit_chain_burst",
        **{
            f"{chain}, control: no advisory lock": {
                "concurrent_calls": CALLS,
                "replies_200": sum(1 for reply in replies if reply["provider"] == "platform"),
                "registry_rows_before": registry_rows,
                "new_rows": report.rows - registry_rows,
                "hashes_recomputed": report.rows,
                "bad_hashes": len(report.bad_hashes),
                "broken_links": len(report.broken_links),
                "forks": report.forks,
                "chain_verifies": report.verifies,
            }
        },
    )
    assert report.rows == registry_rows + CALLS
    assert report.forks > 0 and not report.verifies
