"""The findings' wire schema is the Finding model, in the strict form every provider accepts (DESIGN §12.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import jsonschema
import pytest

from service.drift.findings import FINDINGS_OUTPUT, FINDINGS_SCHEMA, strict_schema
from service.drift.models import Finding, Severity

ITEM = FINDINGS_SCHEMA["properties"]["findings"]["items"]
GOOD = {"severity": "breaking", "endpoint": "GET /a", "description": "d", "confidence": 0.5, "rationale": "r"}


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_the_schema_is_the_model():
    assert FINDINGS_SCHEMA["required"] == ["findings"]
    assert FINDINGS_SCHEMA["properties"]["findings"]["type"] == "array"
    assert list(ITEM["properties"]) == list(Finding.model_fields)
    assert ITEM["properties"]["severity"]["enum"] == list(get_args(Severity))
    for name, field in Finding.model_fields.items():
        assert ITEM["properties"][name].get("description") == field.description


def test_every_object_is_strict():
    objects = list(_objects(FINDINGS_SCHEMA))
    assert len(objects) == 2  # the answer and a finding
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    text = repr(FINDINGS_SCHEMA)
    assert "$ref" not in text and "$defs" not in text and "'title'" not in text


def test_schema_and_model_accept_and_refuse_the_same_findings():
    jsonschema.validate({"findings": [GOOD]}, FINDINGS_SCHEMA)
    Finding.model_validate(GOOD)
    for bad in (
        {**GOOD, "severity": "catastrophic"},
        {**GOOD, "confidence": 1.5},
        {key: value for key, value in GOOD.items() if key != "rationale"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"findings": [bad]}, FINDINGS_SCHEMA)
        with pytest.raises(ValueError):
            Finding.model_validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"findings": [{**GOOD, "extra": 1}]}, FINDINGS_SCHEMA)  # the model ignores extras


def test_strict_schema_keeps_a_property_named_title():
    schema = {"type": "object", "title": "T", "properties": {"title": {"type": "string", "title": "Title"}}}
    assert strict_schema(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "additionalProperties": False,
        "required": ["title"],
    }


def test_names_on_the_wire():
    assert (FINDINGS_OUTPUT.name, FINDINGS_OUTPUT.tool_name) == ("drift_findings", "report_findings")
    assert FINDINGS_OUTPUT.schema is FINDINGS_SCHEMA
