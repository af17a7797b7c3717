"""The registry's billing rules as pure functions: effective plan and BYOK mapping (DESIGN §10.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.config import Settings
from service.drift.providers import (
    BYOK_UNDECRYPTABLE,
    ByokSetting,
    byok_target,
    byok_wire_format,
    choose_provider,
    effective_plan,
    parse_byok_setting,
)
from service.drift.repository import OrgContext, Subscription
from service.errors import InternalError, ResourceLimitExceeded

NOW = datetime(2026, 12, 5, 7, 9, 9, 123456, tzinfo=UTC)
DAY = timedelta(hours=24)
TICK = timedelta(microseconds=1)


def sub(status: str, age: timedelta | None = timedelta(0)) -> Subscription:
    return Subscription(status=status, updated_at=None if age is None else NOW - age)


# --- effective plan (§10.3.2) -------------------------------------------------------------


@pytest.mark.parametrize("plan", ["pro", "team"])
@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete", "incomplete_expired"])
def test_a_lapsed_latest_subscription_makes_a_paid_org_free(plan: str, status: str):
    assert effective_plan(plan, sub(status), NOW) == "free"
    assert effective_plan(plan, sub(status, age=timedelta(days=400)), NOW) == "free"


@pytest.mark.parametrize("plan", ["pro", "team"])
@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_keep_the_plan(plan: str, status: str):
    assert effective_plan(plan, sub(status, age=timedelta(days=400)), NOW) == plan


@pytest.mark.parametrize("plan", ["pro", "team"])
def test_no_subscription_row_keeps_the_plan(plan: str):
    assert effective_plan(plan, None, NOW) == plan


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(0), "pro"),
        (DAY - TICK, "pro"),
        (DAY, "pro"),  # "more than 24 h": exactly 24 h is still within the grace
        (DAY + TICK, "free"),
        (timedelta(days=30), "free"),
        (-timedelta(minutes=5), "pro"),  # stamped by a clock slightly ahead of the database's
    ],
    ids=["now", "24h-1us", "24h", "24h+1us", "30d", "future"],
)
def test_past_due_counts_as_free_only_after_24_hours(age: timedelta, expected: str):
    assert effective_plan("pro", sub("past_due", age), NOW) == expected


def test_past_due_without_updated_at_keeps_the_plan():
    assert effective_plan("team", sub("past_due", age=None), NOW) == "team"


def test_naive_updated_at_is_read_as_utc():
    naive = (NOW - DAY - TICK).replace(tzinfo=None)
    assert effective_plan("pro", Subscription("past_due", naive), NOW) == "free"
    assert effective_plan("pro", Subscription("past_due", (NOW - DAY).replace(tzinfo=None)), NOW) == "pro"


@pytest.mark.parametrize("status", ["active", "canceled", "past_due"])
def test_a_free_org_stays_free_whatever_its_subscription(status: str):
    assert effective_plan("free", sub(status, timedelta(days=2)), NOW) == "free"


def org(plan: str, subscription: Subscription | None, **kw: Any) -> OrgContext:
    return OrgContext(
        plan=plan,
        limits={"ai_tokens_per_month": 1000},
        workspace_belongs=True,
        byok_setting=kw.get("byok"),
        quota_setting=None,
        tokens_used_this_month=0,
        subscription=subscription,
        read_at=NOW,
    )


def test_a_downgraded_org_without_byok_is_refused_and_told_why():
    with pytest.raises(ResourceLimitExceeded) as raised:
        choose_provider(org("team", sub("canceled")), Settings())
    assert raised.value.details == {"reason": "ai_disabled", "plan": "free", "subscription_status": "canceled"}


def test_a_downgraded_org_is_aged_against_the_database_clock_it_was_read_with():
    """read_at (the database's now()) decides, not the Lambda's clock."""
    context = org("pro", sub("past_due", DAY + TICK))
    with pytest.raises(ResourceLimitExceeded):
        choose_provider(context, Settings())


# --- BYOK (§10.3.4) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("anthropic", "anthropic"),
        ("Anthropic", "anthropic"),
        ("CLAUDE", "anthropic"),
        (" claude ", "anthropic"),
        ("openai", "openai"),
        ("together", "openai"),
        ("Fireworks", "openai"),
        ("my-gateway", "openai"),
        ("anthropic-proxy", "openai"),
    ],
)
def test_provider_names_map_to_wire_formats(name: str, wire: str):
    assert byok_wire_format(name) == wire


def enabled(**fields: Any) -> dict[str, Any]:
    return {"provider": "openai", "api_key": "c2VhbGVk", "enabled": True, **fields}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        enabled(enabled=False),
        enabled(enabled="true"),
        {"provider": "openai", "api_key": "c2VhbGVk"},
        enabled(api_key=""),
        enabled(api_key=None),
        enabled(api_key=123),
        enabled(provider=None),
        enabled(provider=""),
        enabled(provider=7),
        enabled(base_url=5),
        enabled(model=["gpt"]),
    ],
    ids=[
        "none",
        "empty",
        "disabled",
        "enabled-string",
        "enabled-missing",
        "empty-key",
        "null-key",
        "numeric-key",
        "null-provider",
        "empty-provider",
        "numeric-provider",
        "numeric-base-url",
        "list-model",
    ],
)
def test_malformed_disabled_or_empty_settings_are_no_byok(raw: dict[str, Any] | None):
    assert parse_byok_setting(raw) is None


def test_a_well_formed_setting_is_parsed_with_blank_optionals_as_absent():
    parsed = parse_byok_setting(enabled(provider=" Together ", base_url=" ", model=None))
    assert parsed == ByokSetting(provider="Together", sealed_key="c2VhbGVk", base_url=None, model=None)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            ByokSetting("together", "k", "https://api.together.xyz/v1/", None),
            ("openai", "https://api.together.xyz", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        (
            ByokSetting("fireworks", "k", "https://api.fireworks.ai/inference/v1", "my-model"),
            ("openai", "https://api.fireworks.ai/inference", "my-model"),
        ),
        (
            ByokSetting("my-gateway", "k", "https://llm.example.com", None),
            ("openai", "https://llm.example.com", "gpt-4o-mini"),
        ),
        (ByokSetting("OpenAI", "k", None, None), ("openai", "https://api.openai.com", "gpt-4o-mini")),
        (
            ByokSetting("together", "k", None, None),
            ("openai", "https://api.together.xyz", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        (
            ByokSetting("Fireworks", "k", None, None),
            ("openai", "https://api.fireworks.ai/inference", "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        ),
        (ByokSetting("my-gateway", "k", None, None), ("openai", "https://api.openai.com", "gpt-4o-mini")),
        (ByokSetting("Claude", "k", None, None), ("anthropic", "https://api.anthropic.com", "claude-3-5-haiku-latest")),
        (
            ByokSetting("anthropic", "k", "https://proxy.example.com/v1", "claude-x"),
            ("anthropic", "https://proxy.example.com", "claude-x"),
        ),
    ],
    ids=[
        "together",
        "fireworks",
        "custom",
        "openai-default",
        "together-no-url",
        "fireworks-no-url",
        "custom-no-url",
        "claude",
        "anthropic-proxy",
    ],
)
def test_targets(setting: ByokSetting, expected: tuple[str, str, str]):
    target = byok_target(setting, "sk-plain")
    assert (target.provider, target.base_url, target.model) == expected
    assert target.api_key == "sk-plain"
    assert target.egress_guarded  # an org's URL always goes through the guard (DESIGN §13)


@pytest.mark.parametrize("plan", ["free", "pro"])
def test_an_enabled_key_with_no_passphrase_configured_is_a_500_not_the_platform(plan: str):
    context = org(plan, None, byok=enabled())
    with pytest.raises(InternalError) as raised:
        choose_provider(context, Settings(platform_llm_secret_id="configured"))
    assert raised.value.message == BYOK_UNDECRYPTABLE


def test_a_disabled_key_with_no_passphrase_is_simply_no_byok():
    with pytest.raises(ResourceLimitExceeded):
        choose_provider(org("free", None, byok=enabled(enabled=False)), Settings())
