"""Polycam's "raw data" export (a folder), read into a `Scan` and written back from one.

The folder holds `keyframes/` with, per frame id (a number; frames sort by it numerically):
- `images/<id>.jpg`: the RGB image;
- `depth/<id>.png`: uint16 millimetres, 0 where the sensor saw nothing, smaller than the image (e.g. 256x192);
- `confidence/<id>.png`: uint8 0-2, the depth's size (optional);
- `cameras/<id>.json`, and `corrected_cameras/<id>.json` after Polycam's own bundle adjustment (preferred when
  present): `fx, fy, cx, cy, width, height` of the RGB image, `t_00 .. t_23` (a 3x4 camera-to-world matrix,
  row-major) and `timestamp` (seconds or microseconds).

Polycam does not document its axes; the exports match ARKit's (world y up, OpenGL camera: y up, looking down
-z), the session ARKit recorded them in, and are read as such.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wam.real2sim.formats_common import (
    CAMERA_TO_WORLD, RawFrame, assemble, decode_rgb, encode_jpeg, frames_of, wam_to_arkit)
from wam.real2sim.scan import Scan, ScanError

KEYFRAMES = "keyframes"
CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height") + tuple(f"t_{r}{c}" for r in range(3) for c in range(4))
# Successive frames are milliseconds to seconds apart: a median step above this is microseconds, not seconds.
MICROSECOND_STEP = 1000.0
DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I")  # 16-bit PNGs, as Pillow names them


def _frame_images(folder: Path) -> dict[str, Path]:
    """Frame id (the file stem) to its image in keyframes/images, in numeric order of the ids."""
    images = folder / KEYFRAMES / "images"
    if not images.is_dir():
        raise ScanError(f"{folder}: no {KEYFRAMES}/images folder (not a Polycam raw-data export?)")
    found = {p.stem: p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")}
    for frame_id, path in found.items():
        try:
            float(frame_id)
        except ValueError:
            raise ScanError(f"{path}: Polycam frame ids are numbers, got {frame_id!r}") from None
    if not found:
        raise ScanError(f"{images}: no .jpg frames")
    return {frame_id: found[frame_id] for frame_id in sorted(found, key=float)}


def _camera(folder: Path, frame_id: str) -> tuple[dict, Path]:
    """The frame's camera JSON (the corrected one when Polycam wrote it) and the file it came from."""
    for kind in ("corrected_cameras", "cameras"):
        path = folder / KEYFRAMES / kind / f"{frame_id}.json"
        if path.is_file():
            break
    else:
        raise ScanError(f"{folder}: frame {frame_id} has no {KEYFRAMES}/cameras/{frame_id}.json")
    try:
        camera = json.loads(path.read_text())
    except ValueError as error:
        raise ScanError(f"{path}: not readable JSON: {error}") from None
    for key in CAMERA_KEYS:
        if not isinstance(camera, dict) or key not in camera:
            raise ScanError(f"{path}: no '{key}' key")
    return camera, path


def _pose_and_intrinsics(camera: dict, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        pose = np.eye(4)
        pose[:3] = [[float(camera[f"t_{r}{c}"]) for c in range(4)] for r in range(3)]
        K = np.array([[float(camera["fx"]), 0.0, float(camera["cx"])], [0.0, float(camera["fy"]), float(camera["cy"])],
                      [0.0, 0.0, 1.0]])
    except (TypeError, ValueError) as error:
        raise ScanError(f"{path}: camera values must be numbers ({error})") from None
    return pose, K


def _png(path: Path, modes: tuple[str, ...], what: str) -> np.ndarray | None:
    """The PNG's pixels, None when the file is absent; a ScanError when it is not the expected kind of image."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            if image.mode not in modes:
                raise ScanError(f"{path}: {what} must be a PNG of mode {' or '.join(modes)}, got {image.mode}")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as error:
        raise ScanError(f"{path}: not a readable PNG ({error})") from None


def _frame(folder: Path, frame_id: str, image_path: Path) -> tuple[RawFrame, Path, object]:
    camera, camera_path = _camera(folder, frame_id)
    rgb = decode_rgb(image_path.read_bytes(), str(image_path))
    if rgb.shape[:2] != (camera["height"], camera["width"]):
        raise ScanError(f"{camera_path}: says width={camera['width']}, height={camera['height']}, but "
                        f"{image_path.name} is {rgb.shape[1]}x{rgb.shape[0]}")
    pose, K = _pose_and_intrinsics(camera, camera_path)
    depth_name = f"{KEYFRAMES}/depth/{frame_id}.png"
    millimetres = _png(folder / depth_name, DEPTH_MODES, "depth")
    depth = None if millimetres is None else millimetres.astype(np.float32) / 1000.0
    confidence = _png(folder / KEYFRAMES / "confidence" / f"{frame_id}.png", ("L",), "confidence")
    frame = RawFrame(f"frame {frame_id}", depth_name, rgb, depth, confidence, K, pose, 0.0)
    return frame, camera_path, camera.get("timestamp")


def _seconds(stamps: list, count: int) -> tuple[np.ndarray, str]:
    """Timestamps in seconds, whichever unit Polycam wrote; the frame order when any frame lacks one."""
    try:
        values = np.array(stamps, np.float64)
    except (TypeError, ValueError):
        values = np.full(count, np.nan)
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        return np.arange(count, dtype=np.float64), "frame order"
    # one frame has no step: above 1e8 it is microseconds (1e8 s would be three years since the phone booted)
    microseconds = np.median(np.diff(values)) > MICROSECOND_STEP if count > 1 else values[0] > 1e8
    if microseconds:
        return values / 1e6, "microseconds"
    return values, "seconds"


def read_polycam(folder: str | Path, poses: str = CAMERA_TO_WORLD) -> Scan:
    """A Polycam raw-data folder (the one holding `keyframes/`) as a Scan."""
    folder = Path(folder)
    read = [_frame(folder, frame_id, image) for frame_id, image in _frame_images(folder).items()]
    frames = [frame for frame, _, _ in read]
    timestamps, unit = _seconds([stamp for _, _, stamp in read], len(read))
    for frame, timestamp in zip(frames, timestamps):
        frame.timestamp = float(timestamp)
    corrected = sum(path.parent.name == "corrected_cameras" for _, path, _ in read)
    source = {"path": str(folder), "format": "polycam", "timestamps": unit, "corrected_cameras": corrected}
    return assemble(frames, poses, source)


def _camera_json(K: np.ndarray, pose: np.ndarray, width: int, height: int, timestamp: float) -> dict:
    camera = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "width": width, "height": height}
    camera.update({f"t_{r}{c}": pose[r, c] for r in range(3) for c in range(4)})
    camera["timestamp"] = timestamp
    return {key: value if isinstance(value, int) else float(value) for key, value in camera.items()}


def _millimetres(depth: np.ndarray) -> np.ndarray:
    """uint16 millimetres, 0 (no reading) where the depth is NaN or beyond the 65.535 m a uint16 holds."""
    millimetres = np.round(np.nan_to_num(depth, nan=0.0) * 1000.0)
    millimetres[(millimetres < 0) | (millimetres > np.iinfo(np.uint16).max)] = 0
    return millimetres.astype(np.uint16)


def write_polycam(scan: Scan, folder: str | Path, poses: str = CAMERA_TO_WORLD) -> Path:
    """Write a frames scan as a Polycam raw-data folder (frame ids 0..N-1, timestamps in seconds).

    Refuses a folder that already has `keyframes/`: frames left from another scan would be read as this one's."""
    from PIL import Image

    folder = Path(folder)
    frames_of(scan, str(folder))
    root = folder / KEYFRAMES
    if root.exists():
        raise ScanError(f"{root}: already exists; write a Polycam scan into a new folder")
    for kind in ("images", "depth", "confidence", "cameras"):
        (root / kind).mkdir(parents=True)
    file_poses = wam_to_arkit(scan.poses, poses)
    height, width = scan.rgb.shape[1:3]
    for i in range(scan.frames):
        (root / "images" / f"{i}.jpg").write_bytes(encode_jpeg(scan.rgb[i]))
        Image.fromarray(_millimetres(scan.depth[i])).save(root / "depth" / f"{i}.png")
        Image.fromarray(scan.confidence[i].astype(np.uint8)).save(root / "confidence" / f"{i}.png")
        camera = _camera_json(scan.intrinsics[i], file_poses[i], int(width), int(height), float(scan.timestamps[i]))
        (root / "cameras" / f"{i}.json").write_text(json.dumps(camera, indent=1))
    return folder
