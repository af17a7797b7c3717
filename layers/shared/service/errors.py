"""Typed failures of the service.

Each error carries the wire ``error_code`` and HTTP ``status`` of DESIGN §5. Direct invokes
(Step Functions) see the exception itself, whose class name is the CamelCase error code, so a
state machine can ``Retry``/``Catch`` on ``UpstreamError`` or ``ResourceLimitExceeded``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every failure the service reports on purpose."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    """Authentication failures and references to unknown organizations or workspaces."""

    error_code = "INVALID_REQUEST"
    status = 400


class RouteNotFound(InvalidRequest):
    """No route for this method and path (API Gateway itself answers these in AWS)."""

    status = 404


class ValidationFailed(ServiceError):
    """A body that is not JSON or does not match the request schema."""

    error_code = "VALIDATION_FAILED"
    status = 400


class ResourceLimitExceeded(ServiceError):
    """AI disabled for the organization's plan, or its monthly token quota is spent."""

    error_code = "RESOURCE_LIMIT_EXCEEDED"
    status = 403


class UpstreamError(ServiceError):
    """The LLM provider kept failing (or answered with something unusable)."""

    error_code = "UPSTREAM_ERROR"
    status = 502


class UpstreamTimeout(ServiceError):
    """The LLM provider did not answer within the time the Lambda had left."""

    error_code = "UPSTREAM_TIMEOUT"
    status = 504


class RequestInProgress(ServiceError):
    """An identical request is still being scored (DESIGN §8); retry once it has finished."""

    error_code = "REQUEST_IN_PROGRESS"
    status = 409


class DatabaseError(ServiceError):
    """PostgreSQL could not be reached or failed the query."""

    error_code = "DATABASE_ERROR"
    status = 500


class InternalError(ServiceError):
    """A fault of our own or of the deployment (e.g. a secret that is not configured)."""

    error_code = "INTERNAL_ERROR"
    status = 500


class ExperimentalDisabled(ServiceError):
    """traverse_answer is switched off (``TRAVERSE_EXPERIMENTAL_ENABLED``)."""

    error_code = "EXPERIMENTAL_DISABLED"
    status = 410
