"""The ScoreSpec state machine of template.yaml: structure, error names, chunking, permissions."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.handlers import ROOT, load_template
from service import errors
from service.drift.models import MAX_ENDPOINTS_CONSIDERED, ScoreRequest

TERMINAL_TYPES = {"Succeed", "Fail"}
AWS_ERROR_PREFIXES = ("States.", "Lambda.")


@pytest.fixture(scope="module")
def machine() -> dict[str, Any]:
    resource = load_template()["Resources"]["ScoreSpecStateMachine"]
    assert resource["Type"] == "AWS::Serverless::StateMachine"
    return dict(resource["Properties"])


def scopes(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The definition and every nested state machine (Map processors, Parallel branches)."""
    yield definition
    for state in definition["States"].values():
        for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from scopes(nested)


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for scope in scopes(definition):
        yield from scope["States"].items()


def service_error_names() -> set[str]:
    return {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ServiceError) and cls is not errors.ServiceError
    }


def test_every_transition_lands_on_a_state_of_its_scope_and_all_are_reachable(machine):
    for scope in scopes(machine["Definition"]):
        states = scope["States"]
        assert scope["StartAt"] in states
        edges: dict[str, set[str]] = {}
        for name, state in states.items():
            targets = {state[key] for key in ("Next", "Default") if key in state}
            targets |= {catcher["Next"] for catcher in state.get("Catch", [])}
            targets |= {choice["Next"] for choice in state.get("Choices", [])}
            assert targets <= set(states), (name, targets)
            if state["Type"] not in TERMINAL_TYPES | {"Choice"}:
                assert ("Next" in state) != (state.get("End") is True), f"{name} needs exactly one of Next/End"
            edges[name] = targets
        seen, pending = {scope["StartAt"]}, [scope["StartAt"]]
        while pending:
            for target in edges[pending.pop()] - seen:
                seen.add(target)
                pending.append(target)
        assert seen == set(states), f"unreachable: {set(states) - seen}"


def test_error_names_are_the_exception_classes_of_the_service(machine):
    known = service_error_names()
    used = {
        name
        for _, state in all_states(machine["Definition"])
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
    }
    raised = {state["Error"] for _, state in all_states(machine["Definition"]) if state["Type"] == "Fail"}
    assert {"UpstreamError", "RequestInProgress", "ResourceLimitExceeded"} <= used
    assert raised == {"ValidationFailed"}  # an input the machine cannot even read fails as the function would
    for name in used | raised:
        assert name in known or name.startswith(AWS_ERROR_PREFIXES), name
        if name in known:  # DESIGN §5: the class name is the error code in CamelCase
            code = getattr(errors, name).error_code
            assert "".join(part.capitalize() for part in code.split("_")) == name


def lambda_tasks(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in all_states(machine["Definition"]) if state["Type"] == "Task"}


def test_every_task_invokes_the_drift_function_and_retries_lambda_service_errors(machine):
    tasks = lambda_tasks(machine)
    assert set(tasks) == {"ValidateRequest", "ScoreChunk"}
    for task in tasks.values():
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["Parameters"]["FunctionName"] == "${ContractDriftFunctionArn}"
        lambda_retry = next(rule for rule in task["Retry"] if "Lambda.ServiceException" in rule["ErrorEquals"])
        assert lambda_retry["BackoffRate"] > 1 and lambda_retry["MaxAttempts"] >= 2


def test_drift_calls_retry_upstream_errors_with_backoff_and_skip_exhausted_orgs(machine):
    task = lambda_tasks(machine)["ScoreChunk"]
    upstream = next(rule for rule in task["Retry"] if "UpstreamError" in rule["ErrorEquals"])
    assert "UpstreamTimeout" in upstream["ErrorEquals"]
    assert upstream["MaxAttempts"] >= 2 and upstream["BackoffRate"] > 1 and upstream["IntervalSeconds"] >= 1
    # A duplicate in flight may hold its key for the function's whole timeout: the retries wait longer.
    in_flight = next(rule for rule in task["Retry"] if "RequestInProgress" in rule["ErrorEquals"])
    timeout_s = load_template()["Globals"]["Function"]["Timeout"]
    waits = [in_flight["IntervalSeconds"] * in_flight["BackoffRate"] ** n for n in range(in_flight["MaxAttempts"])]
    assert in_flight.get("JitterStrategy", "NONE") == "NONE" and sum(waits[:-1]) > 2 * timeout_s
    retried = {name for rule in task["Retry"] for name in rule["ErrorEquals"]}
    assert "ResourceLimitExceeded" not in retried and "States.ALL" not in retried
    [catcher] = [c for c in task["Catch"] if "ResourceLimitExceeded" in c["ErrorEquals"]]
    skipped = machine["Definition"]["States"]["ScoreChunks"]["ItemProcessor"]["States"][catcher["Next"]]
    assert skipped["Type"] == "Pass" and skipped.get("End") is True  # the run goes on


def test_endpoints_are_partitioned_in_chunks_of_what_one_call_considers(machine):
    states = machine["Definition"]["States"]
    partition = states["PartitionEndpoints"]
    match = re.fullmatch(r"States\.ArrayPartition\(\$\.endpoints, (\d+)\)", partition["Parameters"]["chunks.$"])
    assert match and int(match.group(1)) == MAX_ENDPOINTS_CONSIDERED == 25
    mapper = states[partition["Next"]]
    assert mapper["Type"] == "Map" and mapper["ItemsPath"] == "$.chunks"
    assert mapper["ItemSelector"]["chunk"] == {"endpoints.$": "$$.Map.Item.Value"}


def test_the_request_carries_every_optional_field_of_a_drift_request_it_is_given(machine):
    """Each optional request field present in the input is copied into the shared request."""
    states = machine["Definition"]["States"]
    copied = {
        state["InputPath"].removeprefix("$."): state["ResultPath"].removeprefix("$.request.")
        for state in states.values()
        if state["Type"] == "Pass" and state.get("ResultPath", "").startswith("$.request.")
    }
    optional = {name for name, field in ScoreRequest.model_fields.items() if not field.is_required()}
    assert copied == {name: name for name in optional}
    required = {name for name, field in ScoreRequest.model_fields.items() if field.is_required()}
    start = {key.removesuffix(".$") for key in states["StartRequest"]["Parameters"]}
    assert start == required


def test_permissions_are_least_privilege(machine):
    assert machine["DefinitionSubstitutions"] == {
        "ContractDriftFunctionArn": {"Fn::GetAtt": ["ContractDriftFunction", "Arn"]}
    }
    policies = machine["Policies"]
    invoke = [p["LambdaInvokePolicy"] for p in policies if "LambdaInvokePolicy" in p]
    assert invoke == [{"FunctionName": {"Ref": "ContractDriftFunction"}}]
    for policy in policies:
        for statement in policy.get("Statement", []):
            assert all(action.startswith("logs:") for action in statement["Action"])
    log_group = machine["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert load_template()["Resources"][log_group["Fn::GetAtt"][0]]["Type"] == "AWS::Logs::LogGroup"


def test_definition_passes_cfn_lint_state_machine_schema(machine):
    """cfn-lint validates ASL for AWS::StepFunctions::StateMachine, not inside the SAM resource."""
    api = pytest.importorskip("cfnlint.api")
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/score-spec",
                    "Definition": machine["Definition"],
                    "DefinitionSubstitutions": {
                        "ContractDriftFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:drift"
                    },
                },
            }
        },
    }
    problems = [m for m in api.lint_all(json.dumps(template)) if m.rule.id.startswith("E")]
    assert problems == []


@pytest.mark.parametrize(
    ("name", "spec_field"),
    [("score_spec_state_machine.json", "spec_excerpt"), ("score_spec_state_machine_s3.json", "spec_s3_uri")],
)
def test_the_events_inputs_are_valid_execution_inputs(name, spec_field):
    execution = json.loads((ROOT / "events" / name).read_text())
    assert set(execution) == {"org_id", "workspace_id", spec_field, "endpoints"}
    ScoreRequest.model_validate(execution)
