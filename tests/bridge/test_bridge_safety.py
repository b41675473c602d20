"""The robot-side guard (wam/bridge/safety.py): clip to the bounds, cap each move, pace to the rate; on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from wam.bridge.safety import ActionGuard
from wam.bridge.spec import RobotDeclaration


class FakeClock:
    """A clock that moves only when told to, or when the guard sleeps."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _guard(max_delta=None, fps=10.0, max_rate_hz=None) -> tuple[ActionGuard, FakeClock]:
    declaration = RobotDeclaration(("a", "b"), ("a", "b"), (-1.0, 0.0), (1.0, 2.0), fps=fps, max_delta=max_delta)
    clock = FakeClock()
    return ActionGuard(declaration, max_rate_hz, clock=clock, sleep=clock.sleep), clock


def test_actions_are_clipped_to_the_declared_bounds():
    guard, clock = _guard()
    inside = guard([0.5, 1.5])
    assert inside.action.tolist() == [0.5, 1.5] and not inside.clipped and inside.action.dtype == np.float32
    clock.now += 1
    outside = guard(np.array([[3.0, -1.0]]))  # any shape with the right number of values
    assert outside.action.tolist() == [1.0, 0.0] and outside.clipped
    assert guard.clipped_total == 1


def test_max_delta_counts_from_the_reset_pose_then_from_the_previous_action():
    guard, clock = _guard(max_delta=(0.1, 0.5))
    guard.reset(np.array([0.0, 1.0]))
    first = guard([1.0, 0.0])
    assert np.allclose(first.action, [0.1, 0.5]) and first.clipped
    clock.now += 1
    second = guard([1.0, 0.0])  # from where the first one left it, not from the request
    assert np.allclose(second.action, [0.2, 0.0]) and second.clipped
    clock.now += 1
    third = guard([0.25, 0.3])
    assert np.allclose(third.action, [0.25, 0.3]) and not third.clipped
    assert guard.clipped_total == 2


def test_max_delta_caps_within_the_bounds_and_a_reset_without_a_pose_frees_the_first_action():
    guard, clock = _guard(max_delta=(0.1, 0.1))
    guard.reset(np.array([0.0, 1.0]))
    assert np.allclose(guard([5.0, 1.0]).action, [0.1, 1.0])  # clipped to 1.0 by the bounds, then capped at 0.1
    clock.now += 1
    guard.reset()  # a pose the guard cannot know: the first action may go anywhere within the bounds
    assert np.allclose(guard([-0.9, 2.0]).action, [-0.9, 2.0])
    clock.now += 1
    assert np.allclose(guard([0.9, 0.0]).action, [-0.8, 1.9])


def test_pacing_waits_out_the_rest_of_the_interval():
    guard, clock = _guard(fps=10.0)  # one action each 0.1 s
    first = guard([0.0, 0.0])
    assert first.waited_s == 0.0 and clock.sleeps == []
    clock.now += 0.03
    second = guard([0.0, 0.0])
    assert clock.sleeps == [pytest.approx(0.07)] and second.waited_s == pytest.approx(0.07)
    clock.now += 0.5  # slower than the rate: no wait
    third = guard([0.0, 0.0])
    assert third.waited_s == 0.0 and len(clock.sleeps) == 1
    fourth = guard([0.0, 0.0])  # at once after: a full interval
    assert clock.sleeps[-1] == pytest.approx(0.1) and fourth.waited_s == pytest.approx(0.1)


def test_max_rate_hz_overrides_the_declared_fps():
    guard, clock = _guard(fps=10.0, max_rate_hz=4.0)
    guard([0.0, 0.0])
    guard([0.0, 0.0])
    assert guard.interval_s == pytest.approx(0.25) and clock.sleeps == [pytest.approx(0.25)]


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_a_rate_that_is_not_positive_is_refused(rate):
    with pytest.raises(ValueError, match=f"max_rate_hz must be positive, got {rate}"):
        _guard(max_rate_hz=rate)


@pytest.mark.parametrize("action, message", [
    ([0.0], "action has 1 values; this robot takes 2"),
    ([0.0, 0.0, 0.0], "action has 3 values; this robot takes 2"),
    ([0.0, float("nan")], "is not finite"),
    ([float("-inf"), 0.0], "is not finite"),
])
def test_actions_of_the_wrong_size_or_not_finite_are_refused_and_change_nothing(action, message):
    guard, clock = _guard(max_delta=(0.1, 0.1))
    guard.reset(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=message):
        guard(action)
    assert guard.previous.tolist() == [0.0, 1.0] and clock.sleeps == [] and guard.clipped_total == 0
