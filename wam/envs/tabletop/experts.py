"""Scripted experts for the tabletop tasks, from the simulator's object poses (`sim_state`) and the scene's sizes.

Each task is a short list of waypoints for the fingertips' centre with a grip command, re-planned every step
from where the object is now: reach goes to the object's top; push comes down behind the object (on the far
side from the goal) and drives through it toward the goal; pick-place opens above the object, comes down
around it, closes, lifts and carries it to the goal. `noise` adds Gaussian action noise; `explore` inserts
8-step random segments (play data), as the other families' experts do.
"""

from __future__ import annotations

import numpy as np

from wam.envs.tabletop.env import MOVE_M

PHASE_TOLERANCE = 0.008


def sim_parts(sim_state: np.ndarray) -> dict[str, np.ndarray]:
    s = np.asarray(sim_state, np.float64)
    return {"tip": s[:3], "opening": s[3], "object": s[4:7], "yaw": s[7], "goal": s[8:11], "progress": s[11]}


class TabletopExpert:
    """The scripted policy of one task on one scene (`extents`: the target's bounding box, `table_top`: its z)."""

    def __init__(self, task: str, extents, table_top: float, noise: float = 0.0, explore: float = 0.0,
                 segment: int = 8, seed: int = 0):
        if task not in ("reach", "push", "pick-place"):
            raise ValueError(f"no tabletop expert for task {task!r}")
        if noise < 0 or not 0.0 <= explore <= 1.0:
            raise ValueError(f"noise must be >= 0 and explore a probability, got {noise} and {explore}")
        self.task, self.extents, self.table_top = task, np.asarray(extents, float), float(table_top)
        self.noise, self.explore, self.segment = noise, explore, segment
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.phase, self.steps, self.wander, self.closing, self.direction = 0, 0, None, 0, None

    def _waypoints(self, parts: dict) -> list[tuple[np.ndarray, float]]:
        """(target of the fingertips' centre, grip) for each phase of the task, from the object's pose now."""
        height = self.extents[2]
        base = parts["object"]
        top = base + np.array([0.0, 0.0, height])
        above = lambda point, lift: np.array([point[0], point[1], self.table_top + height + lift])  # noqa: E731
        if self.task == "reach":
            return [(above(base, 0.03), -1.0), (top + np.array([0, 0, 0.005]), -1.0)]
        if self.task == "push":
            to_goal = parts["goal"][:2] - base[:2]
            if self.direction is None or (self.phase < 2 and to_goal @ self.direction > 0.01):
                self.direction = to_goal / max(np.linalg.norm(to_goal), 1e-6)
            elif to_goal @ self.direction > 0.01:  # steer: push along the line from where the object is now
                self.direction = to_goal / max(np.linalg.norm(to_goal), 1e-6)
            direction = self.direction
            c, s_ = np.cos(parts["yaw"]), np.sin(parts["yaw"])
            local = np.array([[c, s_], [-s_, c]]) @ direction
            contact = float(np.abs(local) @ (self.extents[:2] / 2)) + 0.01  # the object's half-width along the push, and the pad's
            z = self.table_top + min(0.025, height / 2)
            behind = np.array([*(base[:2] - direction * (contact + 0.03)), z])
            ahead = min(0.03, max(float(to_goal @ direction), 0.0))
            through = np.array([*(base[:2] - direction * contact + direction * ahead), z])
            if self.phase == 2:
                offset = parts["tip"][:2] - (base[:2] - direction * contact)
                if abs(offset @ np.array([-direction[1], direction[0]])) > 0.02:  # slid off the line: go round again
                    self.phase = 0
            return [(above(behind, 0.04), 1.0), (behind, 1.0), (through, 1.0)]
        grasp = np.array([base[0], base[1], self.table_top + max(min(height * 0.5, 0.035), 0.012)])
        return [(above(base, 0.04), -1.0), (grasp, -1.0), (grasp, 1.0), (above(base, 0.08), 1.0),
                (parts["goal"] - np.array([0.0, 0.0, height / 2]), 1.0)]

    def act(self, obs: dict) -> np.ndarray:
        parts = sim_parts(obs["sim_state"])
        if self.wander is not None:
            action, left = self.wander
            self.wander = (action, left - 1) if left > 1 else None
            return action
        if self.explore > 0 and self.steps % self.segment == 0 and self.steps > 0 and self.rng.random() < self.explore:
            self.wander = (self.rng.uniform(-1, 1, 4).astype(np.float32), self.segment - 1)
            self.steps += 1
            return self.wander[0]
        self.steps += 1
        waypoints = self._waypoints(parts)
        self.phase = min(self.phase, len(waypoints) - 1)
        target, grip = waypoints[self.phase]
        error = target - parts["tip"]
        if self.task == "pick-place" and self.phase == 2:  # closing on the object: give the fingers time
            self.closing += 1
            done = self.closing >= 8
        else:
            done = np.linalg.norm(error) < PHASE_TOLERANCE
        if done and self.phase < len(waypoints) - 1:
            self.phase += 1
        move = np.clip(error / MOVE_M, -1.0, 1.0)
        action = np.array([*move, grip], np.float64)
        if self.noise > 0:
            action[:3] += self.rng.normal(0.0, self.noise, 3)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
