"""Safety on the robot's side of the bridge: whatever the server sends, the robot moves within its limits.

The server checks actions too, but a bug, a stale message or a compromised server must not be
able to drive the arm past its joint limits or faster than it can safely follow. So the bridge
clips every action to the declared bounds, caps how far one action may move from the previous
one (`max_delta`, like LeRobot's `max_relative_target`), and paces actions at the robot's rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from wam.bridge.spec import RobotDeclaration


@dataclass
class GuardedAction:
    action: np.ndarray  # what the robot is sent
    clipped: bool  # whether it differs from what the server asked for
    waited_s: float  # how long pacing held it back


class ActionGuard:
    """Clip, cap and pace. `max_rate_hz` defaults to the robot's declared fps."""

    def __init__(self, declaration: RobotDeclaration, max_rate_hz: float | None = None, clock=time.monotonic, sleep=time.sleep):
        self.low = np.asarray(declaration.action_low, dtype=np.float64)
        self.high = np.asarray(declaration.action_high, dtype=np.float64)
        self.max_delta = None if declaration.max_delta is None else np.asarray(declaration.max_delta, dtype=np.float64)
        rate = max_rate_hz if max_rate_hz is not None else declaration.fps
        if not rate > 0:
            raise ValueError(f"max_rate_hz must be positive, got {rate}")
        self.interval_s = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self.previous: np.ndarray | None = None
        self.last_sent_at = -float("inf")
        self.clipped_total = 0

    def reset(self, current: np.ndarray | None = None) -> None:
        """A new episode: `max_delta` counts from `current` (the robot's pose, if actions are positions) or from
        the first action."""
        self.previous = None if current is None else np.asarray(current, dtype=np.float64)

    def __call__(self, requested) -> GuardedAction:
        action = np.asarray(requested, dtype=np.float64).reshape(-1)
        if action.shape != self.low.shape:
            raise ValueError(f"action has {action.size} values; this robot takes {self.low.size}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action {action.tolist()} is not finite")
        safe = np.clip(action, self.low, self.high)
        if self.max_delta is not None and self.previous is not None:
            safe = np.clip(safe, self.previous - self.max_delta, self.previous + self.max_delta)
        clipped = bool(np.any(safe != action))
        self.clipped_total += clipped
        waited = self.last_sent_at + self.interval_s - self.clock()
        if waited > 0:
            self.sleep(waited)
        self.last_sent_at = self.clock()
        self.previous = safe
        return GuardedAction(safe.astype(np.float32), clipped, max(0.0, waited))
