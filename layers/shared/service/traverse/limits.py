"""Effective ceilings of one request (DESIGN §6.3).

The caller can only lower the server's wall and hop count; the Lambda's remaining time
lowers the wall further so the reply is always sent before the function is killed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.budget import REPLY_RESERVE_MS
from service.config import TRAVERSE_HOPS_BOUNDS, TRAVERSE_WALL_BOUNDS_MS, clamp

# Share of the wall after which the guard defers (stops after the current hop).
SOFT_BUDGET_SHARE = 0.8


def reply_reserve_ms(remaining_ms: float) -> float:
    """Time kept back to build and send the reply: 250 ms, or half of what is left when that is less.

    The halving only matters for a Lambda that is already almost out of time; it keeps some
    wall for the work instead of none while still leaving the reply its own slice.
    """
    return min(float(REPLY_RESERVE_MS), max(0.0, remaining_ms) / 2.0)


def effective_wall_ms(caller_budget_ms: int | None, server_wall_ms: int, remaining_ms: float | None) -> int:
    """Caller budget clamped to ``[500, server wall]``, then fitted under the Lambda's remaining time.

    The remaining-time bound wins over the 500 ms floor: a wall the Lambda cannot honour
    would only turn a partial answer into a timeout.
    """
    floor = TRAVERSE_WALL_BOUNDS_MS[0]
    ceiling = max(floor, server_wall_ms)
    wall = ceiling if caller_budget_ms is None else clamp(caller_budget_ms, floor, ceiling)
    if remaining_ms is not None:
        fitted = math.floor(remaining_ms - reply_reserve_ms(remaining_ms))
        wall = max(0, min(wall, fitted))
    return wall


def effective_max_hops(caller_hops: int | None, server_max_hops: int) -> int:
    """Caller hop count clamped to ``[1, server max]`` (absent: the server max)."""
    floor = TRAVERSE_HOPS_BOUNDS[0]
    ceiling = max(floor, server_max_hops)
    return ceiling if caller_hops is None else clamp(caller_hops, floor, ceiling)


@dataclass(frozen=True)
class EffectiveLimits:
    """What one request actually runs under (echoed in the reply and hashed into the anchor CID)."""

    wall_ms: int
    max_hops: int

    @property
    def soft_ms(self) -> float:
        return self.wall_ms * SOFT_BUDGET_SHARE

    @classmethod
    def resolve(
        cls,
        *,
        caller_budget_ms: int | None,
        caller_max_hops: int | None,
        server_wall_ms: int,
        server_max_hops: int,
        remaining_ms: float | None,
    ) -> EffectiveLimits:
        return cls(
            wall_ms=effective_wall_ms(caller_budget_ms, server_wall_ms, remaining_ms),
            max_hops=effective_max_hops(caller_hops=caller_max_hops, server_max_hops=server_max_hops),
        )
