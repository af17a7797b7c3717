"""ScoreSpecStateMachine of template.yaml executed on aws-local-stepfunctions (DESIGN §9).

The definition is the template's; the interpreter is the npm package (Node); each Lambda task is
answered by the real drift handler through the local Lambda Invoke API, on the session's
Postgres, moto and fake LLM. Retry waits are shortened to 50 ms (the interpreter's override).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from devtools.fake_llm import FakeLlmServer, Step
from devtools.local_api import LocalApiServer, serve
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from devtools.stepfunctions import MAX_STATE_PAYLOAD_BYTES, Execution, payload_bytes, run_state_machine

SPEC = "openapi: 3.0.3\ninfo: {title: Items, version: '1'}\npaths: {}\n"
CHUNK = 25


@pytest.fixture(scope="module")
def lambda_api() -> Iterator[LocalApiServer]:
    """The local API with its Lambda Invoke route; each test installs its own environment."""
    server = serve(port=0)
    yield server
    server.close()


@pytest.fixture
def run(service_env: dict[str, str], lambda_api: LocalApiServer) -> Any:
    def execute(execution_input: Any) -> Execution:
        return run_state_machine(execution_input, lambda_endpoint=lambda_api.url, retry_interval_ms=50)

    return execute


def item_endpoints(count: int) -> list[dict[str, str]]:
    return [{"method": "GET", "path": f"/items/{i}"} for i in range(count)]


def machine_input(tenant: Tenant, endpoints: list[dict[str, str]], **fields: Any) -> dict[str, Any]:
    spec = {} if "spec_s3_uri" in fields else {"spec_excerpt": SPEC}
    return {
        "org_id": str(tenant.org_id),
        "workspace_id": str(tenant.workspace_id),
        **spec,
        "endpoints": endpoints,
        **fields,
    }


def chunk_calls(execution: Execution) -> list[dict[str, Any]]:
    """The payloads ScoreChunk sent, in the order of their endpoints (chunks run concurrently)."""
    payloads = [task["parameters"]["Payload"] for task in execution.tasks if task["state"] == "ScoreChunk"]
    return sorted(payloads, key=lambda payload: int(payload["endpoints"][0]["path"].rsplit("/", 1)[1]))


def finding_endpoints(output: dict[str, Any]) -> list[str]:
    return [finding["endpoint"] for finding in output["findings"]]


def test_sixty_endpoints_are_scored_in_chunks_of_25_25_10_in_order(run, admin_db, llm_server: FakeLlmServer):
    tenant = make_tenant(admin_db, "pro")
    for i in (0, 24, 55):  # traffic in the first and last chunks; the middle one has none
        add_capture(admin_db, tenant.workspace_id, "GET", f"/items/{i}")
    endpoints = item_endpoints(60)

    execution = run(machine_input(tenant, endpoints, max_samples_per_endpoint=2))

    assert execution.succeeded, (execution.error, execution.cause)
    calls = chunk_calls(execution)
    assert [call["endpoints"] for call in calls] == [endpoints[:25], endpoints[25:50], endpoints[50:]]
    for call in calls:
        assert call["spec_excerpt"] == SPEC and call["max_samples_per_endpoint"] == 2
        assert call["org_id"] == str(tenant.org_id) and "spec_s3_uri" not in call
    chunks = execution.output["chunks"]
    assert [chunk["endpoints_considered"] for chunk in chunks] == [25, 25, 10]
    assert [chunk["no_traffic"] for chunk in chunks] == [False, True, False]
    assert [finding_endpoints(chunk) for chunk in chunks] == [["GET /items/0", "GET /items/24"], [], ["GET /items/55"]]
    assert finding_endpoints(execution.output) == ["GET /items/0", "GET /items/24", "GET /items/55"]
    assert set(execution.output) == {"findings", "chunks"}
    assert len(llm_server.requests) == 2  # the chunk without traffic asks no model
    assert tokens_used(admin_db, tenant.org_id) == sum(chunk["tokens_used"] for chunk in chunks) > 0


def test_a_transient_llm_outage_is_retried_by_the_state_machine(run, admin_db, llm_server: FakeLlmServer):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/items/3")
    # The function's own three attempts all meet a 503: it raises UpstreamError; the retry succeeds.
    llm_server.enqueue(*[Step(status=503, headers={"retry-after": "0"}) for _ in range(3)])

    execution = run(machine_input(tenant, item_endpoints(10)))

    assert execution.succeeded, (execution.error, execution.cause)
    failures = [e for e in execution.events if e["type"] == "StateFailed" and e["state"]["name"] == "ScoreChunk"]
    retries = [e for e in execution.events if e["type"] == "StateRetried" and e["state"]["name"] == "ScoreChunk"]
    assert [failure["Error"] for failure in failures] == ["UpstreamError"]
    assert len(retries) == 1 and "UpstreamError" in retries[0]["retry"]["retrier"]["ErrorEquals"]
    assert len(chunk_calls(execution)) == 2
    assert len(llm_server.requests) == 4
    assert finding_endpoints(execution.output) == ["GET /items/3"]


def test_a_free_orgs_chunks_are_all_skipped_and_the_run_succeeds(run, admin_db, llm_server: FakeLlmServer):
    tenant = make_tenant(admin_db, "free")
    for i in (1, 27):  # traffic in both chunks (a chunk without any is answered before the plan is checked)
        add_capture(admin_db, tenant.workspace_id, "GET", f"/items/{i}")
    endpoints = item_endpoints(30)

    execution = run(machine_input(tenant, endpoints))

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output == {
        "findings": [],
        "chunks": [
            {"skipped": True, "endpoints": endpoints[:25], "error": "ResourceLimitExceeded"},
            {"skipped": True, "endpoints": endpoints[25:], "error": "ResourceLimitExceeded"},
        ],
    }
    assert len(chunk_calls(execution)) == 2  # caught, not retried
    assert llm_server.requests == []


def test_a_clean_spec_has_no_findings(run, admin_db, llm_server: FakeLlmServer):
    tenant = make_tenant(admin_db, "pro")
    for i in (0, 1, 30):
        add_capture(admin_db, tenant.workspace_id, "GET", f"/items/{i}")
    llm_server.enqueue(Step(text="[]"), Step(text="No drift found: []"))

    execution = run(machine_input(tenant, item_endpoints(40)))

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["findings"] == []
    assert [(chunk["findings"], chunk["no_traffic"]) for chunk in execution.output["chunks"]] == [([], False)] * 2
    assert len(llm_server.requests) == 2


def test_empty_endpoints_score_nothing(run, admin_db, llm_server: FakeLlmServer):
    tenant = make_tenant(admin_db, "pro")

    execution = run(machine_input(tenant, []))

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output == {"findings": [], "chunks": []}
    assert [task["state"] for task in execution.tasks] == ["ValidateRequest"]  # checked, nothing scored
    assert llm_server.requests == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"org_id": None}, id="org_id-missing"),
        pytest.param({"endpoints": None}, id="endpoints-missing"),
        pytest.param({"endpoints": {"method": "GET", "path": "/items/1"}}, id="endpoints-not-a-list"),
        pytest.param({"endpoints": "GET /items/1"}, id="endpoints-a-string"),
        pytest.param({"org_id": "not-a-uuid"}, id="org_id-not-a-uuid"),
        pytest.param({"org_id": "not-a-uuid", "endpoints": []}, id="org_id-not-a-uuid-no-endpoints"),
        pytest.param({"spec_excerpt": None}, id="no-spec"),
        pytest.param({"spec_s3_uri": "s3://specs/a.yaml"}, id="both-specs"),
        pytest.param({"max_samples_per_endpoint": "3"}, id="sample-count-a-string"),
        pytest.param({"endpoints": [{"method": "GET"}]}, id="endpoint-without-path"),
    ],
)
def test_invalid_input_fails_the_execution_with_validation_failed(run, admin_db, llm_server, change):
    tenant = make_tenant(admin_db, "pro")
    execution_input = {"spec_excerpt": SPEC, **machine_input(tenant, item_endpoints(3))}
    for name, value in change.items():
        if value is None:
            del execution_input[name]
        else:
            execution_input[name] = value

    execution = run(execution_input)

    assert execution.status == "FAILED"
    assert execution.error == "ValidationFailed", execution.cause
    assert llm_server.requests == []


SPEC_BUCKET = "state-machine-specs"


def large_document(paths: int) -> str:
    """A real OpenAPI document (JSON) with ``paths`` operations, each with a long description."""
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Large Items API", "version": "1"},
        "paths": {
            f"/items/{i}": {
                "get": {
                    "operationId": f"getItem{i}",
                    "description": f"Item {i}. " + "Returns the item as stored. " * 12,
                    "responses": {"200": {"description": "the item"}},
                }
            }
            for i in range(paths)
        },
    }
    return json.dumps(document)


def test_a_spec_over_256_kib_goes_by_s3_uri_and_every_payload_stays_under_256_kib(
    run, admin_db, aws_endpoint: str, llm_server: FakeLlmServer
):
    document = large_document(1000)
    assert len(document.encode()) > MAX_STATE_PAYLOAD_BYTES
    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    s3.create_bucket(Bucket=SPEC_BUCKET)
    s3.put_object(Bucket=SPEC_BUCKET, Key="items/openapi.json", Body=document.encode())
    uri = f"s3://{SPEC_BUCKET}/items/openapi.json"
    tenant = make_tenant(admin_db, "pro")
    for i in (2, 40):
        add_capture(admin_db, tenant.workspace_id, "GET", f"/items/{i}")

    execution = run(machine_input(tenant, item_endpoints(50), spec_s3_uri=uri))

    assert execution.succeeded, (execution.error, execution.cause)
    calls = chunk_calls(execution)
    assert len(calls) == 2
    assert all(call["spec_s3_uri"] == uri and "spec_excerpt" not in call for call in calls)
    sizes = [payload_bytes(payload) for payload in execution.payloads()]
    assert len(sizes) > 20 and max(sizes) < MAX_STATE_PAYLOAD_BYTES
    assert finding_endpoints(execution.output) == ["GET /items/2", "GET /items/40"]
    # The model saw the document read from S3 (its slice for the chunk's endpoints).
    prompts = " ".join(request.user_prompt for request in llm_server.requests)
    assert "getItem2" in prompts and "getItem40" in prompts


def test_a_rerun_execution_spends_no_tokens_on_chunks_that_succeeded(run, admin_db, llm_server: FakeLlmServer):
    """Redriving (the same input again) replays each scored chunk: no LLM call, no metering."""
    tenant = make_tenant(admin_db, "pro")
    for i in (0, 30):
        add_capture(admin_db, tenant.workspace_id, "GET", f"/items/{i}")
    execution_input = machine_input(tenant, item_endpoints(40))
    first = run(execution_input)
    assert first.succeeded, (first.error, first.cause)
    requests, tokens = len(llm_server.requests), tokens_used(admin_db, tenant.org_id)
    assert requests == 2 and tokens > 0

    again = run(execution_input)

    assert again.succeeded, (again.error, again.cause)
    assert len(llm_server.requests) == requests
    assert tokens_used(admin_db, tenant.org_id) == tokens
    assert [chunk["replayed"] for chunk in again.output["chunks"]] == [True, True]
    assert again.output["findings"] == first.output["findings"]


def test_a_duplicate_chunk_in_flight_is_retried_until_the_first_reply_can_be_replayed(
    service_env, admin_db, lambda_api: LocalApiServer, llm_server: FakeLlmServer
):
    """Two executions of one input on two function instances: the later chunk call meets
    RequestInProgress, the state machine retries it, and it gets the first call's reply."""
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/items/1")
    # Long enough for the second execution (a Node process of its own) to start on a loaded machine.
    llm_server.enqueue(Step(delay_s=4.0))
    execution_input = machine_input(tenant, item_endpoints(5))
    second_instance = serve(port=0)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(run_state_machine, execution_input, lambda_endpoint=lambda_api.url)
            deadline = time.monotonic() + 30
            while not llm_server.requests and time.monotonic() < deadline:
                time.sleep(0.05)  # until the first call is waiting for the model
            assert llm_server.requests, "the first execution never reached the model"
            second = run_state_machine(execution_input, lambda_endpoint=second_instance.url, retry_interval_ms=1000)
            first_execution = first.result()
    finally:
        second_instance.close()

    assert first_execution.succeeded and second.succeeded, (second.error, second.cause)
    failures = [e["Error"] for e in second.events if e["type"] == "StateFailed" and e["state"]["name"] == "ScoreChunk"]
    assert failures and set(failures) == {"RequestInProgress"}
    assert len(llm_server.requests) == 1
    assert second.output["chunks"][0]["replayed"] is True
    assert second.output["findings"] == first_execution.output["findings"]
