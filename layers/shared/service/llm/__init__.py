"""LLM access: one client (deadline, retries, structured-output fallback) over three wire formats.

``openai`` (any OpenAI-compatible server) and ``anthropic`` go over httpx; ``bedrock`` goes
through boto3's Converse (DESIGN §12). Callers import everything from here.
"""

from service.llm.anthropic_format import ANTHROPIC_VERSION
from service.llm.base import (
    MAX_OUTPUT_TOKENS,
    Completion,
    LlmTarget,
    ProviderName,
    StructuredOutput,
    Usage,
    WireFormat,
)
from service.llm.client import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    MAX_REPLY_BYTES,
    MIN_ATTEMPT_MS,
    WIRE_FORMATS,
    LlmClient,
    clear_structured_refusals,
)
from service.llm.openai_format import RETRYABLE_STATUSES

__all__ = [
    "ANTHROPIC_VERSION",
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "MAX_ATTEMPTS",
    "MAX_OUTPUT_TOKENS",
    "MAX_REPLY_BYTES",
    "MIN_ATTEMPT_MS",
    "RETRYABLE_STATUSES",
    "WIRE_FORMATS",
    "Completion",
    "LlmClient",
    "LlmTarget",
    "ProviderName",
    "StructuredOutput",
    "Usage",
    "WireFormat",
    "clear_structured_refusals",
]
