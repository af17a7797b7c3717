"""Every file of ``events/`` goes through the local invoke, against the demo stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools import demo_data
from devtools.events import reply_json
from devtools.handlers import ROOT, find_function
from devtools.invoke import InvokeResult, invoke_event, sam_env_vars
from service.drift.models import MAX_ENDPOINTS_CONSIDERED, ScoreRequest
from tests.e2e.conftest import MakeStack

EVENTS = ROOT / "events"
DEMO_LABELS = sorted(f"{e['method']} {e['path']}" for e in demo_data.DEMO_ENDPOINTS)
COVERED = {
    "contract_drift_http.json",
    "contract_drift_http_base64.json",
    "contract_drift_direct.json",
    "traverse_answer_http.json",
    "traverse_answer_direct.json",
    "score_spec_state_machine.json",
    "score_spec_state_machine_s3.json",  # run in tests/e2e/test_lambda_invoke.py
}


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def invoke(function: str, event: Any) -> InvokeResult:
    return invoke_event(find_function(function), event)


def test_every_event_file_is_exercised_here():
    assert {path.name for path in EVENTS.glob("*.json")} == COVERED


def test_events_use_the_demo_ids_and_token():
    assert load("contract_drift_direct.json") == demo_data.drift_request(
        demo_data.PRO_ORG_ID, demo_data.PRO_WORKSPACE_ID
    )
    assert load("traverse_answer_direct.json") == demo_data.TRAVERSE_REQUEST
    for name in ("contract_drift_http.json", "contract_drift_http_base64.json", "traverse_answer_http.json"):
        assert load(name)["headers"]["authorization"] == f"Bearer {demo_data.DEMO_TOKEN}"


@pytest.mark.parametrize("name", ["contract_drift_http.json", "contract_drift_http_base64.json"])
def test_drift_http_events(make_stack: MakeStack, name: str):
    make_stack(token=demo_data.DEMO_TOKEN)
    event = load(name)
    assert event["isBase64Encoded"] is name.endswith("_base64.json")
    result = invoke("ContractDriftFunction", event)
    assert not result.function_error and result.payload["statusCode"] == 200, result.payload
    body = reply_json(result.payload)
    assert (body["provider"], sorted(f["endpoint"] for f in body["findings"])) == ("platform", DEMO_LABELS)


def test_drift_direct_event(make_stack: MakeStack):
    make_stack(token=demo_data.DEMO_TOKEN)
    result = invoke("ContractDriftFunction", load("contract_drift_direct.json"))
    assert not result.function_error, result.payload
    assert sorted(f["endpoint"] for f in result.payload["findings"]) == DEMO_LABELS


def test_drift_direct_errors_are_typed_for_step_functions(make_stack: MakeStack):
    make_stack(token=demo_data.DEMO_TOKEN)
    free = {**load("contract_drift_direct.json"), "org_id": str(demo_data.FREE_ORG_ID)}
    free["workspace_id"] = str(demo_data.FREE_WORKSPACE_ID)
    result = invoke("ContractDriftFunction", free)
    assert result.function_error and result.payload["errorType"] == "ResourceLimitExceeded"


@pytest.mark.parametrize("enabled", [True, False])
def test_traverse_events(make_stack: MakeStack, enabled: bool):
    make_stack(token=demo_data.DEMO_TOKEN, traverse_enabled=enabled)
    http = invoke("TraverseAnswerFunction", load("traverse_answer_http.json"))
    direct = invoke("TraverseAnswerFunction", load("traverse_answer_direct.json"))
    if enabled:
        assert http.payload["statusCode"] == 200, http.payload
        assert reply_json(http.payload)["schema"] == "mnem.v1.traverse_answer"
        assert not direct.function_error and direct.payload["schema"] == "mnem.v1.traverse_answer"
        assert direct.payload["hops_executed"] >= 1
    else:
        assert http.payload["statusCode"] == 410
        assert direct.function_error and direct.payload["errorType"] == "ExperimentalDisabled"


def test_state_machine_input_scores_chunk_by_chunk(make_stack: MakeStack):
    """What the state machine does with it: chunks of 25, one direct invoke each."""
    make_stack(token=demo_data.DEMO_TOKEN)
    execution = load("score_spec_state_machine.json")
    endpoints = execution["endpoints"]
    assert len(endpoints) > MAX_ENDPOINTS_CONSIDERED  # more than one chunk
    chunks = [endpoints[i : i + MAX_ENDPOINTS_CONSIDERED] for i in range(0, len(endpoints), MAX_ENDPOINTS_CONSIDERED)]
    findings = []
    for chunk in chunks:
        payload = {key: execution[key] for key in ("org_id", "workspace_id", "spec_excerpt")} | {"endpoints": chunk}
        ScoreRequest.model_validate(payload)
        result = invoke("ContractDriftFunction", payload)
        assert not result.function_error, result.payload
        findings += result.payload["findings"]
    assert sorted(f["endpoint"] for f in findings) == DEMO_LABELS


def test_sam_env_vars_file(tmp_path: Path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": "1", "B": "1"}, "ContractDriftFunction": {"B": 2}}))
    assert sam_env_vars(path, find_function("ContractDriftFunction")) == {"A": "1", "B": "2"}


def test_make_invoke_cli_starts_the_stack_and_prints_the_reply():
    """The command a developer runs: its own embedded stack, no LLM given, reply JSON on stdout."""
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.invoke", "ContractDriftFunction", "events/contract_drift_http.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert completed.returncode == 0, completed.stderr
    reply = json.loads(completed.stdout)
    assert reply["statusCode"] == 500
    assert reply_json(reply)["error"] == "No platform LLM provider is configured (PLATFORM_LLM_SECRET_ID)"
