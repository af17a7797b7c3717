"""What both functions do with an event before their domain code runs.

API Gateway HTTP API events (payload 2.0) are told apart from direct invokes (Step
Functions), base64 bodies are decoded, and the bearer token is checked before any routing or
body validation, so an unauthenticated caller learns nothing and never reaches the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from service.errors import ServiceError, ValidationFailed
from service.observability import logger
from service.secrets import token_verifier

Envelope = Callable[[ServiceError, str | None], dict[str, Any]]


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


def decode_base64_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with a plain-text body read as JSON.

    ``isBase64Encoded`` bodies (API Gateway sends any non-text content type that way) are
    decoded as UTF-8. Both routes speak only JSON, so the body is parsed as JSON whatever the
    Content-Type says: a JSON body sent as text/plain or octet-stream is accepted, and a body
    that is not JSON is a 400 VALIDATION_FAILED either way.
    """
    prepared = dict(event)
    headers = {key: value for key, value in (prepared.get("headers") or {}).items() if key.lower() != "content-type"}
    prepared["headers"] = {**headers, "content-type": "application/json"}
    body = prepared.get("body")
    if prepared.get("isBase64Encoded") and isinstance(body, str):
        try:
            prepared["body"] = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ValidationFailed("Request body is not valid base64-encoded UTF-8") from None
        prepared["isBase64Encoded"] = False
    return prepared


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


def resolve_authenticated(
    event: Mapping[str, Any], context: Any, app: APIGatewayHttpResolver, envelope: Envelope
) -> dict[str, Any]:
    """Check the bearer token, then hand the event to the Powertools resolver."""
    try:
        prepared = decode_base64_body(event)
        token_verifier.verify(header(prepared, "authorization"))
    except ServiceError as exc:
        logger.info("Request refused before routing", extra={"error_code": exc.error_code})
        return json_reply(exc.status, envelope(exc, request_id_of(event)))
    return app.resolve(prepared, context)
