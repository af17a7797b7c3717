"""DESIGN §7 through the real handler: whole public OpenAPI documents, templated endpoints,
captures at concrete paths, and the spec read from S3 (moto).

The documents are the vendored public descriptions in tests/data/openapi (see its NOTICE.md).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from devtools.fake_llm import FakeLlmServer, endpoints_with_samples
from devtools.seed import Tenant, add_capture, make_tenant, tokens_used
from service.drift.prompt import NOT_IN_CONTRACT_NOTE
from tests.integration.drift_support import call_direct, call_http

DATA = Path(__file__).resolve().parent.parent / "data" / "openapi"


def vendored(name: str) -> str:
    return gzip.decompress((DATA / name).read_bytes()).decode("utf-8")


@pytest.fixture(scope="module")
def github() -> str:
    return vendored("api.github.com.json.gz")


@pytest.fixture(scope="module")
def digitalocean() -> str:
    return vendored("digitalocean.com.json.gz")


@pytest.fixture
def tenant(service_env: dict[str, str], admin_db: Any) -> Tenant:
    return make_tenant(admin_db, "pro")


def body(tenant: Tenant, endpoints: list[tuple[str, str]], **spec: Any) -> dict[str, Any]:
    return {
        "org_id": str(tenant.org_id),
        "workspace_id": str(tenant.workspace_id),
        "endpoints": [{"method": m, "path": p} for m, p in endpoints],
        **spec,
    }


def prompt_of(llm_server: FakeLlmServer) -> str:
    assert len(llm_server.requests) == 1
    return llm_server.requests[0].user_prompt


def section(prompt: str, label: str) -> str:
    """The part of the prompt under ``### label`` up to the next endpoint heading."""
    start = prompt.index(f"### {label}")
    end = prompt.find("\n### ", start + 1)
    return prompt[start : end if end >= 0 else len(prompt)]


def test_github_templated_endpoints_get_their_concrete_traffic_and_only_theirs(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer, github: str
) -> None:
    """`/issues/comments` is declared beside `/issues/{issue_number}`: its captures are not samples
    of the template, even though only the template was requested."""
    repo = "/repos/octo-org/hello-world"
    add_capture(admin_db, tenant.workspace_id, "GET", f"{repo}/issues/1347", response_body='{"number": 1347}')
    add_capture(admin_db, tenant.workspace_id, "get", f"{repo}/issues/42", response_body='{"number": 42}')
    add_capture(
        admin_db, tenant.workspace_id, "GET", f"{repo}/issues/comments", response_body='[{"id": "capture-of-comments"}]'
    )
    requested = [("GET", "/repos/{owner}/{repo}/issues/{issue_number}"), ("GET", "/repos/{owner}/{repo}/topics")]

    status, reply = call_http(body(tenant, requested, spec_excerpt=github))

    assert status == 200, reply
    assert reply["no_traffic"] is False and reply["samples_used"] == 2
    assert reply["endpoints_not_in_contract"] == []
    prompt = prompt_of(llm_server)
    issue = section(prompt, "GET /repos/{owner}/{repo}/issues/{issue_number}")
    assert '{"number": 1347}' in issue and '{"number": 42}' in issue
    assert "capture-of-comments" not in prompt  # owned by the declared /issues/comments, which was not asked for
    assert endpoints_with_samples(prompt) == ["GET /repos/{owner}/{repo}/issues/{issue_number}"]
    # The contract section is the slice: the two operations, not the other ~900 paths of the document.
    contract = prompt.split("## Endpoints and their captured traffic")[0]
    assert '"/repos/{owner}/{repo}/issues/{issue_number}"' in contract
    assert '"/repos/{owner}/{repo}/topics"' in contract
    assert '"/repos/{owner}/{repo}/issues/comments"' not in contract
    assert len(contract) < len(github) / 50
    assert [f["endpoint"] for f in reply["findings"]] == ["GET /repos/{owner}/{repo}/issues/{issue_number}"]
    assert tokens_used(admin_db, tenant.org_id) == reply["tokens_used"] > 0


def test_digitalocean_literal_sibling_wins_and_undocumented_endpoints_are_named(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer, digitalocean: str
) -> None:
    add_capture(admin_db, tenant.workspace_id, "GET", "/v2/apps/regions", response_body='{"regions": ["ams"]}')
    add_capture(admin_db, tenant.workspace_id, "GET", "/v2/apps/4f6c71e2", response_body='{"app": {"id": "4f6c71e2"}}')
    add_capture(admin_db, tenant.workspace_id, "POST", "/v2/debug/echo", response_body='{"echo": true}')
    requested = [("GET", "/v2/apps/{app_id}"), ("GET", "/v2/apps/regions"), ("POST", "/v2/debug/echo")]

    status, reply = call_http(body(tenant, requested, spec_excerpt=digitalocean))

    assert status == 200, reply
    assert reply["endpoints_not_in_contract"] == ["POST /v2/debug/echo"]
    prompt = prompt_of(llm_server)
    assert '"4f6c71e2"' in section(prompt, "GET /v2/apps/{app_id}")
    assert "regions" not in section(prompt, "GET /v2/apps/{app_id}")
    assert '"ams"' in section(prompt, "GET /v2/apps/regions")
    assert f"### POST /v2/debug/echo {NOT_IN_CONTRACT_NOTE}" in prompt
    assert sorted(endpoints_with_samples(prompt)) == [
        "GET /v2/apps/regions",
        "GET /v2/apps/{app_id}",
        "POST /v2/debug/echo",
    ]


def test_requested_paths_equal_up_to_parameter_names_are_one_endpoint(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer, digitalocean: str
) -> None:
    add_capture(admin_db, tenant.workspace_id, "GET", "/v2/apps/abc")
    requested = [("GET", "/v2/apps/{id}"), ("get", "/v2/apps/{app_id}")]
    status, reply = call_http(body(tenant, requested, spec_excerpt=digitalocean))
    assert status == 200 and reply["endpoints_considered"] == 1 and reply["samples_used"] == 1


def test_no_traffic_still_names_the_endpoints_the_document_lacks(
    tenant: Tenant, llm_server: FakeLlmServer, digitalocean: str
) -> None:
    status, reply = call_http(body(tenant, [("GET", "/v2/apps/{id}"), ("GET", "/nowhere")], spec_excerpt=digitalocean))
    assert status == 200
    assert reply["no_traffic"] is True and reply["findings"] == [] and reply["provider"] == "disabled"
    assert reply["endpoints_not_in_contract"] == ["GET /nowhere"]
    assert llm_server.requests == []


def test_a_text_that_is_no_openapi_document_is_cut_as_before_and_names_nothing(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer
) -> None:
    add_capture(admin_db, tenant.workspace_id, "GET", "/users/7")
    excerpt = "GET /users/{id} returns {id, name}\n" + "z" * 100_000
    status, reply = call_http(body(tenant, [("GET", "/users/{id}")], spec_excerpt=excerpt))
    assert status == 200
    assert reply["endpoints_not_in_contract"] == [] and reply["samples_used"] == 1
    assert "[truncated: 100035 chars in all]" in prompt_of(llm_server)


def test_spec_by_s3_uri_scores_like_the_same_text_inline(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer, digitalocean: str, spec_bucket: tuple[Any, str]
) -> None:
    client, bucket = spec_bucket
    client.put_object(Bucket=bucket, Key="do/openapi.json", Body=digitalocean.encode())
    add_capture(admin_db, tenant.workspace_id, "GET", "/v2/apps/4f6c71e2")
    uri = f"s3://{bucket}/do/openapi.json"

    by_uri = call_direct(body(tenant, [("GET", "/v2/apps/{id}")], spec_s3_uri=uri))
    status, inline = call_http(body(tenant, [("GET", "/v2/apps/{id}")], spec_excerpt=digitalocean))

    assert status == 200 and by_uri["replayed"] is False and inline["replayed"] is False  # different keys
    first, second = (request.user_prompt for request in llm_server.requests)
    contract = first.split("## Endpoints")[0].split("\n", 2)[2].rsplit("\n", 3)[0]
    assert contract == second.split("## Endpoints")[0].split("\n", 2)[2].rsplit("\n", 3)[0]  # same slice
    assert '"/v2/apps/{id}"' in contract
    # The same object again (ETag unchanged) is a replay: no second LLM call for it.
    assert call_direct(body(tenant, [("GET", "/v2/apps/{id}")], spec_s3_uri=uri))["replayed"] is True
    assert len(llm_server.requests) == 2
    # A new version of the object is a new request.
    client.put_object(Bucket=bucket, Key="do/openapi.json", Body=digitalocean.replace("DigitalOcean", "DO").encode())
    assert call_direct(body(tenant, [("GET", "/v2/apps/{id}")], spec_s3_uri=uri))["replayed"] is False
    assert len(llm_server.requests) == 3


@pytest.mark.parametrize(
    "spec",
    [{}, {"spec_excerpt": "openapi: 3.0.0", "spec_s3_uri": "s3://some-bucket/spec.yaml"}],
    ids=["neither", "both"],
)
def test_both_or_neither_spec_field_is_a_validation_failure(tenant: Tenant, spec: dict[str, str]) -> None:
    status, reply = call_http(body(tenant, [("GET", "/a")], **spec))
    assert (status, reply["error_code"]) == (400, "VALIDATION_FAILED")
    assert "exactly one of spec_excerpt and spec_s3_uri" in json.dumps(reply["details"])


def test_an_object_that_cannot_be_read_is_spec_not_found(
    tenant: Tenant, admin_db: Any, llm_server: FakeLlmServer, spec_bucket: tuple[Any, str]
) -> None:
    _, bucket = spec_bucket
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    for uri in (f"s3://{bucket}/missing.yaml", "s3://no-such-bucket-here/spec.yaml"):
        status, reply = call_http(body(tenant, [("GET", "/a")], spec_s3_uri=uri))
        assert (status, reply["error_code"], reply["error"]) == (400, "INVALID_REQUEST", "Spec not found")
    assert llm_server.requests == []
    assert tokens_used(admin_db, tenant.org_id) == 0
