"""Record3D's `.r3d` export, read into a `Scan` and written back from one.

An `.r3d` is a ZIP archive:
- `metadata`: JSON with the RGB size `w`, `h`, the depth size `dw`, `dh` (typically 256x192), `fps`, `K` (the RGB
  intrinsics as 9 floats, column-major: K[0]=fx, K[4]=fy, K[6]=cx, K[7]=cy), `poses` (one [qx, qy, qz, qw, tx, ty,
  tz] a frame: camera-to-world in ARKit's axes, world y up, OpenGL camera) and `frameTimestamps` (seconds);
- per frame i: `rgbd/<i>.jpg`, `rgbd/<i>.depth` (LZFSE-compressed float32 metres, dh*dw, row-major) and
  `rgbd/<i>.conf` (LZFSE-compressed uint8 0-2, dh*dw).

Writing exists so that tests (and tools) can make an `.r3d` from any scan; it writes what the reader reads.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from wam.real2sim.formats_common import (
    CAMERA_TO_WORLD, RawFrame, assemble, decode_rgb, encode_jpeg, frames_of, lzfse_module, matrix_to_quaternion,
    quaternion_to_matrix, wam_to_arkit)
from wam.real2sim.scan import Scan, ScanError

METADATA = "metadata"
REQUIRED_KEYS = ("w", "h", "dw", "dh", "K", "poses")
DEFAULT_FPS = 30.0  # Record3D's capture rate when the metadata does not say


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise ScanError(f"{path}: no such file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ScanError(f"{path}: not a Record3D .r3d (a ZIP archive): {error}") from None


def _read_metadata(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        metadata = json.loads(archive.read(METADATA))
    except KeyError:
        raise ScanError(f"{path}: the archive has no '{METADATA}' file (not a Record3D export?)") from None
    except (ValueError, zipfile.BadZipFile) as error:
        raise ScanError(f"{path}: '{METADATA}' is not readable JSON: {error}") from None
    if not isinstance(metadata, dict):
        raise ScanError(f"{path}: '{METADATA}' is not a JSON object")
    for key in REQUIRED_KEYS:
        if key not in metadata:
            raise ScanError(f"{path}: '{METADATA}' has no '{key}' key")
    for key in ("w", "h", "dw", "dh"):
        if not (isinstance(metadata[key], int) and metadata[key] > 0):
            raise ScanError(f"{path}: '{METADATA}' key '{key}' must be a positive whole number, got {metadata[key]!r}")
    if not isinstance(metadata["poses"], list):
        raise ScanError(f"{path}: '{METADATA}' key 'poses' must be a list, got {type(metadata['poses']).__name__}")
    return metadata


def _intrinsics(metadata: dict, path: Path) -> np.ndarray:
    values = np.asarray(metadata["K"], np.float64)
    if values.shape != (9,) or not np.all(np.isfinite(values)):
        raise ScanError(f"{path}: '{METADATA}' key 'K' must be 9 finite numbers, got {metadata['K']!r}")
    return values.reshape(3, 3).T  # stored column-major


def _pose(entry, i: int, path: Path) -> np.ndarray:
    values = np.asarray(entry, np.float64)
    if values.shape != (7,):
        raise ScanError(f"{path}: '{METADATA}' key 'poses', frame {i}: expected [qx, qy, qz, qw, tx, ty, tz], "
                        f"got {entry!r}")
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_matrix(values[:4], f"{path}: frame {i}")
    pose[:3, 3] = values[4:]
    return pose


def _timestamps(metadata: dict, frames: int, path: Path) -> tuple[np.ndarray, str]:
    if "frameTimestamps" in metadata:
        stamps = np.asarray(metadata["frameTimestamps"], np.float64)
        if stamps.shape != (frames,):
            raise ScanError(f"{path}: '{METADATA}' key 'frameTimestamps' has {stamps.size} entries for {frames} poses")
        return stamps, "frameTimestamps"
    fps = float(metadata.get("fps") or DEFAULT_FPS)
    return np.arange(frames) / fps, "frame order at fps"


def _decompressed(archive: zipfile.ZipFile, name: str, dtype, size: tuple, where: str) -> np.ndarray | None:
    """A per-frame LZFSE array, or None when the archive lacks it (a ScanError when it is there but broken)."""
    try:
        compressed = archive.read(name)
    except KeyError:
        return None
    try:
        values = np.frombuffer(lzfse_module().decompress(compressed), dtype)
    except Exception as error:  # lzfse raises its own bare `lzfse.error`; any failure here means a broken file
        raise ScanError(f"{where}: {name} does not decompress as LZFSE ({error!r})") from None
    if values.size != size[0] * size[1]:
        raise ScanError(f"{where}: {name} holds {values.size} values, but the metadata's dw x dh is "
                        f"{size[1]}x{size[0]} = {size[0] * size[1]}")
    return values.reshape(size).copy()


def _frame(archive, i: int, metadata: dict, K: np.ndarray, timestamp: float, path: Path) -> RawFrame:
    image_name = f"rgbd/{i}.jpg"
    try:
        rgb = decode_rgb(archive.read(image_name), f"{path}: {image_name}")
    except KeyError:
        raise ScanError(f"{path}: frame {i} has no {image_name}") from None
    if rgb.shape[:2] != (metadata["h"], metadata["w"]):
        raise ScanError(f"{path}: {image_name} is {rgb.shape[1]}x{rgb.shape[0]}, but '{METADATA}' says "
                        f"w={metadata['w']}, h={metadata['h']} (its K belongs to that size)")
    depth_size = (metadata["dh"], metadata["dw"])
    depth = _decompressed(archive, f"rgbd/{i}.depth", "<f4", depth_size, str(path))
    confidence = _decompressed(archive, f"rgbd/{i}.conf", np.uint8, depth_size, str(path))
    return RawFrame(f"frame {i}", f"rgbd/{i}.depth", rgb, depth, confidence, K,
                    _pose(metadata["poses"][i], i, path), float(timestamp))


def read_r3d(path: str | Path, poses: str = CAMERA_TO_WORLD) -> Scan:
    """A Record3D `.r3d` as a Scan. `poses="world-to-camera"` reads a file whose poses are the inverse."""
    path = Path(path)
    with _open_zip(path) as archive:
        metadata = _read_metadata(archive, path)
        K = _intrinsics(metadata, path)
        count = len(metadata["poses"])
        timestamps, timing = _timestamps(metadata, count, path)
        try:
            frames = [_frame(archive, i, metadata, K, timestamps[i], path) for i in range(count)]
        except zipfile.BadZipFile as error:  # a truncated or corrupted member
            raise ScanError(f"{path}: the archive is damaged: {error}") from None
    source = {"path": str(path), "format": "record3d", "fps": metadata.get("fps"), "timestamps": timing}
    return assemble(frames, poses, source)


def _metadata_of(scan: Scan, fps: float, poses: str, where: str) -> dict:
    K = scan.intrinsics[0]
    if not np.allclose(scan.intrinsics, K):
        raise ScanError(f"{where}: Record3D holds one K for all frames, but this scan's intrinsics vary")
    file_poses = wam_to_arkit(scan.poses, poses)
    height, width = scan.rgb.shape[1:3]
    depth_height, depth_width = scan.depth.shape[1:]
    return {"w": int(width), "h": int(height), "dw": int(depth_width), "dh": int(depth_height), "fps": float(fps),
            "K": [float(v) for v in K.T.ravel()],  # column-major, as Record3D stores it
            "poses": [[*map(float, matrix_to_quaternion(T[:3, :3])), *map(float, T[:3, 3])] for T in file_poses],
            "frameTimestamps": [float(t) for t in scan.timestamps]}


def write_r3d(scan: Scan, path: str | Path, fps: float = 30, poses: str = CAMERA_TO_WORLD) -> Path:
    """Write a frames scan as a Record3D `.r3d` (poses in direction `poses`; missing depth written as 0).

    Written beside the target first and moved into place, so a crash never leaves a half archive named .r3d."""
    path = Path(path)
    frames_of(scan, str(path))
    metadata = _metadata_of(scan, fps, poses, str(path))
    lzfse = lzfse_module()
    partial = path.with_name(f".{path.name}.partial")
    try:
        # the members are JPEG and LZFSE already: deflating them again costs time for nothing
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA, json.dumps(metadata))
            for i in range(scan.frames):
                archive.writestr(f"rgbd/{i}.jpg", encode_jpeg(scan.rgb[i]))
                depth = np.nan_to_num(scan.depth[i], nan=0.0).astype("<f4")
                archive.writestr(f"rgbd/{i}.depth", lzfse.compress(depth.tobytes()))
                archive.writestr(f"rgbd/{i}.conf", lzfse.compress(scan.confidence[i].astype(np.uint8).tobytes()))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
