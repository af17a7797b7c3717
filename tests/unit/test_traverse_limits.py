"""Effective ceilings (DESIGN §6.3), config parsing and clamps of traverse_answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import (
    TRAVERSE_HOPS_BOUNDS,
    TRAVERSE_WALL_BOUNDS_MS,
    Settings,
    clamp,
    parse_clamped_int,
    parse_flag,
)
from service.traverse.limits import EffectiveLimits, effective_max_hops, effective_wall_ms, reply_reserve_ms

server_walls = st.integers(*TRAVERSE_WALL_BOUNDS_MS)
server_hops = st.integers(*TRAVERSE_HOPS_BOUNDS)
caller_ints = st.none() | st.integers(min_value=-(2**40), max_value=2**40)
remaining_times = st.floats(min_value=0, max_value=900_000, allow_nan=False)


@given(caller=caller_ints, server=server_walls)
def test_wall_without_a_deadline_lies_in_floor_and_server_wall(caller, server):
    wall = effective_wall_ms(caller, server, None)
    assert 500 <= wall <= server
    if caller is None:
        assert wall == server


@given(caller=caller_ints, server=server_walls, remaining=remaining_times)
def test_wall_fits_the_lambda_remaining_time_less_the_reserve(caller, server, remaining):
    wall = effective_wall_ms(caller, server, remaining)
    assert 0 <= wall <= server
    assert wall <= remaining - reply_reserve_ms(remaining)
    assert 0 <= reply_reserve_ms(remaining) <= 250
    if remaining > 0:
        assert wall < remaining
    # The 500 floor holds whenever the remaining time leaves room for it and the reserve.
    if remaining >= 500 + 250:
        assert wall >= 500
    assert wall == min(effective_wall_ms(caller, server, None), max(0, int(remaining - reply_reserve_ms(remaining))))


@given(caller=caller_ints, server=server_hops)
def test_hops_lie_in_one_and_server_max(caller, server):
    hops = effective_max_hops(caller, server)
    assert 1 <= hops <= server
    if caller is None:
        assert hops == server


@pytest.mark.parametrize(
    ("caller", "server", "remaining", "expected"),
    [
        (None, 5000, None, 5000),
        (100, 5000, None, 500),
        (800, 5000, None, 800),
        (10**9, 5000, None, 5000),
        (None, 5000, 29_000, 5000),
        (None, 5000, 3000, 2750),  # remaining less the 250 ms reserve
        (None, 5000, 600, 350),  # below the 500 floor: the deadline wins
        (None, 5000, 300, 150),  # reserve halves when less than 500 ms are left
        (None, 5000, 0, 0),
    ],
)
def test_wall_examples(caller, server, remaining, expected):
    assert effective_wall_ms(caller, server, remaining) == expected


def test_effective_limits_soft_budget_is_eighty_percent():
    limits = EffectiveLimits.resolve(
        caller_budget_ms=1000, caller_max_hops=2, server_wall_ms=5000, server_max_hops=3, remaining_ms=None
    )
    assert (limits.wall_ms, limits.max_hops, limits.soft_ms) == (1000, 2, 800)


def test_clamp():
    assert clamp(5, 1, 16) == 5
    assert clamp(-3, 1, 16) == 1
    assert clamp(99, 1, 16) == 16


@pytest.mark.parametrize("raw", ["true", "TRUE", "True", "1", "yes", "YES", "on", "On", " on "])
def test_flag_on_words(raw):
    assert parse_flag(raw) is True


@pytest.mark.parametrize("raw", [None, "", "false", "0", "no", "off", "enabled", "y", "t", "2"])
def test_flag_off_otherwise(raw):
    assert parse_flag(raw) is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 5000), ("", 5000), ("abc", 5000), ("1200", 1200), ("10", 500), ("99999", 30000), ("-1", 500)],
)
def test_wall_setting_is_clamped(raw, expected):
    assert parse_clamped_int(raw, 5000, TRAVERSE_WALL_BOUNDS_MS) == expected


def test_settings_from_env_traverse_defaults_and_clamps():
    defaults = Settings.from_env({})
    assert (defaults.traverse_experimental_enabled, defaults.traverse_hard_wall_ms, defaults.traverse_max_hops) == (
        False,
        5000,
        3,
    )
    tuned = Settings.from_env(
        {"TRAVERSE_EXPERIMENTAL_ENABLED": "Yes", "TRAVERSE_HARD_WALL_MS": "100000", "TRAVERSE_MAX_HOPS": "0"}
    )
    assert (tuned.traverse_experimental_enabled, tuned.traverse_hard_wall_ms, tuned.traverse_max_hops) == (
        True,
        30000,
        1,
    )
    assert Settings.from_env({"TRAVERSE_MAX_HOPS": "40"}).traverse_max_hops == 16
