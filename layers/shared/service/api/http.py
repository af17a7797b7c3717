"""What both functions do with an API Gateway event before their domain code runs.

API Gateway HTTP API events (payload 2.0) are told apart from direct invokes (Step
Functions). :class:`ServiceResolver` then checks, in this order and before Powertools routes
or validates anything: the bearer token (so an unauthenticated caller learns nothing and
never reaches the database), an optional gate, and that the body is a JSON object. Every
failure, ours or the resolver's, leaves in the route's error envelope: never a 422 or a
traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit

from service.budget import lambda_remaining_ms
from service.db import database
from service.errors import InternalError, RouteNotFound, ServiceError, ValidationFailed
from service.observability import logger, metrics
from service.secrets import token_verifier

Envelope = Callable[[ServiceError, str | None], dict[str, Any]]
Gate = Callable[[], None]


def is_http_event(event: Any) -> bool:
    """API Gateway (or its local twin) rather than a direct invoke."""
    return (
        isinstance(event, Mapping)
        and isinstance(event.get("requestContext"), Mapping)
        and ("routeKey" in event or "rawPath" in event)
    )


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header, whatever the case of its name."""
    headers = event.get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def request_id_of(event: Mapping[str, Any]) -> str | None:
    context = event.get("requestContext") or {}
    value = context.get("requestId") if isinstance(context, Mapping) else None
    return value if isinstance(value, str) else None


def as_json_body_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with a plain-text body read as JSON.

    ``isBase64Encoded`` bodies (API Gateway sends any non-text content type that way) are
    decoded as UTF-8. Both routes speak only JSON, so the body is parsed as JSON whatever the
    Content-Type says: a JSON body sent as text/plain or octet-stream is accepted, and a body
    that is not JSON is a 400 VALIDATION_FAILED either way.
    """
    prepared = dict(event)
    raw_headers = prepared.get("headers")
    headers = raw_headers if isinstance(raw_headers, Mapping) else {}
    kept = {key: value for key, value in headers.items() if str(key).lower() != "content-type"}
    prepared["headers"] = {**kept, "content-type": "application/json"}
    body = prepared.get("body")
    if prepared.get("isBase64Encoded") and isinstance(body, str):
        try:
            prepared["body"] = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ValidationFailed("Request body is not valid base64-encoded UTF-8") from None
        prepared["isBase64Encoded"] = False
    return prepared


def body_problem(event: Mapping[str, Any]) -> ValidationFailed | None:
    """Why the body cannot be parsed at all, found before Powertools tries (it would fail with a
    TypeError on a body that is not a string). Parsing itself is left to Powertools, once:
    invalid JSON and non-object JSON are its validation errors, nesting past the recursion limit
    is :meth:`ServiceResolver._too_deep`; all are 400."""
    body = event.get("body")
    if body is None or body == "":
        return _body_error("Request body is required (a JSON object)", "missing")
    if not isinstance(body, str):
        return _body_error("Request body is not valid JSON", "json_invalid")
    return None


def _body_error(message: str, error_type: str) -> ValidationFailed:
    """Same ``details`` shape as a schema validation failure."""
    return ValidationFailed(message, {"errors": [{"loc": ["body"], "msg": message, "type": error_type}]})


def event_problem(event: Mapping[str, Any]) -> ValidationFailed | None:
    """What makes an API Gateway-shaped event unusable for routing (Powertools would crash on it).

    API Gateway itself never sends these; a hand-made event (a test, a replay) might.
    """
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    headers = event.get("headers")
    if (
        not isinstance(http, Mapping)
        or not isinstance(http.get("method"), str)
        or not isinstance(event.get("rawPath"), str)
        or (headers is not None and not isinstance(headers, Mapping))
        or any(not isinstance(key, str) or not isinstance(value, str) for key, value in (headers or {}).items())
    ):
        return ValidationFailed("Malformed API Gateway event (payload format 2.0 expected)")
    return None


def json_reply(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy reply with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def validation_details(errors: Any) -> dict[str, Any]:
    """Where and why validation failed, without echoing the (possibly huge) input back."""
    listed = []
    for error in list(errors)[:20]:
        if isinstance(error, Mapping):
            location = [str(part) for part in error.get("loc", ())]
            listed.append({"loc": location, "msg": str(error.get("msg", ""))[:200], "type": error.get("type")})
    return {"errors": listed}


class ServiceResolver(APIGatewayHttpResolver):
    """A Powertools resolver for one JSON route whose every failure leaves as ``envelope``."""

    def __init__(self, path: str, envelope: Envelope, gate: Gate | None = None) -> None:
        super().__init__(enable_validation=True)
        self.path = path
        self.envelope = envelope
        self.gate = gate
        self.exception_handler(ServiceError)(self._service_error)
        self.exception_handler(RequestValidationError)(self._invalid_body)
        self.exception_handler(RequestUnsupportedContentType)(self._invalid_body)
        self.exception_handler(RecursionError)(self._too_deep)
        self.exception_handler(Exception)(self._unexpected)
        self.not_found(self._no_route)

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Token → gate → body → Powertools (routing, validation, the route itself)."""
        try:
            if (malformed := event_problem(event)) is not None:
                raise malformed
            prepared = as_json_body_event(event)
            token_verifier.verify(header(prepared, "authorization"))
            if self.gate is not None:
                self.gate()
            if prepared.get("rawPath") == self.path and (problem := body_problem(prepared)) is not None:
                raise problem
        except ServiceError as exc:
            logger.info("Request refused before routing", extra={"error_code": exc.error_code})
            return json_reply(exc.status, self.envelope(exc, request_id_of(event)))
        try:
            return super().resolve(prepared, context)
        except Exception:  # noqa: BLE001 - Powertools' own failures outside a route: still an envelope
            logger.exception("Resolver failed outside the route")
            return json_reply(500, self.envelope(InternalError("Internal error"), request_id_of(event)))

    def reply(self, exc: ServiceError) -> Response[dict[str, Any]]:
        return Response(
            status_code=exc.status,
            content_type=content_types.APPLICATION_JSON,
            body=self.envelope(exc, request_id_of(self.current_event.raw_event)),
        )

    def _service_error(self, exc: ServiceError) -> Response[dict[str, Any]]:
        logger.info("Request failed", extra={"error_code": exc.error_code, "error": exc.message})
        return self.reply(exc)

    def _invalid_body(self, exc: RequestValidationError | RequestUnsupportedContentType) -> Response[dict[str, Any]]:
        return self.reply(ValidationFailed("Request body is not valid", validation_details(exc.errors())))

    def _too_deep(self, exc: RecursionError) -> Response[dict[str, Any]]:
        return self.reply(_body_error("Request body is not valid JSON (nested too deeply)", "json_invalid"))

    def _unexpected(self, exc: Exception) -> Response[dict[str, Any]]:
        logger.exception("Unexpected failure")
        return self.reply(InternalError("Internal error"))

    def _no_route(self, exc: Exception) -> Response[dict[str, Any]]:
        return self.reply(RouteNotFound("Not found"))


def dispatch(
    event: Any, context: Any, app: ServiceResolver, direct: Callable[[Any, Any], dict[str, Any]]
) -> dict[str, Any]:
    """A function's entry: API Gateway events to ``app``, anything else to ``direct``.

    The whole invocation runs under the database deadline of the Lambda's remaining time, so a
    black-holed database cannot hold the function until Lambda kills it.
    """
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    with database.deadline(lambda_remaining_ms(context)):
        if is_http_event(event):
            return app.resolve(event, context)
        return direct(event, context)


def run_direct(invoke: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A direct invoke's work: typed errors pass through, anything else becomes ``InternalError``."""
    try:
        return invoke()
    except ServiceError:
        raise
    except Exception:  # noqa: BLE001 - a bug must still reach Step Functions as a typed error
        logger.exception("Unexpected failure")
        raise InternalError("Internal error") from None
