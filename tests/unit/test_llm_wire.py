"""The wire formats' pure parts: requests, usage, and which errors are transient or refuse structure."""

from __future__ import annotations

import json

import pytest

from devtools.aws import LOCAL_AWS_ENV
from service.drift.findings import FINDINGS_OUTPUT
from service.llm import WIRE_FORMATS, LlmTarget
from service.llm.base import ProviderFailure
from service.llm.client import LlmClient, _http_failure, _timeout_step

TARGET = LlmTarget("openai", "http://127.0.0.1:9", "k", "m")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_structured_output_is_added_only_when_asked(provider):
    wire = WIRE_FORMATS[provider]
    plain = wire.build_request(TARGET, "system", "user", None)
    structured = wire.build_request(TARGET, "system", "user", FINDINGS_OUTPUT)
    added = set(structured) - set(plain)
    assert (
        added
        == {"openai": {"response_format"}, "anthropic": {"tools", "tool_choice"}, "bedrock": {"toolConfig"}}[provider]
    )
    assert {key: structured[key] for key in plain} == plain
    assert json.dumps(FINDINGS_OUTPUT.schema) in json.dumps(structured)


@pytest.mark.parametrize(
    ("provider", "usage", "expected"),
    [
        ("openai", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}, (10, 5, 15)),
        ("openai", {"prompt_tokens": 10, "completion_tokens": 5}, (10, 5, 15)),
        ("anthropic", {"input_tokens": 7, "output_tokens": 3}, (7, 3, 10)),
        ("bedrock", {"inputTokens": 20, "outputTokens": 4, "totalTokens": 24}, (20, 4, 24)),
        ("bedrock", {}, (0, 0, 0)),
    ],
)
def test_usage_per_wire_format(provider, usage, expected):
    read = WIRE_FORMATS[provider].read_usage({"usage": usage})
    assert (read.prompt_tokens, read.completion_tokens, read.total_tokens) == expected


def _openai_failure(status: int, body: object) -> ProviderFailure:
    import httpx

    return _http_failure(status, httpx.Headers(), json.dumps(body).encode())


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (400, {"error": {"message": "bad", "type": "invalid_request_error", "param": "response_format"}}, True),
        (400, {"object": "error", "message": "response_format is not supported", "code": 400}, True),  # vLLM
        (422, {"error": "unknown field response_format"}, True),  # Ollama-style string error
        (400, {"error": {"message": "max_tokens too large", "param": "max_tokens"}}, False),
        (500, {"error": {"message": "response_format broke us"}}, False),
    ],
)
def test_openai_compatible_refusal_of_response_format(status, body, refused):
    assert WIRE_FORMATS["openai"].refuses_structured(_openai_failure(status, body)) is refused
    assert WIRE_FORMATS["anthropic"].refuses_structured(_openai_failure(status, body)) is False


@pytest.mark.parametrize(
    ("code", "status", "transient", "refused"),
    [
        ("ThrottlingException", 429, True, False),
        ("ModelNotReadyException", 429, True, False),
        ("ServiceUnavailableException", 503, True, False),
        ("InternalServerException", 500, True, False),
        ("AccessDeniedException", 403, False, False),
        ("ValidationException", 400, False, True),
    ],
)
def test_bedrock_error_codes(code, status, transient, refused):
    failure = ProviderFailure(status, code, "This model doesn't support the toolConfig.toolChoice.tool field.")
    bedrock = WIRE_FORMATS["bedrock"]
    assert (bedrock.is_transient(failure), bedrock.refuses_structured(failure)) == (transient, refused)
    assert not bedrock.refuses_structured(ProviderFailure(400, "ValidationException", "Input is too long"))


@pytest.mark.parametrize("seconds", [0.05, 0.15, 0.99, 1.5, 1.99, 2.0, 2.7, 28.9])
def test_bedrock_timeouts_never_exceed_the_time_left(seconds):
    step = _timeout_step(seconds)
    assert 0 < step <= max(seconds, 0.1)


def test_bedrock_client_has_no_retries_of_its_own_and_the_time_left_as_timeouts(monkeypatch):
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9")
    llm = LlmClient()
    client = llm._bedrock_for(2.7)
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.0, 2.0)
    assert config.retries["total_max_attempts"] == 1
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert llm._bedrock_for(2.2) is client  # same step: cached
    assert llm._bedrock_for(1.5) is not client
