"""The Amazon Bedrock Converse wire format (boto3 ``bedrock-runtime`` ``converse``).

The request is the keyword arguments of ``converse``; the reply is what boto3 returns. Structured
output is a forced tool in ``toolConfig``; a model that cannot be forced answers
``ValidationException`` naming the tool choice, and the client asks once more without
``toolConfig``. Errors arrive as codes (``ThrottlingException``, ...) with their HTTP status.
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

# Transient by the service model: throttled, overloaded, warming up, or the model timed out.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "InternalServerException",
        "ModelTimeoutException",
    }
)
_REFUSED_TOOL_CODE = "ValidationException"


class BedrockFormat:
    """Converse: ``system`` and ``messages`` as content blocks, limits in ``inferenceConfig``."""

    def build_request(
        self, target: LlmTarget, system: str, user: str, output: StructuredOutput | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "modelId": target.model,
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": user}]}],
            "inferenceConfig": {"maxTokens": MAX_OUTPUT_TOKENS, "temperature": 0},
        }
        if output is not None:
            request["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": output.tool_name,
                            "description": output.description,
                            "inputSchema": {"json": dict(output.schema)},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": output.tool_name}},
            }
        return request

    def read_reply(self, payload: Mapping[str, Any], output: StructuredOutput | None) -> Reply:
        blocks = [block for block in payload["output"]["message"]["content"] if isinstance(block, dict)]
        truncated = payload.get("stopReason") == "max_tokens"
        if output is not None:
            for block in blocks:
                tool_use = block.get("toolUse")
                if isinstance(tool_use, dict) and tool_use.get("name") == output.tool_name:
                    return Reply(tool_input_text(tool_use.get("input")), None, truncated, structured=True)
        text = "".join(str(block["text"]) for block in blocks if "text" in block)
        return Reply(text, None, truncated, structured=False)

    def read_usage(self, payload: Mapping[str, Any]) -> Usage:
        usage = payload.get("usage") or {}
        return Usage.of(usage.get("inputTokens"), usage.get("outputTokens"), usage.get("totalTokens"))

    def is_transient(self, failure: ProviderFailure) -> bool:
        return failure.code in TRANSIENT_CODES or failure.status >= 500

    def refuses_structured(self, failure: ProviderFailure) -> bool:
        """``ValidationException`` about the tool (the model cannot be forced, or has no tools)."""
        return failure.code == _REFUSED_TOOL_CODE and "tool" in failure.message.lower()
