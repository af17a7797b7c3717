"""The local stack of ``make run`` on the session's Postgres and moto, and its HTTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.demo_data import DemoLlm
from devtools.fake_llm import FakeLlmServer
from devtools.local_api import DEFAULT_MODELS, LocalApiServer, LocalStack, prepare_stack, serve
from devtools.postgres import EmbeddedPostgres, truncate_app_tables
from tests.conftest import reset_service_caches

MakeStack = Callable[..., LocalStack]


@pytest.fixture
def make_stack(
    monkeypatch: pytest.MonkeyPatch,
    postgres: EmbeddedPostgres,
    aws_endpoint: str,
    llm_server: FakeLlmServer,
    admin_db: Any,
) -> Iterator[MakeStack]:
    """``make_stack(llm=True, traverse_enabled=True, token=None, provider="openai")``: demo data,
    secrets, environment.

    ``llm=True`` points the platform key (and the team org's BYOK key) at the test LLM server,
    as ``--llm-endpoint`` does (``provider="bedrock"``: as ``--bedrock-endpoint`` does); the
    environment is installed with ``monkeypatch``.
    """

    def make(
        *, llm: bool = True, traverse_enabled: bool = True, token: str | None = None, provider: str = "openai"
    ) -> LocalStack:
        truncate_app_tables(admin_db)
        llm_server.reset()
        target = DemoLlm(llm_server.base_url, provider, DEFAULT_MODELS[provider], "sk-local-test") if llm else None
        stack = prepare_stack(postgres, aws_endpoint, token=token, llm=target, traverse_enabled=traverse_enabled)
        for name, value in stack.env.items():
            monkeypatch.setenv(name, value)
        if target is None:
            monkeypatch.delenv("PLATFORM_LLM_ENDPOINT", raising=False)
        reset_service_caches()
        return stack

    yield make
    reset_service_caches()


@pytest.fixture(scope="module")
def api_server() -> Iterator[LocalApiServer]:
    """The local API on a free port of 127.0.0.1 (each test installs its own stack)."""
    server = serve(port=0)
    yield server
    server.close()
