"""The Lambda Invoke API of the local stack (DESIGN §9), driven by boto3 as by ``aws lambda invoke``.

Also the state machine runs of the ``events/`` inputs against it, and ``make run-state-machine``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devtools import demo_data
from devtools.fake_llm import FakeLlmServer
from devtools.handlers import ROOT
from devtools.local_api import LOCAL_FUNCTION_ARN, LocalApiServer
from devtools.stepfunctions import run_state_machine
from tests.e2e.conftest import MakeStack

DEMO_LABELS = sorted(f"{e['method']} {e['path']}" for e in demo_data.DEMO_ENDPOINTS)


def load(name: str) -> Any:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture
def lambda_client(api_server: LocalApiServer) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=api_server.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


def invoke(client: Any, function_name: str, payload: bytes) -> tuple[dict[str, Any], Any]:
    reply = client.invoke(FunctionName=function_name, Payload=payload)
    return reply, json.loads(reply["Payload"].read())


@pytest.mark.parametrize("name", ["ContractDriftFunction", LOCAL_FUNCTION_ARN.format(name="ContractDriftFunction")])
def test_drift_direct_event_by_logical_id_or_arn(make_stack: MakeStack, lambda_client, name):
    make_stack()
    reply, body = invoke(lambda_client, name, (ROOT / "events" / "contract_drift_direct.json").read_bytes())
    assert reply["StatusCode"] == 200 and "FunctionError" not in reply, body
    assert sorted(finding["endpoint"] for finding in body["findings"]) == DEMO_LABELS
    assert body["provider"] == "platform" and body["tokens_used"] > 0
    assert reply["ExecutedVersion"] == "$LATEST"


def test_traverse_direct_event(make_stack: MakeStack, lambda_client):
    make_stack()
    reply, body = invoke(lambda_client, "TraverseAnswerFunction", json.dumps(load("traverse_answer_direct.json")))
    assert reply["StatusCode"] == 200 and "FunctionError" not in reply, body
    assert isinstance(body, dict) and "statusCode" not in body  # a direct reply, no HTTP envelope


@pytest.mark.parametrize(
    ("org", "workspace", "payload_change", "error_type"),
    [
        (demo_data.FREE_ORG_ID, demo_data.FREE_WORKSPACE_ID, {}, "ResourceLimitExceeded"),
        (demo_data.PRO_ORG_ID, demo_data.PRO_WORKSPACE_ID, {"endpoints": "all"}, "ValidationFailed"),
    ],
)
def test_a_raised_error_is_a_function_error_named_by_its_class(
    make_stack: MakeStack, lambda_client, org, workspace, payload_change, error_type
):
    make_stack()
    payload = demo_data.drift_request(org, workspace) | payload_change
    reply, body = invoke(lambda_client, "ContractDriftFunction", json.dumps(payload).encode())
    assert reply["StatusCode"] == 200 and reply["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type and body["errorMessage"]


def test_unknown_function_is_resource_not_found(make_stack: MakeStack, lambda_client):
    make_stack()
    with pytest.raises(ClientError) as caught:
        lambda_client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")
    error = caught.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "Function not found" in error["Error"]["Message"]


def test_a_body_that_is_not_json_is_invalid_request_content(make_stack: MakeStack, lambda_client):
    make_stack()
    with pytest.raises(ClientError) as caught:
        lambda_client.invoke(FunctionName="ContractDriftFunction", Payload=b"{not json")
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidRequestContentException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("name", ["score_spec_state_machine.json", "score_spec_state_machine_s3.json"])
def test_the_state_machine_events_run_on_the_local_stack(make_stack: MakeStack, api_server: LocalApiServer, name):
    make_stack()
    execution_input = load(name)

    execution = run_state_machine(execution_input, lambda_endpoint=api_server.url, retry_interval_ms=50)

    assert execution.succeeded, (execution.error, execution.cause)
    assert sorted(finding["endpoint"] for finding in execution.output["findings"]) == DEMO_LABELS
    assert [chunk["endpoints_considered"] for chunk in execution.output["chunks"]] == [25, 5]


@pytest.mark.slow
def test_make_run_state_machine_prints_the_execution_output(llm_server: FakeLlmServer):
    """The developer's command: its own embedded stack, the given LLM, the output JSON on stdout."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.stepfunctions",
            "events/score_spec_state_machine.json",
            "--llm-endpoint",
            llm_server.base_url,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    output = json.loads(completed.stdout)
    assert sorted(finding["endpoint"] for finding in output["findings"]) == DEMO_LABELS
    assert len(output["chunks"]) == 2
