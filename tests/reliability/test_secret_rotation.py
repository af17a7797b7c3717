"""Case 6: the internal token rotated under warm functions, and floods of wrong tokens.

The verifier caches the token for ``INTERNAL_TOKEN_CACHE_SECONDS`` and lets a wrong token force
one re-read at most every ``INTERNAL_TOKEN_REFRESH_MIN_INTERVAL_SECONDS``. Here both are short,
so the windows they open can be measured: how long the old token keeps working, how long the
new one can be refused, and how many Secrets Manager calls a flood of wrong tokens costs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from devtools.aws import put_secret
from service.config import get_settings
from tests.conftest import INTERNAL_TOKEN, TOKEN_SECRET
from tests.reliability.conftest import call_route

CACHE_S = 1.0
INTERVAL_S = 0.25
NEW_TOKEN = "rotated-token-9876543210-abcdef"


@pytest.fixture
def short_windows(traverse_on: dict[str, str], monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> Iterator[None]:
    monkeypatch.setenv("INTERNAL_TOKEN_CACHE_SECONDS", str(int(CACHE_S)))
    monkeypatch.setenv("INTERNAL_TOKEN_REFRESH_MIN_INTERVAL_SECONDS", str(INTERVAL_S))
    get_settings.cache_clear()
    yield
    put_secret(TOKEN_SECRET, INTERNAL_TOKEN, aws_endpoint)


def _accepted(route: str, token: str) -> bool:
    """Past the token check (traverse answers 200 to ``{}`` once authenticated)."""
    reply = call_route(route, {} if route == "traverse" else {"endpoints": "x"}, authorization=f"Bearer {token}")
    body: str = reply["body"]
    return '"Not found"' not in body


def _provider() -> Any:
    return DEFAULT_PROVIDERS.get("secrets")


@pytest.mark.parametrize("route", ["drift", "traverse"])
def test_new_token_works_at_once_and_the_old_one_stops(route, short_windows, aws_endpoint, figures):
    assert _accepted(route, INTERNAL_TOKEN)
    warm_provider = _provider()
    time.sleep(INTERVAL_S)  # no forced re-read in the last interval
    put_secret(TOKEN_SECRET, NEW_TOKEN, aws_endpoint)
    old_still_cached = _accepted(route, INTERNAL_TOKEN)  # cached: may still pass until the cache expires
    new_accepted = _accepted(route, NEW_TOKEN)  # forces one re-read: the rotation is seen
    old_after_new = _accepted(route, INTERNAL_TOKEN)
    figures.record(
        f"rotation_{route}",
        old_token_accepted_right_after_rotation=old_still_cached,
        new_token_accepted_without_cold_start=new_accepted,
        old_token_accepted_after_new_seen=old_after_new,
    )
    assert new_accepted
    assert not old_after_new
    assert _provider() is warm_provider  # same warm process state: no cold start, no cache clear


def test_old_token_stops_once_the_cache_expires_even_if_nobody_uses_the_new_one(short_windows, aws_endpoint, figures):
    assert _accepted("traverse", INTERNAL_TOKEN)
    rotated_at = time.monotonic()
    put_secret(TOKEN_SECRET, NEW_TOKEN, aws_endpoint)
    last_accepted = 0.0
    while time.monotonic() - rotated_at < CACHE_S + 1.0:
        if _accepted("traverse", INTERNAL_TOKEN):
            last_accepted = time.monotonic() - rotated_at
        else:
            break
        time.sleep(0.05)
    refused_after = time.monotonic() - rotated_at
    figures.record(
        "rotation_old_token_window",
        token_cache_seconds=CACHE_S,
        old_token_last_accepted_s=round(last_accepted, 2),
        old_token_refused_after_s=round(refused_after, 2),
    )
    assert not _accepted("traverse", INTERNAL_TOKEN)
    assert refused_after <= CACHE_S + 0.5  # the cache age bounds it, not a cold start


def test_new_token_can_be_refused_until_the_refresh_interval_passes(short_windows, aws_endpoint, figures):
    """A wrong token just spent the forced re-read: the new token waits for the next interval (or the cache)."""
    assert _accepted("traverse", INTERNAL_TOKEN)
    time.sleep(INTERVAL_S)
    assert not _accepted("traverse", "some-wrong-token")  # spends the forced re-read
    put_secret(TOKEN_SECRET, NEW_TOKEN, aws_endpoint)
    rotated_at = time.monotonic()
    refusals = 0
    while not _accepted("traverse", NEW_TOKEN):
        refusals += 1
        assert time.monotonic() - rotated_at < CACHE_S + 1.0
        time.sleep(0.02)
    gap = time.monotonic() - rotated_at
    figures.record(
        "rotation_new_token_gap",
        refresh_min_interval_seconds=INTERVAL_S,
        new_token_refusals_before_accepted=refusals,
        new_token_accepted_after_s=round(gap, 2),
        note="default settings: up to 5 s (refresh interval) for callers of the new token",
    )
    assert gap <= max(INTERVAL_S, CACHE_S) + 0.3


@pytest.mark.parametrize("route", ["drift", "traverse"])
def test_flood_of_wrong_tokens_is_a_trickle_of_secrets_manager_calls(route, short_windows, sm_calls, figures):
    assert _accepted(route, INTERNAL_TOKEN)
    sm_calls.reset()
    started = time.monotonic()
    tried = 0
    while time.monotonic() - started < 1.5:
        call_route(route, {}, authorization=f"Bearer wrong-{tried}")
        tried += 1
    elapsed = time.monotonic() - started
    calls = sm_calls.of(TOKEN_SECRET)
    # forced re-reads: one per interval at most; plain cache expiries: one per CACHE_S; +1 each for the edges
    bound = int(elapsed / INTERVAL_S) + 1 + int(elapsed / CACHE_S) + 1
    figures.record(
        f"flood_{route}",
        wrong_tokens=tried,
        seconds=round(elapsed, 2),
        secrets_manager_calls=calls,
        moto_server_posts=sm_calls.server,
        bound=bound,
        refresh_min_interval_seconds=INTERVAL_S,
        token_cache_seconds=CACHE_S,
    )
    assert tried > 100
    assert calls <= bound
    assert _accepted(route, INTERNAL_TOKEN)  # the flood locked nobody out
