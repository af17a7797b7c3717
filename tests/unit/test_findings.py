"""Findings parsing: JSON in prose or fences, invalid items dropped, never an exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.drift.findings import NoJsonFound, normalise_endpoint, parse_findings

ALLOWED = {"GET /users/{id}", "POST /orders"}


def item(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "severity": "breaking",
        "endpoint": "GET /users/{id}",
        "description": "field removed",
        "confidence": 0.8,
        "rationale": "sample 1 lacks it",
    }
    base.update(overrides)
    return base


def test_plain_json_array():
    findings = parse_findings(json.dumps([item()]), ALLOWED)
    assert [f.model_dump() for f in findings] == [item()]


def test_json_inside_prose_and_code_fences():
    text = "Sure! Here you go:\n```json\n" + json.dumps([item(), item(endpoint="POST /orders")]) + "\n```\nBye."
    assert [f.endpoint for f in parse_findings(text, ALLOWED)] == ["GET /users/{id}", "POST /orders"]


def test_json_embedded_in_prose_without_fence():
    text = "My analysis [see below] is: " + json.dumps([item()]) + " -- done"
    assert len(parse_findings(text, ALLOWED)) == 1


def test_object_with_findings_key():
    assert len(parse_findings(json.dumps({"findings": [item()]}), ALLOWED)) == 1


def test_invalid_items_are_dropped():
    items = [
        item(),
        item(severity="catastrophic"),
        item(confidence="high"),
        item(description=""),
        item(endpoint=42),
        "not an object",
        item(confidence=float("nan")),
        item(confidence=None),
        item(confidence=True),
    ]
    assert len(parse_findings(json.dumps(items), ALLOWED)) == 1


def test_confidence_is_clamped_and_severity_spellings_accepted():
    findings = parse_findings(
        json.dumps([item(confidence=7), item(confidence=-1, severity="Non-Breaking"), item(severity="COSMETIC")]),
        ALLOWED,
    )
    assert [(f.severity, f.confidence) for f in findings] == [
        ("breaking", 1.0),
        ("non_breaking", 0.0),
        ("cosmetic", 0.8),
    ]


def test_endpoints_not_asked_about_are_dropped_and_others_normalised():
    findings = parse_findings(
        json.dumps([item(endpoint="get /users/{id}"), item(endpoint="  post   /orders "), item(endpoint="GET /admin")]),
        ALLOWED,
    )
    assert [f.endpoint for f in findings] == ["GET /users/{id}", "POST /orders"]


def test_missing_rationale_becomes_empty():
    entry = item()
    del entry["rationale"]
    assert parse_findings(json.dumps([entry]), ALLOWED)[0].rationale == ""


def test_empty_array_is_a_valid_verdict():
    assert parse_findings("No drift found: []", ALLOWED) == []


@pytest.mark.parametrize("text", ["", "no json here", '{"error": "overloaded"}', "[1, 2", "```json\n{oops```"])
def test_reply_without_findings_json_is_reported(text: str):
    with pytest.raises(NoJsonFound):
        parse_findings(text, ALLOWED)


def test_normalise_endpoint():
    assert normalise_endpoint(" delete   /a b ") == "DELETE /a b"


@given(st.text(max_size=3000))
def test_parsing_never_raises_anything_else_on_any_text(text: str):
    try:
        findings = parse_findings(text, ALLOWED)
    except NoJsonFound:
        return
    assert all(0.0 <= f.confidence <= 1.0 and f.endpoint in ALLOWED for f in findings)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
        max_leaves=30,
    )
)
def test_parsing_never_raises_on_any_json_value(value: object):
    try:
        findings = parse_findings(json.dumps(value), ALLOWED)
    except NoJsonFound:
        return
    assert all(f.severity in ("breaking", "non_breaking", "cosmetic") for f in findings)


def test_an_array_cut_by_the_output_limit_keeps_every_complete_finding():
    whole = json.dumps({"findings": [item(), item(severity="cosmetic"), item()]})
    cut = whole[: whole.rindex('"rationale"')]  # inside the third finding
    assert [f.severity for f in parse_findings(cut, ALLOWED)] == ["breaking", "cosmetic"]


def test_an_array_wins_over_a_lone_example_object_before_it():
    text = 'An item looks like {"severity": "cosmetic"}. Answer: ' + json.dumps([item()])
    assert [f.severity for f in parse_findings(text, ALLOWED)] == ["breaking"]
