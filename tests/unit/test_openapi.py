"""docs/openapi.json: generated from the resolvers' own models, up to date, valid OpenAPI 3."""

from __future__ import annotations

import json

import pytest

from devtools.openapi import OUTPUT_PATH, build_openapi, main, render

SCORE_PATH = "/api/v1/internal/contract-diff/score"
TRAVERSE_PATH = "/v1/traverse_answer"


@pytest.fixture(scope="module")
def document() -> dict:
    return build_openapi()


def test_committed_document_is_a_fresh_generation(document):
    assert OUTPUT_PATH.read_text() == render(document), "stale: run python -m devtools.openapi"
    assert main(["--check"]) == 0


def test_document_is_valid_openapi(document):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(json.loads(render(document)))
    assert document["openapi"].startswith("3.")


@pytest.mark.parametrize(("path", "request_model"), [(SCORE_PATH, "ScoreRequest"), (TRAVERSE_PATH, "TraverseRequest")])
def test_both_routes_with_their_request_schemas(document, path, request_model):
    operation = document["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{request_model}"}
    assert request_model in document["components"]["schemas"]
    assert "422" not in operation["responses"]  # validation failures are 400 here
    assert "400" in operation["responses"]


def test_score_request_schema_is_the_design_request(document):
    schema = document["components"]["schemas"]["ScoreRequest"]
    assert set(schema["required"]) == {"org_id", "workspace_id", "endpoints"}
    # Exactly one of the two spec fields (DESIGN §7.2): checked by the model, both documented.
    assert {"spec_excerpt", "spec_s3_uri", "max_samples_per_endpoint"} <= set(schema["properties"])


def test_error_statuses_carry_the_error_envelopes(document):
    drift_errors = document["paths"][SCORE_PATH]["post"]["responses"]["403"]["content"]["application/json"]
    assert drift_errors["schema"] == {"$ref": "#/components/schemas/ErrorReply"}
    gone = document["paths"][TRAVERSE_PATH]["post"]["responses"]["410"]["content"]["application/json"]
    assert gone["schema"] == {"$ref": "#/components/schemas/TraverseError"}
    assert document["security"] == [{"bearerToken": []}]
