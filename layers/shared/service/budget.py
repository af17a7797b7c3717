"""Wall-clock budget guard shared by traverse_answer's hop loop and the LLM deadline.

A guard has a soft budget (past it, finish the current stage and stop) and a hard wall
(past it, the stage's work is discarded). Time comes from an injectable monotonic clock in
milliseconds, so tests drive it deterministically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

# Time kept back from the Lambda's remaining time to build and return the reply.
REPLY_RESERVE_MS = 250


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class Verdict(StrEnum):
    """What the caller of :meth:`BudgetGuard.charge` should do next."""

    PROCEED = "proceed"
    DEFER = "defer"


class HardWallExceeded(Exception):
    """The hard wall was passed (strictly) by the charged stage."""

    def __init__(self, stage: str, elapsed_ms: float, hard_ms: float) -> None:
        super().__init__(f"{stage}: {elapsed_ms:.1f} ms > hard wall {hard_ms:.1f} ms")
        self.stage = stage
        self.elapsed_ms = elapsed_ms


class ChargedStage(BaseModel):
    stage: str
    elapsed_ms: float
    verdict: str


class BudgetReport(BaseModel):
    """Everything the guard saw: logged after each request."""

    label: str
    anchor_cid: str | None
    soft_ms: float
    hard_ms: float
    elapsed_ms: float
    stages: list[ChargedStage]
    deferred: list[str]
    soft_exceeded: bool
    hard_exceeded: bool


@dataclass
class BudgetGuard:
    """Charge stages against a soft budget and a hard wall measured from :meth:`start`."""

    label: str
    soft_ms: float
    hard_ms: float
    anchor_cid: str | None = None
    clock: Callable[[], float] = monotonic_ms
    _started_at: float = field(default=0.0, init=False)
    _stages: list[ChargedStage] = field(default_factory=list, init=False)
    _soft_exceeded: bool = field(default=False, init=False)
    _hard_exceeded: bool = field(default=False, init=False)

    @classmethod
    def start(
        cls,
        label: str,
        soft_ms: float,
        hard_ms: float,
        anchor_cid: str | None = None,
        clock: Callable[[], float] = monotonic_ms,
    ) -> BudgetGuard:
        guard = cls(label=label, soft_ms=soft_ms, hard_ms=hard_ms, anchor_cid=anchor_cid, clock=clock)
        guard._started_at = clock()
        return guard

    def elapsed_ms(self) -> float:
        return self.clock() - self._started_at

    def remaining_ms(self) -> float:
        """Time left before the hard wall (never negative)."""
        return max(0.0, self.hard_ms - self.elapsed_ms())

    def charge(self, stage: str) -> Verdict:
        """Record ``stage`` as finished now; say whether there is room for another one."""
        elapsed = self.elapsed_ms()
        if elapsed > self.hard_ms:
            self._hard_exceeded = True
            self._stages.append(ChargedStage(stage=stage, elapsed_ms=elapsed, verdict="hard_wall"))
            raise HardWallExceeded(stage, elapsed, self.hard_ms)
        verdict = Verdict.DEFER if elapsed > self.soft_ms else Verdict.PROCEED
        self._soft_exceeded = self._soft_exceeded or verdict is Verdict.DEFER
        self._stages.append(ChargedStage(stage=stage, elapsed_ms=elapsed, verdict=verdict.value))
        return verdict

    def mark_hard_wall(self, stage: str) -> None:
        """Record that ``stage`` was cut off by the wall from outside (e.g. a statement timeout)."""
        self._hard_exceeded = True
        self._stages.append(ChargedStage(stage=stage, elapsed_ms=self.elapsed_ms(), verdict="hard_wall"))

    @property
    def soft_exceeded(self) -> bool:
        return self._soft_exceeded

    @property
    def hard_exceeded(self) -> bool:
        return self._hard_exceeded

    def report(self) -> BudgetReport:
        return BudgetReport(
            label=self.label,
            anchor_cid=self.anchor_cid,
            soft_ms=self.soft_ms,
            hard_ms=self.hard_ms,
            elapsed_ms=round(self.elapsed_ms(), 3),
            stages=list(self._stages),
            deferred=[s.stage for s in self._stages if s.verdict == Verdict.DEFER.value],
            soft_exceeded=self._soft_exceeded,
            hard_exceeded=self._hard_exceeded,
        )


def lambda_remaining_ms(context: object) -> float | None:
    """Remaining time of a Lambda context, or ``None`` for callers without a deadline."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return None
    try:
        return float(getter())
    except Exception:  # noqa: BLE001 - a malformed context must not fail the request
        return None
