"""Routing of ``POST /v1/traverse_answer``: HTTP and direct invoke (DESIGN §6).

Order of checks on HTTP: bearer token (before anything, see :mod:`service.api.http`) →
experimental gate → body validation → the hop loop. Every error, of ours or of the
resolver, leaves as a ``mnem.v1.err`` envelope; bad input is always 400, never 422.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from service.api.http import (
    header,
    is_http_event,
    json_reply,
    request_id_of,
    resolve_authenticated,
    validation_details,
)
from service.budget import lambda_remaining_ms
from service.config import get_settings
from service.db import database
from service.errors import ExperimentalDisabled, InternalError, InvalidRequest, ServiceError, ValidationFailed
from service.observability import logger, metrics
from service.traverse.engine import TraverseEngine
from service.traverse.models import TraverseError, TraverseReply, TraverseRequest
from service.traverse.repository import GraphRepository

TRAVERSE_PATH = "/v1/traverse_answer"
DISABLED_MESSAGE = "traverse_answer: experimental endpoint disabled"
REMEDIATION_REF = "docs/traverse_answer.md#enabling-the-endpoint"


def body_problem(event: Mapping[str, Any]) -> ValidationFailed | None:
    """Why the body cannot be a request object, caught before Powertools parses it.

    Powertools answers some malformed bodies (a JSON scalar, nesting deep enough to hit the
    recursion limit, an unparsable multipart) with exceptions it does not classify as
    validation errors, which would surface as 500s; here they are all a plain 400.
    """
    content_type = (header(event, "content-type") or "").strip().lower()
    if content_type and not content_type.startswith("application/json"):
        return ValidationFailed("Request body must be JSON (Content-Type: application/json)")
    body = event.get("body")
    if body is None or body == "":
        return ValidationFailed("Request body is required (a JSON object; {} is valid)")
    try:
        parsed = json.loads(body) if isinstance(body, str | bytes) else None
    except (ValueError, RecursionError):
        return ValidationFailed("Request body is not valid JSON")
    if not isinstance(parsed, dict):
        return ValidationFailed("Request body must be a JSON object")
    return None


class _GatedResolver(APIGatewayHttpResolver):
    """Checks the experimental gate after authentication and before body validation.

    Powertools runs its validation middleware ahead of any user middleware, so the gate
    cannot be a middleware: a disabled endpoint must answer 410 whatever the body is.
    """

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if not get_settings().traverse_experimental_enabled:
            metrics.add_metric(name="TraverseDisabled", unit=MetricUnit.Count, value=1)
            return json_reply(410, error_envelope(disabled_error(), request_id_of(event)))
        problem = body_problem(event)
        if problem is not None and _routes_to_traverse(event):
            return json_reply(problem.status, error_envelope(problem, request_id_of(event)))
        return super().resolve(event, context)


def _routes_to_traverse(event: Mapping[str, Any]) -> bool:
    return event.get("rawPath") == TRAVERSE_PATH or event.get("routeKey") == f"POST {TRAVERSE_PATH}"


app = _GatedResolver(enable_validation=True)
engine = TraverseEngine(GraphRepository(database))


def opt_in_instructions() -> str:
    """How to switch the endpoint on, naming this deployment's function when Lambda tells us."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "TraverseAnswerFunction"
    return (
        "redeploy with the SAM parameter TraverseExperimentalEnabled=true "
        "(sam deploy --parameter-overrides TraverseExperimentalEnabled=true), or set the environment "
        f"variable TRAVERSE_EXPERIMENTAL_ENABLED=true (true/1/yes/on) on the function {function}"
    )


def disabled_error() -> ExperimentalDisabled:
    return ExperimentalDisabled(DISABLED_MESSAGE)


def error_envelope(exc: ServiceError, request_id: str | None) -> dict[str, Any]:
    """``{schema: "mnem.v1.err", error, ...}``; the 410 also says how to opt in."""
    envelope = TraverseError(
        error=exc.message, error_code=exc.error_code, status=exc.status, request_id=request_id, details=exc.details
    ).model_dump(exclude={"remediation_ref", "opt_in"})
    if isinstance(exc, ExperimentalDisabled):
        envelope.update(remediation_ref=REMEDIATION_REF, opt_in=opt_in_instructions())
    return envelope


def _reply(exc: ServiceError) -> Response[dict[str, Any]]:
    return Response(
        status_code=exc.status,
        content_type=content_types.APPLICATION_JSON,
        body=error_envelope(exc, request_id_of(app.current_event.raw_event)),
    )


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[dict[str, Any]]:
    logger.info("Request failed", extra={"error_code": exc.error_code, "error": exc.message})
    return _reply(exc)


@app.exception_handler(RequestValidationError)
def _invalid_body(exc: RequestValidationError) -> Response[dict[str, Any]]:
    return _reply(ValidationFailed("Request body is not valid", validation_details(exc.errors())))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_body(exc: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    # Powertools files this under NotImplementedError: without this handler it would be a 500.
    return _reply(ValidationFailed("Request body must be JSON", validation_details(exc.errors())))


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("Unexpected failure")
    return _reply(InternalError("Internal error"))


@app.not_found
def _no_route(exc: Exception) -> Response[dict[str, Any]]:
    return _reply(InvalidRequest("Not found"))


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
    settings = get_settings()
    if not settings.traverse_experimental_enabled:
        raise disabled_error()
    try:
        request = TraverseRequest.model_validate(event)
    except ValidationError as exc:
        raise ValidationFailed("Payload is not valid", validation_details(exc.errors())) from None
    try:
        reply = engine.answer(request, settings=settings, remaining_ms=lambda_remaining_ms(context))
    except ServiceError:
        raise
    except Exception:  # noqa: BLE001 - a bug must still reach Step Functions as a typed error
        logger.exception("Unexpected failure")
        raise InternalError("Internal error") from None
    return reply.model_dump(mode="json")


def handle(event: Any, context: Any) -> dict[str, Any]:
    """Entry point shared by the Lambda handler and the local API."""
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    # A black-holed database must not hold the function until Lambda kills it.
    database.limit_io_to(lambda_remaining_ms(context))
    if is_http_event(event):
        return resolve_authenticated(event, context, app, error_envelope)
    return handle_direct(event, context)
