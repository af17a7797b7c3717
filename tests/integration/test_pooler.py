"""DESIGN §11.1: the service is safe behind a transaction pooler (a real PgBouncer here)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.pgbouncer import PgBouncer
from devtools.seed import add_capture, make_tenant, tokens_used
from service.config import get_settings
from service.db import Database, StatementTimeout, database, parse_database_url
from service.errors import DatabaseError
from tests.conftest import reset_service_caches
from tests.integration.drift_support import call_http, score_body

pytestmark = pytest.mark.through_pgbouncer

HOSTILE = "o'rg\\' ; SELECT 1; -- \\x27 ünïcode"


def test_settings_are_set_for_the_transaction_only(service_env):
    org = str(uuid.uuid4())
    rows = database.query(
        "SELECT current_setting('statement_timeout'), current_setting('app.current_org_id', true),"
        " current_setting('app.label', true)",
        timeout_ms=1234,
        tx_settings={"app.current_org_id": org, "app.label": HOSTILE},
    )
    assert rows == [["1234ms", org, HOSTILE]]  # inlined values arrive exactly as given
    after = database.query("SELECT current_setting('statement_timeout'), current_setting('app.current_org_id', true)")
    assert after[0][0] == "0"
    assert after[0][1] in (None, "")


def test_failed_statement_is_rolled_back_and_the_connection_stays_usable(service_env):
    with pytest.raises(DatabaseError):
        database.query("SELECT no_such_column FROM organizations WHERE id = :id", id=uuid.uuid4())
    # Were the failed transaction left open, this would be refused ("current transaction is aborted").
    assert database.query("SELECT :n::int + 1", n=1) == [[2]]
    with pytest.raises(StatementTimeout):
        database.query("SELECT pg_sleep(:s)", timeout_ms=50, s=5)
    assert database.query("SELECT current_setting('statement_timeout'), :n::int", n=7) == [["0", 7]]


def test_advisory_lock_is_a_transaction_lock(service_env):
    key = f"lock-test-{uuid.uuid4()}"
    database.query("SELECT :k::text", lock_key=key, k=key)
    # Released at COMMIT: no advisory lock is left on any session.
    held = database.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert held == [[0]]


def test_concurrent_statements_share_a_small_pool(service_env):
    """The issue's load: many clients over few server connections, parameterised statements."""

    def client(n: int) -> int:
        total = 0
        for i in range(40):
            total += database.query("SELECT :a::int + :b::int", a=n, b=i)[0][0]
        database.close()
        return total

    with ThreadPoolExecutor(max_workers=16) as pool:
        totals = list(pool.map(client, range(16)))
    assert totals == [40 * n + sum(range(40)) for n in range(16)]


def test_scoring_calls_in_parallel_meter_exactly(idempotency_off, admin_db):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")

    def score(_: int) -> tuple[int, Any]:
        try:
            return call_http(score_body(tenant, [("GET", "/a")]))
        finally:
            database.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(pool.map(score, range(24)))
    assert [status for status, _ in replies] == [200] * 24
    assert tokens_used(admin_db, tenant.org_id) == sum(body["tokens_used"] for _, body in replies)


@pytest.mark.parametrize("database_url", ["pgbouncer"], indirect=True)
def test_no_setting_survives_on_the_pooled_server_connection(service_env, pgbouncer: PgBouncer, monkeypatch):
    """Pool of one: the service's server connection is the next client's. Nothing it set may be
    there; a session-level ``set_config`` (what the service used to do) would be."""
    single = pgbouncer.url_for(service_env["DATABASE_URL"], single_connection=True)
    monkeypatch.setenv("DATABASE_URL", single)
    reset_service_caches()
    database.close()
    assert get_settings().database_url == single
    service_pid = database.query(
        "SELECT pg_backend_pid()", timeout_ms=4321, tx_settings={"app.current_org_id": str(uuid.uuid4())}
    )[0][0]
    other = parse_database_url(single).connect()
    try:
        pid, timeout, org = other.run(
            "SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('app.current_org_id', true)"
        )[0]
        assert pid == service_pid  # the same server connection
        assert (timeout, org or "") == ("0", "")
        # The control: a session-level setting does survive to the next client of the connection.
        other.run("SELECT set_config('statement_timeout', '4321ms', false)")
        another = Database()
        assert another.query("SELECT current_setting('statement_timeout')") == [["4321ms"]]
        another.close()
        other.run("RESET statement_timeout")
    finally:
        other.close()
        database.close()
