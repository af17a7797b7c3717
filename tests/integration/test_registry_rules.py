"""The registry's billing rules through the handler, on the stand-in of its tables (DESIGN §10.3).

Effective plan from the latest subscription, the monthly limit with no plan defaults, the BYOK
provider mapping, the undecryptable-key 500, the ``ai_usage`` audit row and its hash chain
(checked by tests/integration/audit_chain.py, which shares no code with the service), and the
tokens of an unparseable reply.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.fake_llm import Step
from devtools.seed import Tenant, add_capture, add_subscription, make_tenant, set_org_setting, tokens_used
from service.drift.byok import encrypt_api_key
from service.errors import InternalError
from tests.conftest import BYOK_PASSPHRASE, BYOK_SECRET, PLATFORM_KEY
from tests.integration.audit_chain import read_chain, start_registry_chain, verify_chain
from tests.integration.drift_support import call_direct, call_http, score_body

# Several tests send the same request twice on purpose.
pytestmark = pytest.mark.usefixtures("idempotency_off")

ENOUGH = {"ai_tokens_per_month": 1_000_000}


def tenant_with_traffic(db: Any, plan: str = "pro", limits: dict[str, Any] | None = None) -> Tenant:
    tenant = make_tenant(db, plan, ENOUGH if limits is None else limits)
    add_capture(db, tenant.workspace_id, "GET", "/a")
    return tenant


def score(tenant: Tenant) -> tuple[int, Any]:
    return call_http(score_body(tenant, [("GET", "/a")]))


def byok(provider: str, base_url: str | None, model: str | None = None, key: str = "sk-org-own") -> dict[str, Any]:
    setting: dict[str, Any] = {
        "provider": provider,
        "api_key": encrypt_api_key(key, BYOK_PASSPHRASE),
        "enabled": True,
    }
    if base_url is not None:
        setting["base_url"] = base_url
    if model is not None:
        setting["model"] = model
    return setting


# --- effective plan (§10.3.2) -------------------------------------------------------------

NOW = datetime.now(UTC)
HOURS = timedelta(hours=1)


@pytest.mark.parametrize(
    ("subscriptions", "expected"),
    [
        ([], 200),
        ([("active", 400 * 24 * HOURS)], 200),
        ([("trialing", 0 * HOURS)], 200),
        ([("past_due", 23 * HOURS)], 200),
        ([("past_due", 25 * HOURS)], 403),
        ([("canceled", 0 * HOURS)], 403),
        ([("unpaid", 0 * HOURS)], 403),
        ([("incomplete", 0 * HOURS)], 403),
        ([("incomplete_expired", 0 * HOURS)], 403),
        # the latest by created_at decides, whatever the older rows say
        ([("canceled", 48 * HOURS), ("active", 1 * HOURS)], 200),
        ([("active", 48 * HOURS), ("canceled", 1 * HOURS)], 403),
    ],
    ids=[
        "none",
        "active",
        "trialing",
        "past-due-23h",
        "past-due-25h",
        "canceled",
        "unpaid",
        "incomplete",
        "incomplete-expired",
        "canceled-then-active",
        "active-then-canceled",
    ],
)
@pytest.mark.parametrize("plan", ["pro", "team"])
def test_effective_plan_from_the_latest_subscription(
    plan: str, subscriptions: list[tuple[str, timedelta]], expected: int, service_env, admin_db, llm_server
):
    tenant = tenant_with_traffic(admin_db, plan)
    for status, age in subscriptions:
        stamped = NOW - age
        add_subscription(admin_db, tenant.org_id, status, plan=plan, created_at=stamped, updated_at=stamped)
    status, body = score(tenant)
    assert status == expected, body
    if expected == 403:
        assert body["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
        assert body["details"]["reason"] == "ai_disabled" and body["details"]["plan"] == "free"
        assert body["details"]["subscription_status"] == subscriptions[-1][0]
        assert llm_server.requests == [] and tokens_used(admin_db, tenant.org_id) == 0
        assert read_chain(admin_db, tenant.org_id) == []
    else:
        assert body["provider"] == "platform"


def test_a_past_due_subscription_is_aged_by_updated_at_not_created_at(service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db)
    add_subscription(admin_db, tenant.org_id, "past_due", created_at=NOW - 90 * 24 * HOURS, updated_at=NOW - HOURS)
    assert score(tenant)[0] == 200


def test_a_downgraded_org_keeps_ai_through_its_own_key(service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "team")
    add_subscription(admin_db, tenant.org_id, "canceled", plan="team")
    set_org_setting(admin_db, tenant.org_id, "byok", byok("openai", llm_server.base_url))
    status, body = score(tenant)
    assert (status, body["provider"]) == (200, "byok")
    assert tokens_used(admin_db, tenant.org_id) == 0


# --- monthly limit (§10.3.3) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "quota", "expected_limit"),
    [
        ({}, None, 0),
        ({"ai_tokens_per_month": 100000.0}, None, 0),
        ({"ai_tokens_per_month": "100000"}, None, 0),
        ({"ai_tokens_per_month": True}, None, 0),
        ({"ai_tokens_per_month": None}, None, 0),
        ({"ai_tokens_per_month": 10**6}, {"ai_tokens_per_month": 0}, 0),
        ({"ai_tokens_per_month": 10**6}, {"ai_tokens_per_month": "10"}, 0),
    ],
    ids=["absent", "float", "string", "bool", "null", "quota-zero", "quota-string"],
)
def test_a_limit_that_is_absent_or_not_an_integer_is_zero(
    limits: dict[str, Any], quota: dict[str, Any] | None, expected_limit: int, service_env, admin_db, llm_server
):
    tenant = tenant_with_traffic(admin_db, "team", limits)
    if quota is not None:
        set_org_setting(admin_db, tenant.org_id, "quota", quota)
    status, body = score(tenant)
    assert status == 403, body
    assert body["details"] == {"reason": "quota_exhausted", "limit": expected_limit, "used": 0}
    assert llm_server.requests == []


@pytest.mark.parametrize(
    ("limits", "quota"),
    [
        ({"ai_tokens_per_month": -1}, None),
        ({}, {"ai_tokens_per_month": -1}),
        ({"ai_tokens_per_month": 0}, {"ai_tokens_per_month": 5_000_000}),
        ({"ai_tokens_per_month": 1, "other": 3}, {"ai_tokens_per_month": 10**12}),
    ],
    ids=["negative-unlimited", "quota-unlimited", "quota-raises", "big"],
)
def test_integer_limits_and_overrides_admit(
    limits: dict[str, Any], quota: dict[str, Any] | None, service_env, admin_db, llm_server
):
    tenant = tenant_with_traffic(admin_db, "pro", limits)
    if quota is not None:
        set_org_setting(admin_db, tenant.org_id, "quota", quota)
    status, body = score(tenant)
    assert (status, body["provider"]) == (200, "platform"), body
    assert tokens_used(admin_db, tenant.org_id) == body["tokens_used"] > 0


# --- BYOK provider mapping (§10.3.4) ------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "expected_model"),
    [
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("Fireworks", None, "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        ("acme-gateway", None, "gpt-4o-mini"),
        ("OPENAI", "gpt-test", "gpt-test"),
    ],
)
def test_openai_compatible_providers_go_to_their_base_url(
    provider: str, model: str | None, expected_model: str, service_env, admin_db, llm_server
):
    tenant = tenant_with_traffic(admin_db, "free", {})
    set_org_setting(admin_db, tenant.org_id, "byok", byok(provider, llm_server.base_url + "/v1/", model))
    status, body = score(tenant)
    assert (status, body["provider"]) == (200, "byok"), body
    [sent] = llm_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-org-own"
    assert sent.body["model"] == expected_model
    assert tokens_used(admin_db, tenant.org_id) == 0


@pytest.mark.parametrize("provider", ["claude", "Claude", "ANTHROPIC"])
def test_claude_and_anthropic_speak_the_anthropic_wire(provider: str, service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "free", {})
    set_org_setting(admin_db, tenant.org_id, "byok", byok(provider, llm_server.base_url, key="sk-ant-own"))
    status, body = score(tenant)
    assert (status, body["provider"]) == (200, "byok"), body
    [sent] = llm_server.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-own" and "authorization" not in sent.headers
    assert sent.body["model"] == "claude-3-5-haiku-latest"
    # Anthropic's input/output tokens are the audit row's prompt/completion tokens
    [row] = read_chain(admin_db, tenant.org_id)
    assert row["metadata"] == expected_metadata("byok", fake_llm_usage(llm_server))


def undecryptable_keys(llm_url: str) -> dict[str, dict[str, Any]]:
    sealed_elsewhere = encrypt_api_key("sk-x", "the registry's other passphrase")
    return {
        "garbage": {"provider": "openai", "api_key": "garbage", "enabled": True, "base_url": llm_url},
        "other-passphrase": {"provider": "together", "api_key": sealed_elsewhere, "enabled": True, "base_url": llm_url},
    }


@pytest.mark.parametrize("case", ["garbage", "other-passphrase"])
@pytest.mark.parametrize("plan", ["free", "team"])
def test_an_undecryptable_key_is_a_500_never_the_platform(case: str, plan: str, service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, plan)
    set_org_setting(admin_db, tenant.org_id, "byok", undecryptable_keys(llm_server.base_url)[case])
    status, body = score(tenant)
    assert status == 500, body
    assert (body["error_code"], body["error"]) == ("INTERNAL_ERROR", "BYOK key could not be decrypted")
    assert llm_server.requests == []
    assert tokens_used(admin_db, tenant.org_id) == 0
    assert read_chain(admin_db, tenant.org_id) == []
    with pytest.raises(InternalError, match="BYOK key could not be decrypted"):
        call_direct(score_body(tenant, [("GET", "/a")]))
    assert llm_server.requests == []


def test_no_passphrase_configured_is_the_same_500(service_env, admin_db, llm_server, clean_secret):
    from tests.conftest import reset_service_caches

    tenant = tenant_with_traffic(admin_db, "pro")
    set_org_setting(admin_db, tenant.org_id, "byok", byok("openai", llm_server.base_url))
    clean_secret(BYOK_SECRET)
    reset_service_caches()
    status, body = score(tenant)
    assert (status, body["error"]) == (500, "BYOK key could not be decrypted"), body
    assert llm_server.requests == [] and tokens_used(admin_db, tenant.org_id) == 0


@pytest.mark.parametrize(
    "setting",
    [
        {"provider": "openai", "api_key": "", "enabled": True},
        {"provider": "openai", "api_key": "garbage", "enabled": False},
        {"provider": 7, "api_key": "garbage", "enabled": True},
        {"api_key": "garbage", "enabled": True},
        ["not", "an", "object"],
    ],
    ids=["empty-key", "disabled", "numeric-provider", "no-provider", "not-an-object"],
)
def test_a_malformed_disabled_or_empty_setting_is_no_byok(setting: Any, service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "pro")
    set_org_setting(admin_db, tenant.org_id, "byok", setting)
    status, body = score(tenant)
    assert (status, body["provider"]) == (200, "platform"), body
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {PLATFORM_KEY}"


# --- audit (§10.3.5) ----------------------------------------------------------------------


def expected_metadata(kind: str, sent_tokens: tuple[int, int]) -> dict[str, Any]:
    prompt, output = sent_tokens
    return {
        "completion_tokens": output,
        "handler": "contract_drift.score",
        "prompt_tokens": prompt,
        "provider": kind,
        "total_tokens": prompt + output,
    }


def fake_llm_usage(llm_server: Any) -> tuple[int, int]:
    """Prompt and completion tokens the fake LLM reported for its one completion."""
    [usage] = llm_server.reported_usage
    return usage


@pytest.mark.parametrize("kind", ["platform", "byok"])
def test_every_completion_writes_one_ai_usage_row(kind: str, service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "pro")
    if kind == "byok":
        set_org_setting(admin_db, tenant.org_id, "byok", byok("together", llm_server.base_url, "m"))
    before = datetime.now(UTC)
    status, body = score(tenant)
    after = datetime.now(UTC)
    assert (status, body["provider"]) == (200, kind), body
    [row] = read_chain(admin_db, tenant.org_id)
    assert row["org_id"] == tenant.org_id
    assert row["event_type"] == "ai_usage"
    assert row["user_id"] is None and row["ip_address"] is None and row["user_agent"] is None
    assert row["description"] == f"AI completion via {kind} provider"
    assert row["metadata"] == expected_metadata(kind, fake_llm_usage(llm_server))
    assert row["metadata"]["total_tokens"] == body["tokens_used"]
    assert before - timedelta(seconds=5) <= row["created_at"] <= after + timedelta(seconds=5)
    assert row["prev_hash"] is None
    assert verify_chain([row]).verifies


def test_rows_extend_a_chain_the_registry_started(service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "team")
    registry_hashes = start_registry_chain(admin_db, tenant.org_id, tenant.owner_id)
    for _ in range(3):
        assert score(tenant)[0] == 200
    chain = read_chain(admin_db, tenant.org_id)
    assert len(chain) == 6
    assert [row["entry_hash"] for row in chain[:3]] == registry_hashes
    assert chain[3]["prev_hash"] == registry_hashes[-1]
    assert [row["event_type"] for row in chain[3:]] == ["ai_usage"] * 3
    report = verify_chain(chain)
    assert report.verifies, report


def test_a_registry_row_stamped_ahead_of_our_clock_is_still_chained_to(service_env, admin_db, llm_server):
    """The registry's last row carries a created_at 3 s in the future (its host's clock runs
    ahead): our rows must come after it in chain order, or the next append would chain to it
    again and fork."""
    tenant = tenant_with_traffic(admin_db, "team")
    registry_hashes = start_registry_chain(admin_db, tenant.org_id, tenant.owner_id, ahead_s=3.0)
    for _ in range(2):
        assert score(tenant)[0] == 200
    chain = read_chain(admin_db, tenant.org_id)
    assert [row["entry_hash"] for row in chain[:3]] == registry_hashes
    report = verify_chain(chain)
    assert report.verifies and report.rows == 5, report


def test_failed_calls_write_no_row(service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "pro")
    llm_server.enqueue(*[Step(status=500) for _ in range(5)])
    status, body = score(tenant)
    assert status == 502, body
    refused = tenant_with_traffic(admin_db, "free", {})
    assert score(refused)[0] == 403
    assert read_chain(admin_db, tenant.org_id) == [] and read_chain(admin_db, refused.org_id) == []


def emitted_metrics(text: str) -> dict[str, float]:
    """Every metric the EMF blobs on stdout carry (Powertools' log_metrics output), summed by name."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            for directive in blob["_aws"].get("CloudWatchMetrics", []):
                for metric in directive.get("Metrics", []):
                    value = blob.get(metric["Name"])
                    values = value if isinstance(value, list) else [value]
                    found[metric["Name"]] = found.get(metric["Name"], 0.0) + sum(float(v) for v in values)
    return found


def test_an_audit_write_that_fails_still_answers_200_and_says_so(service_env, admin_db, llm_server, capfd):
    """INSERT on audit_logs revoked from the functions' role: the call is still a 200, metered,
    and the AuditWriteFailed metric is emitted."""
    tenant = tenant_with_traffic(admin_db, "pro")
    admin_db.run("REVOKE INSERT ON audit_logs FROM contract_drift_app")
    try:
        capfd.readouterr()
        status, body = score(tenant)
        out = capfd.readouterr().out
    finally:
        admin_db.run("GRANT INSERT ON audit_logs TO contract_drift_app")
    assert (status, body["provider"]) == (200, "platform"), body
    assert body["findings"]
    assert tokens_used(admin_db, tenant.org_id) == body["tokens_used"] > 0
    assert read_chain(admin_db, tenant.org_id) == []
    assert emitted_metrics(out).get("AuditWriteFailed") == 1.0
    # and with the privilege back, the next call writes its row again
    assert score(tenant)[0] == 200
    assert len(read_chain(admin_db, tenant.org_id)) == 1
    assert "AuditWriteFailed" not in emitted_metrics(capfd.readouterr().out)


# --- unparseable replies (§10.3.6) --------------------------------------------------------


@pytest.mark.parametrize("kind", ["platform", "byok"])
def test_an_unparseable_reply_is_metered_and_audited_and_still_a_502(kind: str, service_env, admin_db, llm_server):
    tenant = tenant_with_traffic(admin_db, "pro")
    if kind == "byok":
        set_org_setting(admin_db, tenant.org_id, "byok", byok("fireworks", llm_server.base_url, "m"))
    llm_server.enqueue(Step(text="I could not find any drift worth reporting, sorry."))
    status, body = score(tenant)
    assert (status, body["error_code"]) == (502, "UPSTREAM_ERROR"), body
    spent = llm_server.completed_tokens
    assert spent > 0
    assert tokens_used(admin_db, tenant.org_id) == (spent if kind == "platform" else 0)
    [row] = read_chain(admin_db, tenant.org_id)
    assert row["description"] == f"AI completion via {kind} provider"
    assert row["metadata"]["total_tokens"] == spent
    assert verify_chain([row]).verifies
