"""Import EgoDex (Apple's egocentric dexterous-manipulation video) into a wam dataset of action-free video
with the canonical hand track (`wam.ego.hands`) as state.

Source layout (`partN/<task>/<i>.mp4` + `<i>.hdf5`; any directory depth is searched):
    camera/intrinsic         (3, 3) pixels of the mp4
    transforms/camera        (T, 4, 4) camera-to-world, ARKit world frame
    transforms/<joint>       (T, 4, 4) joint-to-world, for ARKit's joint names (25 a hand, `leftHand` ... )
    confidences/<joint>      (T,) optional (older episodes have none)
    attrs                    llm_description (older episodes: description): the task text

Joint mapping (ARKit -> canonical, `<side>` = left | right): the 4 finger metacarpals have no
canonical counterpart and are not read; every other hand joint maps one to one, in order.

    wrist                   <side>Hand
    thumb_cmc/mcp/ip/tip    <side>Thumb Knuckle / IntermediateBase / IntermediateTip / Tip
    <f>_mcp/pip/dip/tip     <side><F>Finger Knuckle / IntermediateBase / IntermediateTip / Tip
                            for f = index, middle, ring, little (e.g. rightIndexFingerTip = right.index_tip)

A keypoint is the translation of its joint's transform; the wrist pose is `<side>Hand` whole. A
hand's confidence per frame is the mean of its 21 joints' confidences (1 where the file has none).

Camera axes: ARKit's camera looks down its -z with y up; wam's track uses OpenCV's axes (z forward,
y down, the ones `camera/intrinsic` projects with), so the camera pose is turned by 180 degrees about
its x axis (`ARKIT_TO_OPENCV`). An episode whose hands sit behind the camera gets a note: that is what
a wrong axis convention looks like.

What comes out: the mp4's frames resized to `size` pixels high (width keeping the aspect ratio, even)
as camera `observation.images.ego`, the intrinsics scaled to that size, the hand track as
`observation.state` (146 values, `wam.ego.hands`), `observation.camera_pose`, no actions, the
task text per episode, fps from the first video. A bad episode (missing joint, NaN transform,
frame counts of mp4 and hdf5 differing, an unreadable file) is skipped with a note naming the file
and the joint; only when no episode imports is it an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import av
import numpy as np

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import IMAGE_PREFIX, STATE_KEY
from wam.data.video import VideoConfig
from wam.ego import hands
from wam.ego.writing import check_frame_size, write_episodes
from wam.errors import DatasetError

FORMAT = "egodex"
CAMERA_KEY = IMAGE_PREFIX + "ego"
DEFAULT_SIZE = 128
ARKIT_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
_THUMB = ("Knuckle", "IntermediateBase", "IntermediateTip", "Tip")
_FINGER = ("Knuckle", "IntermediateBase", "IntermediateTip", "Tip")  # the Metacarpal is left out


def arkit_joints(side: str) -> tuple[str, ...]:
    """The 21 EgoDex joint names of one side, in `hands.KEYPOINTS` order."""
    names = [f"{side}Hand"] + [f"{side}Thumb{part}" for part in _THUMB]
    for finger in hands.FINGERS:
        names += [f"{side}{finger.capitalize()}Finger{part}" for part in _FINGER]
    return tuple(names)


def find_episodes(root: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(hdf5, mp4) pairs under `root` (or `root` itself, one episode's .hdf5), sorted; notes on files without a pair."""
    if root.is_file():
        candidates = [root]
    else:
        candidates = sorted(root.rglob("*.hdf5"), key=_episode_order)
    pairs, notes = [], []
    for path in candidates:
        video = path.with_suffix(".mp4")
        if video.is_file():
            pairs.append((path, video))
        else:
            notes.append(f"skipped {path}: no {video.name} beside it")
    if root.is_dir():
        for video in sorted(root.rglob("*.mp4")):
            if not video.with_suffix(".hdf5").is_file():
                notes.append(f"skipped {video}: no {video.with_suffix('.hdf5').name} beside it")
    return pairs, notes


def _episode_order(path: Path) -> tuple[str, int, str]:
    """Numbered episodes in number order within their task directory (2.hdf5 before 10.hdf5)."""
    return (str(path.parent), int(path.stem) if path.stem.isdigit() else 1 << 62, path.name)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _dataset(handle, path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """`handle[key]` as float64, checked to be `shape` (None: any length) and finite; errors name file and key."""
    if key not in handle:
        raise DatasetError(f"{path}: {key} missing")
    try:
        values = np.asarray(handle[key][()], np.float64)
    except (OSError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: {key} unreadable ({err})") from None
    if values.ndim != len(shape) or any(want is not None and got != want for got, want in zip(values.shape, shape)):
        expected = tuple("T" if s is None else s for s in shape)
        raise DatasetError(f"{path}: {key} has shape {values.shape}, expected {expected}")
    finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1) if values.ndim else np.isfinite(values)
    if not np.all(finite):
        per_frame = key.split("/")[0] in ("transforms", "confidences")
        where = f" at frame {int(np.argmin(finite))}" if per_frame else ""
        raise DatasetError(f"{path}: {key} is NaN or infinite{where}")
    return values


def read_track(path: Path, fallback_text: str) -> tuple[hands.HandTrack, bool]:
    """One EgoDex hdf5 as a world-frame HandTrack (fps unset: it comes from the video) and whether it held
    confidences. Raises DatasetError naming the file and the joint at fault."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle:
        intrinsics = _dataset(handle, path, "camera/intrinsic", (3, 3))
        camera = _dataset(handle, path, "transforms/camera", (None, 4, 4))
        length = camera.shape[0]
        has_confidences = "confidences" in handle
        track_hands = {}
        for side in hands.SIDES:
            transforms = []
            for joint in arkit_joints(side):
                values = _dataset(handle, path, f"transforms/{joint}", (None, 4, 4))
                if values.shape[0] != length:
                    raise DatasetError(f"{path}: transforms/{joint} has {values.shape[0]} frames, transforms/camera {length}")
                transforms.append(values)
            confidence = np.ones(length)
            if has_confidences:
                present = [f"confidences/{j}" for j in arkit_joints(side) if f"confidences/{j}" in handle]
                if present:
                    confidence = np.mean([_dataset(handle, path, key, (length,)) for key in present], axis=0)
            stacked = np.stack(transforms, axis=1)  # (T, 21, 4, 4)
            keypoints, wrist = stacked[:, :, :3, 3].copy(), stacked[:, 0].copy()
            track_hands[side] = hands.HandFrames(keypoints, wrist, np.clip(confidence, 0.0, 1.0))
        attrs = handle.attrs
        texts = [_text(attrs[k]).strip() for k in ("llm_description", "description") if k in attrs]
        text = next((t for t in texts if t), fallback_text)
    track = hands.HandTrack(track_hands, camera @ ARKIT_TO_OPENCV, intrinsics, 1.0, text)
    track.validate(str(path))
    return track, has_confidences


def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) for frames `size` high, the aspect ratio kept and both even (H.264 needs it)."""
    return size, max(2, int(round(size * width / height / 2)) * 2)


def read_video(path: Path, size: int | tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    """(frames (T, H, W, 3) uint8 resized, fps, source (H, W)). Each frame is resized as it decodes, because a
    whole EgoDex episode at 1080p (`wam.data.video.decode_video`) would hold gigabytes."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise DatasetError(f"{path}: unreadable video ({err})") from None
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        source = (stream.codec_context.height, stream.codec_context.width)
        target = output_size(*source, size) if isinstance(size, int) else size
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(width=target[1], height=target[0], format="rgb24", interpolation="AREA"))
    except (av.FFmpegError, IndexError, ValueError) as err:
        raise DatasetError(f"{path}: video decoding failed at frame {len(frames)} ({err})") from None
    finally:
        container.close()
    if not frames:
        raise DatasetError(f"{path}: no frames decoded")
    return np.stack(frames), rate, source


def scale_intrinsics(intrinsics: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """K for frames resized from `source` to `target` (H, W): pixel u becomes u * W'/W (corner convention)."""
    scale = np.diag([target[1] / source[1], target[0] / source[0], 1.0])
    return scale @ intrinsics


def load_episode(h5: Path, mp4: Path, size: int | tuple[int, int], task: str | None) -> tuple[Episode, float, list[str]]:
    """One episode (frames resized, track as state) with its video's fps and notes; DatasetError when it is bad."""
    track, has_confidences = read_track(h5, h5.parent.name.replace("_", " "))
    frames, rate, source = read_video(mp4, size)
    if len(frames) != track.length:
        raise DatasetError(f"{mp4}: {len(frames)} video frames, {h5.name} transforms/camera has {track.length}")
    track.intrinsics = scale_intrinsics(track.intrinsics, source, frames.shape[1:3])
    track.fps = rate or 1.0
    data = hands.track_data(track)
    notes = []
    wrist_z = [data[STATE_KEY][:, hands.STATE_NAMES.index(f"{side}.wrist.z")] for side in hands.SIDES]
    if np.median(np.concatenate(wrist_z)) < 0:
        notes.append(f"{h5}: the hands are behind the camera in most frames; are the camera axes ARKit's?")
    info = {"source_file": str(h5), "source_task": h5.parent.name, "has_confidences": has_confidences}
    return Episode(task or track.text, {CAMERA_KEY: frames}, data, info=info), rate, notes


def import_egodex(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    size: int = DEFAULT_SIZE,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Convert the EgoDex directory (or one episode's .hdf5) `src` into a wam dataset at `out` (see
    `convert_dataset` for the whole-or-nothing wrapper)."""
    root = Path(src)
    check_frame_size(size)
    pairs, notes = find_episodes(root)
    if not pairs:
        raise DatasetError(f"{root}: no EgoDex episodes (<i>.hdf5 beside <i>.mp4)")

    def load(pair: tuple[Path, Path], shape: tuple[int, int] | None) -> tuple[Episode, int, list[str]]:
        episode, source_rate, episode_notes = load_episode(*pair, shape or size, task)
        return episode, int(fps or round(source_rate)), episode_notes

    written, notes = write_episodes(out, CAMERA_KEY, video, pairs, load, "EgoDex episode(s)", root, progress, notes)
    return written.result(root, FORMAT, notes)
