"""DESIGN §5 rules 1-9 through the real handler: Postgres, moto, and an HTTP LLM."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from devtools.postgres import CountingDatabase
from devtools.seed import (
    add_capture,
    add_deployment,
    current_period_start,
    make_tenant,
    set_org_setting,
    set_tokens_used,
    tokens_used,
)
from service.db import Database
from service.drift.models import Endpoint
from service.drift.repository import DriftRepository
from tests.integration.drift_support import call_http, score_body

# Also run through PgBouncer in transaction mode (DESIGN §11.1; tests/integration/conftest.py).
pytestmark = pytest.mark.through_pgbouncer


def assert_envelope(body: dict[str, Any], status: int, code: str, error: str | None = None) -> None:
    assert set(body) == {"error", "error_code", "status", "request_id", "details"}
    assert (body["status"], body["error_code"]) == (status, code)
    if error is not None:
        assert body["error"] == error
    assert "Traceback" not in json.dumps(body)


def test_platform_call_scores_findings_and_meters_tokens(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "get", "/users/{id}")
    status, body = call_http(score_body(tenant, [("GET", "/users/{id}")]))
    assert status == 200, body
    assert body["provider"] == "platform" and body["no_traffic"] is False
    assert [(f["endpoint"], f["severity"]) for f in body["findings"]] == [("GET /users/{id}", "breaking")]
    assert body["tokens_used"] == llm_server.completed_tokens > 0
    assert tokens_used(admin_db, tenant.org_id) == body["tokens_used"]
    sent = llm_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-platform-test"
    assert sent.body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_missing_or_wrong_token_is_400_not_found(service_env, admin_db, llm_server, token):
    status, body = call_http({"not": "even valid"}, token=token, request_id="req-auth")
    assert status == 400
    assert_envelope(body, 400, "INVALID_REQUEST", "Not found")
    assert body["request_id"] == "req-auth"
    assert llm_server.requests == []


def test_unconfigured_secret_is_500_before_anything_else(service_env, monkeypatch, clean_secret):
    from tests.conftest import TOKEN_SECRET, reset_service_caches

    clean_secret(TOKEN_SECRET)
    reset_service_caches()
    status, body = call_http("not json at all")
    assert_envelope(body, 500, "INTERNAL_ERROR")
    assert status == 500
    monkeypatch.delenv("INTERNAL_TOKEN_SECRET_ID")
    reset_service_caches()
    status, body = call_http("not json at all")
    assert (status, body["error_code"]) == (500, "INTERNAL_ERROR")


def test_blank_secret_counts_as_not_configured(service_env, aws_endpoint):
    from devtools.aws import put_secret
    from tests.conftest import INTERNAL_TOKEN, TOKEN_SECRET, reset_service_caches

    put_secret(TOKEN_SECRET, "   ", aws_endpoint)
    reset_service_caches()
    try:
        assert call_http({})[0] == 500
    finally:
        put_secret(TOKEN_SECRET, INTERNAL_TOKEN, aws_endpoint)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"org_id": "nope", "workspace_id": str(uuid.uuid4()), "spec_excerpt": "", "endpoints": []}),
        json.dumps({"org_id": str(uuid.uuid4())}),
    ],
)
def test_bodies_that_are_not_json_or_not_the_schema_are_400_validation_failed(service_env, body):
    status, reply = call_http(body)
    assert status == 400
    assert_envelope(reply, 400, "VALIDATION_FAILED")
    assert isinstance(reply["details"]["errors"], list) and reply["details"]["errors"]


def test_base64_encoded_body_is_accepted(service_env, admin_db):
    tenant = make_tenant(admin_db, "pro")
    status, body = call_http(score_body(tenant, []), base64_body=True)
    assert (status, body["no_traffic"]) == (200, True)


def test_empty_endpoints_reply_without_touching_the_database(service_env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@/nowhere?host=/nonexistent-socket-dir")
    from service.db import database
    from tests.conftest import reset_service_caches

    database.close()
    reset_service_caches()
    body = {"org_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "spec_excerpt": "", "endpoints": []}
    status, reply = call_http(body)
    assert status == 200
    assert reply["findings"] == [] and reply["tokens_used"] == 0
    assert (reply["provider"], reply["no_traffic"]) == ("disabled", True)
    database.close()


def test_unknown_organization_and_foreign_workspace(service_env, admin_db, llm_server):
    tenant, other = make_tenant(admin_db, "pro"), make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    unknown = score_body(tenant, [("GET", "/a")]) | {"org_id": str(uuid.uuid4())}
    status, body = call_http(unknown)
    assert status == 400
    assert_envelope(body, 400, "INVALID_REQUEST", "Organization not found")
    foreign = score_body(tenant, [("GET", "/a")]) | {"workspace_id": str(other.workspace_id)}
    status, body = call_http(foreign)
    assert_envelope(body, 400, "INVALID_REQUEST", "Workspace not found")
    assert llm_server.requests == []


def test_no_recent_traffic_means_no_llm_call(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a", minutes_ago=25 * 60)  # older than 24 h
    add_capture(admin_db, tenant.workspace_id, "GET", "/other")
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200
    assert (body["findings"], body["tokens_used"], body["provider"], body["no_traffic"]) == ([], 0, "disabled", True)
    assert llm_server.requests == []


def test_free_plan_without_byok_is_403_after_sampling(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "free", limits={"ai_tokens_per_month": 10**6})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 403
    assert_envelope(body, 403, "RESOURCE_LIMIT_EXCEEDED")
    assert llm_server.requests == []


def test_platform_quota_reached_is_403_and_overrides_apply(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "team", limits={"ai_tokens_per_month": 50})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    set_tokens_used(admin_db, tenant.org_id, 50)
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body["error_code"], body["details"]["reason"]) == (
        403,
        "RESOURCE_LIMIT_EXCEEDED",
        "quota_exhausted",
    )
    set_org_setting(admin_db, tenant.org_id, "quota", {"ai_tokens_per_month": -1})
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200 and body["provider"] == "platform"
    assert tokens_used(admin_db, tenant.org_id) == 50 + body["tokens_used"]


def test_last_month_usage_does_not_count(service_env, admin_db):
    tenant = make_tenant(admin_db, "pro", limits={"ai_tokens_per_month": 10})
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    last_month = (current_period_start() - timedelta(days=1)).replace(day=1)
    set_tokens_used(admin_db, tenant.org_id, 999, last_month)
    assert call_http(score_body(tenant, [("GET", "/a")]))[0] == 200


def test_byok_wins_on_any_plan_and_is_not_metered(service_env, admin_db, llm_server):
    from service.drift.byok import encrypt_api_key
    from tests.conftest import BYOK_PASSPHRASE

    tenant = make_tenant(admin_db, "free")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    set_org_setting(
        admin_db,
        tenant.org_id,
        "byok",
        {
            "provider": "anthropic",
            "api_key": encrypt_api_key("sk-ant-org-own", BYOK_PASSPHRASE),
            "base_url": llm_server.base_url + "/v1",
            "model": "claude-test",
            "enabled": True,
        },
    )
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200, body
    assert body["provider"] == "byok" and body["tokens_used"] > 0 and body["model"] == "claude-test"
    sent = llm_server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-org-own"
    assert sent.headers["anthropic-version"]
    assert tokens_used(admin_db, tenant.org_id) == 0


def test_undecryptable_byok_is_a_500_not_the_platform_key(service_env, admin_db, llm_server):
    """The registry answers 500 rather than bill the platform (DESIGN §10.3.4); more in test_registry_rules.py."""
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    set_org_setting(admin_db, tenant.org_id, "byok", {"provider": "openai", "api_key": "garbage", "enabled": True})
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body["error"]) == (500, "BYOK key could not be decrypted")
    assert llm_server.requests == []


def test_anthropic_platform_provider(service_env, admin_db, llm_server, monkeypatch):
    from tests.conftest import reset_service_caches

    monkeypatch.setenv("PLATFORM_LLM_PROVIDER", "anthropic")
    monkeypatch.setenv("PLATFORM_LLM_MODEL", "claude-platform")
    reset_service_caches()
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200, body
    assert llm_server.requests[0].headers["x-api-key"] == "sk-platform-test"
    assert tokens_used(admin_db, tenant.org_id) == body["tokens_used"] == llm_server.completed_tokens


def test_sampling_rules_reach_the_prompt(service_env, admin_db, llm_server):
    tenant, other = make_tenant(admin_db, "pro"), make_tenant(admin_db, "pro")
    for minute in range(1, 8):
        add_capture(admin_db, tenant.workspace_id, "get", "/a", minutes_ago=minute, response_body=f"resp-{minute}")
    add_capture(admin_db, tenant.workspace_id, "GET", "/A", response_body="other-path-case")
    add_capture(admin_db, other.workspace_id, "GET", "/a", response_body="other-tenant")
    encoded = base64.b64encode(b'{"decoded": "yes"}').decode()
    add_capture(admin_db, tenant.workspace_id, "POST", "/b", response_body=encoded, response_encoding="base64")
    status, _ = call_http(score_body(tenant, [("GET", "/a"), ("post", "/b")], max_samples_per_endpoint=4))
    assert status == 200
    prompt = llm_server.requests[0].user_prompt
    assert [f"resp-{m}" in prompt for m in range(1, 8)] == [True] * 4 + [False] * 3
    assert prompt.index("resp-1") < prompt.index("resp-2") < prompt.index("resp-4")
    assert "other-path-case" not in prompt and "other-tenant" not in prompt
    assert '{"decoded": "yes"}' in prompt


@pytest.mark.parametrize("path", ["/orders/7", "/orders/{id}"], ids=["literal", "templated"])
def test_recorded_status_reaches_the_prompt_and_workspaceless_captures_do_not(service_env, admin_db, llm_server, path):
    """The recorder leaves status_code NULL for HTTP and writes response_status_code (DESIGN
    §10.3.1); a capture with no workspace belongs to none, even under the org's own deployment."""
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/orders/7", status=409, response_body="mine")
    stray = add_deployment(admin_db, tenant.org_id)
    add_capture(admin_db, None, "GET", "/orders/7", status=500, response_body="no-workspace", deployment_id=stray)
    assert call_http(score_body(tenant, [("GET", path)]))[0] == 200
    prompt = llm_server.requests[0].user_prompt
    assert "status 409" in prompt and "status None" not in prompt
    assert "mine" in prompt and "no-workspace" not in prompt


def test_only_the_first_25_distinct_endpoints_are_considered(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "pro")
    pairs = [("GET", f"/e{i}") for i in range(30)]
    for method, path in pairs:
        add_capture(admin_db, tenant.workspace_id, method, path)
    status, body = call_http(score_body(tenant, [("get", "/e0"), *pairs]))
    assert status == 200 and body["endpoints_considered"] == 25
    assert {f["endpoint"] for f in body["findings"]} == {f"GET /e{i}" for i in range(25)}
    assert "### GET /e25" not in llm_server.requests[0].user_prompt


def test_sampler_uses_one_statement_for_all_endpoints(service_env, admin_db):
    tenant = make_tenant(admin_db, "pro")
    endpoints = [Endpoint(method="GET", path=f"/s{i}") for i in range(25)]
    for endpoint in endpoints:
        for minute in range(1, 4):
            add_capture(admin_db, tenant.workspace_id, "GET", endpoint.path, minutes_ago=minute)
    counting = CountingDatabase()
    samples = DriftRepository(counting).recent_samples(tenant.workspace_id, endpoints, 2)
    counting.close()
    assert counting.statements == 1
    assert len(samples) == 50
    assert [s.endpoint.path for s in samples[:4]] == ["/s0", "/s0", "/s1", "/s1"]


def test_model_output_is_filtered_and_normalised(service_env, admin_db, llm_server):
    from devtools.fake_llm import Step

    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    text = (
        "Findings:\n```json\n"
        + json.dumps(
            [
                {"severity": "breaking", "endpoint": "get /a", "description": "d", "confidence": 3, "rationale": "r"},
                {"severity": "breaking", "endpoint": "GET /not-asked", "description": "d", "confidence": 0.5},
                {"severity": "weird", "endpoint": "GET /a", "description": "d", "confidence": 0.5},
            ]
        )
        + "\n```"
    )
    llm_server.enqueue(Step(text=text))
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert status == 200
    assert body["findings"] == [
        {"severity": "breaking", "endpoint": "GET /a", "description": "d", "confidence": 1.0, "rationale": "r"}
    ]


def test_unknown_route_is_a_404_envelope(service_env):
    status, body = call_http({}, path="/api/v1/internal/contract-diff/other")
    assert status == 404
    assert_envelope(body, 404, "INVALID_REQUEST", "Not found")


def test_huge_bodies_leave_the_database_as_bounded_prefixes(service_env, admin_db, llm_server):
    from service.drift.repository import BODY_PREFIX_CHARS

    tenant = make_tenant(admin_db, "pro")
    huge_text = '{"items": [' + ",".join(['{"id": 1}'] * 200_000) + "]}"
    huge_b64 = base64.b64encode(("ü" * 300_000).encode()).decode()
    add_capture(
        admin_db,
        tenant.workspace_id,
        "GET",
        "/big",
        response_body=huge_text,
        request_body=huge_b64,
        request_encoding="base64",
    )
    samples = DriftRepository(Database()).recent_samples(tenant.workspace_id, [Endpoint(method="GET", path="/big")], 1)
    assert len(samples[0].response_body or "") == BODY_PREFIX_CHARS
    assert samples[0].response_body_chars == len(huge_text)
    status, _ = call_http(score_body(tenant, [("GET", "/big")]))
    assert status == 200
    prompt = llm_server.requests[0].user_prompt
    assert f"[truncated: {len(huge_text)} chars in all]" in prompt
    assert "üüüü" in prompt  # the base64 prefix still decodes as text
    assert len(prompt) < 20_000
