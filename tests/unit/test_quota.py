"""Quota arithmetic and provider routing that needs no secret (DESIGN §5.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import Settings
from service.drift.providers import choose_provider, monthly_token_limit, quota_allows
from service.drift.repository import OrgContext
from service.errors import ResourceLimitExceeded


@pytest.mark.parametrize(("plan", "expected"), [("free", 0), ("pro", 100_000), ("team", 1_000_000)])
def test_plan_defaults(plan: str, expected: int):
    assert monthly_token_limit(plan, {}, None) == expected


def test_limits_json_then_quota_setting_override():
    assert monthly_token_limit("pro", {"ai_tokens_per_month": 500}, None) == 500
    assert monthly_token_limit("pro", {"ai_tokens_per_month": 500}, {"ai_tokens_per_month": 42}) == 42
    assert monthly_token_limit("pro", {"ai_tokens_per_month": 500}, {"other": 1}) == 500


def test_non_integer_limits_are_ignored():
    assert monthly_token_limit("pro", {"ai_tokens_per_month": "lots"}, {"ai_tokens_per_month": True}) == 100_000
    assert monthly_token_limit("team", {"ai_tokens_per_month": 2000.0}, None) == 2000


def test_quota_boundary_and_unlimited():
    assert quota_allows(100, 99)
    assert not quota_allows(100, 100)
    assert not quota_allows(0, 0)
    assert quota_allows(-1, 10**12)


@given(st.integers(), st.integers(min_value=0))
def test_quota_allows_matches_the_rule(limit: int, used: int):
    assert quota_allows(limit, used) == (limit < 0 or used < limit)


def org(plan: str, **kw: object) -> OrgContext:
    return OrgContext(
        plan=plan,
        limits=kw.get("limits", {}),  # type: ignore[arg-type]
        workspace_belongs=True,
        byok_setting=kw.get("byok"),  # type: ignore[arg-type]
        quota_setting=kw.get("quota"),  # type: ignore[arg-type]
        tokens_used_this_month=kw.get("used", 0),  # type: ignore[arg-type]
    )


def test_free_plan_without_byok_is_disabled_whatever_its_quota_says():
    with pytest.raises(ResourceLimitExceeded) as raised:
        choose_provider(org("free", quota={"ai_tokens_per_month": -1}), Settings())
    assert raised.value.details == {"reason": "ai_disabled", "plan": "free"}


def test_disabled_byok_does_not_count():
    with pytest.raises(ResourceLimitExceeded):
        choose_provider(org("free", byok={"provider": "openai", "api_key": "x", "enabled": False}), Settings())


def test_paid_plan_over_quota_is_refused():
    with pytest.raises(ResourceLimitExceeded) as raised:
        choose_provider(org("pro", used=100_000), Settings())
    assert raised.value.details == {"reason": "quota_exhausted", "limit": 100_000, "used": 100_000}
