"""`wam retarget`: a human-video dataset becomes an action-labelled one in the robot hand's joint space.

Each episode keeps its video (the person's hand, as filmed) and gains the robot's state and action per
frame, solved by `ShadowRetargeter` from the right hand's keypoints (EgoScale labels its human video this
way). Frames where the hand is not tracked hold the last solution and are counted; an episode with no
tracked right hand is skipped with a note (the Shadow hand is a right hand; mirroring a left one onto it is
not done). The per-frame fingertip distance between the person's and the robot's hand is kept as
`observation.retarget_error` (metres), so a user can drop frames the robot could not follow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from wam.data.episode import Episode
from wam.data.layout import ACTION_KEY, STATE_KEY, Feature
from wam.data.reader import Dataset
from wam.data.writer import DatasetWriter
from wam.ego import hands
from wam.envs.hands.retarget import RetargetConfig, ShadowRetargeter, camera_to_world, palm_actions
from wam.errors import DatasetError

ERROR_KEY = "observation.retarget_error"
TIPS = [hands.KEYPOINTS.index(k) for k in hands.KEYPOINTS if k.endswith("_tip")]
HANDS = ("shadow",)


@dataclass
class RetargetResult:
    episodes: int
    frames: int
    untracked_frames: int
    tip_error_mm: list[float] = field(default_factory=list)  # per frame, tracked frames only
    seconds_solving: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds_solving / max(self.frames, 1)


def right_hand_in_camera(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 146) hand-track state -> the right hand's (T, 21, 3) camera-frame keypoints and (T,) confidence."""
    block = state[:, hands.SIDE_WIDTH * hands.SIDES.index("right") : hands.SIDE_WIDTH * (hands.SIDES.index("right") + 1)]
    return block[:, : 3 * hands.NUM_KEYPOINTS].reshape(len(state), hands.NUM_KEYPOINTS, 3), block[:, -1]


def retarget_episode(solver: ShadowRetargeter, keypoints_camera: np.ndarray, confidence: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(states (T, 33), actions (T, 26), fingertip error (T,) metres, untracked frames) of one episode."""
    to_world = camera_to_world(solver.model, solver.data)
    solver.reset()
    points = np.einsum("ij,tnj->tni", to_world[:3, :3], keypoints_camera) + to_world[:3, 3]
    states, targets, errors, untracked = [], [], [], 0
    for frame, tracked in zip(points, confidence > 0):
        if tracked:
            reached = solver.solve(frame)
            errors.append(float(np.linalg.norm(reached[TIPS] - frame[TIPS], axis=1).mean()))
        else:
            untracked += 1
            errors.append(float("nan"))
        states.append(solver.robot_state())
        targets.append(solver.actuator_targets())
    states, targets = np.asarray(states), np.asarray(targets)
    return states, palm_actions(states, targets), np.asarray(errors), untracked


def _retargeted_already(root: Path, human: Path) -> set[int]:
    from wam.data.meta import read_episode_rows

    return {int(row["info/retargeted_episode"]) for row in read_episode_rows(root)
            if row.get("info/retargeted_from") == str(human) and row.get("info/retargeted_episode") is not None}


def retarget_dataset(human: str | Path, out: str | Path, hand: str = "shadow", config: RetargetConfig = RetargetConfig(),
                     progress: Callable[[int, int], None] | None = None) -> RetargetResult:
    """Write the action-labelled robot-hand version of the human-video dataset `human` to `out`."""
    if hand not in HANDS:
        raise ValueError(f"hand must be one of {', '.join(HANDS)}, got {hand!r}")
    source = Dataset(human)
    if STATE_KEY not in source.features or source.features[STATE_KEY].names != hands.STATE_NAMES:
        raise DatasetError(f"{source.root}: not a human-video dataset: {STATE_KEY} is not the canonical hand track "
                           f"(import one with `wam data import-ego` or collect with --embodiment human)")
    camera = source.camera_keys[0]
    solver = ShadowRetargeter(config)
    state_names = ("x", "y", "z", "r0", "r1", "r2", "r3", "r4", "r5") + tuple(j.removeprefix("robot0:") for j in solver.hand.joints)
    action_names = ("dx", "dy", "dz", "rx", "ry", "rz") + tuple(a.removeprefix("robot0:A_") for a in solver.hand.actuators)
    height, width = source.camera_size(camera)
    features = {camera: Feature("video", (height, width, 3), ("height", "width", "channels")),
                STATE_KEY: Feature("float32", (len(state_names),), state_names),
                ACTION_KEY: Feature("float32", (len(action_names),), action_names),
                ERROR_KEY: Feature("float32", (1,))}
    features |= {k: source.features[k] for k in ("reward", "success") if k in source.features}
    result = RetargetResult(0, 0, 0)
    writer = DatasetWriter(out, features=features, fps=source.fps, robot_type="shadow_hand")
    try:
        done = _retargeted_already(writer.root, Path(human))
        for number, info in enumerate(source.episodes):
            if number in done:  # a rerun after an interruption picks up where it stopped
                continue
            data = source.low_dim(number)
            keypoints, confidence = right_hand_in_camera(np.asarray(data[STATE_KEY], np.float64))
            if not (confidence > 0).any():
                result.notes.append(f"episode {number}: no tracked right hand (left hands are not mirrored); skipped")
                continue
            start = time.perf_counter()
            states, actions, errors, untracked = retarget_episode(solver, keypoints, confidence)
            result.seconds_solving += time.perf_counter() - start
            frames = {camera: source.frames(number, camera)}
            low = {STATE_KEY: states.astype(np.float32), ACTION_KEY: actions.astype(np.float32),
                   ERROR_KEY: np.nan_to_num(errors, nan=-1.0).astype(np.float32)[:, None]}
            low |= {k: np.asarray(data[k]) for k in ("reward", "success") if k in data}
            episode_info = {**{k: v for k, v in info.info.items()}, "retargeted_from": str(Path(human)),
                            "retargeted_episode": number, "retarget_hand": hand,
                            "retarget_tip_error_mm": float(np.nanmean(errors) * 1000)}
            writer.add_episode(Episode(info.task, frames, low, success=info.success, info=episode_info))
            result.episodes += 1
            result.frames += len(states)
            result.untracked_frames += untracked
            result.tip_error_mm += [float(e * 1000) for e in errors if np.isfinite(e)]
            if progress is not None:
                progress(number + 1, source.num_episodes)
    finally:
        writer.close()
    if result.episodes == 0 and not done:
        raise DatasetError(f"{source.root}: no episode could be retargeted:\n  " + "\n  ".join(result.notes))
    return result
