"""Import HOT3D-Clips (Meta's egocentric hand-object clips from Aria glasses and Quest 3) into a wam dataset of
action-free video with the canonical hand track (`wam.ego.hands`) as state.

The hands are used through their MANO parameters, so the MANO model files are needed (`wam.ego.mano`:
WAM_MANO_DIR or `mano_dir`); without them the import fails before reading any clip. (Each hand also carries
an UmeTrack pose, with the clip's UmeTrack hand profile in __hand_shapes.json__, from which keypoints could be
had without MANO; that needs UmeTrack's forward kinematics, which wam does not implement.)

Source layout, confirmed against github.com/facebookresearch/hot3d (hot3d/clips/README.md, clip_util.py,
vis_clips.py) and github.com/facebookresearch/hand_tracking_toolkit (camera.from_json, dataset.decode_hand_pose,
hand_models/mano_hand_model.py). One episode per `clip-<id>.tar` (150 frames, 5 s: 30 fps), read without
extracting; frame keys are `<frame:06d>`:

    <frame>.image_<stream>.jpg   Aria: 214-1 (RGB), 1201-1 and 1201-2 (monochrome); Quest 3: 1201-1, 1201-2
    <frame>.cameras.json         per stream: T_world_from_camera {translation_xyz, quaternion_wxyz} (camera-to-
                                 world, OpenCV axes per hand_tracking_toolkit); calibration {image_width,
                                 image_height, projection_model_type, projection_params}: FISHEYE624 with 15
                                 params (Aria) starts f, cx, cy, otherwise fx, fy, cx, cy
    <frame>.hands.json           'left' / 'right' (either may be absent): mano_pose {thetas: 15 MANO PCA
                                 coefficients, wrist_xform: [global axis-angle (3), translation (3)] in the world
                                 frame, metres}; umetrack_pose {joint_angles, T_world_from_wrist}; a hand whose
                                 MANO registration failed has no mano_pose
    __hand_shapes.json__         mano: 10 betas shared by both hands (umetrack: the UmeTrack profile)
    <frame>.objects.json, <frame>.hand_crops.json, <frame>.info.json   not read

The hands are posed as hand_tracking_toolkit poses them: smplx MANO with use_pca=True, 15 components,
flat_hand_mean=False, global_orient and transl from wrist_xform, and the left model's shapedirs bug fixed
(`mano.fix_left_shapedirs`). A hand absent from a frame, or without mano_pose, is untracked there (confidence
0). The egocentric stream is Aria's RGB camera (214-1), else the first monochrome one (1201-1). Its fisheye
focal length and principal point are kept as pinhole intrinsics (a note says so; the frames are not
undistorted). Test clips without hands.json carry no hand poses and are skipped with a note.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import IMAGE_PREFIX
from wam.data.video import VideoConfig
from wam.ego import hands, mano
from wam.ego.arctic import read_frame
from wam.ego.egodex import scale_intrinsics
from wam.ego.writing import check_frame_size, write_episodes
from wam.errors import DatasetError

FORMAT = "hot3d"
CAMERA_KEY = IMAGE_PREFIX + "ego"
DEFAULT_FPS = 30
DEFAULT_SIZE = 128
DEFAULT_TEXT = "manipulate objects with the hands"
STREAMS = ("214-1", "1201-1")  # preferred egocentric stream first
CLIP = re.compile(r"clip-\d+\.tar")
IMAGE = re.compile(r"(\d+)\.image_(.+)\.jpg")
SHAPES = "__hand_shapes.json__"
FISHEYE_NOTE = ("HOT3D's cameras are fisheyes (FISHEYE624): their focal length and principal point are stored as "
                "pinhole intrinsics, and the frames are not undistorted")


def find_episodes(root: Path) -> list[Path]:
    """The `clip-<id>.tar` files under `root` (or `root` itself, one clip), sorted."""
    if root.is_file():
        return [root] if root.suffix == ".tar" else []
    return sorted(path for path in root.rglob("clip-*.tar") if CLIP.fullmatch(path.name))


def _json(tar: tarfile.TarFile, path: Path, name: str) -> Any:
    try:
        member = tar.extractfile(name)
        if member is None:
            raise KeyError(name)
        return json.load(member)
    except KeyError:
        raise DatasetError(f"{path}: {name} missing") from None
    except (OSError, tarfile.TarError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: {name} unreadable ({err})") from None


def _numbers(value: Any, where: str, count: int | None = None) -> np.ndarray:
    """A flat list of finite numbers (of `count` when given); DatasetError naming `where` otherwise."""
    try:
        array = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f"{where} is not a list of numbers") from None
    if count is not None and array.size != count:
        raise DatasetError(f"{where} has {array.size} values, expected {count}")
    if not np.isfinite(array).all():
        raise DatasetError(f"{where} is NaN or infinite")
    return array


def _entry(tree: Any, keys: tuple[str, ...], where: str) -> Any:
    for depth, key in enumerate(keys):
        if not isinstance(tree, dict) or key not in tree:
            raise DatasetError(f"{where}: {'.'.join(keys[: depth + 1])} missing")
        tree = tree[key]
    return tree


def pose_matrix(transform: Any, where: str) -> np.ndarray:
    """{translation_xyz, quaternion_wxyz} -> (4, 4); the quaternion is normalised (JSON rounds it)."""
    translation = _numbers(_entry(transform, ("translation_xyz",), where), f"{where}: translation_xyz", 3)
    w, x, y, z = _numbers(_entry(transform, ("quaternion_wxyz",), where), f"{where}: quaternion_wxyz", 4)
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    if norm < 1e-9:
        raise DatasetError(f"{where}: quaternion_wxyz is zero")
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    pose = np.eye(4)
    pose[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    pose[:3, 3] = translation
    return pose


def intrinsics_of(calibration: Any, where: str) -> np.ndarray:
    """Pinhole K from a calibration's projection_params (FISHEYE624 with 15 params has one focal length)."""
    params = _numbers(_entry(calibration, ("projection_params",), where), f"{where}: projection_params")
    if params.size != 15 and params.size < 4:
        raise DatasetError(f"{where}: projection_params has {params.size} values, expected fx, fy, cx, cy first")
    fx, fy, cx, cy = (params[0], params[0], params[1], params[2]) if params.size == 15 else params[:4]
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def load_episode(path: Path, models: dict[str, mano.ManoModel], size: int | tuple[int, int], fps: float,
                 task: str | None) -> Episode:
    """One clip as an episode; DatasetError naming the clip, the member and the field when it is bad."""
    try:
        tar = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as err:
        raise DatasetError(f"{path}: not a readable tar ({err})") from None
    with tar:
        names = set(tar.getnames())
        images = {(m.group(2), m.group(1)) for m in map(IMAGE.fullmatch, names) if m}
        streams = sorted({stream for stream, _ in images})
        stream = next((s for s in STREAMS if s in streams), streams[0] if streams else None)
        if stream is None:
            raise DatasetError(f"{path}: no <frame>.image_<stream>.jpg in it")
        keys = sorted((key for s, key in images if s == stream), key=int)
        labelled = sorted((n[: -len(".hands.json")] for n in names if n.endswith(".hands.json")), key=int)
        if not labelled:
            raise DatasetError(f"{path}: no hands.json (a test clip without hand poses?)")
        for name in ("hands.json", "cameras.json"):
            missing = [key for key in keys if f"{key}.{name}" not in names]
            if missing:
                raise DatasetError(f"{path}: {missing[0]}.{name} missing ({len(keys)} frames of image_{stream}, "
                                   f"{len(keys) - len(missing)} {name})")
        unseen = [key for key in labelled if (stream, key) not in images]
        if unseen:
            raise DatasetError(f"{path}: {unseen[0]}.hands.json has no {unseen[0]}.image_{stream}.jpg "
                               f"({len(keys)} frames of image_{stream}, {len(labelled)} hands.json)")
        betas = _numbers(_entry(_json(tar, path, SHAPES), ("mano",), f"{path}: {SHAPES}"), f"{path}: {SHAPES} mano")
        camera_pose, intrinsics, frames, target, source = [], None, [], size, (0, 0)
        params = {side: ([], [], []) for side in hands.SIDES}  # thetas, wrist_xform, tracked
        for key in keys:
            where, cameras = f"{path}: {key}.cameras.json", _json(tar, path, f"{key}.cameras.json")
            transform = _entry(cameras, (stream, "T_world_from_camera"), where)
            camera_pose.append(pose_matrix(transform, f"{where}: {stream}.T_world_from_camera"))
            if intrinsics is None:
                intrinsics = intrinsics_of(_entry(cameras, (stream, "calibration"), where), f"{where}: {stream}.calibration")
            labels = _json(tar, path, f"{key}.hands.json")
            for side, (thetas, wrists, tracked) in params.items():
                theta, wrist = _mano_pose(labels, side, f"{path}: {key}.hands.json")
                thetas.append(theta)
                wrists.append(wrist)
                tracked.append(theta is not None)
            frame, source, target = read_frame(tar.extractfile(f"{key}.image_{stream}.jpg"), target,
                                               f"{path}: {key}.image_{stream}.jpg")
            frames.append(frame)
    track_hands = {}
    for side, (thetas, wrists, tracked) in params.items():
        if any(tracked):
            track_hands[side] = _pose_hand(models[side], thetas, np.stack(wrists), np.array(tracked), betas,
                                           f"{path}: {side}.mano_pose.thetas")
    if not track_hands:
        raise DatasetError(f"{path}: no hand has a mano_pose in any frame")
    track = hands.HandTrack(track_hands, np.stack(camera_pose), scale_intrinsics(intrinsics, source, target), fps,
                            task or DEFAULT_TEXT)
    track.validate(str(path))
    info = {"source_file": str(path), "stream": stream}
    return Episode(track.text, {CAMERA_KEY: np.stack(frames)}, hands.track_data(track), info=info)


def _mano_pose(labels: Any, side: str, where: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(thetas, wrist_xform (6,)) of one hand in one hands.json; (None, zeros) where the hand or its MANO pose
    is absent (not seen, or its MANO registration failed)."""
    if not isinstance(labels, dict):
        raise DatasetError(f"{where}: not a JSON object")
    entry = labels.get(side)
    if entry is None or (isinstance(entry, dict) and entry.get("mano_pose") is None):
        return None, np.zeros(6)
    thetas = _numbers(_entry(labels, (side, "mano_pose", "thetas"), where), f"{where}: {side}.mano_pose.thetas")
    wrist = _numbers(_entry(labels, (side, "mano_pose", "wrist_xform"), where), f"{where}: {side}.mano_pose.wrist_xform", 6)
    return thetas, wrist


def _pose_hand(model: mano.ManoModel, thetas: list[np.ndarray | None], wrists: np.ndarray, tracked: np.ndarray,
               betas: np.ndarray, where: str) -> hands.HandFrames:
    """One hand over a clip; untracked frames get zeros, the identity wrist and confidence 0."""
    counts = {len(t) for t in thetas if t is not None}
    if len(counts) != 1 or not 0 < max(counts) <= 45:
        raise DatasetError(f"{where} has {sorted(counts)} values across frames; expected one count of PCA coefficients <= 45")
    coefficients = np.stack([t if t is not None else np.zeros(max(counts)) for t in thetas])
    posed = model.forward(wrists[:, :3], model.finger_pose(coefficients, pca=True), betas, wrists[:, 3:])
    keypoints, wrist = posed.keypoints, posed.wrist_pose
    keypoints[~tracked], wrist[~tracked] = 0.0, np.eye(4)
    return hands.HandFrames(keypoints, wrist, tracked.astype(np.float64))


def import_hot3d(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    size: int = DEFAULT_SIZE,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
    mano_dir: str | Path | None = None,
) -> ImportResult:
    """Convert the HOT3D-Clips folder `src` (or one clip's tar) into a wam dataset at `out`; bad clips are skipped
    with a note. Needs the MANO model files (`mano_dir` or $WAM_MANO_DIR)."""
    root = Path(src)
    check_frame_size(size)
    paths = find_episodes(root) if root.exists() else []
    if not paths:
        raise DatasetError(f"{root}: no HOT3D clips (clip-<id>.tar) under it")
    models = mano.fix_left_shapedirs(mano.load_models(mano_dir, "HOT3D"))
    rate = int(fps or DEFAULT_FPS)

    def load(path: Path, shape: tuple[int, int] | None) -> tuple[Episode, int, list[str]]:
        return load_episode(path, models, shape or size, rate, task), rate, []

    written, notes = write_episodes(out, CAMERA_KEY, video, paths, load, "HOT3D clip(s)", root, progress)
    return written.result(root, FORMAT, notes + [FISHEYE_NOTE])
