"""Quota arithmetic and provider routing that needs no secret (DESIGN §5.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import Settings
from service.drift.providers import choose_provider, monthly_token_limit, quota_allows
from service.drift.repository import OrgContext
from service.errors import ResourceLimitExceeded


@pytest.mark.parametrize("plan", ["free", "pro", "team"])
def test_no_plan_defaults_an_absent_limit_is_zero(plan: str):
    """DESIGN §10.3.3: the registry writes the plan's limits into limits_json; we add none."""
    assert monthly_token_limit({}, None) == 0
    choice_org = org(plan)
    if plan != "free":
        with pytest.raises(ResourceLimitExceeded) as raised:
            choose_provider(choice_org, Settings())
        assert raised.value.details == {"reason": "quota_exhausted", "limit": 0, "used": 0}


def test_limits_json_then_quota_setting_override():
    assert monthly_token_limit({"ai_tokens_per_month": 500}, None) == 500
    assert monthly_token_limit({"ai_tokens_per_month": 500}, {"ai_tokens_per_month": 42}) == 42
    assert monthly_token_limit({"ai_tokens_per_month": 500}, {"other": 1}) == 500
    assert monthly_token_limit({}, {"ai_tokens_per_month": 7}) == 7


@pytest.mark.parametrize("value", [100000.0, 2000.0, "100000", "lots", True, False, None, [1], {"n": 1}, 1.5], ids=repr)
def test_a_limit_that_is_not_an_integer_is_zero(value: object):
    assert monthly_token_limit({"ai_tokens_per_month": value}, None) == 0


def test_the_quota_setting_replaces_the_whole_top_level_key():
    """Merged over limits_json by top-level key: a non-integer override wins, and counts as 0."""
    assert monthly_token_limit({"ai_tokens_per_month": 500}, {"ai_tokens_per_month": "500"}) == 0
    assert monthly_token_limit({"ai_tokens_per_month": 500}, {"ai_tokens_per_month": None}) == 0


@pytest.mark.parametrize(("value", "expected"), [(-1, -1), (-(10**15), -(10**15)), (0, 0), (1, 1), (10**15, 10**15)])
def test_integer_limits_are_kept_as_they_are(value: int, expected: int):
    assert monthly_token_limit({"ai_tokens_per_month": value}, None) == expected


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
        choose_provider(org("pro", used=100_000, limits={"ai_tokens_per_month": 100_000}), Settings())
    assert raised.value.details == {"reason": "quota_exhausted", "limit": 100_000, "used": 100_000}
