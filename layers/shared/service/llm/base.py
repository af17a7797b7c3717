"""What every wire format shares: the target, the completion, and the small interface.

A wire format only translates: it builds a request body, reads the reply's text and its usage,
and says which provider errors are transient and which refuse the structured output. Sending,
the deadline, the retries and the fallback live once in :mod:`service.llm.client`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ProviderName = Literal["openai", "anthropic", "bedrock"]
MAX_OUTPUT_TOKENS = 2048


@dataclass(frozen=True)
class LlmTarget:
    """Where and how to call: wire format, base URL (no ``/v1``; unused by Bedrock, which
    follows boto3's endpoint settings), key (empty for Bedrock: IAM) and model."""

    provider: ProviderName
    base_url: str
    api_key: str
    model: str
    # DESIGN §13: a URL typed by an org's admins (BYOK) goes through service.egress's guard.
    egress_guarded: bool = False


@dataclass(frozen=True)
class StructuredOutput:
    """The answer's JSON schema, and the names each wire format asks for it under."""

    name: str  # OpenAI ``response_format.json_schema.name``
    tool_name: str  # Anthropic / Bedrock forced tool
    description: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Completion:
    """The successful call's answer: only this call is metered and audited."""

    text: str
    tokens_used: int
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # The answer came as structured output (json_schema / forced tool), not as free text.
    structured: bool = False
    # The provider stopped at the output limit: the text may be cut short.
    truncated: bool = False


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt: Any, completion: Any, total: Any = None) -> Usage:
        """Counts as the provider gave them; a missing total is the sum."""
        prompt_tokens, completion_tokens = max(0, int(prompt or 0)), max(0, int(completion or 0))
        total_tokens = int(total) if total else prompt_tokens + completion_tokens
        return cls(prompt_tokens, completion_tokens, max(0, total_tokens))


@dataclass(frozen=True)
class Reply:
    """What a wire format read out of a successful reply."""

    text: str
    model: str | None
    truncated: bool
    structured: bool


@dataclass(frozen=True)
class ProviderFailure:
    """A provider's error answer, whatever its wire format."""

    status: int
    code: str = ""
    message: str = ""
    param: str = ""
    retry_after_s: float | None = None


class WireFormat(Protocol):
    """One provider API: request body in, text and usage out."""

    def build_request(
        self, target: LlmTarget, system: str, user: str, output: StructuredOutput | None
    ) -> dict[str, Any]: ...

    def read_reply(self, payload: Mapping[str, Any], output: StructuredOutput | None) -> Reply: ...

    def read_usage(self, payload: Mapping[str, Any]) -> Usage: ...

    def is_transient(self, failure: ProviderFailure) -> bool: ...

    def refuses_structured(self, failure: ProviderFailure) -> bool: ...


class HttpWireFormat(WireFormat, Protocol):
    """A wire format reached over plain HTTPS with a key (OpenAI-compatible, Anthropic)."""

    def url(self, target: LlmTarget) -> str: ...

    def headers(self, target: LlmTarget) -> dict[str, str]: ...


def tool_input_text(value: Any) -> str:
    """A tool call's input as the JSON text the findings parser reads (some compatible servers
    send the input as a JSON string rather than an object)."""
    return value if isinstance(value, str) else json.dumps(value)
