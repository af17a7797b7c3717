"""Case 3: the database fails under the warm functions — reconnect once, or a quick typed 500.

The drift function's basic cases live in tests/integration/test_drift_faults.py; this adds
traverse_answer, both functions sharing one warm process, a TCP port nobody listens on, a
server that accepts and never answers, and the database vanishing while the LLM is answering.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.fake_llm import Step
from devtools.postgres import FUNCTIONS_ROLE
from devtools.seed import Tenant, add_capture, add_edge, add_node, make_tenant, tokens_used
from service.config import get_settings
from service.db import database
from service.errors import DatabaseError
from tests.conftest import reset_service_caches
from tests.reliability.conftest import APPS, call_route, context, drift_body, has_traceback

# Each test repeats one request on purpose: see the fixture.
pytestmark = pytest.mark.usefixtures("idempotency_off")

# The service's sessions: those of the functions' login role (the tests' own log in as others).
KILL_SQL = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{FUNCTIONS_ROLE}'"
WARM_ROUNDS = 10


def _status(reply: dict[str, Any]) -> int:
    return int(reply["statusCode"])


@pytest.fixture
def stocked(traverse_on: dict[str, str], admin_db: Any) -> tuple[Tenant, str]:
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    a, b = add_node(admin_db, "warm start"), add_node(admin_db, "warm next")
    add_edge(admin_db, a, b)
    return tenant, str(a)


def test_connection_killed_between_every_warm_invoke_of_both_functions(stocked, admin_db, superuser_db, figures):
    """Both functions share the warm process' connection; it is killed before every call."""
    tenant, start = stocked
    assert _status(call_route("traverse", {"text": start})) == 200
    killed = survived = 0
    for round_ in range(WARM_ROUNDS):
        killed += sum(1 for row in superuser_db.run(KILL_SQL) if row[0])
        if round_ % 2:
            reply = call_route("traverse", {"text": start, "max_hops": 2})
            ok = _status(reply) == 200 and '"hops_executed":2' in reply["body"]
        else:
            reply = call_route("drift", drift_body(tenant))
            ok = _status(reply) == 200
        survived += ok
    figures.record("db_connection_killed", warm_invokes=WARM_ROUNDS, backends_killed=killed, succeeded=survived)
    assert killed >= WARM_ROUNDS
    assert survived == WARM_ROUNDS
    assert tokens_used(admin_db, tenant.org_id) > 0


def test_traverse_connection_killed_then_direct_invoke_succeeds(stocked, superuser_db):
    _, start = stocked
    app = APPS["traverse"][0]
    assert app.lambda_handler({"text": start}, context("TraverseAnswerFunction"))["hops_executed"] >= 1
    assert any(row[0] for row in superuser_db.run(KILL_SQL))
    reply = app.lambda_handler({"text": start}, context("TraverseAnswerFunction"))
    assert reply["hops_executed"] == 2


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 with no listener (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def _point_database_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    database.close()
    reset_service_caches()


DOWN_URLS = {
    "unix socket missing": "postgresql://postgres@/postgres?host=/nonexistent-socket-dir",
    "tcp port closed": "postgresql://postgres:pw@127.0.0.1:{port}/postgres",
}


@pytest.mark.parametrize("where", list(DOWN_URLS))
def test_database_down_is_a_quick_500_for_both_functions_and_nothing_is_metered(
    where, stocked, monkeypatch, admin_db, llm_server, figures
):
    tenant, start = stocked
    _point_database_at(monkeypatch, DOWN_URLS[where].format(port=_closed_port()))
    timings = {}
    try:
        for route, body in (("drift", drift_body(tenant)), ("traverse", {"text": start})):
            started = time.monotonic()
            reply = call_route(route, body, timeout_ms=3_000)
            timings[route] = round((time.monotonic() - started) * 1000, 1)
            assert _status(reply) == 500, reply
            assert '"error_code":"DATABASE_ERROR"' in reply["body"]
            assert not has_traceback(reply["body"])
            assert timings[route] < 3_000
            with pytest.raises(DatabaseError):
                APPS[route][0].lambda_handler(body, context(APPS[route][2], 3_000))
    finally:
        database.close()
    assert llm_server.requests == []  # no LLM tokens spent for a request that cannot be metered
    assert tokens_used(admin_db, tenant.org_id) == 0
    figures.record(
        "db_down", **{f"{where.replace(' ', '_')}_ms_{route}": ms for route, ms in timings.items()}, metered_tokens=0
    )


# Answered after ~3.3 s (past the wall and the 3 s left) until 6ab9f7d bounded every socket wait by the deadline.
def test_hung_database_does_not_hold_traverse_past_its_wall(traverse_on, monkeypatch, figures):
    # Warm first (token cached, its Secrets Manager client built), as the wall is about warm work.
    assert _status(call_route("traverse", {"text": "anything", "budget_ms": 500}, timeout_ms=3_000)) == 200
    database.close()
    with silent_server() as port:
        _point_database_at(monkeypatch, f"postgresql://postgres:pw@127.0.0.1:{port}/postgres")
        try:
            started = time.monotonic()
            reply = call_route("traverse", {"text": "anything", "budget_ms": 500}, timeout_ms=3_000)
            elapsed_ms = (time.monotonic() - started) * 1000
        finally:
            database.close()
    figures.record("db_hung", traverse_budget_ms=500, reply_after_ms=round(elapsed_ms), status=_status(reply))
    # Generous margin (CPU contention on 2 cores); the bug this guards against held ~3.3 s.
    assert elapsed_ms < 500 + 500, elapsed_ms


def test_database_lost_while_the_llm_answers_charges_nothing_and_says_so(
    stocked, admin_db, superuser_db, llm_server, monkeypatch, figures
):
    """The LLM completes, then metering cannot reach Postgres: 500 DATABASE_ERROR, and no partial charge.

    While the LLM is "thinking", the warm connection is killed and the database address starts
    refusing connections (the settings the reconnect reads now point at a closed port).
    """
    tenant, _ = stocked
    assert _status(call_route("drift", drift_body(tenant))) == 200  # warm connection
    used_before = tokens_used(admin_db, tenant.org_id)
    llm_server.reset()
    llm_server.enqueue(Step(delay_s=0.6))
    closed = f"postgresql://postgres:pw@127.0.0.1:{_closed_port()}/postgres"

    def cut_database() -> None:
        time.sleep(0.2)
        monkeypatch.setenv("DATABASE_URL", closed)
        get_settings.cache_clear()
        superuser_db.run(KILL_SQL)

    cutter = threading.Thread(target=cut_database)
    cutter.start()
    try:
        started = time.monotonic()
        reply = call_route("drift", drift_body(tenant))
        elapsed_ms = (time.monotonic() - started) * 1000
    finally:
        cutter.join()
        database.close()
    figures.record(
        "db_lost_after_llm",
        status=_status(reply),
        reply_after_ms=round(elapsed_ms),
        provider_tokens_spent=llm_server.completed_tokens,
        tokens_metered=tokens_used(admin_db, tenant.org_id) - used_before,
    )
    assert _status(reply) == 500, reply
    assert '"error_code":"DATABASE_ERROR"' in reply["body"]
    assert llm_server.completed_tokens > 0  # the provider did the work...
    assert tokens_used(admin_db, tenant.org_id) == used_before  # ...and nothing half-charged
