"""The Anthropic Messages wire format; structured output is a forced tool call.

The model is given one tool whose ``input_schema`` is the answer's schema and
``tool_choice: {type: "tool"}`` makes calling it the only way to answer; the tool call's
``input`` is the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.llm.base import (
    MAX_OUTPUT_TOKENS,
    LlmTarget,
    ProviderFailure,
    Reply,
    StructuredOutput,
    Usage,
    tool_input_text,
)
from service.llm.openai_format import RETRYABLE_STATUSES

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicFormat:
    """``POST {base}/v1/messages`` with ``x-api-key``."""

    def url(self, target: LlmTarget) -> str:
        return f"{target.base_url}/v1/messages"

    def headers(self, target: LlmTarget) -> dict[str, str]:
        return {"x-api-key": target.api_key, "anthropic-version": ANTHROPIC_VERSION}

    def build_request(
        self, target: LlmTarget, system: str, user: str, output: StructuredOutput | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": target.model,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "temperature": 0,
        }
        if output is not None:
            body["tools"] = [
                {"name": output.tool_name, "description": output.description, "input_schema": dict(output.schema)}
            ]
            body["tool_choice"] = {"type": "tool", "name": output.tool_name}
        return body

    def read_reply(self, payload: Mapping[str, Any], output: StructuredOutput | None) -> Reply:
        blocks = [block for block in payload["content"] if isinstance(block, dict)]
        model = str(payload["model"]) if payload.get("model") else None
        truncated = payload.get("stop_reason") == "max_tokens"
        if output is not None:
            for block in blocks:
                if block.get("type") == "tool_use" and block.get("name") == output.tool_name:
                    return Reply(tool_input_text(block.get("input")), model, truncated, structured=True)
        text = "".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
        return Reply(text, model, truncated, structured=False)

    def read_usage(self, payload: Mapping[str, Any]) -> Usage:
        usage = payload.get("usage") or {}
        return Usage.of(usage.get("input_tokens"), usage.get("output_tokens"))

    def is_transient(self, failure: ProviderFailure) -> bool:
        return failure.status in RETRYABLE_STATUSES

    def refuses_structured(self, failure: ProviderFailure) -> bool:
        """The Messages API has offered forced tools since tools exist: no fallback."""
        return False
