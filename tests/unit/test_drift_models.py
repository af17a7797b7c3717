"""Request model rules: the 25 endpoints considered, the samples clamp, input limits."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.drift.models import Endpoint, ScoreRequest


def request(endpoints: list[tuple[str, str]], **extra: object) -> ScoreRequest:
    return ScoreRequest.model_validate(
        {
            "org_id": str(uuid.uuid4()),
            "workspace_id": str(uuid.uuid4()),
            "spec_excerpt": "openapi: 3.1.0",
            "endpoints": [{"method": m, "path": p} for m, p in endpoints],
            **extra,
        }
    )


def test_first_25_distinct_pairs_in_request_order():
    pairs = [("get", "/a"), ("GET", "/a"), ("post", "/a")] + [("GET", f"/p{i}") for i in range(40)]
    considered = request(pairs).considered_endpoints()
    assert len(considered) == 25
    assert [e.label for e in considered[:3]] == ["GET /a", "POST /a", "GET /p0"]
    assert considered[-1].label == "GET /p22"


def test_paths_are_compared_literally():
    considered = request([("GET", "/Users"), ("GET", "/users"), ("GET", "/users/")]).considered_endpoints()
    assert [e.path for e in considered] == ["/Users", "/users", "/users/"]


@pytest.mark.parametrize(("wanted", "expected"), [(None, 3), (0, 1), (-7, 1), (1, 1), (5, 5), (6, 5), (10**9, 5)])
def test_samples_per_endpoint_is_clamped(wanted: int | None, expected: int):
    extra = {} if wanted is None else {"max_samples_per_endpoint": wanted}
    assert request([("GET", "/a")], **extra).samples_per_endpoint() == expected


@given(st.integers())
def test_samples_clamp_stays_in_range_for_any_integer(wanted: int):
    assert 1 <= request([], max_samples_per_endpoint=wanted).samples_per_endpoint() <= 5


@pytest.mark.parametrize(
    "body",
    [
        {"org_id": "not-a-uuid"},
        {"endpoints": [{"method": "GET"}]},
        {"endpoints": [{"method": "GE T", "path": "/a"}]},
        {"endpoints": [{"method": "GET", "path": ""}]},
        {"endpoints": "GET /a"},
        {"max_samples_per_endpoint": "three"},
        {"spec_excerpt": None},
    ],
)
def test_invalid_requests_are_rejected(body: dict[str, object]):
    base: dict[str, object] = {
        "org_id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "spec_excerpt": "x",
        "endpoints": [],
    }
    with pytest.raises(ValidationError):
        ScoreRequest.model_validate({**base, **body})


def test_endpoint_label_upper_cases_the_method():
    assert Endpoint(method="patch", path="/a").label == "PATCH /a"


@pytest.mark.parametrize(
    "spec_fields",
    [
        {},
        {"spec_excerpt": "openapi: 3.0.0", "spec_s3_uri": "s3://specs/shop.yaml"},
        {"spec_excerpt": None, "spec_s3_uri": None},
    ],
)
def test_exactly_one_spec_field_is_required(spec_fields):
    body = {"org_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "endpoints": [], **spec_fields}
    with pytest.raises(ValidationError, match="exactly one of spec_excerpt and spec_s3_uri"):
        ScoreRequest.model_validate(body)


@pytest.mark.parametrize("uri", ["s3://specs/shop.yaml", "s3://my.bucket-1/a/b/openapi.json"])
def test_a_spec_s3_uri_alone_is_a_request(uri):
    request = ScoreRequest.model_validate(
        {"org_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "endpoints": [], "spec_s3_uri": uri}
    )
    assert request.spec_s3_uri == uri and request.spec_excerpt is None


@pytest.mark.parametrize("uri", ["specs/shop.yaml", "s3://", "s3://bucket", "s3://bucket/", "https://x/y", "s3://B/k"])
def test_a_malformed_spec_s3_uri_is_refused(uri):
    with pytest.raises(ValidationError):
        ScoreRequest.model_validate(
            {"org_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "endpoints": [], "spec_s3_uri": uri}
        )


def test_a_whole_document_up_to_six_million_characters_is_accepted():
    body = {"org_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "endpoints": []}
    assert ScoreRequest.model_validate({**body, "spec_excerpt": "x" * 6_000_000}).spec_excerpt
    with pytest.raises(ValidationError):
        ScoreRequest.model_validate({**body, "spec_excerpt": "x" * 6_000_001})
