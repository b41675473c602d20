"""Import DexYCB (hands grasping YCB objects, filmed by fixed cameras) into a wam dataset of action-free video
with the canonical hand track (`wam.ego.hands`) as state.

DexYCB stores joints, so no MANO model is needed: `pose_m` (MANO PCA pose) is not read.

Source layout: every directory holding per-frame labels is one episode (one camera of one sequence):
    label_XXXXXX.npz (or labels_XXXXXX.npz)   joint_3d (21, 3) or (1, 21, 3), metres, camera frame, -1 where
                                              missing; joint_2d (the same joints in pixels) when present
    color_XXXXXX.jpg / .png                   the frame the label belongs to
    ../meta.yml                               the sequence: `mano_sides` names the hand (default: right)

DexYCB's joints are already in the canonical MANO order (wrist, thumb CMC..tip, index..little MCP..tip).
The camera does not move: the camera pose is the identity and the track's world frame is the camera's.
There is no wrist rotation in the labels: the wrist pose is the palm frame `hands.palm_frame` derives
from the joints. A frame whose joints are -1 has the hand untracked (confidence 0). Intrinsics are
fitted from joint_2d against joint_3d when the labels have both (exact for a pinhole camera), and
otherwise left unknown (zeros) with a note. fps defaults to 30 (DexYCB's capture rate); pass `fps` to change it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import IMAGE_PREFIX
from wam.data.video import VideoConfig
from wam.ego import hands
from wam.ego.egodex import output_size, scale_intrinsics
from wam.ego.writing import check_frame_size, write_episodes
from wam.errors import DatasetError

FORMAT = "dexycb"
CAMERA_KEY = IMAGE_PREFIX + "main"
DEFAULT_FPS = 30
DEFAULT_SIZE = 128
LABEL = re.compile(r"labels?_(\d+)\.npz")
IMAGE_SUFFIXES = (".jpg", ".png")


def find_episodes(root: Path) -> list[Path]:
    """Directories under `root` (itself included) that hold label files, sorted."""
    return sorted({path.parent for path in root.rglob("*.npz") if LABEL.fullmatch(path.name)})


def _side(directory: Path) -> tuple[str, str | None]:
    """The hand's side from the sequence's meta.yml, and a note when it had to be assumed."""
    import yaml

    for meta in (directory / "meta.yml", directory.parent / "meta.yml"):
        if meta.is_file():
            try:
                sides = (yaml.safe_load(meta.read_text()) or {}).get("mano_sides") or []
            except (yaml.YAMLError, AttributeError) as err:
                raise DatasetError(f"{meta}: not valid YAML ({err})") from None
            if sides and str(sides[0]) in hands.SIDES:
                return str(sides[0]), None
    return "right", f"{directory}: no meta.yml with mano_sides; the hand is taken to be a right hand"


def _fit_intrinsics(points: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
    """K from 3-D joints and their projections: u = fx x/z + cx, v = fy y/z + cy, least squares per axis."""
    usable = points[:, 2] > 1e-6
    if usable.sum() < 3:
        return None
    k = np.eye(3)
    for axis in (0, 1):
        ratio = points[usable, axis] / points[usable, 2]
        design = np.stack([ratio, np.ones_like(ratio)], 1)
        (focal, centre), *_ = np.linalg.lstsq(design, pixels[usable, axis], rcond=None)
        k[axis, axis], k[axis, 2] = focal, centre
    return k if k[0, 0] > 0 and k[1, 1] > 0 else None


def load_episode(directory: Path, size: int | tuple[int, int], fps: float, task: str | None
                 ) -> tuple[Episode, list[str]]:
    """One camera directory as an episode; DatasetError naming the file when a label or image is bad."""
    labels = sorted((int(LABEL.fullmatch(p.name).group(1)), p) for p in directory.iterdir() if LABEL.fullmatch(p.name))
    side, side_note = _side(directory)
    notes = [side_note] if side_note else []
    points, pixels, images, target = [], [], [], size
    for number, label in labels:
        image = next((directory / f"color_{number:06d}{s}" for s in IMAGE_SUFFIXES
                      if (directory / f"color_{number:06d}{s}").is_file()), None)
        if image is None:
            raise DatasetError(f"{label}: no color_{number:06d}.jpg or .png beside it")
        try:
            with np.load(label) as npz:
                if "joint_3d" not in npz:
                    raise DatasetError(f"{label}: joint_3d missing")
                joints = np.asarray(npz["joint_3d"], np.float64).reshape(-1, 21, 3)[0]
                joints_2d = np.asarray(npz["joint_2d"], np.float64).reshape(-1, 21, 2)[0] if "joint_2d" in npz else None
        except (OSError, ValueError) as err:
            raise DatasetError(f"{label}: unreadable or not 21 joints ({err})") from None
        finite = np.isfinite(joints).all(axis=1)
        if not finite.all():
            raise DatasetError(f"{label}: joint_3d {hands.KEYPOINTS[int(np.argmin(finite))]} is not finite")
        points.append(joints)
        pixels.append(joints_2d)
        with Image.open(image) as opened:
            rgb = opened.convert("RGB")
        target = output_size(rgb.height, rgb.width, size) if isinstance(target, int) else target
        source = (rgb.height, rgb.width)
        images.append(np.asarray(rgb.resize((target[1], target[0]), Image.Resampling.BOX)))
    keypoints = np.stack(points)  # (T, 21, 3)
    tracked = ~np.all(keypoints == -1, axis=(1, 2))
    keypoints[~tracked] = 0.0
    visible = [(p, q) for p, q, t in zip(points, pixels, tracked) if t and q is not None]
    intrinsics = None
    if visible:
        intrinsics = _fit_intrinsics(np.concatenate([p for p, _ in visible]), np.concatenate([q for _, q in visible]))
    if intrinsics is None:
        notes.append(f"{directory}: intrinsics unknown (no joint_2d to fit them from): stored as zeros")
    else:
        intrinsics = scale_intrinsics(intrinsics, source, target)
    length = len(labels)
    hand = hands.HandFrames(keypoints, hands.palm_frame(keypoints, side), tracked.astype(np.float64))
    track = hands.HandTrack({side: hand}, np.tile(np.eye(4), (length, 1, 1)), intrinsics, fps, task or directory.parent.name)
    track.validate(str(directory))
    info = {"source_dir": str(directory), "side": side}
    return Episode(track.text, {CAMERA_KEY: np.stack(images)}, hands.track_data(track), info=info), notes


def import_dexycb(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    size: int = DEFAULT_SIZE,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Convert the DexYCB tree `src` into a wam dataset at `out`; bad episodes are skipped with a note."""
    root = Path(src)
    check_frame_size(size)
    directories = find_episodes(root) if root.is_dir() else []
    if not directories:
        raise DatasetError(f"{root}: no DexYCB labels (label_XXXXXX.npz) under it")
    rate = int(fps or DEFAULT_FPS)

    def load(directory: Path, shape: tuple[int, int] | None) -> tuple[Episode, int, list[str]]:
        episode, notes = load_episode(directory, shape or size, rate, task)
        return episode, rate, notes

    written, notes = write_episodes(out, CAMERA_KEY, video, directories, load, "DexYCB episode(s)", root, progress)
    return written.result(root, FORMAT, notes)
