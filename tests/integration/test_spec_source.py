"""spec_s3_uri on a moto S3 server: reads, ETag revalidation, and every failure's error type."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.drift.spec.cache import parse_document
from service.drift.spec.source import SPEC_NOT_FOUND, clear_s3_cache, load_spec_text
from service.errors import InvalidRequest, UpstreamError, ValidationFailed

DATA = Path(__file__).resolve().parents[1] / "data" / "openapi"


@pytest.fixture
def get_object_statuses(aws_endpoint: str) -> Iterator[list[int]]:
    """HTTP statuses of the GetObject calls our S3 client makes (botocore's own event hook)."""
    from service.drift.spec.source import _s3_reader

    statuses: list[int] = []

    def record(http_response: Any, **_: Any) -> None:
        statuses.append(http_response.status_code)

    client = _s3_reader.client()
    client.meta.events.register("after-call.s3.GetObject", record)
    yield statuses
    client.meta.events.unregister("after-call.s3.GetObject", record)


def test_inline_text_is_identified_by_its_sha256():
    text = '{"openapi": "3.0.0", "paths": {}}'
    spec = load_spec_text(text, None)
    assert spec.text == text
    assert spec.identity == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert load_spec_text((text + " ")[:-1], None).text is spec.text  # the cached copy, found by content


def test_s3_document_is_read_then_revalidated_by_etag(spec_bucket: tuple[Any, str], get_object_statuses: list[int]):
    client, name = spec_bucket
    body = gzip.decompress((DATA / "digitalocean.com.json.gz").read_bytes())
    etag = client.put_object(Bucket=name, Key="do/openapi.json", Body=body)["ETag"].strip('"')
    uri = f"s3://{name}/do/openapi.json"

    first = load_spec_text(None, uri)
    assert first.text == body.decode() and first.identity == f"s3:{name}/do/openapi.json#{etag}"
    second = load_spec_text(None, uri)
    assert get_object_statuses == [200, 304]
    assert second.text is first.text and second.identity == first.identity
    document = parse_document(first.text)
    assert document is not None and parse_document(second.text) is document

    changed = body.replace(b'"DigitalOcean API"', b'"DigitalOcean API v2"')
    new_etag = client.put_object(Bucket=name, Key="do/openapi.json", Body=changed)["ETag"].strip('"')
    third = load_spec_text(None, uri)
    assert get_object_statuses == [200, 304, 200]
    assert third.identity == f"s3:{name}/do/openapi.json#{new_etag}" != first.identity
    third_document = parse_document(third.text)
    assert third_document is not None and third_document.title == "DigitalOcean API v2"


def test_yaml_object_with_a_key_full_of_odd_characters(spec_bucket: tuple[Any, str]):
    client, name = spec_bucket
    key = "team a/specs+v1/ünïcode?.yaml"
    client.put_object(Bucket=name, Key=key, Body=gzip.decompress((DATA / "apis.guru.yaml.gz").read_bytes()))
    spec = load_spec_text(None, f"s3://{name}/{key}")
    document = parse_document(spec.text)
    assert document is not None and document.title == "APIs.guru"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://{bucket}/missing.json",
        "s3://no-such-bucket-{uuid}/spec.json",
        "s3://{bucket}/",
        "s3://{bucket}",
        "https://{bucket}.s3.amazonaws.com/spec.json",
        "s3://UPPER_case/spec.json",
        "s3://a/spec.json",
        "",
    ],
)
def test_unreadable_objects_are_spec_not_found(spec_bucket: tuple[Any, str], uri: str):
    _, name = spec_bucket
    with pytest.raises(InvalidRequest) as raised:
        load_spec_text(None, uri.format(bucket=name, uuid=uuid.uuid4().hex[:8]))
    assert raised.value.message == SPEC_NOT_FOUND
    assert (raised.value.error_code, raised.value.status) == ("INVALID_REQUEST", 400)


def test_object_that_is_not_utf8_is_spec_not_found(spec_bucket: tuple[Any, str]):
    client, name = spec_bucket
    client.put_object(Bucket=name, Key="spec.bin", Body=b'{"openapi": "3.0.0", "x": "\xff\xfe"}')
    with pytest.raises(InvalidRequest, match=SPEC_NOT_FOUND):
        load_spec_text(None, f"s3://{name}/spec.bin")


def test_object_over_six_million_characters_is_a_validation_failure(spec_bucket: tuple[Any, str]):
    client, name = spec_bucket
    client.put_object(Bucket=name, Key="big.yaml", Body=b"openapi: 3.0.0\n#" + b"x" * 6_000_000)
    with pytest.raises(ValidationFailed):
        load_spec_text(None, f"s3://{name}/big.yaml")
    # Six million characters of four bytes each (24 MB) are within the limit.
    client.put_object(Bucket=name, Key="wide.txt", Body="😀".encode() * 1_500_000)
    assert len(load_spec_text(None, f"s3://{name}/wide.txt").text) == 1_500_000


def test_s3_unreachable_is_a_retryable_upstream_error(spec_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch):
    _, name = spec_bucket
    with RefusingPort() as port:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        with pytest.raises(UpstreamError) as raised:
            load_spec_text(None, f"s3://{name}/spec.json")
    assert (raised.value.error_code, raised.value.status) == ("UPSTREAM_ERROR", 502)


def test_s3_answering_5xx_is_an_upstream_error_after_few_attempts(monkeypatch: pytest.MonkeyPatch):
    requests: list[str] = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clear_s3_cache()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            monkeypatch.setenv(name, value)
        with pytest.raises(UpstreamError):
            load_spec_text(None, "s3://specs/spec.json")
        assert requests == ["/specs/spec.json"] * 2  # total_max_attempts: one retry, no more
    finally:
        server.shutdown()
        server.server_close()
        clear_s3_cache()


class RefusingPort:
    """A port that refuses connections: bound, never listening."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return int(self._socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
