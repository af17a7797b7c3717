"""Structured findings from every wire format, and Bedrock as the platform model (DESIGN §12).

Real HTTP to the fake provider on 127.0.0.1: OpenAI-compatible and Anthropic over httpx, Bedrock
through boto3's ``bedrock-runtime`` client pointed at it by ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.
What each request carries is read from what the server received; what is metered is compared
with the tokens of the one call that succeeded.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from devtools.fake_llm import Step
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.config import DEFAULT_BEDROCK_MODEL
from service.drift.findings import FINDINGS_SCHEMA
from service.errors import UpstreamError
from service.llm import MAX_ATTEMPTS
from tests.conftest import reset_service_caches
from tests.integration.drift_support import call_direct, call_http, score_body

ASKED = [("GET", "/a"), ("POST", "/b")]


@pytest.fixture
def tenant(service_env: dict[str, str], admin_db: Any) -> Tenant:
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    add_capture(admin_db, tenant.workspace_id, "POST", "/b")
    return tenant


@pytest.fixture
def bedrock(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, llm_server: Any) -> None:
    """The platform model on Bedrock: no key secret at all, the endpoint from boto3's variable."""
    monkeypatch.setenv("PLATFORM_LLM_PROVIDER", "bedrock")
    monkeypatch.delenv("PLATFORM_LLM_MODEL")
    monkeypatch.delenv("PLATFORM_LLM_SECRET_ID")
    monkeypatch.delenv("PLATFORM_LLM_ENDPOINT")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", llm_server.base_url)
    reset_service_caches()


def _endpoints(body: dict[str, Any]) -> list[str]:
    return sorted(finding["endpoint"] for finding in body["findings"])


def _assert_only_success_metered(admin_db: Any, tenant: Tenant, body: dict[str, Any], llm_server: Any) -> None:
    """The fake counts the tokens of the replies it completed (status 200) only."""
    assert body["tokens_used"] == llm_server.completed_tokens > 0
    assert tokens_used(admin_db, tenant.org_id) == body["tokens_used"]


# --- what each request carries, and the structured reply read back ---------------------------


def test_openai_request_asks_for_the_strict_schema_and_its_reply_is_read(tenant, admin_db, llm_server):
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    sent = llm_server.requests[0]
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "drift_findings",
            "description": sent.body["response_format"]["json_schema"]["description"],
            "strict": True,
            "schema": FINDINGS_SCHEMA,
        },
    }
    assert _endpoints(body) == ["GET /a", "POST /b"]
    _assert_only_success_metered(admin_db, tenant, body, llm_server)


def test_anthropic_request_forces_the_report_findings_tool_and_its_input_is_read(
    tenant, admin_db, llm_server, monkeypatch
):
    monkeypatch.setenv("PLATFORM_LLM_PROVIDER", "anthropic")
    reset_service_caches()
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    sent = llm_server.requests[0].body
    assert [tool["name"] for tool in sent["tools"]] == ["report_findings"]
    assert sent["tools"][0]["input_schema"] == FINDINGS_SCHEMA
    assert sent["tool_choice"] == {"type": "tool", "name": "report_findings"}
    assert _endpoints(body) == ["GET /a", "POST /b"]
    _assert_only_success_metered(admin_db, tenant, body, llm_server)


def test_bedrock_converse_carries_a_forced_tool_and_needs_no_key(tenant, admin_db, llm_server, bedrock):
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    sent = llm_server.requests[0]
    assert sent.wire == "bedrock" and sent.model == DEFAULT_BEDROCK_MODEL
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")  # signed by boto3, IAM
    tool_config = sent.body["toolConfig"]
    assert tool_config["toolChoice"] == {"tool": {"name": "report_findings"}}
    assert [tool["toolSpec"]["name"] for tool in tool_config["tools"]] == ["report_findings"]
    assert tool_config["tools"][0]["toolSpec"]["inputSchema"] == {"json": FINDINGS_SCHEMA}
    assert sent.body["inferenceConfig"]["maxTokens"] > 0
    assert "modelId" not in sent.body  # it travels in the path
    assert body["model"] == DEFAULT_BEDROCK_MODEL and body["provider"] == "platform"
    assert _endpoints(body) == ["GET /a", "POST /b"]
    _assert_only_success_metered(admin_db, tenant, body, llm_server)  # usage.totalTokens


def test_text_reply_to_a_structured_request_is_still_understood(tenant, llm_server, bedrock):
    """A model that answers prose with a fence instead of calling the tool: rule 9 still reads it."""
    fenced = '```json\n{"findings": [{"severity": "cosmetic", "endpoint": "post /b", "description": "d", '
    llm_server.enqueue(Step(text=f"Sure.\n{fenced}" + '"confidence": 0.4, "rationale": "r"}]}\n```'))
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    assert [(f["endpoint"], f["severity"]) for f in body["findings"]] == [("POST /b", "cosmetic")]


# --- fallbacks: asked once more without structured output ------------------------------------


@pytest.mark.parametrize("style", ["param", "message"])
def test_openai_compatible_server_refusing_response_format_is_asked_once_more_without_it(
    tenant, admin_db, llm_server, style
):
    llm_server.refuses_structured = True
    llm_server.refusal_style = style  # OpenAI names it in error.param; vLLM only in its message
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    assert ["response_format" in request.body for request in llm_server.requests] == [True, False]
    assert _endpoints(body) == ["GET /a", "POST /b"]
    _assert_only_success_metered(admin_db, tenant, body, llm_server)

    # The refusal is remembered: the next call of this process goes without it at once.
    status, again = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200, again
    assert ["response_format" in request.body for request in llm_server.requests] == [True, False, False]


def test_a_400_not_about_response_format_is_not_retried(tenant, admin_db, llm_server):
    error = b'{"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "param": "max_tokens"}}'
    llm_server.enqueue(Step(status=400, body=error))
    status, body = call_http(score_body(tenant, ASKED))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")
    assert len(llm_server.requests) == 1
    assert tokens_used(admin_db, tenant.org_id) == 0


def test_bedrock_model_refusing_the_forced_tool_is_asked_once_more_without_tool_config(
    tenant, admin_db, llm_server, bedrock
):
    llm_server.refuses_structured = True
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    assert ["toolConfig" in request.body for request in llm_server.requests] == [True, False]
    assert _endpoints(body) == ["GET /a", "POST /b"]  # read from the prose-and-fence answer
    _assert_only_success_metered(admin_db, tenant, body, llm_server)


def test_bedrock_validation_error_about_something_else_is_a_502(tenant, admin_db, llm_server, bedrock):
    llm_server.enqueue(Step(status=400, text="Input is too long for requested model."))
    status, body = call_http(score_body(tenant, ASKED))
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR")
    assert body["details"]["provider_code"] == "ValidationException"
    assert len(llm_server.requests) == 1
    assert tokens_used(admin_db, tenant.org_id) == 0


# --- Bedrock failures and the deadline --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (429, "ModelNotReadyException"),
        (503, "ServiceUnavailableException"),
        (500, "InternalServerException"),
    ],
)
def test_bedrock_transient_error_then_success(tenant, admin_db, llm_server, bedrock, status, code):
    llm_server.enqueue(Step(status=status, error_code=code))
    reply = call_direct(score_body(tenant, ASKED))
    assert _endpoints(reply) == ["GET /a", "POST /b"]
    assert len(llm_server.requests) == 2  # boto3 did not retry on its own: our loop did, once
    _assert_only_success_metered(admin_db, tenant, reply, llm_server)


def test_bedrock_always_500_is_502_within_the_deadline(tenant, admin_db, llm_server, bedrock):
    llm_server.enqueue(*[Step(status=500) for _ in range(10)])
    started = time.monotonic()
    with pytest.raises(UpstreamError):
        call_direct(score_body(tenant, ASKED), timeout_ms=5_000)
    assert (time.monotonic() - started) * 1000 < 5_000
    assert len(llm_server.requests) == MAX_ATTEMPTS
    assert tokens_used(admin_db, tenant.org_id) == 0


def test_slow_bedrock_is_504_inside_the_lambda_time(tenant, admin_db, llm_server, bedrock):
    """boto3's read timeout comes from the time left, so a model slower than that cannot hold
    the function past its deadline."""
    llm_server.enqueue(Step(delay_s=3.0))
    started = time.monotonic()
    status, body = call_http(score_body(tenant, ASKED), timeout_ms=1_500)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert (status, body["error_code"]) == (504, "UPSTREAM_TIMEOUT")
    assert elapsed_ms < 1_500
    assert tokens_used(admin_db, tenant.org_id) == 0


def test_bedrock_tool_input_breaking_the_schema_is_filtered_by_rule_9(tenant, llm_server, bedrock):
    good = {"severity": "breaking", "endpoint": "GET /a", "description": "d", "confidence": 0.8, "rationale": "r"}
    llm_server.enqueue(
        Step(
            tool_input={
                "findings": [
                    good,
                    {**good, "severity": "catastrophic"},  # not in the enum
                    {**good, "endpoint": "DELETE /everything"},  # not asked about
                    {key: value for key, value in good.items() if key != "confidence"},  # required field missing
                    {**good, "endpoint": "post   /b", "confidence": 7, "extra": True},  # normalised, clamped
                    "not an object",
                ]
            }
        )
    )
    status, body = call_http(score_body(tenant, ASKED))
    assert status == 200, body
    assert [(f["endpoint"], f["severity"], f["confidence"]) for f in body["findings"]] == [
        ("GET /a", "breaking", 0.8),
        ("POST /b", "breaking", 1.0),
    ]
