"""template.yaml grants Bedrock to the drift function only when Bedrock is the platform provider (DESIGN §12.2)."""

from __future__ import annotations

import json
from typing import Any

from devtools.handlers import load_template
from service.config import DEFAULT_BEDROCK_MODEL

TEMPLATE = load_template()


def _drift_statements() -> list[Any]:
    policies = TEMPLATE["Resources"]["ContractDriftFunction"]["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy["Statement"]]


def _bedrock_grants() -> list[Any]:
    return [s for s in _drift_statements() if "bedrock:" in json.dumps(s)]


def test_provider_parameter_allows_bedrock_and_model_defaults_per_provider():
    parameters = TEMPLATE["Parameters"]
    assert "bedrock" in parameters["PlatformLlmProvider"]["AllowedValues"]
    assert parameters["PlatformLlmModel"]["Default"] == ""  # the service picks the provider's default
    assert TEMPLATE["Conditions"]["UseBedrock"] == {"Fn::Equals": [{"Ref": "PlatformLlmProvider"}, "bedrock"]}


def test_bedrock_grants_exist_only_under_the_bedrock_condition():
    grants = _bedrock_grants()
    assert len(grants) == 2
    for grant in grants:
        condition, statement, otherwise = grant["Fn::If"]
        assert condition == "UseBedrock" and otherwise == {"Ref": "AWS::NoValue"}
        assert statement["Action"] == "bedrock:InvokeModel"  # what Converse needs, nothing more
    for statement in _drift_statements():
        if statement not in grants:
            assert "bedrock" not in json.dumps(statement)


def test_grants_name_the_configured_model_or_the_services_default():
    text = json.dumps(_bedrock_grants())
    assert "foundation-model/${ModelId}" in text and "inference-profile/${ModelId}" in text
    defaults = {
        value["Fn::If"][2]
        for value in _walk(_bedrock_grants())
        if isinstance(value, dict) and "Fn::If" in value and value["Fn::If"][0] == "HasLlmModel"
    }
    assert defaults == {DEFAULT_BEDROCK_MODEL}
    through_profile = _bedrock_grants()[1]["Fn::If"][1]
    assert list(through_profile["Condition"]["StringEquals"]) == ["bedrock:InferenceProfileArn"]


def _walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
