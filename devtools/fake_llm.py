"""A real HTTP server on 127.0.0.1 speaking the OpenAI, Anthropic and Bedrock Converse wire formats.

Paths: ``/v1/chat/completions`` (OpenAI-compatible), ``/v1/messages`` (Anthropic) and
``/model/{modelId}/converse`` (Bedrock Runtime, as botocore's ``bedrock-runtime`` service model
describes it: JSON body, errors named by the ``x-amzn-ErrorType`` header and ``__type``; point
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` here). By default it answers like a model that found one
breaking drift per endpoint that has samples in the prompt: as structured output when the request
asks for it (``response_format`` json_schema, a forced tool), otherwise as prose with a code
fence, as models do. :attr:`FakeLlmServer.refuses_structured` makes it a server that does not
know structured output. Tests queue :class:`Step` objects to make it slow, failing,
rate-limited, truncated or huge. Every request is recorded. Only tests and benchmarks use it:
the local API never presents its answers as real.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

# "### METHOD /path", maybe followed by " (not in the contract: ...)" (service.drift.prompt).
_HEADING = re.compile(r"^### (\S+) (.+?)(?: \(not in the contract[^)]*\))?$", re.MULTILINE)


_CONVERSE = re.compile(r"^/model/(?P<model>[^/]+)/converse$")
Wire = Literal["openai", "anthropic", "bedrock"]
# Bedrock's error code per HTTP status (botocore's bedrock-runtime service model).
BEDROCK_ERROR_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
BEDROCK_TOOL_CHOICE_REFUSAL = (
    "This model doesn't support the toolConfig.toolChoice.tool field. Remove toolConfig.toolChoice.tool and try again."
)


@dataclass
class Step:
    """One scripted reply: ``body`` bytes replace the default completion when given.

    ``text`` is the model's text (an OpenAI ``content``, or a text block where a tool call was
    asked for); ``tool_input`` is a structured answer (the json_schema content, or the forced
    tool's input); ``stop_reason`` is the wire format's own word (``length``, ``max_tokens``).
    On the Bedrock path an error status without ``body`` gets Bedrock's error shape, named
    ``error_code`` or the status's usual code.
    """

    status: int = 200
    body: bytes | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False
    text: str | None = None
    tool_input: Any = None
    stop_reason: str | None = None
    error_code: str | None = None


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def wire(self) -> Wire:
        if _CONVERSE.match(self.path):
            return "bedrock"
        return "anthropic" if self.path.endswith("/v1/messages") else "openai"

    @property
    def model(self) -> str:
        """The model asked for (Bedrock names it in the path)."""
        found = _CONVERSE.match(self.path)
        return unquote(found["model"]) if found else str(self.body.get("model", "fake-model"))

    @property
    def structured(self) -> bool:
        """The request asks for structured output (DESIGN §12.1)."""
        return any(key in self.body for key in ("response_format", "tool_choice", "toolConfig"))

    @property
    def user_prompt(self) -> str:
        if self.wire == "bedrock":
            return str(self.body["messages"][0]["content"][0]["text"])
        if self.wire == "anthropic":
            return str(self.body["messages"][0]["content"])
        return str(self.body["messages"][-1]["content"])

    @property
    def system_prompt(self) -> str:
        if self.wire == "bedrock":
            return str(self.body["system"][0]["text"])
        if self.wire == "anthropic":
            return str(self.body["system"])
        return str(self.body["messages"][0]["content"])


def endpoints_with_samples(user_prompt: str) -> list[str]:
    """``METHOD /path`` of every endpoint section in the prompt that holds a sample."""
    sections = _HEADING.split(user_prompt)
    found = []
    for i in range(1, len(sections) - 2, 3):
        if "Sample 1:" in sections[i + 2]:
            found.append(f"{sections[i]} {sections[i + 1].strip()}")
    return found


def default_findings(user_prompt: str) -> list[dict[str, Any]]:
    return [
        {
            "severity": "breaking",
            "endpoint": endpoint,
            "description": f"{endpoint} returns a field the contract does not define",
            "confidence": 0.9,
            "rationale": "seen in the captured response bodies",
        }
        for endpoint in endpoints_with_samples(user_prompt)
    ]


def default_completion_text(user_prompt: str) -> str:
    findings = default_findings(user_prompt)
    return "Here is my assessment:\n```json\n" + json.dumps(findings, indent=1) + "\n```\n"


def token_counts(prompt_chars: int, text: str) -> tuple[int, int]:
    """Deterministic usage figures (about 4 characters a token)."""
    return max(1, prompt_chars // 4), max(1, len(text) // 4)


# Where fake LLMs listen: what BYOK_PRIVATE_NETWORKS_ALLOWED must hold for a BYOK key pointing at
# one to be used (DESIGN §13.2), in the tests and in `make run` / `make invoke`.
LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"


class FakeLlmServer:
    """Start with :meth:`start`; ``base_url`` has no ``/v1`` (as PLATFORM_LLM_ENDPOINT).

    ``host`` is a loopback address (127.0.0.0/8); ``port`` 0 picks a free one.

    ``refuses_structured`` makes it a server without structured output: an OpenAI-compatible
    request carrying ``response_format`` gets 400 (naming it in ``error.param`` as OpenAI does,
    or, with ``refusal_style="message"``, only in a top-level ``message`` as vLLM does); a Converse
    request carrying ``toolConfig.toolChoice`` gets ``ValidationException``. Anthropic always
    honours tools.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.requests: list[RecordedRequest] = []
        self.script: deque[Step] = deque()
        self.completed_tokens = 0
        # (prompt, completion) tokens of every completion answered, as its reply reported them.
        self.reported_usage: list[tuple[int, int]] = []
        self.refuses_structured = False
        self.refusal_style: Literal["param", "message"] = "param"
        # Requests that arrived before the last reset() (a slow one a test gave up on) must
        # not count towards the next test's figures.
        self._generation = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self.completed_tokens = 0
            self.reported_usage.clear()
            self.refuses_structured = False
            self.refusal_style = "param"
            self._generation += 1

    def enqueue(self, *steps: Step) -> None:
        with self._lock:
            self.script.extend(steps)

    def _next_step(self) -> Step:
        with self._lock:
            return self.script.popleft() if self.script else Step()

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {}
                recorded = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, payload)
                with server._lock:
                    server.requests.append(recorded)
                    generation = server._generation
                refusal = server._structured_refusal(recorded)
                step = Step(**refusal) if refusal else server._next_step()
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.drop_connection:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                headers = dict(step.headers)
                body = step.body
                if recorded.wire == "bedrock":
                    headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
                    if step.status >= 400 and body is None:
                        code = step.error_code or BEDROCK_ERROR_CODES.get(step.status, "InternalServerException")
                        headers.setdefault("x-amzn-ErrorType", code)
                        body = json.dumps({"__type": code, "message": step.text or f"{code} (fake)"}).encode()
                if body is None:
                    body = server._completion(recorded, step, generation)
                self.send_response(step.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self.base_url

    def _structured_refusal(self, request: RecordedRequest) -> dict[str, Any] | None:
        """The error a server without structured output answers, as a :class:`Step`'s fields."""
        if not self.refuses_structured:
            return None
        if request.wire == "openai" and "response_format" in request.body:
            message = "Unrecognized request argument supplied: response_format"
            error: dict[str, Any] = (
                {
                    "error": {
                        "message": message,
                        "type": "invalid_request_error",
                        "param": "response_format",
                        "code": None,
                    }
                }
                if self.refusal_style == "param"
                else {
                    "object": "error",
                    "message": f"1 validation error: {message}",
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                }
            )
            return {"status": 400, "body": json.dumps(error).encode()}
        if request.wire == "bedrock" and "toolChoice" in (request.body.get("toolConfig") or {}):
            return {"status": 400, "error_code": "ValidationException", "text": BEDROCK_TOOL_CHOICE_REFUSAL}
        return None

    def _completion(self, request: RecordedRequest, step: Step, generation: int) -> bytes:
        prompt = request.user_prompt
        structured = step.tool_input is not None or (request.structured and step.text is None)
        answer: Any = step.tool_input if step.tool_input is not None else {"findings": default_findings(prompt)}
        if structured:
            text = json.dumps(answer)
        else:
            text = step.text if step.text is not None else default_completion_text(prompt)
        prompt_tokens, output_tokens = token_counts(len(prompt) + len(request.system_prompt), text)
        with self._lock:
            if step.status == 200 and generation == self._generation:
                self.completed_tokens += prompt_tokens + output_tokens
                self.reported_usage.append((prompt_tokens, output_tokens))
        model = request.model
        reply: dict[str, Any]
        if request.wire == "bedrock":
            tool_name = _forced_tool(request.body.get("toolConfig"), "toolChoice", ("tool", "name"))
            block: dict[str, Any] = (
                {"toolUse": {"toolUseId": "tooluse_local", "name": tool_name or "report_findings", "input": answer}}
                if structured
                else {"text": text}
            )
            reply = {
                "output": {"message": {"role": "assistant", "content": [block]}},
                "stopReason": step.stop_reason or ("tool_use" if structured else "end_turn"),
                "usage": {
                    "inputTokens": prompt_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": prompt_tokens + output_tokens,
                },
                "metrics": {"latencyMs": 1},
            }
        elif request.wire == "anthropic":
            tool_name = _forced_tool(request.body, "tool_choice", ("name",))
            content: dict[str, Any] = (
                {"type": "tool_use", "id": "toolu_local", "name": tool_name or "report_findings", "input": answer}
                if structured
                else {"type": "text", "text": text}
            )
            reply = {
                "id": "msg_local",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [content],
                "stop_reason": step.stop_reason or ("tool_use" if structured else "end_turn"),
                "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens},
            }
        else:
            reply = {
                "id": "chatcmpl-local",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": step.stop_reason or "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": output_tokens,
                    "total_tokens": prompt_tokens + output_tokens,
                },
            }
        return json.dumps(reply).encode()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def _forced_tool(container: Any, choice_key: str, name_path: tuple[str, ...]) -> str | None:
    """The tool name a request forces (``tool_choice.name`` / ``toolChoice.tool.name``)."""
    node: Any = (container or {}).get(choice_key) if isinstance(container, dict) else None
    for key in name_path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None
