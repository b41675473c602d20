"""What the collector needs to know about a family of simulated tasks, behind one small interface.

A family names its tasks, its cameras, the state and action it records, its control rate and robot, and
builds an env and a scripted expert for a task. Meta-World (`metaworld`) and the dexterous hand scenes
(`hand`, with the Shadow hand or the human hand as embodiment) are the two; the collector, its resume
keys and its dataset features read everything from here, so a third family is one more class.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from wam.envs.tasks import resolve_tasks


@dataclass(frozen=True)
class MetaWorldFamily:
    name: str = "metaworld"
    fps: int = 80
    robot_type: str = "sawyer"
    default_cameras: tuple[str, ...] = ("corner2",)
    lone_camera_as_main: bool = True  # a single camera's video is `observation.images.main` (see collect.camera_keys)

    def tasks(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(resolve_tasks(",".join(names)))

    def cameras(self, tasks: tuple[str, ...]) -> tuple[str, ...]:
        from wam.envs.metaworld_env import task_cameras

        return task_cameras(tasks[0])

    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(state names, action names)."""
        from wam.envs.metaworld_env import ACTION_NAMES, STATE_NAMES

        return STATE_NAMES, ACTION_NAMES

    def make_env(self, task: str, size: int, cameras: tuple[str, ...], max_steps: int):
        from wam.envs.registry import make

        return make(f"metaworld/{task}", obs="pixels", size=size, cameras=cameras, max_episode_steps=max_steps)

    def make_expert(self, task: str, env, noise: float, explore: float):
        from wam.envs.experts import ScriptedExpert

        return ScriptedExpert(task, noise=noise, explore=explore)

    def max_steps(self) -> int:
        return 500


@dataclass(frozen=True)
class HandFamily:
    """The hand scenes; `embodiment` "robot" records Shadow-hand demonstrations, "human" egocentric human video."""

    embodiment: str = "robot"
    name: str = "hand"
    fps: int = 25
    lone_camera_as_main: bool = False  # `observation.images.ego`, as in human video: the same view, the same name

    @property
    def robot_type(self) -> str:
        return "shadow_hand" if self.embodiment == "robot" else "human"

    @property
    def default_cameras(self) -> tuple[str, ...]:
        return ("ego",)

    def tasks(self, names: tuple[str, ...]) -> tuple[str, ...]:
        from wam.envs.hands.tasks import resolve_hand_tasks

        return resolve_hand_tasks(",".join(names))

    def cameras(self, tasks: tuple[str, ...]) -> tuple[str, ...]:
        from wam.envs.hands.env import CAMERAS

        return CAMERAS

    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return _hand_names(self.embodiment)

    def make_env(self, task: str, size: int, cameras: tuple[str, ...], max_steps: int):
        from wam.envs.hands.env import make_hand_env

        return make_hand_env(task, embodiment=self.embodiment, size=size, cameras=cameras, max_episode_steps=max_steps)

    def make_expert(self, task: str, env, noise: float, explore: float):
        from wam.envs.hands.experts import HandExpert

        return HandExpert(task, env.hand.synergy, self.embodiment, noise=noise, explore=explore)

    def max_steps(self) -> int:
        return 200


@dataclass(frozen=True)
class ScanFamily:
    """A tabletop scene directory (a scanned scene, its twin or a cousin): `scan/<SCENE>`, tasks reach, push, pick-place."""

    scene: str
    fps: int = 20
    robot_type: str = "parallel_gripper"
    default_cameras: tuple[str, ...] = ("front",)
    lone_camera_as_main: bool = False

    @property
    def name(self) -> str:
        return f"scan/{self.scene}"

    def tasks(self, names: tuple[str, ...]) -> tuple[str, ...]:
        from wam.envs.tabletop.env import TASKS

        wanted = [t for name in names for t in (TASKS if name in ("all", "") else name.split(","))]
        unknown = [t for t in wanted if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tabletop task(s) {unknown} for scan/{self.scene}; tasks: {', '.join(TASKS)}")
        return tuple(dict.fromkeys(wanted))

    def cameras(self, tasks: tuple[str, ...]) -> tuple[str, ...]:
        from wam.envs.tabletop.env import CAMERAS

        return CAMERAS

    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        from wam.envs.tabletop.env import ACTION_NAMES, STATE_NAMES

        return STATE_NAMES, ACTION_NAMES

    def make_env(self, task: str, size: int, cameras: tuple[str, ...], max_steps: int):
        from wam.envs.tabletop.env import make_scan_env

        return make_scan_env(self.scene, task=task, size=size, cameras=cameras, max_episode_steps=max_steps)

    def make_expert(self, task: str, env, noise: float, explore: float):
        from wam.envs.tabletop.experts import TabletopExpert

        return TabletopExpert(task, env.target.extents, env.scene.table.top, noise=noise, explore=explore)

    def max_steps(self) -> int:
        return 150


@functools.lru_cache(maxsize=None)
def _hand_names(embodiment: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from wam.envs.hands.env import make_hand_env

    env = make_hand_env("touch", embodiment=embodiment, obs="state")
    try:
        return env.state_names, env.action_names
    finally:
        env.close()


def family_of(env: str, embodiment: str = "robot"):
    """The family behind a collector's `env` ("metaworld", "hand" or "scan/<SCENE>"); None for a dream (its own path)."""
    if env == "metaworld":
        if embodiment != "robot":
            raise ValueError(f"metaworld has one embodiment, the Sawyer arm; --embodiment {embodiment} is for hand scenes")
        return MetaWorldFamily()
    if env == "hand":
        if embodiment not in ("robot", "human"):
            raise ValueError(f"embodiment must be robot or human, got {embodiment!r}")
        return HandFamily(embodiment)
    if env.startswith("scan/"):
        if embodiment != "robot":
            raise ValueError(f"{env} has one embodiment, the parallel gripper; --embodiment {embodiment} is for hand scenes")
        return ScanFamily(env.removeprefix("scan/"))
    return None
