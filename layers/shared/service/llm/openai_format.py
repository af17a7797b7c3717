"""The OpenAI chat-completions wire format, spoken by OpenAI and by compatible servers (vLLM,
Ollama, llama.cpp, a BYOK ``base_url``).

Structured output is ``response_format: {type: "json_schema", json_schema: {..., strict: true}}``.
Many compatible servers do not know it and answer 400 naming ``response_format``: that refusal
is recognised here so the client can ask once more without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.llm.base import MAX_OUTPUT_TOKENS, LlmTarget, ProviderFailure, Reply, StructuredOutput, Usage

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
# 422: servers built on FastAPI/pydantic reject an unknown field there.
_REFUSAL_STATUSES = frozenset({400, 422})
_STRUCTURED_FIELD = "response_format"


class OpenAiFormat:
    """``POST {base}/v1/chat/completions`` with a bearer key."""

    def url(self, target: LlmTarget) -> str:
        return f"{target.base_url}/v1/chat/completions"

    def headers(self, target: LlmTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.api_key}"}

    def build_request(
        self, target: LlmTarget, system: str, user: str, output: StructuredOutput | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": target.model,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if output is not None:
            body[_STRUCTURED_FIELD] = {
                "type": "json_schema",
                "json_schema": {
                    "name": output.name,
                    "description": output.description,
                    "strict": True,
                    "schema": dict(output.schema),
                },
            }
        return body

    def read_reply(self, payload: Mapping[str, Any], output: StructuredOutput | None) -> Reply:
        choice = payload["choices"][0]
        message = choice["message"]
        content = message.get("content")
        # A strict-schema refusal comes as ``refusal`` text with no content: parsed as text, it
        # holds no findings JSON, which makes the call a failed one.
        text = content if isinstance(content, str) else str(message.get("refusal") or "")
        return Reply(
            text=text,
            model=str(payload["model"]) if payload.get("model") else None,
            truncated=choice.get("finish_reason") == "length",
            structured=output is not None and isinstance(content, str),
        )

    def read_usage(self, payload: Mapping[str, Any]) -> Usage:
        usage = payload.get("usage") or {}
        return Usage.of(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"))

    def is_transient(self, failure: ProviderFailure) -> bool:
        return failure.status in RETRYABLE_STATUSES

    def refuses_structured(self, failure: ProviderFailure) -> bool:
        """A 400 whose error names ``response_format`` in its ``param`` or its ``message``."""
        return failure.status in _REFUSAL_STATUSES and (
            _STRUCTURED_FIELD in failure.param or _STRUCTURED_FIELD in failure.message
        )
