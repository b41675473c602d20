"""LeRobot arms behind the bridge: any object with LeRobot's `Robot` interface.

LeRobot describes a robot by `observation_features` (a float per joint, `(height, width, 3)`
per camera) and `action_features` (a float per joint), and drives it by `get_observation()`
and `send_action({name: value})`. Those are read as they are, so SO-100/SO-101, Koch and the
other LeRobot arms plug in without code here; the `lerobot` package is not imported (the user's
environment has it, wam does not depend on it). Joint bounds are not part of LeRobot's
interface, so they are given here, in the units the robot's actions use (for example -100..100
for SO-100 joints in LeRobot's default normalisation, 0..100 for its gripper).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from wam.bridge.robot import RobotObservation
from wam.bridge.spec import RobotDeclaration


class LeRobotRobot:
    """`robot` must already be configured (port, cameras, calibration); `connect()` is called here if needed.

    `hold()` sends `safe_action` if given, else the joints' present positions read from the observation
    (the arm stops where it is), which needs every action name to be an observation name too, as for
    position-controlled arms."""

    def __init__(self, robot: Any, action_low: Sequence[float], action_high: Sequence[float], fps: float = 30.0,
                 max_delta: Sequence[float] | None = None, safe_action: Sequence[float] | None = None):
        self.robot = robot
        features = dict(robot.observation_features)
        self.state_names = tuple(name for name, kind in features.items() if not isinstance(kind, tuple))
        self.cameras = {name: (int(kind[0]), int(kind[1])) for name, kind in features.items() if isinstance(kind, tuple)}
        self.action_names = tuple(robot.action_features)
        self.declaration = RobotDeclaration(
            self.state_names, self.action_names, tuple(map(float, action_low)), tuple(map(float, action_high)), self.cameras,
            float(fps), str(getattr(robot, "name", "lerobot")), None if max_delta is None else tuple(map(float, max_delta)))
        self.safe_action = None if safe_action is None else np.asarray(safe_action, np.float32)
        if self.safe_action is not None and self.safe_action.shape != (len(self.action_names),):
            raise ValueError(f"safe_action has {self.safe_action.size} values; the robot's actions have {len(self.action_names)}")
        missing = [name for name in self.action_names if name not in features]
        if self.safe_action is None and missing:
            raise ValueError(f"actions {missing} are not observed, so the arm cannot hold its present position; "
                             "give safe_action")
        self.last: dict | None = None
        if not getattr(robot, "is_connected", False):  # only once all is checked: a refused arm is not left powered
            robot.connect()

    def declare(self) -> RobotDeclaration:
        return self.declaration

    def _observe(self) -> RobotObservation:
        raw = self.robot.get_observation()
        self.last = raw
        missing = [name for name in (*self.state_names, *self.cameras) if name not in raw]
        if missing:
            raise ValueError(f"the robot's observation lacks {missing} that its observation_features declare")
        state = np.asarray([float(raw[name]) for name in self.state_names], np.float32)
        images = {name: np.asarray(raw[name], np.uint8) for name in self.cameras}
        return RobotObservation(state, images)

    def reset(self, seed: int | None, task: str | None) -> RobotObservation:
        """A real scene is reset by its operator; the episode starts from what the robot sees now."""
        return self._observe()

    def act(self, action: np.ndarray) -> RobotObservation:
        self.robot.send_action({name: float(value) for name, value in zip(self.action_names, np.asarray(action).reshape(-1))})
        return self._observe()

    def hold(self) -> None:
        if self.safe_action is not None:
            target = self.safe_action
        else:
            raw = self.robot.get_observation()
            target = np.asarray([float(raw[name]) for name in self.action_names], np.float32)
        self.robot.send_action({name: float(value) for name, value in zip(self.action_names, target)})

    def close(self) -> None:
        if getattr(self.robot, "is_connected", True):
            self.robot.disconnect()
