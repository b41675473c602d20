"""Write episodes in EgoDex's on-disk layout (`<dir>/<i>.mp4` + `<i>.hdf5`), the inverse of `wam.ego.egodex`.

wam's simulated human hand records its egocentric video this way, so one reader serves it and the real
dataset: whatever the importer does to Apple's files it does to ours. The layout written (EgoDex's, as
`egodex.py` documents it): `camera/intrinsic` (3, 3), `transforms/camera` (T, 4, 4) camera-to-world with
ARKit's camera axes (x right, y up, looking down -z), `transforms/<joint>` (T, 4, 4) joint-to-world in an
ARKit world frame (y up), 25 joints a hand, `confidences/<joint>` (T,), and the `llm_description` text.

The mp4 and the hdf5 are each written under a temporary name and renamed into place, hdf5 last: an episode
is there (the importer pairs `<i>.hdf5` with `<i>.mp4`) only once both are whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.data.video import VideoConfig, encode_video
from wam.ego.egodex import arkit_joints
from wam.ego.hands import FINGERS, SIDES

# A z-up world (x forward, y left) as ARKit's y-up world (x right, y up, z back).
Z_UP_TO_ARKIT = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def all_joints(side: str) -> tuple[str, ...]:
    """EgoDex's 25 joints of one hand: the 21 the importer reads, then the four finger metacarpals."""
    return arkit_joints(side) + tuple(f"{side}{finger.capitalize()}FingerMetacarpal" for finger in FINGERS)


@dataclass
class EgoDexEpisode:
    """One episode as EgoDex stores it (all poses already in ARKit conventions)."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: int
    intrinsics: np.ndarray  # (3, 3)
    camera: np.ndarray  # (T, 4, 4)
    joints: dict[str, np.ndarray]  # joint name -> (T, 4, 4); every joint of `all_joints` for both sides
    confidences: dict[str, np.ndarray]  # joint name -> (T,)
    description: str


def write_episode(directory: str | Path, index: int, episode: EgoDexEpisode, video: VideoConfig = VideoConfig()) -> Path:
    """Write `<directory>/<index>.mp4` and `.hdf5`; returns the hdf5's path."""
    import h5py

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    missing = [j for side in SIDES for j in all_joints(side) if j not in episode.joints]
    if missing:
        raise ValueError(f"EgoDex episode {index}: no transforms for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    mp4, h5 = directory / f"{index}.mp4", directory / f"{index}.hdf5"
    staged_mp4, staged_h5 = mp4.with_suffix(".mp4.partial"), h5.with_suffix(".hdf5.partial")
    encode_video(episode.frames, staged_mp4, episode.fps, video)
    with h5py.File(staged_h5, "w") as handle:
        handle["camera/intrinsic"] = np.asarray(episode.intrinsics, np.float32)
        handle["transforms/camera"] = np.asarray(episode.camera, np.float32)
        for name, poses in episode.joints.items():
            handle[f"transforms/{name}"] = np.asarray(poses, np.float32)
        for name, confidence in episode.confidences.items():
            handle[f"confidences/{name}"] = np.asarray(confidence, np.float32)
        handle.attrs["llm_description"] = episode.description
        handle.attrs["which_llm_description"] = 1
    os.replace(staged_mp4, mp4)
    os.replace(staged_h5, h5)
    return h5


def pinhole_intrinsics(fovy_degrees: float, height: int, width: int) -> np.ndarray:
    """K of a square-pixel camera with MuJoCo's vertical field of view."""
    focal = height / 2 / np.tan(np.radians(fovy_degrees) / 2)
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
