"""LLM access over httpx for OpenAI-compatible and Anthropic wire formats.

Every attempt's timeout is the time left on the caller's :class:`~service.budget.BudgetGuard`,
and a retry (429/5xx/connection failures, exponential backoff, ``Retry-After`` honoured) is
made only when it fits too: the call never outlives the Lambda.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from service import egress
from service.budget import BudgetGuard
from service.errors import UpstreamError, UpstreamTimeout
from service.observability import logger

ProviderName = Literal["openai", "anthropic"]
MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
MIN_ATTEMPT_MS = 150.0
MAX_REPLY_BYTES = 2 * 1024 * 1024
MAX_OUTPUT_TOKENS = 2048
ANTHROPIC_VERSION = "2023-06-01"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class LlmTarget:
    """Where and how to call: provider wire format, base URL (no ``/v1``), key and model."""

    provider: ProviderName
    base_url: str
    api_key: str
    model: str
    # DESIGN §13: a URL typed by an org's admins (BYOK) goes through service.egress's guard.
    egress_guarded: bool = False


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_used: int
    model: str


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def _retry_after_seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _request(target: LlmTarget, system: str, user: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    if target.provider == "anthropic":
        return (
            f"{target.base_url}/v1/messages",
            {"x-api-key": target.api_key, "anthropic-version": ANTHROPIC_VERSION},
            {
                "model": target.model,
                "max_tokens": MAX_OUTPUT_TOKENS,
                "system": system,
                "messages": [{"role": "user", "content": user}],
                "temperature": 0,
            },
        )
    return (
        f"{target.base_url}/v1/chat/completions",
        {"Authorization": f"Bearer {target.api_key}"},
        {
            "model": target.model,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        },
    )


def _completion(provider: ProviderName, payload: Any, model: str) -> Completion:
    """Text and token count out of a provider reply; ``UpstreamError`` when it is not one."""
    try:
        usage = payload.get("usage") or {}
        if provider == "anthropic":
            text = "".join(
                block.get("text", "")
                for block in payload["content"]
                if isinstance(block, dict) and block.get("type") == "text"
            )
            tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        else:
            text = payload["choices"][0]["message"]["content"] or ""
            tokens = int(
                usage.get("total_tokens") or int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
            )
        return Completion(text=str(text), tokens_used=max(0, tokens), model=str(payload.get("model") or model))
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise UpstreamError("LLM provider returned a malformed reply") from None


class LlmClient:
    """Pooled httpx clients per process, reused across warm invokes: one for the platform
    endpoint, one (guarded, DESIGN §13) for BYOK targets."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        guarded_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._transport = transport
        self._guarded_transport = guarded_transport
        self._client: httpx.Client | None = None
        self._guarded_client: httpx.Client | None = None
        self._sleep = sleep

    def _http(self, target: LlmTarget) -> httpx.Client:
        if target.egress_guarded:
            if self._guarded_client is None:
                self._guarded_client = egress.guarded_client(self._guarded_transport)
            return self._guarded_client
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, follow_redirects=False)
        return self._client

    def _attempt(self, target: LlmTarget, system: str, user: str, timeout_s: float) -> Completion:
        url, headers, body = _request(target, system, user)
        try:
            # A refused BYOK address raises InvalidRequest from here: not retried, not a 502.
            with self._http(target).stream("POST", url, headers=headers, json=body, timeout=timeout_s) as reply:
                if reply.status_code in RETRYABLE_STATUSES:
                    raise _Retryable(
                        f"HTTP {reply.status_code}", _retry_after_seconds(reply.headers.get("retry-after"))
                    )
                if reply.status_code >= 300:  # redirects are never followed (DESIGN §13.1)
                    raise UpstreamError("LLM provider refused the request", {"provider_status": reply.status_code})
                chunks: list[bytes] = []
                size = 0
                for chunk in reply.iter_bytes():
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise UpstreamError("LLM provider reply is too large")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise UpstreamTimeout("LLM provider did not answer in the time left") from None
        except (httpx.TransportError, httpx.ProtocolError) as exc:
            raise _Retryable(type(exc).__name__) from None
        try:
            payload = json.loads(b"".join(chunks))
        except ValueError:
            raise UpstreamError("LLM provider reply is not JSON") from None
        return _completion(target.provider, payload, target.model)

    def complete(self, target: LlmTarget, system: str, user: str, guard: BudgetGuard) -> Completion:
        """One completion within ``guard``'s hard wall, retrying transient failures."""
        last_reason = "no attempt"
        attempts = 0
        while attempts < MAX_ATTEMPTS:
            remaining_ms = guard.remaining_ms()
            if remaining_ms < MIN_ATTEMPT_MS:
                raise UpstreamTimeout("No time left for the LLM call", {"attempts": attempts})
            attempts += 1
            try:
                return self._attempt(target, system, user, timeout_s=remaining_ms / 1000.0)
            except _Retryable as failure:
                last_reason = str(failure)
                logger.warning("LLM attempt failed", extra={"attempt": attempts, "reason": last_reason})
                delay = failure.retry_after_s
                if delay is None:
                    backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
                    delay = backoff * random.uniform(0.5, 1.0)
                if attempts == MAX_ATTEMPTS or delay * 1000.0 + MIN_ATTEMPT_MS > guard.remaining_ms():
                    break  # no retry fits in the time left
                self._sleep(delay)
        raise UpstreamError("LLM provider kept failing", {"attempts": attempts, "last_failure": last_reason})
