"""The robot a bridge drives: a small interface any driver can implement, and a simulator behind it.

A driver answers five calls: what it is (`declare`), start an episode (`reset`), execute one
action (`act`), stop moving (`hold`) and let go (`close`). `SimulatedRobot` puts any env of
`wam.envs` behind the interface, so the whole path (bridge, server, recording, tasks) is
exercised without hardware, and `wam.bridge.lerobot.LeRobotRobot` puts LeRobot arms behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from wam.bridge.spec import RobotDeclaration


@dataclass
class RobotObservation:
    """What the robot senses after a reset or an action. Real robots rarely know a reward or success: leave them."""

    state: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (height, width, 3) uint8
    reward: float = 0.0
    success: bool = False
    terminated: bool = False


class BridgeRobot(Protocol):
    def declare(self) -> RobotDeclaration: ...

    def reset(self, seed: int | None, task: str | None) -> RobotObservation: ...

    def act(self, action: np.ndarray) -> RobotObservation: ...

    def hold(self) -> None: ...

    def close(self) -> None: ...


class SimulatedRobot:
    """An env from `wam.envs.make` as a bridged robot: `metaworld/reach-v3` with its cameras at `size`."""

    def __init__(self, env_id: str, size: int = 64, cameras: tuple[str, ...] = ("corner2",), pixels: bool = True):
        from wam.envs.registry import make

        options = {"size": size, "cameras": cameras} if pixels else {}
        self.env = make(env_id, obs="pixels" if pixels else "state", **options)
        self.env_id, self.size, self.cameras = env_id, size, tuple(cameras) if pixels else ()
        self.holds = 0  # how often the bridge asked it to hold (a simulator holds by not stepping)

    def declare(self) -> RobotDeclaration:
        space = self.env.action_space
        state_dim = self.env.observation_space["state"].shape[0]
        return RobotDeclaration(
            state_names=tuple(f"state_{i}" for i in range(state_dim)), action_names=tuple(f"action_{i}" for i in range(space.shape[0])),
            action_low=tuple(float(v) for v in space.low), action_high=tuple(float(v) for v in space.high),
            cameras={camera: (self.size, self.size) for camera in self.cameras},
            fps=float(self.env.metadata.get("render_fps") or 80), robot_type=self.env_id.split("/")[0])

    def _observation(self, obs: dict, reward: float = 0.0, success: bool = False, terminated: bool = False) -> RobotObservation:
        images = dict(obs["images"]) if "images" in obs else {}
        return RobotObservation(np.asarray(obs["state"], np.float32), images, float(reward), bool(success), bool(terminated))

    def reset(self, seed: int | None, task: str | None) -> RobotObservation:
        obs, _ = self.env.reset(seed=seed)
        return self._observation(obs)

    def act(self, action: np.ndarray) -> RobotObservation:
        obs, reward, terminated, _, info = self.env.step(np.asarray(action, np.float32))
        return self._observation(obs, reward, info.get("success", False), terminated)

    def hold(self) -> None:
        self.holds += 1

    def close(self) -> None:
        self.env.close()
