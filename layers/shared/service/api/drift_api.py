"""Routing of ``POST /api/v1/internal/contract-diff/score``: HTTP and direct invoke."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import ValidationError

from service.api.http import ServiceResolver, dispatch, run_direct, validation_details
from service.budget import lambda_remaining_ms
from service.db import database
from service.drift.audit import AuditTrail
from service.drift.idempotency import IdempotentScoring
from service.drift.models import ErrorReply, ScoreReply, ScoreRequest
from service.drift.repository import DriftRepository
from service.drift.scorer import DriftScorer
from service.drift.spec.source import load_spec_text
from service.errors import ServiceError, ValidationFailed
from service.llm import LlmClient

SCORE_PATH = "/api/v1/internal/contract-diff/score"


def error_envelope(exc: ServiceError, request_id: str | None) -> dict[str, Any]:
    """DESIGN §5's ``{error, error_code, status, request_id, details}``."""
    return ErrorReply(
        error=exc.message, error_code=exc.error_code, status=exc.status, request_id=request_id, details=exc.details
    ).model_dump()


app = ServiceResolver(SCORE_PATH, error_envelope)
scorer = DriftScorer(DriftRepository(database), LlmClient(), AuditTrail(database))
idempotency = IdempotentScoring()


def _error_response(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorReply}}}


def _request_id(context: Any) -> str:
    """The Lambda request id: metering is idempotent per invocation."""
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def score_once(request: ScoreRequest, context: Any) -> ScoreReply:
    """Score ``request``, or replay the stored reply of an identical one (DESIGN §8).

    HTTP and direct invokes both come here, so they share the idempotency key.
    """
    if not request.endpoints:
        return ScoreReply.nothing_to_score()  # DESIGN §5 rule 2: no S3, no DynamoDB, no database
    # The spec is read first (an S3 object's ETag is part of the key), then the key is checked.
    spec = load_spec_text(request.spec_excerpt, request.spec_s3_uri)
    return idempotency.run(
        request,
        spec.identity,
        context,
        # The remaining time is read when scoring starts, after the idempotency store's round trip.
        lambda: scorer.score(request, spec, remaining_ms=lambda_remaining_ms(context), request_id=_request_id(context)),
    )


@app.post(
    SCORE_PATH,
    summary="Score contract drift of endpoints against recent captured traffic",
    responses={
        200: {"description": "Scored findings"},
        400: _error_response("Invalid request (INVALID_REQUEST, VALIDATION_FAILED)"),
        403: _error_response("AI disabled or quota exhausted (RESOURCE_LIMIT_EXCEEDED)"),
        409: _error_response("An identical request is still being scored (REQUEST_IN_PROGRESS)"),
        500: _error_response("Database or configuration fault (DATABASE_ERROR, INTERNAL_ERROR)"),
        502: _error_response("LLM provider failed (UPSTREAM_ERROR)"),
        504: _error_response("LLM provider too slow (UPSTREAM_TIMEOUT)"),
    },
    tags=["contract-drift"],
)
def score_contract_drift(request: Annotated[ScoreRequest, Body()]) -> ScoreReply:
    return score_once(request, app.lambda_context)


def handle_direct(event: Any, context: Any) -> dict[str, Any]:
    """Step Functions: plain payload in, plain dict out, typed exceptions out."""
    try:
        request = ScoreRequest.model_validate(event)
    except ValidationError as exc:
        raise ValidationFailed("Payload is not valid", validation_details(exc.errors())) from None
    return run_direct(lambda: score_once(request, context).model_dump(mode="json"))


def handle(event: Any, context: Any) -> dict[str, Any]:
    """Entry point shared by the Lambda handler and the local API."""
    return dispatch(event, context, app, handle_direct)
