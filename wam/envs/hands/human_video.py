"""Egocentric human video from the simulated human hand, recorded the way EgoDex records a person.

An episode is run with the scripted human (no actions are kept: a person's muscles are not a robot's
commands), written as EgoDex files (`wam.ego.egodex_writer`: the head camera's mp4, the camera's pose and
intrinsics, 25 joint transforms a hand in ARKit's y-up world) and read back with the EgoDex importer, so the
dataset the collector commits went through the same code as Apple's data would. The scenes have one
(right) hand; the left hand is written out of view with confidence 0, as EgoDex marks an untracked hand.

Per-frame reward and success come from the simulator and are added to the episode after the read-back
(EgoDex has no such fields; they let a human demonstration be told from a failed one).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from wam.data.episode import Episode
from wam.data.layout import Feature
from wam.ego import egodex
from wam.ego.egodex_writer import Z_UP_TO_ARKIT, EgoDexEpisode, all_joints, pinhole_intrinsics, write_episode
from wam.ego.hands import FINGERS, KEYPOINTS, track_features

_RIGHT = dict(zip(all_joints("right"), [f"kp_{k}" for k in KEYPOINTS] + [f"kp_{f}_metacarpal" for f in FINGERS]))
_LEFT_AWAY = np.array([0.0, 0.35, -0.5])  # under the table, out of the head camera's view


def _pose(rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, position
    return Z_UP_TO_ARKIT @ pose


def _frame_transforms(env) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(camera-to-world, joint -> joint-to-world) in ARKit conventions for the env's current state. MuJoCo's camera
    axes are ARKit's already (x right, y up, looking down -z)."""
    data = env.data
    camera = data.cam("ego")
    poses = {joint: _pose(data.site(site).xmat.reshape(3, 3), data.site(site).xpos) for joint, site in _RIGHT.items()}
    away = _pose(np.eye(3), _LEFT_AWAY)
    poses |= {joint: away for joint in all_joints("left")}
    return _pose(camera.xmat.reshape(3, 3), camera.xpos), poses


def run_human_episode(env, expert, seed: int, max_steps: int, after_success: int = 0) -> tuple[EgoDexEpisode, list[float], list[bool]]:
    """One scripted-human episode as EgoDex stores it, with the simulator's per-frame rewards and success flags."""
    obs, _ = env.reset(seed=seed)
    expert.reset(seed=seed)
    frames, cameras, joints = [obs["images"]["ego"]], [], {j: [] for side in ("left", "right") for j in all_joints(side)}
    rewards, successes = [0.0], [False]
    extra = None

    def keep_transforms():
        camera, poses = _frame_transforms(env)
        cameras.append(camera)
        for joint, pose in poses.items():
            joints[joint].append(pose)

    keep_transforms()
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        frames.append(obs["images"]["ego"])
        keep_transforms()
        rewards.append(float(reward))
        successes.append(bool(info["success"]))
        if extra is None and info["success"]:
            extra = after_success
        elif extra is not None:
            extra -= 1
        if truncated or len(frames) > max_steps or (extra is not None and extra <= 0):
            break
    length = len(frames)
    size = frames[0].shape[:2]
    fovy = float(env.model.cam_fovy[env.model.camera("ego").id])
    confidences = {j: np.full(length, 1.0 if j.startswith("right") else 0.0) for j in joints}
    episode = EgoDexEpisode(np.stack(frames), env.metadata["render_fps"], pinhole_intrinsics(fovy, *size), np.stack(cameras),
                            {j: np.stack(p) for j, p in joints.items()}, confidences, env.task_text)
    return episode, rewards, successes


def record_human_episode(env, expert, job, config) -> Episode:
    """The collector's human path: run, write EgoDex files (kept under `config.egodex` when given), read them back."""
    episode, rewards, successes = run_human_episode(env, expert, job.seed, config.max_steps, config.after_success)
    with tempfile.TemporaryDirectory(prefix="wam-egodex-") as scratch:
        root = Path(config.egodex) if config.egodex is not None else Path(scratch)
        directory = root / f"part{config.seed}" / job.task
        h5 = write_episode(directory, job.number, episode)
        read, _, _ = egodex.load_episode(h5, h5.with_suffix(".mp4"), config.size, env.task_text)
    read.data["reward"] = np.asarray(rewards, np.float32)
    read.data["success"] = np.asarray(successes, bool)
    read.success = bool(any(successes))
    read.info = {
        "env": f"hand/{job.task}", "task": job.task, "seed": job.seed, "collect_seed": config.seed,
        "episode_number": job.number, "noise": float(config.noise), "explore": 0.0,
        "after_success": int(config.after_success), "camera": "ego", "source": "scripted_human", "embodiment": "human",
    }
    return read


def human_features(config) -> dict[str, Feature]:
    """What a human-video collection records: the head camera, the canonical hand track (wam.ego.hands), reward and
    success."""
    video = Feature("video", (config.size, config.size, 3), ("height", "width", "channels"))
    return {egodex.CAMERA_KEY: video, **track_features(), "reward": Feature("float32", (1,)), "success": Feature("bool", (1,))}
