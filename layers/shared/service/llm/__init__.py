"""LLM access: one client (deadline, retries, structured-output fallback) over three wire formats.

``openai`` (any OpenAI-compatible server) and ``anthropic`` go over httpx; ``bedrock`` goes
through boto3's Converse (DESIGN §12). Callers import everything from here.
"""

from service.llm.base import (
    MAX_OUTPUT_TOKENS,
    Completion,
    LlmTarget,
    ProviderName,
    StructuredOutput,
    Usage,
    WireFormat,
)
from service.llm.client import MAX_ATTEMPTS, MIN_ATTEMPT_MS, WIRE_FORMATS, LlmClient, clear_structured_refusals

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_OUTPUT_TOKENS",
    "MIN_ATTEMPT_MS",
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
