"""Secrets Manager access through Powertools Parameters, cached in the warm process.

boto3 honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, so a local moto
server is reached through exactly the code path used in AWS.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from service.config import get_settings
from service.errors import InternalError, InvalidRequest
from service.observability import logger

NOT_FOUND_ERRORS = ("ResourceNotFoundException", "DecryptionFailure")


def _is_missing(exc: GetParameterError) -> bool:
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code", "")
    return code in NOT_FOUND_ERRORS or "ResourceNotFoundException" in str(exc)


def read_secret(secret_id: str, *, max_age: int | None = None, force_fetch: bool = False) -> str | None:
    """The secret's string, or ``None`` when the secret does not exist or is blank.

    Secrets Manager being unreachable is a fault of the deployment, reported as ``InternalError``.
    """
    age = get_settings().secret_cache_seconds if max_age is None else max_age
    try:
        value = parameters.get_secret(secret_id, max_age=age, force_fetch=force_fetch)
    except GetParameterError as exc:
        if _is_missing(exc):
            return None
        logger.warning("Secrets Manager read failed", extra={"secret_id": secret_id, "error": str(exc)})
        raise InternalError("Secrets Manager is unavailable") from None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.strip() or None


def read_configured_secret(secret_id: str | None) -> str | None:
    """:func:`read_secret` for an optional setting: unset, missing and blank are all ``None``."""
    return read_secret(secret_id) if secret_id else None


class InternalTokenVerifier:
    """Checks ``Authorization: Bearer <token>`` against the internal-token secret.

    The comparison is constant-time over the whole header value. A wrong token may force one
    re-read of the secret (so a rotation is seen without a cold start), at most once per
    ``token_refresh_min_interval_seconds``: a flood of wrong tokens stays a trickle of
    Secrets Manager calls.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_forced_refresh = float("-inf")

    def _expected(self, *, force_fetch: bool) -> str:
        settings = get_settings()
        secret_id = settings.internal_token_secret_id
        token = (
            read_secret(secret_id, max_age=settings.token_cache_seconds, force_fetch=force_fetch) if secret_id else None
        )
        if token is None:
            raise InternalError("Internal token secret is not configured")
        return token

    @staticmethod
    def _matches(header: str, token: str) -> bool:
        # surrogatepass: a header from a JSON event may hold a lone surrogate; it must simply not match.
        return hmac.compare_digest(header.encode("utf-8", "surrogatepass"), f"Bearer {token}".encode())

    def verify(self, authorization: str | None) -> None:
        """Return quietly for the right token; raise ``InvalidRequest("Not found")`` otherwise."""
        expected = self._expected(force_fetch=False)
        header = authorization or ""
        if self._matches(header, expected):
            return
        settings = get_settings()
        now = self._clock()
        if header and now - self._last_forced_refresh >= settings.token_refresh_min_interval_seconds:
            self._last_forced_refresh = now
            if self._matches(header, self._expected(force_fetch=True)):
                return
        raise InvalidRequest("Not found")


token_verifier = InternalTokenVerifier()
