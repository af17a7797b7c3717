"""traverse_answer's edges: token before gate, the 410 gate, 400 envelopes, base64 bodies."""

from __future__ import annotations

import pytest

from devtools.events import http_event, reply_json
from devtools.lambda_context import LocalLambdaContext
from devtools.seed import add_edge, add_node
from service.config import get_settings
from service.errors import ExperimentalDisabled, ValidationFailed
from tests.conftest import INTERNAL_TOKEN
from tests.integration.test_traverse_answer import call, traverse_app

# Also run through PgBouncer in transaction mode (DESIGN §11.1; tests/integration/conftest.py).
pytestmark = pytest.mark.through_pgbouncer

DISABLED = "traverse_answer: experimental endpoint disabled"


def set_gate(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("TRAVERSE_EXPERIMENTAL_ENABLED", raising=False)
    else:
        monkeypatch.setenv("TRAVERSE_EXPERIMENTAL_ENABLED", value)
    get_settings.cache_clear()


def test_gate_off_is_410_with_the_stable_payload(service_env, monkeypatch):
    for value in (None, "", "false", "0", "no", "off", "enabled", "tru"):
        set_gate(monkeypatch, value)
        status, body = call({"text": "anything"})
        assert status == 410, value
        assert body["schema"] == "mnem.v1.err"
        assert body["error"] == DISABLED
        assert body["remediation_ref"]
        assert "TraverseExperimentalEnabled" in body["opt_in"]
        assert "TRAVERSE_EXPERIMENTAL_ENABLED" in body["opt_in"]


def test_gate_off_wins_over_a_bad_body(service_env, monkeypatch):
    set_gate(monkeypatch, "false")
    assert call("{not json")[0] == 410


def test_gate_words_switch_it_on(service_env, monkeypatch):
    for value in ("true", "TRUE", "1", "yes", "On", " on "):
        set_gate(monkeypatch, value)
        status, body = call({})
        assert status == 200, (value, body)
        assert body["halt_reason"] == "no_seeds"


def test_direct_invoke_with_gate_off_raises_experimental_disabled(service_env, monkeypatch):
    set_gate(monkeypatch, "false")
    with pytest.raises(ExperimentalDisabled) as raised:
        traverse_app.lambda_handler({"text": "x"}, LocalLambdaContext("TraverseAnswerFunction"))
    assert type(raised.value).__name__ == "ExperimentalDisabled"
    assert str(raised.value) == DISABLED


def test_token_is_checked_before_the_gate(service_env, monkeypatch):
    for gate in ("false", "true"):
        set_gate(monkeypatch, gate)
        for token in (None, "wrong-token"):
            status, body = call({"text": "x"}, token=token)
            assert status == 400, (gate, token)
            assert body["schema"] == "mnem.v1.err"
            assert body["error"] == "Not found"
            assert "opt_in" not in body and "remediation_ref" not in body


BAD_BODIES = [
    "{not json",
    "[]",
    '"text"',
    {"text": 42},
    {"max_hops": "three"},
    {"max_hops": 2.5},
    {"max_hops": True},
    {"budget_ms": "500"},
    {"graph": ""},
    {"graph": None},
    {"edge_types": []},
    {"edge_types": "cites"},
    {"edge_types": [""]},
    {"max_nodes_per_hop": "many"},
    {"text": "x" * 4001},
    "123",
    "true",
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    '{"text": "nul \\u0000 inside"}',
    '{"graph": "\\u0000"}',
    '{"edge_types": ["\\u0000"]}',
    '{"text": "lone \\ud800 surrogate"}',
]


def test_bad_input_is_a_400_envelope(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    for body in BAD_BODIES:
        status, reply = call(body)
        assert status == 400, (body, reply)
        assert reply["schema"] == "mnem.v1.err"
        assert reply["error_code"] == "VALIDATION_FAILED"
        assert isinstance(reply["error"], str)
        assert "Traceback" not in str(reply)


def test_non_json_content_type_is_a_400_envelope(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    for content_type in ("application/octet-stream", "text/plain", "multipart/form-data", "application/xml"):
        status, reply = call(b"\x00\x01binary", headers={"content-type": content_type}, base64_body=True)
        assert status == 400, (content_type, reply)
        assert (reply["schema"], reply["error_code"]) == ("mnem.v1.err", "VALIDATION_FAILED")


def test_missing_body_is_a_400_envelope(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    status, reply = call(None)
    assert status == 400
    assert reply["schema"] == "mnem.v1.err"


def test_direct_invoke_bad_payload_raises_validation_failed(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    for payload in ([], "text", {"max_hops": "x"}, {"edge_types": []}, {"text": "\x00"}, {"graph": "a\x00"}):
        with pytest.raises(ValidationFailed):
            traverse_app.lambda_handler(payload, LocalLambdaContext("TraverseAnswerFunction"))


def test_base64_body_is_decoded(service_env, monkeypatch, admin_db):
    set_gate(monkeypatch, "true")
    a, b = add_node(admin_db, "start"), add_node(admin_db, "next")
    add_edge(admin_db, a, b)
    status, reply = call({"text": str(a)}, base64_body=True)
    assert status == 200, reply
    assert [h["nodes"][0]["id"] for h in reply["hops"]] == [str(a), str(b)]


def test_broken_base64_is_a_400_envelope(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    event = http_event("POST", "/v1/traverse_answer", "{}", token=INTERNAL_TOKEN)
    event.update(body="***not base64***", isBase64Encoded=True)
    reply = traverse_app.lambda_handler(event, LocalLambdaContext("TraverseAnswerFunction"))
    assert reply["statusCode"] == 400
    assert reply_json(reply)["schema"] == "mnem.v1.err"


def test_unknown_route_is_not_found(service_env, monkeypatch):
    set_gate(monkeypatch, "true")
    reply = traverse_app.lambda_handler(
        http_event("POST", "/v1/elsewhere", {}, token=INTERNAL_TOKEN), LocalLambdaContext("TraverseAnswerFunction")
    )
    assert reply["statusCode"] == 404
    assert reply_json(reply)["error"] == "Not found"
