"""Routing of ``POST /api/v1/internal/contract-diff/score``: HTTP and direct invoke."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from service.api.http import is_http_event, request_id_of, resolve_authenticated, validation_details
from service.budget import lambda_remaining_ms
from service.db import database
from service.drift.models import ErrorReply, ScoreReply, ScoreRequest
from service.drift.repository import DriftRepository
from service.drift.scorer import DriftScorer
from service.errors import InternalError, RouteNotFound, ServiceError, ValidationFailed
from service.llm import LlmClient
from service.observability import logger, metrics

SCORE_PATH = "/api/v1/internal/contract-diff/score"

app = APIGatewayHttpResolver(enable_validation=True)
scorer = DriftScorer(DriftRepository(database), LlmClient())


def error_envelope(exc: ServiceError, request_id: str | None) -> dict[str, Any]:
    return ErrorReply(
        error=exc.message, error_code=exc.error_code, status=exc.status, request_id=request_id, details=exc.details
    ).model_dump()


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
    return _reply(RouteNotFound("Not found"))


def _error_response(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorReply}}}


def _request_id() -> str:
    context = app.lambda_context
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


@app.post(
    SCORE_PATH,
    summary="Score contract drift of endpoints against recent captured traffic",
    responses={
        200: {"description": "Scored findings"},
        400: _error_response("Invalid request (INVALID_REQUEST, VALIDATION_FAILED)"),
        403: _error_response("AI disabled or quota exhausted (RESOURCE_LIMIT_EXCEEDED)"),
        500: _error_response("Database or configuration fault (DATABASE_ERROR, INTERNAL_ERROR)"),
        502: _error_response("LLM provider failed (UPSTREAM_ERROR)"),
        504: _error_response("LLM provider too slow (UPSTREAM_TIMEOUT)"),
    },
    tags=["contract-drift"],
)
def score_contract_drift(request: Annotated[ScoreRequest, Body()]) -> ScoreReply:
    return scorer.score(request, remaining_ms=lambda_remaining_ms(app.lambda_context), request_id=_request_id())


def handle_direct(event: Any, context: Any) -> dict[str, Any]:
    """Step Functions: plain payload in, plain dict out, typed exceptions out."""
    try:
        request = ScoreRequest.model_validate(event)
    except ValidationError as exc:
        raise ValidationFailed("Payload is not valid", validation_details(exc.errors())) from None
    request_id = str(getattr(context, "aws_request_id", None) or uuid.uuid4())
    try:
        reply = scorer.score(request, remaining_ms=lambda_remaining_ms(context), request_id=request_id)
    except ServiceError:
        raise
    except Exception:  # noqa: BLE001 - a bug must still reach Step Functions as a typed error
        logger.exception("Unexpected failure")
        raise InternalError("Internal error") from None
    return reply.model_dump(mode="json")


def handle(event: Any, context: Any) -> dict[str, Any]:
    """Entry point shared by the Lambda handler and the local API."""
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    database.limit_io_to(lambda_remaining_ms(context))
    if is_http_event(event):
        return resolve_authenticated(event, context, app, error_envelope)
    return handle_direct(event, context)
