"""Faults the scorer must survive or report cleanly; nothing is charged for failed work."""

from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.aws import put_secret
from devtools.fake_llm import Step
from devtools.postgres import FUNCTIONS_ROLE
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.db import database
from service.errors import (
    DatabaseError,
    InvalidRequest,
    ResourceLimitExceeded,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from tests.conftest import INTERNAL_TOKEN, TOKEN_SECRET, reset_service_caches
from tests.integration.drift_support import call_direct, call_http, score_body


@pytest.fixture
def pro_tenant(service_env, admin_db) -> Tenant:
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    return tenant


def test_llm_that_keeps_failing_is_502_after_bounded_retries_and_nothing_is_metered(pro_tenant, admin_db, llm_server):
    llm_server.enqueue(*[Step(status=500, body=b'{"error": "boom"}') for _ in range(5)])
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")
    assert len(llm_server.requests) == 3
    assert tokens_used(admin_db, pro_tenant.org_id) == 0


def test_rate_limit_with_retry_after_is_retried(pro_tenant, admin_db, llm_server):
    llm_server.enqueue(Step(status=429, body=b"{}", headers={"Retry-After": "0.2"}), Step(status=503, body=b"{}"))
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert status == 200, body
    assert len(llm_server.requests) == 3
    assert tokens_used(admin_db, pro_tenant.org_id) == body["tokens_used"] > 0


def test_retry_after_longer_than_the_time_left_gives_up_at_once(pro_tenant, llm_server):
    llm_server.enqueue(Step(status=429, body=b"{}", headers={"Retry-After": "120"}))
    started = time.monotonic()
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]), timeout_ms=5_000)
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")
    assert time.monotonic() - started < 5.0
    assert len(llm_server.requests) == 1


def test_slow_llm_against_short_remaining_time_is_504_before_the_lambda_times_out(pro_tenant, admin_db, llm_server):
    llm_server.enqueue(Step(delay_s=4.0))
    started = time.monotonic()
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]), timeout_ms=2_000)
    elapsed = time.monotonic() - started
    assert (status, body["error_code"]) == (504, "UPSTREAM_TIMEOUT")
    assert elapsed < 2.0  # the reply came back inside the Lambda's remaining time
    assert tokens_used(admin_db, pro_tenant.org_id) == 0


def test_refused_request_is_not_retried(pro_tenant, llm_server):
    llm_server.enqueue(Step(status=401, body=b'{"error": "bad key"}'))
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert (status, body["error_code"], body["details"]) == (502, "UPSTREAM_ERROR", {"provider_status": 401})
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize(
    "step",
    [
        Step(body=b'{"choices": [{"message": {"content": "[{\\"sev'),  # truncated JSON
        Step(body=b"<html>gateway</html>"),  # not JSON
        Step(text="I could not find anything to say."),  # no findings JSON in the text
        Step(body=b'{"unexpected": true}'),  # JSON, but not a completion
    ],
)
def test_unusable_replies_are_502_and_only_a_finished_completion_is_metered(pro_tenant, admin_db, llm_server, step):
    """A completion without findings JSON still cost its tokens (DESIGN §10.3.6); a reply that is
    not a completion at all (the fake reports no tokens for those) charges nothing."""
    llm_server.enqueue(step)
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")
    assert tokens_used(admin_db, pro_tenant.org_id) == llm_server.completed_tokens
    assert (llm_server.completed_tokens > 0) == (step.text is not None)


def test_enormous_reply_is_refused(pro_tenant, admin_db, llm_server):
    llm_server.enqueue(Step(body=b'{"x": "' + b"y" * (3 * 1024 * 1024) + b'"}'))
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")


def test_connection_refused_is_502(pro_tenant, monkeypatch):
    monkeypatch.setenv("PLATFORM_LLM_ENDPOINT", "http://127.0.0.1:9")
    reset_service_caches()
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")


def test_direct_invoke_returns_the_plain_reply(pro_tenant):
    reply = call_direct(score_body(pro_tenant, [("GET", "/a")]))
    assert reply["provider"] == "platform"
    assert [f["endpoint"] for f in reply["findings"]] == ["GET /a"]


@pytest.mark.parametrize(
    ("payload_change", "error"),
    [
        ({"org_id": "nope"}, ValidationFailed),
        ({"org_id": str(uuid.uuid4())}, InvalidRequest),
    ],
)
def test_direct_invoke_raises_typed_errors(pro_tenant, payload_change, error):
    with pytest.raises(error):
        call_direct(score_body(pro_tenant, [("GET", "/a")]) | payload_change)


def test_direct_invoke_error_class_names_are_the_codes(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "free")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    with pytest.raises(ResourceLimitExceeded) as raised:
        call_direct(score_body(tenant, [("GET", "/a")]))
    assert type(raised.value).__name__ == "ResourceLimitExceeded"
    pro = make_tenant(admin_db, "pro")
    add_capture(admin_db, pro.workspace_id, "GET", "/a")
    llm_server.enqueue(*[Step(status=503, body=b"{}") for _ in range(3)])
    with pytest.raises(UpstreamError):
        call_direct(score_body(pro, [("GET", "/a")]))
    llm_server.enqueue(Step(delay_s=3.0))
    with pytest.raises(UpstreamTimeout):
        call_direct(score_body(pro, [("GET", "/a")]), timeout_ms=1_500)
    with pytest.raises(ValidationFailed):
        call_direct(["not", "an", "object"])


@pytest.mark.through_pgbouncer
def test_concurrent_platform_calls_meter_exactly(idempotency_off, admin_db, llm_server):
    # Metering under concurrency, beneath idempotency: with it on, 20 identical requests are one
    # scoring (tests/reliability/test_idempotent_burst.py), and 20 concurrent puts to moto on a
    # loaded machine can outlast the DynamoDB read timeout, whose retried put then meets its own
    # in-progress record (a 409, which the state machine retries).
    tenant = make_tenant(admin_db, "team")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda _: call_direct(score_body(tenant, [("GET", "/a")])), range(20)))
    assert all(r["provider"] == "platform" for r in replies)
    assert tokens_used(admin_db, tenant.org_id) == sum(r["tokens_used"] for r in replies) == llm_server.completed_tokens


def test_a_retried_invocation_is_charged_once(pro_tenant, admin_db, idempotency_off):
    # The metering's own per-invocation guard, beneath idempotent replays (which would answer the retry).
    first = call_direct(score_body(pro_tenant, [("GET", "/a")]), request_id="same-request")
    second = call_direct(score_body(pro_tenant, [("GET", "/a")]), request_id="same-request")
    assert first["tokens_used"] == second["tokens_used"]
    assert tokens_used(admin_db, pro_tenant.org_id) == first["tokens_used"]


def test_connection_killed_between_warm_invokes_is_replaced(pro_tenant, superuser_db):
    assert call_http(score_body(pro_tenant, [("GET", "/a")]))[0] == 200
    killed = superuser_db.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role", role=FUNCTIONS_ROLE
    )
    assert killed and all(row[0] for row in killed)
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]))
    assert status == 200, body


def test_database_down_is_a_quick_500_database_error(pro_tenant, monkeypatch, admin_db):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@/postgres?host=/nonexistent-socket-dir")
    database.close()
    reset_service_caches()
    started = time.monotonic()
    status, body = call_http(score_body(pro_tenant, [("GET", "/a")]), timeout_ms=3_000)
    assert (status, body["error_code"]) == (500, "DATABASE_ERROR")
    assert time.monotonic() - started < 3.0
    assert "Traceback" not in body["error"]
    with pytest.raises(DatabaseError):
        call_direct(score_body(pro_tenant, [("GET", "/a")]))
    database.close()


def test_database_that_never_answers_is_reported_inside_the_remaining_time(pro_tenant, monkeypatch):
    """A black-holed database (TCP accepted, nothing ever said) must not hold the Lambda."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/postgres")
        database.close()
        reset_service_caches()
        started = time.monotonic()
        status, body = call_http(score_body(pro_tenant, [("GET", "/a")]), timeout_ms=1_500)
        assert (status, body["error_code"]) == (500, "DATABASE_ERROR")
        assert time.monotonic() - started < 1.5
    finally:
        listener.close()
        database.close()


def test_rotated_token_works_without_a_cold_start(service_env, aws_endpoint, admin_db):
    tenant = make_tenant(admin_db, "pro")
    assert call_http(score_body(tenant, []))[0] == 200
    put_secret(TOKEN_SECRET, "rotated-token-value", aws_endpoint)
    try:
        assert call_http(score_body(tenant, []), token="rotated-token-value")[0] == 200
        # The old token is refused once the cached value is replaced (here: straight away,
        # because the forced refresh above already read the new one).
        assert call_http(score_body(tenant, []), token=INTERNAL_TOKEN)[0] == 400
    finally:
        put_secret(TOKEN_SECRET, INTERNAL_TOKEN, aws_endpoint)


def reservations(admin_db) -> int:
    return int(admin_db.run("SELECT count(*) FROM contract_drift.usage_reservations")[0][0])


def test_failed_call_gives_its_quota_reservation_back(pro_tenant, admin_db, llm_server):
    llm_server.enqueue(*[Step(status=500, body=b"{}") for _ in range(3)])
    assert call_http(score_body(pro_tenant, [("GET", "/a")]))[0] == 502
    assert reservations(admin_db) == 0
    assert call_http(score_body(pro_tenant, [("GET", "/a")]))[0] == 200
    assert reservations(admin_db) == 0  # settled: replaced by the charge


def test_calls_in_flight_count_against_the_quota_until_they_expire(service_env, admin_db):
    tenant = make_tenant(admin_db, "pro", limits={"ai_tokens_per_month": 5_000})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    admin_db.run(
        "INSERT INTO contract_drift.usage_reservations (request_id, org_id, period_start, tokens, expires_at)"
        " VALUES ('in-flight', :org, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 5000,"
        " now() + interval '1 minute')",
        org=tenant.org_id,
    )
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body["error_code"], body["details"]["in_flight"]) == (403, "RESOURCE_LIMIT_EXCEEDED", True)
    # A reservation left by a crashed invocation stops counting once it expires.
    admin_db.run("UPDATE contract_drift.usage_reservations SET expires_at = now() - interval '1 second'")
    assert call_http(score_body(tenant, [("GET", "/a")]))[0] == 200


def test_byok_and_unlimited_calls_reserve_nothing(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "team", limits={"ai_tokens_per_month": -1})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    llm_server.enqueue(Step(delay_s=0.3))
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = pool.submit(call_direct, score_body(tenant, [("GET", "/a")]))
        time.sleep(0.15)
        assert reservations(admin_db) == 0
        assert pending.result()["provider"] == "platform"
