"""One LLM call for every wire format: the deadline, the retries and the fallback live here.

Every attempt's timeout is the time left on the caller's :class:`~service.budget.BudgetGuard`,
and a retry (429/5xx/throttling/connection failures, exponential backoff, ``Retry-After``
honoured) is made only when it fits too: the call never outlives the Lambda. When the provider
refuses the structured output (DESIGN §12.1) the call is made once more without it, inside the
same deadline, and the target is remembered so later calls skip the refused request.
OpenAI-compatible and Anthropic targets go over httpx; Bedrock goes through boto3, whose own
retries are off and whose timeouts are the time left.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx

from service import egress
from service.budget import BudgetGuard
from service.errors import InternalError, UpstreamError, UpstreamTimeout
from service.llm.anthropic_format import AnthropicFormat
from service.llm.base import (
    Completion,
    HttpWireFormat,
    LlmTarget,
    ProviderFailure,
    StructuredOutput,
    WireFormat,
)
from service.llm.bedrock_format import BedrockFormat
from service.llm.openai_format import OpenAiFormat
from service.observability import logger

MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
MIN_ATTEMPT_MS = 150.0
MAX_REPLY_BYTES = 2 * 1024 * 1024
MAX_ERROR_BYTES = 16 * 1024
# At most this many targets that refused structured output are remembered (oldest forgotten first).
MAX_REMEMBERED_REFUSALS = 256
# Bedrock clients cached per timeout step (boto3 fixes timeouts per client).
MAX_BEDROCK_CLIENTS = 8

HTTP_WIRE_FORMATS: dict[str, HttpWireFormat] = {"openai": OpenAiFormat(), "anthropic": AnthropicFormat()}
WIRE_FORMATS: dict[str, WireFormat] = {**HTTP_WIRE_FORMATS, "bedrock": BedrockFormat()}


# Targets (provider, base URL, model) that refused structured output in this process.
_refused_structured: OrderedDict[tuple[str, str, str], None] = OrderedDict()
_refused_lock = threading.Lock()


def _structured_refused_before(target: LlmTarget) -> bool:
    with _refused_lock:
        return (target.provider, target.base_url, target.model) in _refused_structured


def _remember_structured_refusal(target: LlmTarget) -> None:
    with _refused_lock:
        _refused_structured[(target.provider, target.base_url, target.model)] = None
        if len(_refused_structured) > MAX_REMEMBERED_REFUSALS:
            _refused_structured.popitem(last=False)


def clear_structured_refusals() -> None:
    """Forget which targets refused structured output (as a cold start would)."""
    with _refused_lock:
        _refused_structured.clear()


class _Retryable(Exception):
    """Worth another attempt if one fits: a transient provider error or a broken connection."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class _Failed(Exception):
    """The provider answered with an error; the wire format says what kind."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(f"HTTP {failure.status} {failure.code}".strip())
        self.failure = failure


def _retry_after_seconds(header: str | None) -> float | None:
    try:
        value = float(header) if header else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else max(0.0, value)


def _http_failure(status: int, headers: httpx.Headers, raw: bytes) -> ProviderFailure:
    """An error reply of an HTTP provider, read leniently: OpenAI nests ``error``, vLLM does not,
    Ollama sends ``{"error": "text"}``."""
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {}
    error: Any = payload.get("error", payload) if isinstance(payload, dict) else {}
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        error = {}
    return ProviderFailure(
        status=status,
        code=str(error.get("type") or error.get("code") or ""),
        message=str(error.get("message") or "")[:1000],
        param=str(error.get("param") or ""),
        retry_after_s=_retry_after_seconds(headers.get("retry-after")),
    )


def _timeout_step(seconds: float) -> float:
    """Bedrock client timeouts, rounded *down* (never past the deadline) to a few distinct values
    so warm invokes reuse cached clients: whole seconds from 2 s, tenths below."""
    return float(math.floor(seconds)) if seconds >= 2.0 else max(0.1, math.floor(seconds * 10) / 10)


class LlmClient:
    """Pooled httpx clients (one for the platform endpoint, one guarded for BYOK targets, DESIGN
    §13) and a few boto3 clients per process, reused across warm invokes."""

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
        self._lock = threading.Lock()
        self._bedrock_clients: OrderedDict[tuple[float, str | None, str | None], Any] = OrderedDict()
        self._bedrock_session: Any = None

    # --- the one place a target's transport is chosen -------------------------------------

    def _http_for(self, target: LlmTarget) -> httpx.Client:
        """The httpx client that calls ``target``: BYOK URLs go through the egress guard, which
        judges the address actually connected to; the operator's platform endpoint does not."""
        if target.egress_guarded:
            if self._guarded_client is None:
                self._guarded_client = egress.guarded_client(self._guarded_transport)
            return self._guarded_client
        if self._client is None:
            self._client = httpx.Client(transport=self._transport, follow_redirects=False)
        return self._client

    def _bedrock_for(self, timeout_s: float) -> Any:
        """A ``bedrock-runtime`` client whose retries are off and whose timeouts fit ``timeout_s``.

        boto3 reads ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` / ``AWS_ENDPOINT_URL`` and the region
        itself; they are part of the cache key so a changed environment (tests) gets a new client.
        """
        step = _timeout_step(timeout_s)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME") or os.environ.get("AWS_ENDPOINT_URL")
        key = (step, endpoint, os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
        with self._lock:
            client = self._bedrock_clients.get(key)
            if client is not None:
                self._bedrock_clients.move_to_end(key)
                return client
            import boto3  # in the Lambda runtime, not in the layer
            from botocore.config import Config

            if self._bedrock_session is None:
                self._bedrock_session = boto3.session.Session()
            client = self._bedrock_session.client(
                "bedrock-runtime",
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},  # our loop retries
                    connect_timeout=step,
                    read_timeout=step,
                ),
            )
            self._bedrock_clients[key] = client
            if len(self._bedrock_clients) > MAX_BEDROCK_CLIENTS:
                self._bedrock_clients.popitem(last=False)
            return client

    # --- one attempt -------------------------------------------------------------------------

    def _send_http(self, target: LlmTarget, wire: HttpWireFormat, body: dict[str, Any], timeout_s: float) -> Any:
        http = self._http_for(target)
        try:
            # A refused BYOK address raises InvalidRequest from here: not retried, not a 502.
            with http.stream(
                "POST", wire.url(target), headers=wire.headers(target), json=body, timeout=timeout_s
            ) as reply:
                if 300 <= reply.status_code < 400:  # redirects are never followed (DESIGN §13.1)
                    raise UpstreamError("LLM provider refused the request", {"provider_status": reply.status_code})
                if reply.status_code >= 400:
                    raw = b""
                    for chunk in reply.iter_bytes():
                        raw += chunk
                        if len(raw) >= MAX_ERROR_BYTES:
                            break
                    raise _Failed(_http_failure(reply.status_code, reply.headers, raw[:MAX_ERROR_BYTES]))
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
            return json.loads(b"".join(chunks))
        except ValueError:
            raise UpstreamError("LLM provider reply is not JSON") from None

    def _send_bedrock(self, request: dict[str, Any], timeout_s: float) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            NoCredentialsError,
            NoRegionError,
            ParamValidationError,
            ReadTimeoutError,
        )

        try:
            return self._bedrock_for(timeout_s).converse(**request)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            raise _Failed(
                ProviderFailure(
                    status=int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0),
                    code=str(error.get("Code") or ""),
                    message=str(error.get("Message") or "")[:1000],
                )
            ) from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise UpstreamTimeout("Bedrock did not answer in the time left") from None
        except (NoCredentialsError, NoRegionError, ParamValidationError) as exc:
            raise InternalError("The Bedrock client is misconfigured", {"reason": type(exc).__name__}) from None
        except BotoCoreError as exc:  # connection refused, closed, reset: transient
            raise _Retryable(type(exc).__name__) from None

    def _attempt(
        self,
        target: LlmTarget,
        wire: WireFormat,
        system: str,
        user: str,
        output: StructuredOutput | None,
        timeout_s: float,
    ) -> Completion:
        request = wire.build_request(target, system, user, output)
        if target.provider == "bedrock":
            payload = self._send_bedrock(request, timeout_s)
        else:
            payload = self._send_http(target, HTTP_WIRE_FORMATS[target.provider], request, timeout_s)
        try:
            reply = wire.read_reply(payload, output)
            usage = wire.read_usage(payload)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            raise UpstreamError("LLM provider returned a malformed reply") from None
        if reply.truncated:
            logger.warning("LLM reply stopped at the output limit", extra={"provider": target.provider})
        return Completion(
            text=reply.text,
            tokens_used=usage.total_tokens,
            model=reply.model or target.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            structured=reply.structured,
            truncated=reply.truncated,
        )

    # --- the call ----------------------------------------------------------------------------

    def complete(
        self,
        target: LlmTarget,
        system: str,
        user: str,
        guard: BudgetGuard,
        output: StructuredOutput | None = None,
    ) -> Completion:
        """One completion within ``guard``'s hard wall, retrying transient failures.

        ``output`` asks for structured output; a provider that refuses it is asked once more
        without it (that extra call is not one of the :data:`MAX_ATTEMPTS` retries, but it must
        fit in the same deadline). Only the successful call's completion comes back.
        """
        wire = WIRE_FORMATS[target.provider]
        if output is not None and _structured_refused_before(target):
            output = None
        last_reason = "no attempt"
        attempts = 0
        calls = 0
        while attempts < MAX_ATTEMPTS:
            remaining_ms = guard.remaining_ms()
            if remaining_ms < MIN_ATTEMPT_MS:
                raise UpstreamTimeout("No time left for the LLM call", {"attempts": calls})
            attempts += 1
            calls += 1
            try:
                return self._attempt(target, wire, system, user, output, timeout_s=remaining_ms / 1000.0)
            except _Failed as failed:
                failure = failed.failure
                if output is not None and wire.refuses_structured(failure):
                    logger.info(
                        "Provider refused structured output; asking once more without it",
                        extra={"provider": target.provider, "status": failure.status, "code": failure.code},
                    )
                    _remember_structured_refusal(target)
                    output = None
                    attempts -= 1  # not a transient failure: the retries stay for those
                    continue
                if not wire.is_transient(failure):
                    raise UpstreamError(
                        "LLM provider refused the request",
                        {
                            "provider_status": failure.status,
                            **({"provider_code": failure.code} if failure.code else {}),
                        },
                    ) from None
                retry = _Retryable(str(failed), failure.retry_after_s)
            except _Retryable as transient:
                retry = transient
            last_reason = str(retry)
            logger.warning("LLM attempt failed", extra={"attempt": attempts, "reason": last_reason})
            delay = retry.retry_after_s
            if delay is None:
                backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
                delay = backoff * random.uniform(0.5, 1.0)
            if attempts == MAX_ATTEMPTS or delay * 1000.0 + MIN_ATTEMPT_MS > guard.remaining_ms():
                break  # no retry fits in the time left
            self._sleep(delay)
        raise UpstreamError("LLM provider kept failing", {"attempts": calls, "last_failure": last_reason})
