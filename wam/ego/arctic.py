"""Import ARCTIC (two hands manipulating articulated objects, with an egocentric camera on the subject's head)
into a wam dataset of action-free video with the canonical hand track (`wam.ego.hands`) as state.

ARCTIC stores its hands as MANO parameters only, so the MANO model files are needed (`wam.ego.mano`:
WAM_MANO_DIR or `mano_dir`); without them the import fails before reading any episode.

Source layout, confirmed against github.com/zc-alexfan/arctic (docs/data/data_doc.md; the readers in
src/arctic/preprocess_dataset.py, src/mesh_loaders/arctic.py, scripts_data/crop_images.py; the MANO layers in
common/body_models.py). One episode per sequence, under ARCTIC's `arctic_data/data/`:

    raw_seqs/<subject>/<seq>.mano.npy         a pickled dict; per hand 'right' / 'left': rot (T, 3) global
                                              axis-angle, pose (T, 45) finger axis-angles, trans (T, 3) metres,
                                              shape (10,) (ARCTIC repeats it per frame; (T, 10) is read too),
                                              fitting_err (T,)
    raw_seqs/<subject>/<seq>.egocam.dist.npy  a pickled dict: R_k_cam_np (T, 3, 3) and T_k_cam_np (T, 3, 1), the
                                              world-to-egocentric-camera transform (ARCTIC builds `world2ego` =
                                              [R | T] from them), intrinsics (3, 3), dist8 (8,) distortion
    images/<subject>/<seq>/0/<i:05d>.jpg      view 0 is the egocentric camera; MANO frame t is image
                                              i = t + ioi_offset (earlier images have no labels)
    meta/misc.json                            [subject].ioi_offset
    cropped_images/<subject>/<seq>/0/...      used when images/ is absent: the same frames scaled by 0.3

The hands are posed as ARCTIC poses them (smplx MANO, use_pca=False, flat_hand_mean=False: the 45 values are
relative to MANO's mean hand; the left model's shapedirs are used as published, unfixed). The world frame is
ARCTIC's; the camera pose is world2ego inverted, with OpenCV axes (ARCTIC projects camera points with K
directly). The egocentric lens is distorted (dist8) and the intrinsics are kept as a pinhole approximation,
with a note. fps is ARCTIC's 30. A hand is tracked in every frame (confidence 1). The task text is the
sequence's action and object (`box_grab_01` -> "grab the box").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
from PIL import Image

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import IMAGE_PREFIX
from wam.data.video import VideoConfig
from wam.ego import hands, mano
from wam.ego.egodex import output_size, scale_intrinsics
from wam.ego.writing import check_frame_size, write_episodes
from wam.errors import DatasetError

FORMAT = "arctic"
CAMERA_KEY = IMAGE_PREFIX + "ego"
DEFAULT_FPS = 30
DEFAULT_SIZE = 128
EGO_VIEW = "0"
CROPPED_EGO_SCALE = 0.3  # scripts_data/crop_images.py: EGO_IMAGE_SCALE
MANO_SUFFIX, EGOCAM_SUFFIX = ".mano.npy", ".egocam.dist.npy"
DISTORTION_NOTE = ("ARCTIC's egocentric lens is distorted (dist8); its intrinsics are stored as a pinhole "
                   "approximation and the frames are not undistorted")


def find_episodes(root: Path) -> list[Path]:
    """The `<seq>.mano.npy` files under `root` (or `root` itself), sorted."""
    if root.is_file():
        return [root] if root.name.endswith(MANO_SUFFIX) else []
    return sorted(root.rglob("*" + MANO_SUFFIX))


def read_frame(source: str | Path | BinaryIO, size: int | tuple[int, int], where: str
               ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """(frame (H, W, 3) uint8, the source's (H, W), the target (H, W)): `size` pixels high keeping the aspect ratio,
    or exactly (H, W). JPEG decoding is told the target first (PIL's draft), so a large frame decodes reduced."""
    try:
        with Image.open(source) as opened:
            source_size = (opened.height, opened.width)
            target = output_size(*source_size, size) if isinstance(size, int) else tuple(size)
            opened.draft("RGB", (target[1], target[0]))
            rgb = opened.convert("RGB")
            frame = np.asarray(rgb.resize((target[1], target[0]), Image.Resampling.BOX))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{where}: unreadable image ({err})") from None
    return frame, source_size, target


def _pickled_dict(path: Path) -> dict[str, Any]:
    try:
        value = np.load(path, allow_pickle=True)
        value = value.item() if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0 else value
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{path}: expected a pickled dict, found {type(value).__name__}")
    return value


def _field(path: Path, values: dict[str, Any], key: str, shape: tuple[int | None, ...], name: str | None = None
           ) -> np.ndarray:
    """`values[key]` as float64 of `shape` (None: any), finite; errors name the file and the field."""
    name = name or key
    if key not in values:
        raise DatasetError(f"{path}: {name} missing")
    try:
        array = np.asarray(values[key], np.float64)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: {name} is not numeric ({err})") from None
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        raise DatasetError(f"{path}: {name} has shape {array.shape}, expected {tuple('T' if s is None else s for s in shape)}")
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1) if array.ndim > 1 else np.isfinite(array)
    if not finite.all():
        where = f" at frame {int(np.argmin(finite))}" if array.ndim > 1 else ""
        raise DatasetError(f"{path}: {name} is NaN or infinite{where}")
    return array


def read_hands(path: Path, models: dict[str, mano.ManoModel]) -> dict[str, hands.HandFrames]:
    """Both hands of one `.mano.npy`, posed in ARCTIC's world frame."""
    params = _pickled_dict(path)
    result, length = {}, None
    for side in hands.SIDES:
        hand = params.get(side)
        if not isinstance(hand, dict):
            raise DatasetError(f"{path}: {side} missing (expected a dict of rot, pose, trans, shape)")
        rot = _field(path, hand, "rot", (None, 3), f"{side}.rot")
        length = len(rot) if length is None else length
        pose = _field(path, hand, "pose", (length, 45), f"{side}.pose")
        trans = _field(path, hand, "trans", (length, 3), f"{side}.trans")
        shape = np.asarray(hand.get("shape", np.zeros(0)))
        betas = _field(path, hand, "shape", (length, 10) if shape.ndim == 2 else (10,), f"{side}.shape")
        if len(rot) != length:
            raise DatasetError(f"{path}: {side}.rot has {len(rot)} frames, right.rot {length}")
        model = models[side]
        posed = model.forward(rot, model.finger_pose(pose), betas, trans)
        result[side] = hands.HandFrames(posed.keypoints, posed.wrist_pose, np.ones(length))
    return result


def read_camera(path: Path, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(camera-to-world (T, 4, 4), K (3, 3)) from one `.egocam.dist.npy`."""
    egocam = _pickled_dict(path)
    rotation = _field(path, egocam, "R_k_cam_np", (None, 3, 3))
    if len(rotation) != length:
        raise DatasetError(f"{path}: R_k_cam_np has {len(rotation)} frames, the .mano.npy {length}")
    translation = _field(path, egocam, "T_k_cam_np", (length, 3, None)).reshape(length, -1)
    if translation.shape[1] != 3:
        raise DatasetError(f"{path}: T_k_cam_np has shape {np.shape(egocam['T_k_cam_np'])}, expected (T, 3, 1)")
    world_to_camera = np.tile(np.eye(4), (length, 1, 1))
    world_to_camera[:, :3, :3], world_to_camera[:, :3, 3] = rotation, translation
    return np.linalg.inv(world_to_camera), _field(path, egocam, "intrinsics", (3, 3))


def _image_offset(root: Path, subject: str) -> tuple[int, str | None]:
    """ioi_offset of `subject` from meta/misc.json, and a note when it had to be taken as 0."""
    misc = root / "meta" / "misc.json"
    try:
        return int(json.loads(misc.read_text())[subject]["ioi_offset"]), None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        return 0, f"{misc}: no ioi_offset for {subject}; image i is taken to be MANO frame i"


def task_text(sequence: str) -> str:
    """`box_grab_01` -> "grab the box"; a name of another form -> its words."""
    parts = sequence.split("_")
    if len(parts) == 3 and parts[2].isdigit():
        return f"{parts[1]} the {parts[0]}"
    return sequence.replace("_", " ")


def load_episode(path: Path, models: dict[str, mano.ManoModel], size: int | tuple[int, int], fps: float,
                 task: str | None) -> tuple[Episode, list[str]]:
    """One sequence as an episode; DatasetError naming the file and field when it is bad."""
    sequence, subject = path.name[: -len(MANO_SUFFIX)], path.parent.name
    root = path.parents[2] if len(path.parents) > 2 else path.parent
    track_hands = read_hands(path, models)
    length = len(track_hands["right"].keypoints)
    camera_pose, intrinsics = read_camera(path.with_name(sequence + EGOCAM_SUFFIX), length)
    offset, note = _image_offset(root, subject)
    notes = [note] if note else []
    directory, scale = root / "images" / subject / sequence / EGO_VIEW, 1.0
    if not directory.is_dir() and (root / "cropped_images" / subject / sequence / EGO_VIEW).is_dir():
        directory, scale = root / "cropped_images" / subject / sequence / EGO_VIEW, CROPPED_EGO_SCALE
    frames, source, target = [], (0, 0), size
    for t in range(length):
        image = directory / f"{t + offset:05d}.jpg"
        if not image.is_file():
            raise DatasetError(f"{image}: missing; {path.name} has {length} MANO frames, images from {offset:05d}.jpg "
                               f"on are its frames")
        frame, source, target = read_frame(image, target, str(image))
        frames.append(frame)
    # K is the full-size camera's; scaled to the cropped release's size, then to the frames written.
    intrinsics = scale_intrinsics(np.diag([scale, scale, 1.0]) @ intrinsics, source, target)
    track = hands.HandTrack(track_hands, camera_pose, intrinsics, fps, task or task_text(sequence))
    track.validate(str(path))
    info = {"source_file": str(path), "subject": subject, "sequence": sequence, "image_offset": offset}
    return Episode(track.text, {CAMERA_KEY: np.stack(frames)}, hands.track_data(track), info=info), notes


def import_arctic(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    size: int = DEFAULT_SIZE,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
    mano_dir: str | Path | None = None,
) -> ImportResult:
    """Convert the ARCTIC tree `src` (or one `.mano.npy`) into a wam dataset at `out`; bad episodes are skipped
    with a note. Needs the MANO model files (`mano_dir` or $WAM_MANO_DIR)."""
    root = Path(src)
    check_frame_size(size)
    paths = find_episodes(root) if root.exists() else []
    if not paths:
        raise DatasetError(f"{root}: no ARCTIC sequences (raw_seqs/<subject>/<seq>.mano.npy) under it")
    models = mano.load_models(mano_dir, "ARCTIC")
    rate = int(fps or DEFAULT_FPS)

    def load(path: Path, shape: tuple[int, int] | None) -> tuple[Episode, int, list[str]]:
        episode, notes = load_episode(path, models, shape or size, rate, task)
        return episode, rate, notes

    written, notes = write_episodes(out, CAMERA_KEY, video, paths, load, "ARCTIC sequence(s)", root, progress)
    return written.result(root, FORMAT, notes + [DISTORTION_NOTE])
