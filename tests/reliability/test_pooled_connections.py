"""DESIGN §11: many Lambda instances, few database connections.

200 clients at once, each holding its own connection as a warm Lambda instance does, each making
one scoring call and one traverse call: through PgBouncer (transaction mode, a pool of 5 server
connections), and straight to a PostgreSQL whose ``max_connections`` is below the client count.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.events import reply_json
from devtools.pgbouncer import PgBouncer
from devtools.seed import Tenant, add_capture, add_edge, add_node, make_tenant, tokens_used
from service.config import get_settings
from service.db import database
from service.errors import ServiceError
from tests.reliability.conftest import APPS, Figures, call_route, context, drift_body

CLIENTS = 200
LIMITS = {"ai_tokens_per_month": 1_000_000_000}
# 200 "instances" share this process's 2 cores, so a call's wall time is far above a real one's:
# each gets 5 minutes, so a slow machine does not turn CPU queueing into deadline errors.
TIMEOUT_MS = 300_000


def _outcome(reply: dict[str, Any]) -> str:
    if reply["statusCode"] == 200:
        return "200"
    return f"{reply['statusCode']} {reply_json(reply).get('error_code')}"


def _direct_drift(tenant: Tenant) -> dict[str, Any]:
    """A direct invoke (as Step Functions makes), shaped like an HTTP reply for counting.

    Not the HTTP route: Powertools' resolver keeps the Lambda context on the module-level app,
    so handlers run on threads of one process can read another call's request id (one Lambda
    process never runs two invocations at once); metering is keyed by that id.
    """
    try:
        reply = APPS["drift"][0].lambda_handler(drift_body(tenant), context("ContractDriftFunction", TIMEOUT_MS))
    except ServiceError as exc:
        return {"statusCode": exc.status, "body": json.dumps({"error_code": exc.error_code})}
    return {"statusCode": 200, "body": json.dumps(reply)}


def _load(tenant: Tenant, seed: str) -> tuple[Counter[str], Counter[str], int, float]:
    """Every client: one drift call, one traverse call, then it holds its connection until all are done.

    Returns the outcomes per route, the sum of ``tokens_used`` of the drift replies, and the seconds.
    """
    outcomes: dict[str, Counter[str]] = {"drift": Counter(), "traverse": Counter()}
    tokens = 0
    lock = threading.Lock()
    start, finish = threading.Barrier(CLIENTS), threading.Barrier(CLIENTS)

    def client(_: int) -> None:
        nonlocal tokens
        start.wait()
        try:
            drift = _direct_drift(tenant)
            traverse = call_route("traverse", {"text": seed, "max_hops": 2}, timeout_ms=TIMEOUT_MS)
            with lock:
                outcomes["drift"][_outcome(drift)] += 1
                outcomes["traverse"][_outcome(traverse)] += 1
                if drift["statusCode"] == 200:
                    tokens += int(reply_json(drift)["tokens_used"])
            finish.wait()  # all clients' connections are open at once, as warm instances' are
        finally:
            database.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return outcomes["drift"], outcomes["traverse"], tokens, time.monotonic() - started


@pytest.fixture
def load_env(traverse_on: dict[str, str], idempotency_off: None, admin_db: Any) -> tuple[Tenant, str]:
    tenant = make_tenant(admin_db, "team", LIMITS)
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    a, b, c = (add_node(admin_db, name) for name in ("seed", "next", "last"))
    add_edge(admin_db, a, b)
    add_edge(admin_db, b, c)
    return tenant, str(a)


@pytest.mark.slow
@pytest.mark.parametrize("route", ["pgbouncer", "direct"])
def test_200_clients_through_a_pool_of_5_and_straight_to_postgres(
    route: str,
    load_env: tuple[Tenant, str],
    admin_db: Any,
    pgbouncer: PgBouncer,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    tenant, seed = load_env
    url = get_settings().database_url or ""
    if route == "pgbouncer":
        url = pgbouncer.url_for(url)
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
    max_connections = int(admin_db.run("SHOW max_connections")[0][0])
    assert max_connections < CLIENTS  # the point of the direct run

    drift, traverse, replied_tokens, seconds = _load(tenant, seed)

    metered = tokens_used(admin_db, tenant.org_id)
    errors = sum(n for outcomes in (drift, traverse) for code, n in outcomes.items() if code != "200")
    figures.record(
        "pooled_connections",
        **{
            route: {
                "clients": CLIENTS,
                "calls": CLIENTS * 2,
                "server_connections": f"pool of {pgbouncer.pool_size}" if route == "pgbouncer" else "one per client",
                "max_connections": max_connections,
                "drift_outcomes": dict(sorted(drift.items())),
                "traverse_outcomes": dict(sorted(traverse.items())),
                "errors": errors,
                "metered_tokens": metered,
                "sum_tokens_used_replied": replied_tokens,
                "metering_exact": metered == replied_tokens,
                "seconds": round(seconds, 1),
            }
        },
    )
    assert metered == replied_tokens  # nothing charged for a failed call, nothing lost for a good one
    if route == "pgbouncer":
        assert errors == 0, (drift, traverse)
        assert drift["200"] == traverse["200"] == CLIENTS
    else:
        # More clients than max_connections: the ones past it are refused ("too many clients").
        assert drift["500 DATABASE_ERROR"] > 0
