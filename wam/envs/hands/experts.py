"""Scripted experts for the hand tasks: wrist control toward the task's phases plus finger synergies.

The expert reads the privileged `sim_state` (keypoints, object, goal), takes the task's plan from where
things are at the episode's first step, and moves the plan's control point (the index tip, the centre of
the fingertips, the grip between thumb and fingers) to each phase's target while the fingers blend into
the phase's named pose (open, point, grasp, hook, push). The palm keeps its starting orientation.

The two embodiments move differently, as a robot and a person do. The robot expert goes at full speed
in straight lines and switches finger poses in a few steps. The human expert moves like a reaching arm:
speed rises and falls smoothly (a first-order approach behind a velocity filter, so the profile is
bell-shaped), the hand preshapes for the next phase while still approaching, and its path bends
slightly (a per-episode lateral bias that fades near the target).

`explore` makes play data, as Meta-World's experts do (envs/experts.py): at each `segment`-step boundary, with
that probability, the hand wanders for one segment (a random palm velocity and a random finger pose, held), then
the expert recovers from wherever it got to. Scripted demonstrations alone are predictable from the frame and the
task text; a world model learns from them that actions do not matter, which is what play data corrects.
"""

from __future__ import annotations

import numpy as np

from wam.ego.hands import KEYPOINTS
from wam.envs.hands import rotations
from wam.envs.hands.env import MOVE_M, START_ROTATION, TURN_RAD
from wam.envs.hands.tasks import TASKS, Phase

_KP = {name: i for i, name in enumerate(KEYPOINTS)}
_POINTS = {
    "palm": ("wrist",),
    "index": ("index_tip",),
    "tips": ("index_tip", "middle_tip", "ring_tip"),
    "grip": ("thumb_tip", "index_tip", "middle_tip"),
}
_ALIASES = {"hook_open": "open"}


def sim_parts(sim_state: np.ndarray) -> dict[str, np.ndarray]:
    """The named parts of a hand env's privileged state (see env.py)."""
    s = np.asarray(sim_state, np.float64)
    keypoints_end = 9 + 3 * len(KEYPOINTS)
    return {"palm": s[:3], "rotation": rotations.from_6d(s[3:9]), "keypoints": s[9:keypoints_end].reshape(-1, 3),
            "object": s[keypoints_end : keypoints_end + 3], "goal": s[keypoints_end + 3 : keypoints_end + 6],
            "progress": s[keypoints_end + 6]}


class HandExpert:
    """The scripted policy of one hand task for one embodiment (`synergy`: the env's `hand.synergy`)."""

    def __init__(self, task: str, synergy: dict[str, np.ndarray], embodiment: str = "robot", noise: float = 0.0, seed: int = 0,
                 explore: float = 0.0, segment: int = 8):
        if task not in TASKS:
            raise ValueError(f"no hand expert for task {task!r}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        if not 0.0 <= explore <= 1.0 or segment < 1:
            raise ValueError(f"explore must be a probability and segment >= 1 step, got {explore} and {segment}")
        self.explore, self.segment = explore, segment
        self.task, self.synergy, self.embodiment, self.noise = TASKS[task], synergy, embodiment, noise
        self.human = embodiment == "human"
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._phases: list[Phase] | None = None
        self._phase, self._held = 0, 0
        self._fingers = self.synergy["open"].copy()
        self._velocity = np.zeros(3)
        self._bend = self._rng.normal(0.0, 0.3, 3) * (1.0 if self.human else 0.0)
        self._steps, self._wander = 0, None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.explore > 0 and self._steps % self.segment == 0:
            wander = self._rng.random() < self.explore
            self._wander = (self._rng.uniform(-0.6, 0.6, 3), self._rng.uniform(-1.0, 1.0, len(self._fingers))) if wander else None
        self._steps += 1
        if self._wander is not None:
            return self._wandering(obs)
        parts = sim_parts(obs["sim_state"])
        if self._phases is None:
            self._phases = self.task.plan(parts["object"], parts["goal"])
        phase = self._phases[self._phase]
        point = parts["keypoints"][[_KP[k] for k in _POINTS[phase.point]]].mean(axis=0)
        distance = float(np.linalg.norm(phase.target - point))
        self._advance(phase, distance)
        phase = self._phases[self._phase]
        point = parts["keypoints"][[_KP[k] for k in _POINTS[phase.point]]].mean(axis=0)
        # Steer the palm, which the arm holds firmly, to where it must be for the point to reach the target once the
        # hand has its wanted orientation: the fingers are compliant and lag, the palm does not.
        wanted = rotations.exp(np.asarray(phase.turn)) @ START_ROTATION
        offset = parts["rotation"].T @ (point - parts["palm"])
        error = phase.target - wanted @ offset - parts["palm"]
        move = self._move(error, float(np.linalg.norm(phase.target - point)))
        turn = np.clip(0.5 * rotations.log(wanted @ parts["rotation"].T) / TURN_RAD, -1, 1) * (0.6 if self.human else 1.0)
        self._blend_fingers(phase, distance)
        action = np.concatenate([move, turn, self._fingers]).astype(np.float32)
        if self.noise > 0:
            action[:3] += self._rng.normal(0.0, self.noise, 3).astype(np.float32)
        return np.clip(action, -1.0, 1.0)

    def _wandering(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One step of a wander: the held palm velocity (smoothed for the person) and finger pose, the palm kept level."""
        velocity, fingers = self._wander
        parts = sim_parts(obs["sim_state"])
        if self.human:
            self._velocity = 0.65 * self._velocity + 0.35 * velocity
            velocity = self._velocity
        turn = np.clip(0.5 * rotations.log(START_ROTATION @ parts["rotation"].T) / TURN_RAD, -1, 1)
        self._fingers = self._fingers + (0.2 if self.human else 0.5) * (fingers - self._fingers)
        return np.clip(np.concatenate([velocity, turn, self._fingers]), -1.0, 1.0).astype(np.float32)

    def _advance(self, phase: Phase, distance: float) -> None:
        last = self._phase == len(self._phases) - 1
        if phase.hold:
            self._held += 1
            if self._held >= phase.hold and not last:
                self._phase, self._held = self._phase + 1, 0
        elif distance < phase.tolerance and not last:
            self._phase += 1

    def _move(self, error: np.ndarray, distance: float) -> np.ndarray:
        if not self.human:
            return np.clip(0.7 * error / MOVE_M, -1.0, 1.0)
        bend = self._bend * min(distance / 0.1, 1.0) * (distance > 0.02)
        wanted = np.clip(0.45 * (error + bend * distance) / MOVE_M, -0.8, 0.8)
        self._velocity = 0.65 * self._velocity + 0.35 * wanted
        return self._velocity

    def _blend_fingers(self, phase: Phase, distance: float) -> None:
        pose = phase.pose
        if self.human and not phase.hold and distance < 0.05 and self._phase + 1 < len(self._phases):
            pose = self._phases[self._phase + 1].pose  # preshape for what comes next
        wanted = self.synergy[_ALIASES.get(pose, pose)]
        rate = 0.2 if self.human else 0.5
        self._fingers = self._fingers + rate * (wanted - self._fingers)
