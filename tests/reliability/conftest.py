"""Fixtures of the abuse and fault suite: figures, Secrets Manager call counting, callers.

Every test that produces a figure for ``docs/reliability.md`` hands it to :func:`figures`;
the figures of a run are merged into ``.local/reliability/figures.json`` at the end of the
session, and ``python -m tests.reliability.report`` renders the doc from that file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from devtools.events import http_event
from devtools.handlers import load_handler
from devtools.lambda_context import LocalLambdaContext
from devtools.seed import Tenant
from service.config import get_settings
from tests.conftest import INTERNAL_TOKEN
from tests.integration.drift_support import score_body

ROOT = Path(__file__).resolve().parents[2]
FIGURES_PATH = ROOT / ".local" / "reliability" / "figures.json"
DRIFT_PATH = "/api/v1/internal/contract-diff/score"
TRAVERSE_PATH = "/v1/traverse_answer"
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', '.py", line ')

drift_app = load_handler("contract_drift")
traverse_app = load_handler("traverse_answer")
APPS = {
    "drift": (drift_app, DRIFT_PATH, "ContractDriftFunction"),
    "traverse": (traverse_app, TRAVERSE_PATH, "TraverseAnswerFunction"),
}


class Figures:
    """Named figures of this run, by section, written once at the end of the session."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, section: str, **values: Any) -> None:
        with self._lock:
            self.sections.setdefault(section, {}).update(values)

    def write(self, path: Path = FIGURES_PATH) -> None:
        if not self.sections:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            existing: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            existing = {}
        merged = existing.get("sections", {})
        merged.update(self.sections)
        document = {
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sections": dict(sorted(merged.items())),
        }
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    collected = Figures()
    yield collected
    collected.write()


class SecretsManagerCalls:
    """Counts Secrets Manager ``GetSecretValue`` calls, on both ends of the wire.

    ``client``: calls botocore made (any client, so the Powertools provider rebuilt by a cache
    clear is counted too), per ``SecretId``. ``server``: POSTs the moto server logged, which
    proves the calls really left the process (only meaningful while nothing else talks to moto).
    """

    def __init__(self) -> None:
        self.client: Counter[str] = Counter()
        self.server = 0
        self._lock = threading.Lock()

    def count_client(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "GetSecretValue":
            with self._lock:
                self.client[str(params.get("SecretId"))] += 1

    def count_server(self) -> None:
        with self._lock:
            self.server += 1

    def reset(self) -> None:
        with self._lock:
            self.client.clear()
            self.server = 0

    def of(self, secret_id: str) -> int:
        return self.client[secret_id]


class _MotoRequestLog(logging.Handler):
    def __init__(self, calls: SecretsManagerCalls) -> None:
        super().__init__(logging.INFO)
        self._calls = calls

    def emit(self, record: logging.LogRecord) -> None:
        if '"POST / ' in record.getMessage():
            self._calls.count_server()


@pytest.fixture
def sm_calls(monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> Iterator[SecretsManagerCalls]:
    calls = SecretsManagerCalls()
    original = BaseClient._make_api_call

    def counting(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.count_client(operation_name, api_params)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    werkzeug = logging.getLogger("werkzeug")
    handler = _MotoRequestLog(calls)
    previous_level = werkzeug.level
    werkzeug.setLevel(logging.INFO)
    werkzeug.addHandler(handler)
    try:
        yield calls
    finally:
        werkzeug.removeHandler(handler)
        werkzeug.setLevel(previous_level)


def context(name: str, timeout_ms: int = 30_000, request_id: str | None = None) -> LocalLambdaContext:
    return LocalLambdaContext(name, timeout_ms=timeout_ms, aws_request_id=request_id or str(uuid.uuid4()))


def invoke_event(route: str, event: Any, *, timeout_ms: int = 30_000) -> Any:
    """Hand ``event`` to the function of ``route`` (``drift`` or ``traverse``) as Lambda would."""
    app, _, name = APPS[route]
    return app.lambda_handler(event, context(name, timeout_ms))


def call_route(
    route: str,
    body: Any,
    *,
    authorization: str | None = f"Bearer {INTERNAL_TOKEN}",
    request_id: str | None = None,
    timeout_ms: int = 30_000,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The raw proxy reply of an HTTP call (``authorization`` is the whole header value)."""
    _, path, _ = APPS[route]
    event = http_event("POST", path, body, request_id=request_id, **options)
    event["headers"].pop("authorization", None)
    if authorization is not None:
        event["headers"]["authorization"] = authorization
    event["headers"].update(headers or {})
    reply: dict[str, Any] = invoke_event(route, event, timeout_ms=timeout_ms)
    return reply


def has_traceback(text: str) -> bool:
    return any(marker in text for marker in TRACEBACK_MARKERS)


@pytest.fixture
def traverse_on(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TRAVERSE_EXPERIMENTAL_ENABLED", "true")
    get_settings.cache_clear()
    return service_env


Recorder = Callable[..., None]


def drift_body(tenant: Tenant) -> dict[str, Any]:
    """The drift request every fault test sends: one endpoint with traffic, ``GET /a``."""
    return score_body(tenant, [("GET", "/a")], spec_excerpt="openapi: 3.0.0")
