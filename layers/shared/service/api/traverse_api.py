"""Routing of ``POST /v1/traverse_answer``: HTTP and direct invoke (DESIGN §6).

Order of checks on HTTP: bearer token (before anything, see :mod:`service.api.http`) →
experimental gate → body validation → the hop loop. Every error, of ours or of the
resolver, leaves as a ``mnem.v1.err`` envelope; bad input is always 400, never 422.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from service.api.http import ServiceResolver, dispatch, run_direct, validation_details
from service.budget import lambda_remaining_ms
from service.config import get_settings
from service.db import database
from service.errors import ExperimentalDisabled, ServiceError, ValidationFailed
from service.observability import metrics
from service.traverse.engine import TraverseEngine
from service.traverse.models import TraverseError, TraverseReply, TraverseRequest
from service.traverse.repository import GraphRepository

TRAVERSE_PATH = "/v1/traverse_answer"
DISABLED_MESSAGE = "traverse_answer: experimental endpoint disabled"
REMEDIATION_REF = "docs/traverse_answer.md#enabling-the-endpoint"


def opt_in_instructions() -> str:
    """How to switch the endpoint on, naming this deployment's function when Lambda tells us."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "TraverseAnswerFunction"
    return (
        "redeploy with the SAM parameter TraverseExperimentalEnabled=true "
        "(sam deploy --parameter-overrides TraverseExperimentalEnabled=true), or set the environment "
        f"variable TRAVERSE_EXPERIMENTAL_ENABLED=true (true/1/yes/on) on the function {function}"
    )


def require_enabled() -> None:
    """The experimental gate (DESIGN §6.2): checked after the token, before the body."""
    if not get_settings().traverse_experimental_enabled:
        metrics.add_metric(name="TraverseDisabled", unit=MetricUnit.Count, value=1)
        raise ExperimentalDisabled(DISABLED_MESSAGE)


def error_envelope(exc: ServiceError, request_id: str | None) -> dict[str, Any]:
    """``{schema: "mnem.v1.err", error, ...}``; the 410 also says how to opt in."""
    envelope = TraverseError(
        error=exc.message, error_code=exc.error_code, status=exc.status, request_id=request_id, details=exc.details
    ).model_dump(exclude={"remediation_ref", "opt_in"})
    if isinstance(exc, ExperimentalDisabled):
        envelope.update(remediation_ref=REMEDIATION_REF, opt_in=opt_in_instructions())
    return envelope


app = ServiceResolver(TRAVERSE_PATH, error_envelope, gate=require_enabled)
engine = TraverseEngine(GraphRepository(database))


@app.post(
    TRAVERSE_PATH,
    summary="Multi-hop retrieval over the knowledge graph under a hard wall-clock budget",
    responses={
        200: {"description": "The hops completed within the budget (possibly cut at the wall)"},
        400: {"description": "Invalid request (INVALID_REQUEST, VALIDATION_FAILED)"},
        410: {"description": "Experimental endpoint disabled (EXPERIMENTAL_DISABLED)"},
    },
    tags=["traverse"],
)
def traverse_answer(request: Annotated[TraverseRequest, Body()]) -> TraverseReply:
    return engine.answer(request, settings=get_settings(), remaining_ms=lambda_remaining_ms(app.lambda_context))


def handle_direct(event: Any, context: Any) -> dict[str, Any]:
    """Step Functions: plain payload in, plain dict out, typed exceptions out."""
    require_enabled()
    try:
        request = TraverseRequest.model_validate(event)
    except ValidationError as exc:
        raise ValidationFailed("Payload is not valid", validation_details(exc.errors())) from None
    return run_direct(
        lambda: engine.answer(request, settings=get_settings(), remaining_ms=lambda_remaining_ms(context)).model_dump(
            mode="json"
        )
    )


def handle(event: Any, context: Any) -> dict[str, Any]:
    """Entry point shared by the Lambda handler and the local API."""
    return dispatch(event, context, app, handle_direct)
