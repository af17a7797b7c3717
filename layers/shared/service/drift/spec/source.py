"""Where the spec text comes from: the request itself or an S3 object (DESIGN §7.2).

``spec_s3_uri`` (``s3://bucket/key``) is read with boto3, which honours ``AWS_ENDPOINT_URL``
(moto locally and in tests). boto3 is imported and the client built on first use only: most
requests carry their spec inline and a cold start must not pay for it. Objects are cached per
warm process with their ETag and revalidated with a conditional GET, so a Step Functions map
of 40 chunks downloads (and parses) a document once per warm instance.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from service.drift.spec.cache import content_sha256
from service.drift.spec.parsing import MAX_DOCUMENT_CHARS
from service.errors import InternalError, InvalidRequest, UpstreamError, ValidationFailed
from service.observability import logger

S3_CONNECT_TIMEOUT_S = 2
S3_READ_TIMEOUT_S = 5
S3_MAX_ATTEMPTS = 2
# A UTF-8 character takes at most 4 bytes: a bigger object cannot be within the character limit.
MAX_OBJECT_BYTES = 4 * MAX_DOCUMENT_CHARS
S3_CACHE_MAX_ENTRIES = 4
S3_CACHE_MAX_CHARS = 12_000_000
SPEC_NOT_FOUND = "Spec not found"
# Bucket names as S3 allows them (3-63 characters), then a non-empty key.
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.+)", re.DOTALL)
# Errors that say the object cannot be read by us: the caller's fault, not a transient one.
_NOT_FOUND_STATUSES = frozenset({400, 403, 404, 405, 409, 411, 412, 416})


@dataclass(frozen=True)
class SpecText:
    text: str
    identity: str  # "sha256:<hex>" for inline text, "s3:<bucket>/<key>#<etag>" for S3 (idempotency key)


def load_spec_text(spec_excerpt: str | None, spec_s3_uri: str | None) -> SpecText:
    """The spec of a request: ``spec_excerpt`` as given, or the object at ``spec_s3_uri``.

    The request model enforces exactly one of the two. Failures of the S3 read:

    - malformed URI, missing bucket or object, access denied, not UTF-8 →
      :class:`InvalidRequest` "Spec not found" (400 INVALID_REQUEST);
    - an object over 6,000,000 characters → :class:`ValidationFailed` (400);
    - S3 unreachable, timing out or answering 5xx → :class:`UpstreamError` (502), which the state
      machine's ``Retry`` on ``UpstreamError`` retries;
    - no AWS credentials in the function → :class:`InternalError` (a deployment fault).
    """
    if spec_s3_uri is None:
        sha256, text = content_sha256(spec_excerpt or "")
        return SpecText(text=text, identity=f"sha256:{sha256}")
    return _s3_reader.read(spec_s3_uri)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; InvalidRequest "Spec not found" when malformed."""
    match = _S3_URI.fullmatch(uri) if isinstance(uri, str) else None
    if match is None or ".." in match.group(1):
        raise InvalidRequest(SPEC_NOT_FOUND, {"spec_s3_uri": "not of the form s3://bucket/key"})
    return match.group(1), match.group(2)


class _S3SpecReader:
    """Reads spec objects, keeping the last few with their ETag (LRU, bounded in characters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_endpoint: str | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()  # -> (etag, text)

    def client(self) -> Any:
        """One S3 client per process (rebuilt only if ``AWS_ENDPOINT_URL`` changes, as in tests)."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        with self._lock:
            if self._client is None or self._client_endpoint != endpoint:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3",
                    config=Config(
                        connect_timeout=S3_CONNECT_TIMEOUT_S,
                        read_timeout=S3_READ_TIMEOUT_S,
                        retries={"mode": "standard", "total_max_attempts": S3_MAX_ATTEMPTS},
                        # Path-style addressing works against any endpoint (moto, VPC endpoints).
                        s3={"addressing_style": "path"},
                    ),
                )
                self._client_endpoint = endpoint
            return self._client

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._client = None

    def read(self, uri: str) -> SpecText:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        bucket, key = parse_s3_uri(uri)
        cached = self._cache.get((bucket, key))
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if cached is not None:
            request["IfNoneMatch"] = f'"{cached[0]}"'
        try:
            reply = self.client().get_object(**request)
            etag = str(reply.get("ETag") or "").strip('"')
            size = reply.get("ContentLength")
            if isinstance(size, int) and size > MAX_OBJECT_BYTES:
                reply["Body"].close()
                raise _too_long(uri)
            data = reply["Body"].read(MAX_OBJECT_BYTES + 1)
            reply["Body"].close()
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(exc.response.get("Error", {}).get("Code"))
            if (status == 304 or code in ("304", "NotModified")) and cached is not None:
                return SpecText(text=cached[1], identity=_identity(bucket, key, cached[0]))
            if isinstance(status, int) and status >= 500:
                raise UpstreamError("S3 failed reading the spec", {"status": status, "code": code}) from exc
            if status in _NOT_FOUND_STATUSES or code in ("NoSuchKey", "NoSuchBucket", "AccessDenied"):
                logger.info("spec object not readable", extra={"status": status, "code": code})
                raise InvalidRequest(SPEC_NOT_FOUND, {"spec_s3_uri": uri}) from exc
            raise UpstreamError("S3 failed reading the spec", {"status": status, "code": code}) from exc
        except NoCredentialsError as exc:
            raise InternalError("No AWS credentials to read the spec from S3") from exc
        except BotoCoreError as exc:  # connection refused, timeouts, bad endpoint, broken stream
            if type(exc).__name__ == "ParamValidationError":
                raise InvalidRequest(SPEC_NOT_FOUND, {"spec_s3_uri": uri}) from exc
            raise UpstreamError("S3 unreachable while reading the spec", {"error": type(exc).__name__}) from exc
        if len(data) > MAX_OBJECT_BYTES:
            raise _too_long(uri)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(SPEC_NOT_FOUND, {"spec_s3_uri": uri, "reason": "not UTF-8 text"}) from exc
        if len(text) > MAX_DOCUMENT_CHARS:
            raise _too_long(uri)
        self._remember(bucket, key, etag, text)
        return SpecText(text=text, identity=_identity(bucket, key, etag))

    def _remember(self, bucket: str, key: str, etag: str, text: str) -> None:
        if not etag:
            return  # nothing to revalidate with
        with self._lock:
            self._cache[(bucket, key)] = (etag, text)
            self._cache.move_to_end((bucket, key))
            while len(self._cache) > S3_CACHE_MAX_ENTRIES or (
                len(self._cache) > 1 and sum(len(t) for _, t in self._cache.values()) > S3_CACHE_MAX_CHARS
            ):
                self._cache.popitem(last=False)


def _identity(bucket: str, key: str, etag: str) -> str:
    return f"s3:{bucket}/{key}#{etag}"


def _too_long(uri: str) -> ValidationFailed:
    return ValidationFailed(
        f"The spec object is longer than {MAX_DOCUMENT_CHARS:,} characters",
        {"spec_s3_uri": uri, "max_chars": MAX_DOCUMENT_CHARS},
    )


_s3_reader = _S3SpecReader()


def clear_s3_cache() -> None:
    """Forget cached objects and the client (tests)."""
    _s3_reader.clear()
