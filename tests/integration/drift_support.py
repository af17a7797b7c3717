"""Calling the drift function the way its two kinds of callers do."""

from __future__ import annotations

import uuid
from typing import Any

from devtools.events import http_event, reply_json
from devtools.handlers import load_handler
from devtools.lambda_context import LocalLambdaContext
from devtools.seed import Tenant
from tests.conftest import INTERNAL_TOKEN

SCORE_PATH = "/api/v1/internal/contract-diff/score"

drift_app = load_handler("contract_drift")


def score_body(tenant: Tenant, endpoints: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "org_id": str(tenant.org_id),
        "workspace_id": str(tenant.workspace_id),
        "spec_excerpt": "paths:\n  /users/{id}:\n    get:\n      responses:\n        '200': {}\n",
        "endpoints": [{"method": m, "path": p} for m, p in endpoints],
        **extra,
    }


def call_http(
    body: Any,
    *,
    token: str | None = INTERNAL_TOKEN,
    timeout_ms: int = 30_000,
    path: str = SCORE_PATH,
    method: str = "POST",
    **event_options: Any,
) -> tuple[int, Any]:
    event = http_event(method, path, body, token=token, **event_options)
    reply = drift_app.lambda_handler(event, LocalLambdaContext("ContractDriftFunction", timeout_ms=timeout_ms))
    return reply["statusCode"], reply_json(reply)


def call_direct(payload: Any, *, timeout_ms: int = 30_000, request_id: str | None = None) -> dict[str, Any]:
    context = LocalLambdaContext(
        "ContractDriftFunction", timeout_ms=timeout_ms, aws_request_id=request_id or str(uuid.uuid4())
    )
    result: dict[str, Any] = drift_app.lambda_handler(payload, context)
    return result
