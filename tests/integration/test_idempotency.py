"""DESIGN §8 through the real handler: DynamoDB on moto, Postgres, and the HTTP fake LLM."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from devtools.aws import IDEMPOTENCY_TABLE, create_idempotency_table, delete_idempotency_table
from devtools.fake_llm import FakeLlmServer, Step
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.db import Database
from service.drift.idempotency import KEY_PREFIX, scoring_key
from service.drift.models import ScoreRequest
from service.drift.spec.source import load_spec_text
from service.errors import RequestInProgress, UpstreamError
from tests.conftest import reset_service_caches
from tests.integration.drift_support import call_direct, call_http, score_body


@pytest.fixture
def tenant(service_env: dict[str, str], admin_db: Any) -> Tenant:
    tenant = make_tenant(admin_db, "pro")
    for path in ("/a", "/b"):
        add_capture(admin_db, tenant.workspace_id, "GET", path)
    return tenant


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the service sends from now on."""
    sent: list[str] = []
    original = Database.query

    def counting(self: Database, sql: str, **kwargs: Any) -> Any:
        sent.append(sql)
        return original(self, sql, **kwargs)

    monkeypatch.setattr(Database, "query", counting)
    return sent


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The DynamoDB operations any boto3 client of this process attempts from now on."""
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def item_calls(calls: list[str]) -> list[str]:
    """The service's record operations (the test's own DeleteTable/CreateTable left out)."""
    return [name for name in calls if name.endswith("Item")]


def records(endpoint: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    items: list[dict[str, Any]] = client.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    return items


def body_of(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    return score_body(tenant, [("GET", "/a"), ("GET", "/b")], **extra)


def test_replay_is_the_stored_reply_with_no_llm_call_metering_or_database_work(
    tenant, admin_db, llm_server, aws_endpoint, statements
):
    status, first = call_http(body_of(tenant))
    assert status == 200, first
    assert first["replayed"] is False and first["tokens_used"] > 0
    charged = tokens_used(admin_db, tenant.org_id)
    assert charged == first["tokens_used"]
    statements.clear()

    status, again = call_http(body_of(tenant))
    assert status == 200, again
    assert again == {**first, "replayed": True}
    assert len(llm_server.requests) == 1
    assert tokens_used(admin_db, tenant.org_id) == charged
    assert statements == []

    (record,) = records(aws_endpoint)
    assert record["id"]["S"].startswith(f"{KEY_PREFIX}#")
    assert record["status"]["S"] == "COMPLETED"
    assert 890 <= int(record["expiration"]["N"]) - time.time() <= 900


def test_http_and_direct_invoke_share_the_key(tenant, llm_server):
    direct = call_direct(body_of(tenant))
    assert direct["replayed"] is False
    status, http = call_http(body_of(tenant))
    assert status == 200
    assert http == {**direct, "replayed": True}
    assert call_direct(body_of(tenant))["replayed"] is True
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"spec_excerpt": "openapi: 3.0.0\ninfo: {title: other}\n"},
        {"endpoints": [{"method": "GET", "path": "/a"}]},
        {"endpoints": [{"method": "GET", "path": "/b"}, {"method": "GET", "path": "/a"}]},
        {"max_samples_per_endpoint": 1},
    ],
    ids=["spec", "endpoints", "endpoint-order", "sample-count"],
)
def test_a_different_spec_endpoint_list_or_sample_count_is_scored_again(tenant, llm_server, change):
    assert call_direct(body_of(tenant))["replayed"] is False
    changed = call_direct({**body_of(tenant), **change})
    assert changed["replayed"] is False
    assert len(llm_server.requests) == 2
    # each under its own key
    assert call_direct({**body_of(tenant), **change})["replayed"] is True
    assert call_direct(body_of(tenant))["replayed"] is True
    assert len(llm_server.requests) == 2


def test_requests_that_consider_the_same_endpoints_share_the_key(tenant, llm_server):
    """The key is over what is scored: method case, duplicates and the default sample count do not matter."""
    call_direct(body_of(tenant))
    same = {
        **body_of(tenant),
        "endpoints": [
            {"method": "get", "path": "/a"},
            {"method": "GET", "path": "/a"},
            {"method": "Get", "path": "/b"},
        ],
        "max_samples_per_endpoint": 3,
    }
    assert call_direct(same)["replayed"] is True
    assert len(llm_server.requests) == 1


def test_scoring_key_names_org_workspace_spec_endpoints_and_sample_count(tenant):
    request = ScoreRequest.model_validate({**body_of(tenant), "max_samples_per_endpoint": 9})
    assert scoring_key(request, load_spec_text("x", None).identity) == {
        "org_id": str(tenant.org_id),
        "workspace_id": str(tenant.workspace_id),
        "spec": "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
        "endpoints": ["GET /a", "GET /b"],
        "samples_per_endpoint": 5,
    }


def test_a_failed_call_is_not_stored(tenant, admin_db, llm_server, aws_endpoint):
    llm_server.enqueue(*[Step(status=500, body=b'{"error": "boom"}') for _ in range(3)])
    status, failed = call_http(body_of(tenant))
    assert (status, failed["error_code"]) == (502, "UPSTREAM_ERROR")
    assert records(aws_endpoint) == []

    status, scored = call_http(body_of(tenant))
    assert status == 200 and scored["replayed"] is False
    assert len(llm_server.requests) == 4
    assert tokens_used(admin_db, tenant.org_id) == scored["tokens_used"]
    assert call_direct(body_of(tenant))["replayed"] is True  # the success is what got stored


@pytest.mark.parametrize(
    "setting", [("IDEMPOTENCY_TTL_SECONDS", "0"), ("IDEMPOTENCY_TABLE_NAME", "")], ids=["ttl-0", "no-table"]
)
def test_idempotency_is_off_with_ttl_0_or_no_table(tenant, llm_server, aws_endpoint, monkeypatch, setting):
    monkeypatch.setenv(*setting)
    reset_service_caches()
    replies = [call_direct(body_of(tenant)) for _ in range(2)]
    assert [r["replayed"] for r in replies] == [False, False]
    assert len(llm_server.requests) == 2
    assert records(aws_endpoint) == []


def test_empty_endpoints_touch_no_table(service_env, admin_db, dynamodb_calls):
    tenant = make_tenant(admin_db, "pro")
    status, reply = call_http(score_body(tenant, []))
    assert status == 200
    assert reply["no_traffic"] is True and reply["replayed"] is False
    assert dynamodb_calls == []


@pytest.fixture
def in_flight(tenant: Tenant, llm_server: FakeLlmServer) -> Iterator[Future[dict[str, Any]]]:
    """A direct invoke of ``body_of(tenant)`` held inside the LLM call for 2 s."""
    llm_server.enqueue(Step(delay_s=2.0))
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(call_direct, body_of(tenant))
        deadline = time.monotonic() + 10
        while not llm_server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert llm_server.requests, "the first call never reached the LLM"
        yield first


def test_duplicate_in_flight_is_409_over_http_and_request_in_progress_direct(tenant, llm_server, in_flight):
    status, body = call_http(body_of(tenant), request_id="req-dup")
    assert status == 409
    assert body == {
        "error": body["error"],
        "error_code": "REQUEST_IN_PROGRESS",
        "status": 409,
        "request_id": "req-dup",
        "details": {"reason": "in_progress"},
    }
    with pytest.raises(RequestInProgress):
        call_direct(body_of(tenant))

    first = in_flight.result(timeout=10)
    assert first["replayed"] is False
    assert call_direct(body_of(tenant)) == {**first, "replayed": True}
    assert len(llm_server.requests) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("fault", ["endpoint-down", "no-such-table"])
def test_dynamodb_unavailable_still_scores(tenant, admin_db, llm_server, monkeypatch, capsys, dynamodb_calls, fault):
    """Fail open: a cache that is down must not stop scoring (every call scores, none replays)."""
    if fault == "endpoint-down":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{_closed_port()}")
    else:
        monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "no-such-table")
    reset_service_caches()
    status, first = call_http(body_of(tenant))
    assert status == 200, first
    second = call_direct(body_of(tenant))
    assert [first["replayed"], second["replayed"]] == [False, False]
    assert len(llm_server.requests) == 2
    assert tokens_used(admin_db, tenant.org_id) == first["tokens_used"] + second["tokens_used"]
    assert "PutItem" in dynamodb_calls  # the store was really tried ...
    assert capsys.readouterr().out.count('"IdempotencyUnavailable"') >= 2  # ... and its failure reported (EMF)


def _delete_table_while_the_llm_answers(llm_server: FakeLlmServer, aws_endpoint: str) -> threading.Thread:
    def delete_when_called() -> None:
        deadline = time.monotonic() + 10
        while not llm_server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        delete_idempotency_table(IDEMPOTENCY_TABLE, aws_endpoint)

    thread = threading.Thread(target=delete_when_called)
    thread.start()
    return thread


def test_store_lost_after_scoring_returns_the_reply_and_scores_once(
    tenant, admin_db, llm_server, aws_endpoint, capsys, dynamodb_calls
):
    llm_server.enqueue(Step(delay_s=1.0))
    deleter = _delete_table_while_the_llm_answers(llm_server, aws_endpoint)
    try:
        status, reply = call_http(body_of(tenant))
    finally:
        deleter.join()
        create_idempotency_table(IDEMPOTENCY_TABLE, aws_endpoint)
    assert status == 200, reply
    assert reply["replayed"] is False and reply["findings"]
    assert len(llm_server.requests) == 1
    assert tokens_used(admin_db, tenant.org_id) == reply["tokens_used"]
    assert item_calls(dynamodb_calls) == ["PutItem", "UpdateItem"]  # in progress, then the failed save
    assert '"IdempotencyUnavailable"' in capsys.readouterr().out


def test_store_lost_after_a_failed_call_reports_the_real_failure(
    tenant, admin_db, llm_server, aws_endpoint, capsys, dynamodb_calls
):
    llm_server.enqueue(*[Step(status=500, body=b"{}", delay_s=0.5) for _ in range(3)])
    deleter = _delete_table_while_the_llm_answers(llm_server, aws_endpoint)
    try:
        with pytest.raises(UpstreamError):
            call_direct(body_of(tenant))
    finally:
        deleter.join()
        create_idempotency_table(IDEMPOTENCY_TABLE, aws_endpoint)
    assert tokens_used(admin_db, tenant.org_id) == 0
    assert item_calls(dynamodb_calls) == ["PutItem", "DeleteItem"]  # in progress, then the failed delete
    assert '"IdempotencyUnavailable"' in capsys.readouterr().out
