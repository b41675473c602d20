"""What the phone-scan readers share: ARKit's axes to wam's, quaternions, image decoding, and the one place
where per-frame records become a checked `Scan`.

Record3D and Polycam both write ARKit's conventions (world y up, an OpenGL camera looking down -z with y up,
camera-to-world poses), so both convert the same way: wam pose = Y_UP_TO_Z_UP @ T_arkit @ OPENGL_TO_OPENCV.
Each reader only parses its container into `RawFrame`s; `assemble` then applies every check in one place, so
both formats fail (or warn) in the same words for the same fault.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from wam.real2sim.scan import OPENGL_TO_OPENCV, Y_UP_TO_Z_UP, Scan, ScanError, check_intrinsics, check_pose_direction

CAMERA_TO_WORLD, WORLD_TO_CAMERA = "camera-to-world", "world-to-camera"
POSE_DIRECTIONS = (CAMERA_TO_WORLD, WORLD_TO_CAMERA)
JPEG_QUALITY = 95
MAX_LISTED = 10  # frames named in one warning before "and N more"


class ScanWarning(UserWarning):
    """A scan that imports, but with something lost or doubtful (a frame without depth, an open mesh)."""


@dataclass
class RawFrame:
    """One frame as the file holds it: pose in the file's own axes and direction, depth None when absent."""

    name: str  # how messages name this frame, e.g. "frame 3"
    depth_file: str  # how messages name its depth file, e.g. "rgbd/3.depth"
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray | None  # (h, w) float32 metres, or None when the file has none
    confidence: np.ndarray | None  # (h, w) uint8, or None when the file has none
    intrinsics: np.ndarray  # (3, 3) of the RGB image
    pose: np.ndarray  # (4, 4) as stored in the file
    timestamp: float


def trimesh_module():
    try:
        import trimesh
    except ImportError:
        raise ImportError("reading meshes needs trimesh: pip install 'wam[real2sim]'") from None
    return trimesh


def lzfse_module():
    try:
        import lzfse
    except ImportError:
        raise ImportError("Record3D's depth is LZFSE-compressed and needs lzfse: pip install 'wam[real2sim]'") from None
    return lzfse


def check_direction(poses: str) -> None:
    if poses not in POSE_DIRECTIONS:
        raise ScanError(f"poses must be one of {', '.join(POSE_DIRECTIONS)}, got {poses!r}")


def arkit_to_wam(file_poses: np.ndarray, poses: str) -> np.ndarray:
    """(N, 4, 4) ARKit poses as the file stores them (in direction `poses`) to wam's camera-to-world poses."""
    check_direction(poses)
    camera_to_world = np.linalg.inv(file_poses) if poses == WORLD_TO_CAMERA else file_poses
    return Y_UP_TO_Z_UP @ camera_to_world @ OPENGL_TO_OPENCV


def wam_to_arkit(wam_poses: np.ndarray, poses: str) -> np.ndarray:
    """The inverse of `arkit_to_wam`: what a file in direction `poses` stores for these wam poses."""
    check_direction(poses)
    # Y_UP_TO_Z_UP is a rotation (its inverse is its transpose); the OpenGL-OpenCV flip is its own inverse.
    camera_to_world = Y_UP_TO_Z_UP.T @ wam_poses @ OPENGL_TO_OPENCV
    return np.linalg.inv(camera_to_world) if poses == WORLD_TO_CAMERA else camera_to_world


def quaternion_to_matrix(xyzw, where: str) -> np.ndarray:
    """The rotation of a Hamilton quaternion stored (x, y, z, w), as ARKit and Record3D store it."""
    q = np.asarray(xyzw, np.float64)
    norm = np.linalg.norm(q)
    if not (np.isfinite(norm) and norm > 1e-8):
        raise ScanError(f"{where}: the rotation quaternion {q.tolist()} is zero or not finite")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(x, y, z, w) with w >= 0. Divides by the largest of the four candidates, so that no rotation (180
    degree ones included) loses precision to a near-zero divisor."""
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > max(R[0, 0], R[1, 1], R[2, 2]):
        s = 2 * np.sqrt(1 + trace)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        s = 2 * np.sqrt(1 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] >= R[2, 2]:
        s = 2 * np.sqrt(1 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2 * np.sqrt(1 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4, (R[1, 0] - R[0, 1]) / s]
    q = np.array(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def check_rigid(pose: np.ndarray, where: str) -> None:
    """Refuse a pose that is not a rotation plus a translation (a scaled, sheared or non-finite matrix would
    silently bend every point of the scan)."""
    R = pose[:3, :3]
    if not np.all(np.isfinite(pose)):
        raise ScanError(f"{where}: the pose has non-finite entries")
    if not (np.allclose(R.T @ R, np.eye(3), atol=1e-3) and np.linalg.det(R) > 0):
        raise ScanError(f"{where}: the pose's 3x3 part is not a rotation (scaled, sheared or mirrored)")


def decode_rgb(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except UnidentifiedImageError:
        raise ScanError(f"{where}: not an image Pillow can read (a damaged JPEG?)") from None
    except (OSError, ValueError) as error:  # a truncated or damaged image
        raise ScanError(f"{where}: not a readable image ({error})") from None


def encode_jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # 4:4:4 chroma: the default halves colour resolution, which blurs colour edges the fused textures need
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def clean_depth(depth: np.ndarray) -> np.ndarray:
    """Metres with NaN for no reading: phones write 0 (or a negative, NaN or inf) where the sensor saw nothing."""
    depth = np.array(depth, np.float32)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _common_size(frames: list[RawFrame], size_of, what: str, where: str) -> tuple:
    """The one size every frame's `what` has (frames without it skipped), else a ScanError naming the odd one."""
    sizes = [(frame, size_of(frame)) for frame in frames if size_of(frame) is not None]
    first_frame, first = sizes[0]
    for frame, size in sizes:
        if size != first:
            raise ScanError(f"{where}: {frame.name} has {what} of {size[1]}x{size[0]}, but {first_frame.name} has "
                            f"{first[1]}x{first[0]}; a scan's frames must share one {what} size")
    return first


def _depth_stack(frames: list[RawFrame], depth_size: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Depth and confidence stacks: NaN and 0 where a frame has no depth, 2 where a frame has depth but no
    confidence (no confidence means the app did not grade its readings, not that they are bad)."""
    depth = np.full((len(frames), *depth_size), np.nan, np.float32)
    confidence = np.zeros((len(frames), *depth_size), np.uint8)
    for i, frame in enumerate(frames):
        if frame.depth is None:
            continue
        depth[i] = clean_depth(frame.depth)
        if frame.confidence is None:
            confidence[i] = np.where(np.isfinite(depth[i]), 2, 0)
            continue
        if frame.confidence.shape != frame.depth.shape:
            raise ScanError(f"{frame.name}: confidence is {frame.confidence.shape[1]}x{frame.confidence.shape[0]} "
                            f"but depth is {frame.depth.shape[1]}x{frame.depth.shape[0]}")
        if frame.confidence.size and frame.confidence.max() > 2:
            raise ScanError(f"{frame.name}: confidence goes up to {frame.confidence.max()}, expected ARKit's 0-2")
        confidence[i] = np.where(np.isfinite(depth[i]), frame.confidence, 0)
    return depth, confidence


def assemble(frames: list[RawFrame], poses: str, source: dict) -> Scan:
    """Check the frames and turn them into a Scan in wam's conventions (see the module docstring)."""
    where = source["path"]
    if not frames:
        raise ScanError(f"{where}: the scan has no frames")
    rgb_size = _common_size(frames, lambda f: f.rgb.shape[:2], "RGB", where)
    for frame in frames:
        check_intrinsics(frame.intrinsics, rgb_size[1], rgb_size[0], f"{where}: {frame.name}")
        check_rigid(frame.pose, f"{where}: {frame.name}")
    without_depth = [f"{frame.name} ({frame.depth_file})" for frame in frames if frame.depth is None]
    if len(without_depth) == len(frames):
        raise ScanError(f"{where}: no frame has depth (an RGB-only capture? wam needs the LiDAR depth)")
    if without_depth:
        warnings.warn(f"{where}: no depth file for {listed(without_depth)}; those frames keep their RGB and pose, "
                      "with depth NaN", ScanWarning, stacklevel=3)
    depth_size = _common_size(frames, lambda f: None if f.depth is None else f.depth.shape, "depth", where)
    depth, confidence = _depth_stack(frames, depth_size)
    file_poses = np.stack([frame.pose for frame in frames]).astype(np.float64)
    scan = Scan(rgb=np.stack([frame.rgb for frame in frames]), depth=depth, confidence=confidence,
                intrinsics=np.stack([frame.intrinsics for frame in frames]).astype(np.float64),
                poses=arkit_to_wam(file_poses, poses), timestamps=np.array([f.timestamp for f in frames], np.float64),
                source={**source, "poses": poses, "frames_without_depth": without_depth})
    check_pose_direction(scan)
    return scan


def frames_of(scan: Scan, where: str) -> None:
    """Refuse to write a scan that has no frames (a mesh scan) as a frame format."""
    if scan.is_mesh or scan.frames == 0:
        raise ScanError(f"{where}: this scan has no frames to write ({'a mesh scan' if scan.is_mesh else 'empty'})")
