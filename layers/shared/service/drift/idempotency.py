"""Idempotent scoring (DESIGN §8): an identical request within the TTL gets the stored reply.

Step Functions retries, redriven executions and re-run jobs send the same request again; without
this each of them calls the LLM and spends again. Built on Powertools Idempotency and its DynamoDB
persistence layer with its default attribute names (partition key ``id``, TTL ``expiration``).

- **Key**: :func:`scoring_key` - org, workspace, the spec's identity (``sha256:`` of its text, or
  the S3 object's ETag), the considered endpoints as ``"METHOD /path"`` in order, and the sample
  count. Nothing transport-specific, so an HTTP call and a direct invoke share it. Stored under
  ``contract-drift-score#<sha256 of the key>``.
- **Replay**: the stored reply with ``replayed: true``; no database, LLM or metering work.
- **Failures are not stored**: Powertools deletes the in-progress record when scoring raises.
- **In flight**: a duplicate that arrives while the first still runs raises
  :class:`~service.errors.RequestInProgress` (HTTP 409 ``REQUEST_IN_PROGRESS``; the state machine
  retries it). The Lambda context is registered, so the in-progress record of an invocation that
  timed out stops blocking once that invocation's deadline has passed.
- **Off**: ``IDEMPOTENCY_TABLE_NAME`` unset or ``IDEMPOTENCY_TTL_SECONDS=0``; and for a request with
  no endpoints (DESIGN §5 rule 2 answers it without any I/O).
- **DynamoDB unavailable** (unreachable, throttled past the client's retries, table missing,
  access denied): scoring does not stop because a cache is down - it fails open. If the failure
  comes before scoring (writing the in-progress record, reading the existing one), the request is
  scored without idempotency; if it comes after (saving the reply), the reply just computed is
  returned unsaved - never scored twice. Either way a warning is logged and the
  ``IdempotencyUnavailable`` metric is emitted. While DynamoDB is down duplicates are not caught
  (each retry may spend again); that is the price of not failing every call. A record whose
  deletion failed after a failed call blocks its key as in flight until the invocation's deadline.

boto3 and the Powertools utility are imported, and the DynamoDB client created, on first use:
the handler's import (the cold start) does not pay for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from service.config import Settings, get_settings
from service.drift.models import ScoreReply, ScoreRequest
from service.errors import RequestInProgress
from service.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

KEY_PREFIX = "contract-drift-score"
# DynamoDB answers in milliseconds; a client that waits longer only eats the LLM's time.
DYNAMODB_CONNECT_TIMEOUT_S = 1.0
DYNAMODB_READ_TIMEOUT_S = 2.0
DYNAMODB_MAX_ATTEMPTS = 2


def scoring_key(request: ScoreRequest, spec_identity: str) -> dict[str, Any]:
    """What makes two scoring requests the same request (DESIGN §8)."""
    return {
        "org_id": str(request.org_id),
        "workspace_id": str(request.workspace_id),
        "spec": spec_identity,
        "endpoints": [endpoint.label for endpoint in request.considered_endpoints()],
        "samples_per_endpoint": request.samples_per_endpoint(),
    }


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools' response hook: a stored reply leaves marked as a replay."""
    metrics.add_metric(name="IdempotentReplays", unit=MetricUnit.Count, value=1)
    logger.info("Replaying a stored reply", extra={"idempotency_key": idempotent_data.idempotency_key})
    return response.model_copy(update={"replayed": True}) if isinstance(response, ScoreReply) else response


@dataclass
class _Attempt:
    """What happened to the scoring function inside Powertools, to tell where a store failure hit."""

    reply: ScoreReply | None = None
    error: BaseException | None = None


class IdempotentScoring:
    """Runs a scoring call at most once per key and TTL; one DynamoDB client per :class:`Settings`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: BasePersistenceLayer | None = None
        self._store_settings: Settings | None = None

    def _persistence(self, settings: Settings) -> BasePersistenceLayer:
        """The persistence layer for these settings, built on first use (boto3 is imported here)."""
        with self._lock:
            if self._store is None or self._store_settings is not settings:
                from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
                from botocore.config import Config

                assert settings.idempotency_table_name is not None
                self._store = DynamoDBPersistenceLayer(
                    table_name=settings.idempotency_table_name,
                    boto_config=Config(
                        connect_timeout=DYNAMODB_CONNECT_TIMEOUT_S,
                        read_timeout=DYNAMODB_READ_TIMEOUT_S,
                        retries={"mode": "standard", "total_max_attempts": DYNAMODB_MAX_ATTEMPTS},
                    ),
                )
                self._store_settings = settings
            return self._store

    def run(
        self, request: ScoreRequest, spec_identity: str | None, context: Any, score: Callable[[], ScoreReply]
    ) -> ScoreReply:
        """``score()``'s reply, or the stored reply of an identical earlier request.

        ``spec_identity`` is :attr:`~service.drift.spec.source.SpecText.identity` (a digest of the
        text, or the S3 object's ETag); ``None`` means the spec cannot be told apart from a changed
        one, so the call is not idempotent.
        """
        settings = get_settings()
        if not settings.idempotency_enabled or not request.endpoints or spec_identity is None:
            return score()

        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        attempt = _Attempt()

        def scored(*, key: dict[str, Any]) -> ScoreReply:
            try:
                attempt.reply = score()
            except BaseException as exc:
                attempt.error = exc
                raise
            return attempt.reply

        try:
            store = self._persistence(settings)
        except Exception as exc:  # noqa: BLE001 - a client that cannot be built is a store that is down
            return self._fail_open(exc, attempt, score)
        # A config per call: the registered Lambda context is this invocation's, even when
        # several run in one process (the local API, the tests).
        config = IdempotencyConfig(
            expires_after_seconds=settings.idempotency_ttl_seconds,
            hash_function="sha256",
            raise_on_no_idempotency_key=True,
            response_hook=_mark_replayed,
        )
        if callable(getattr(context, "get_remaining_time_in_millis", None)):
            config.register_lambda_context(context)
        guarded = idempotent_function(
            scored,
            data_keyword_argument="key",
            persistence_store=store,
            config=config,
            output_serializer=PydanticSerializer(ScoreReply),
            key_prefix=KEY_PREFIX,
        )
        try:
            reply: ScoreReply = guarded(key=scoring_key(request, spec_identity))
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
            # Inconsistent: the record kept changing under us, i.e. another call is working on it.
            metrics.add_metric(name="IdempotencyInProgress", unit=MetricUnit.Count, value=1)
            raise RequestInProgress(
                "An identical request is still being scored; retry when it has finished",
                {"reason": "in_progress"},
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            return self._fail_open(exc, attempt, score)
        return reply

    @staticmethod
    def _fail_open(exc: Exception, attempt: _Attempt, score: Callable[[], ScoreReply]) -> ScoreReply:
        """The store failed: never fail the call for it, never score twice."""
        metrics.add_metric(name="IdempotencyUnavailable", unit=MetricUnit.Count, value=1)
        cause = exc.__cause__ or exc
        details = {"error": type(cause).__name__, "detail": str(cause)[:300]}
        if attempt.error is not None:
            # Scoring failed and its in-progress record could not be deleted: report the real failure.
            logger.warning("Idempotency store failed after a failed call; record left to expire", extra=details)
            raise attempt.error
        if attempt.reply is not None:
            logger.warning("Idempotency store failed after scoring; reply returned unsaved", extra=details)
            return attempt.reply
        logger.warning("Idempotency store unavailable; scoring without idempotency", extra=details)
        return score()
