"""The budget guard at its exact boundaries, with an injected clock."""

from __future__ import annotations

import pytest

from service.budget import REPLY_RESERVE_MS, BudgetGuard, HardWallExceeded, Verdict, lambda_remaining_ms


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def started(soft: float = 800, hard: float = 1000) -> tuple[BudgetGuard, ManualClock]:
    clock = ManualClock()
    return BudgetGuard.start("test", soft, hard, anchor_cid="bafkreitest", clock=clock), clock


def test_proceeds_up_to_and_including_the_soft_budget():
    guard, clock = started()
    clock.now += 0
    assert guard.charge("zero") is Verdict.PROCEED
    clock.now += 800
    assert guard.charge("at-soft") is Verdict.PROCEED
    assert not guard.soft_exceeded


def test_defers_strictly_past_the_soft_budget_and_up_to_the_wall():
    guard, clock = started()
    clock.now += 800.001
    assert guard.charge("past-soft") is Verdict.DEFER
    clock.now = 1_000.0 + 1000
    assert guard.charge("at-wall") is Verdict.DEFER
    assert guard.soft_exceeded and not guard.hard_exceeded


def test_hard_wall_is_strictly_greater():
    guard, clock = started()
    clock.now += 1000.001
    with pytest.raises(HardWallExceeded) as raised:
        guard.charge("late")
    assert raised.value.stage == "late"
    assert raised.value.elapsed_ms == pytest.approx(1000.001)
    assert guard.hard_exceeded


def test_report_lists_every_stage_flags_and_deferred():
    guard, clock = started()
    clock.now += 100
    guard.charge("hop-0")
    clock.now += 750
    guard.charge("hop-1")
    clock.now += 200
    with pytest.raises(HardWallExceeded):
        guard.charge("hop-2")
    report = guard.report()
    assert report.label == "test"
    assert report.anchor_cid == "bafkreitest"
    assert (report.soft_ms, report.hard_ms) == (800, 1000)
    assert [(s.stage, s.elapsed_ms, s.verdict) for s in report.stages] == [
        ("hop-0", 100, "proceed"),
        ("hop-1", 850, "defer"),
        ("hop-2", 1050, "hard_wall"),
    ]
    assert report.deferred == ["hop-1"]
    assert report.soft_exceeded and report.hard_exceeded
    assert report.elapsed_ms == 1050


def test_mark_hard_wall_records_an_outside_cut():
    guard, clock = started()
    clock.now += 400
    guard.mark_hard_wall("hop-1")
    report = guard.report()
    assert report.hard_exceeded
    assert [(s.stage, s.verdict) for s in report.stages] == [("hop-1", "hard_wall")]


def test_remaining_time_never_goes_negative():
    guard, clock = started()
    clock.now += 250
    assert guard.remaining_ms() == 750
    clock.now += 5000
    assert guard.remaining_ms() == 0


class Context:
    def __init__(self, remaining: object) -> None:
        self.remaining = remaining

    def get_remaining_time_in_millis(self) -> object:
        if isinstance(self.remaining, Exception):
            raise self.remaining
        return self.remaining


def test_lambda_remaining_ms():
    assert lambda_remaining_ms(Context(1234)) == 1234.0
    assert lambda_remaining_ms(None) is None
    assert lambda_remaining_ms(object()) is None
    assert lambda_remaining_ms(Context(RuntimeError("broken"))) is None
    assert REPLY_RESERVE_MS == 250
