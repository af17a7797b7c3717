"""A real HTTP server on 127.0.0.1 speaking the OpenAI and Anthropic wire formats.

By default it answers like a model that found one breaking drift per endpoint that has
samples in the prompt (wrapped in prose and a code fence, as models do). Tests queue
:class:`Step` objects to make it slow, failing, rate-limited, truncated or huge. Every request
is recorded. Only tests and benchmarks use it: the local API never presents its answers as real.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# "### METHOD /path", maybe followed by " (not in the contract: ...)" (service.drift.prompt).
_HEADING = re.compile(r"^### (\S+) (.+?)(?: \(not in the contract[^)]*\))?$", re.MULTILINE)


@dataclass
class Step:
    """One scripted reply: ``body`` bytes replace the default completion when given."""

    status: int = 200
    body: bytes | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False
    text: str | None = None


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_prompt(self) -> str:
        if "system" in self.body:  # anthropic
            return str(self.body["messages"][0]["content"])
        return str(self.body["messages"][-1]["content"])

    @property
    def system_prompt(self) -> str:
        if "system" in self.body:
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


def default_completion_text(user_prompt: str) -> str:
    findings = [
        {
            "severity": "breaking",
            "endpoint": endpoint,
            "description": f"{endpoint} returns a field the contract does not define",
            "confidence": 0.9,
            "rationale": "seen in the captured response bodies",
        }
        for endpoint in endpoints_with_samples(user_prompt)
    ]
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
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.requests: list[RecordedRequest] = []
        self.script: deque[Step] = deque()
        self.completed_tokens = 0
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
                step = server._next_step()
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.drop_connection:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = step.body if step.body is not None else server._completion(self.path, recorded, step, generation)
                self.send_response(step.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in step.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self.base_url

    def _completion(self, path: str, request: RecordedRequest, step: Step, generation: int) -> bytes:
        prompt = request.user_prompt
        text = step.text if step.text is not None else default_completion_text(prompt)
        prompt_tokens, output_tokens = token_counts(len(prompt) + len(request.system_prompt), text)
        with self._lock:
            if step.status == 200 and generation == self._generation:
                self.completed_tokens += prompt_tokens + output_tokens
        model = str(request.body.get("model", "fake-model"))
        if path.endswith("/v1/messages"):
            reply: dict[str, Any] = {
                "id": "msg_local",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens},
            }
        else:
            reply = {
                "id": "chatcmpl-local",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
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
