"""Replay an action-labelled hand episode (e.g. retargeted human video) in the robot-hand env of its task and seed.

The test of a retargeted demonstration is whether the robot, doing what it says, does the task. The env is
reset with the episode's own seed (the human and the robot scenes draw the same placements from it), the
palm is first brought to the episode's first pose (a few steps that are not part of the demonstration:
the robot starts where the person's hand was, not where the env's reset put it), then the recorded
actions are played open loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wam.data.layout import ACTION_KEY, STATE_KEY
from wam.data.reader import Dataset
from wam.envs.hands.env import MOVE_M, TURN_RAD, make_hand_env
from wam.envs.hands import rotations


@dataclass
class ReplayResult:
    task: str
    seed: int
    success: bool
    steps: int
    align_error_m: float  # palm distance to the episode's first pose when the replay began


def align(env, first_state: np.ndarray, fingers: np.ndarray, steps: int = 12) -> float:
    """Move the palm to `first_state`'s pose (position, rotation) before replaying; returns the distance left."""
    obs = None
    for _ in range(steps):
        state = env.palm_pose()
        move = (first_state[:3] - state[0]) / MOVE_M
        turn = rotations.log(rotations.from_6d(first_state[3:9]) @ state[1].T) / TURN_RAD
        obs, *_ = env.step(np.clip(np.r_[move, turn, fingers], -1, 1))
    return float(np.linalg.norm(env.palm_pose()[0] - first_state[:3])) if obs is not None else float("nan")


def replay_actions(task: str, seed: int, states: np.ndarray, actions: np.ndarray, align_steps: int = 12) -> ReplayResult:
    """Play (T, 26) `actions` in the robot env of `task` reset with `seed`, after aligning the palm to `states[0]`."""
    env = make_hand_env(task, embodiment="robot", obs="state", max_episode_steps=len(actions) + align_steps + 5,
                        terminate_on_success=False)
    try:
        env.reset(seed=seed)
        left = align(env, states[0], actions[0, 6:], align_steps)
        success, step = False, -1
        for step, action in enumerate(actions):
            _, _, _, truncated, step_info = env.step(action)
            success = success or step_info["success"]
            if truncated:
                break
        return ReplayResult(task, seed, bool(success), step + 1, left)
    finally:
        env.close()


def replay_episode(dataset: Dataset, episode: int, align_steps: int = 12) -> ReplayResult:
    """Replay one episode of an action-labelled hand dataset (its `info` names the task and seed)."""
    info = dataset.episodes[episode].info
    data = dataset.low_dim(episode)
    return replay_actions(str(info.get("task", "")), int(info.get("seed", 0)), np.asarray(data[STATE_KEY], np.float64),
                          np.asarray(data[ACTION_KEY], np.float64), align_steps)
