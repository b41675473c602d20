"""One posed RGB-D sequence, whatever the phone app wrote: the form every scan importer produces.

Conventions, fixed here once (the importers convert to them):
- world: metres, z up (ARKit's and glTF's y-up worlds are turned: x stays, y-up becomes z, z becomes -y);
- `poses[i]` is camera-to-world (a point in camera i's frame times it gives the world point), camera axes
  as OpenCV's: x right, y down, z forward (ARKit/OpenGL cameras look down -z with y up: flip y and z);
- `intrinsics[i]` is the pinhole matrix of the RGB image; the depth map is smaller and shares its field of
  view, so its matrix is the RGB one scaled (`depth_intrinsics`);
- depth in metres along the optical axis, NaN where the sensor gave nothing; confidence 0-2 as ARKit's.

On disk a scan is `scan.json` (sizes, conventions, provenance) and `frames.npz`; a mesh scan (a `.glb`, `.obj`
or `.ply` export) keeps its surface in `mesh.npz` instead of frames.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCAN_FILE, FRAMES_FILE, MESH_FILE = "scan.json", "frames.npz", "mesh.npz"
FORMAT, VERSION = "wam-scan", 1
CONVENTION = "camera-to-world poses, OpenCV camera axes (x right, y down, z forward), world z up, metres"

# ARKit / glTF world (y up) to wam's (z up), and an OpenGL camera (y up, looking down -z) to an OpenCV one.
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class ScanError(ValueError):
    """A scan that cannot be read or trusted, naming the file, frame or field at fault."""


@dataclass
class Scan:
    """Frames (RGB, depth, confidence, intrinsics, camera-to-world poses, times) or a mesh, in wam's conventions."""

    rgb: np.ndarray  # (N, H, W, 3) uint8
    depth: np.ndarray  # (N, h, w) float32 metres, NaN = no reading
    confidence: np.ndarray  # (N, h, w) uint8, 0 low .. 2 high
    intrinsics: np.ndarray  # (N, 3, 3) of the RGB image
    poses: np.ndarray  # (N, 4, 4) camera-to-world
    timestamps: np.ndarray  # (N,) seconds
    source: dict = field(default_factory=dict)
    vertices: np.ndarray | None = None  # a mesh scan: (V, 3) world, z up
    faces: np.ndarray | None = None  # (F, 3) int

    @property
    def frames(self) -> int:
        return len(self.poses)

    @property
    def is_mesh(self) -> bool:
        return self.vertices is not None

    def depth_intrinsics(self, i: int) -> np.ndarray:
        """The pinhole matrix of depth frame i (the RGB one scaled to the depth map's size)."""
        h, w = self.depth.shape[1:]
        H, W = self.rgb.shape[1:3]
        scale = np.diag([w / W, h / H, 1.0])
        return scale @ self.intrinsics[i]

    def world_points(self, i: int, min_confidence: int = 1) -> np.ndarray:
        """(P, 3) world points of depth frame i's pixels with a reading of at least `min_confidence`."""
        depth = self.depth[i]
        h, w = depth.shape
        v, u = np.mgrid[0:h, 0:w]
        keep = np.isfinite(depth) & (depth > 0) & (self.confidence[i] >= min_confidence)
        z = depth[keep]
        K = self.depth_intrinsics(i)
        x = (u[keep] + 0.5 - K[0, 2]) / K[0, 0] * z
        y = (v[keep] + 0.5 - K[1, 2]) / K[1, 1] * z
        camera = np.stack([x, y, z, np.ones_like(z)])
        return (self.poses[i] @ camera)[:3].T

    @classmethod
    def of_mesh(cls, vertices: np.ndarray, faces: np.ndarray, source: dict) -> "Scan":
        empty = np.zeros((0,))
        return cls(np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 1, 1), np.float32), np.zeros((0, 1, 1), np.uint8),
                   np.zeros((0, 3, 3)), np.zeros((0, 4, 4)), empty, source, np.asarray(vertices, np.float64),
                   np.asarray(faces, np.int64))


def _atomic(path: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _savez(path: str, **arrays) -> None:
    with open(path, "wb") as stream:  # a file object: given a name, numpy would add ".npz" to the temporary's
        np.savez_compressed(stream, **arrays)


def save_scan(scan: Scan, directory: str | Path) -> Path:
    """Write the scan (arrays first, then `scan.json`, each atomically: a half-written scan has no scan.json)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if scan.is_mesh:
        _atomic(directory / MESH_FILE, lambda p: _savez(p, vertices=scan.vertices, faces=scan.faces))
        meta = {"kind": "mesh", "vertices": len(scan.vertices), "faces": len(scan.faces)}
    else:
        arrays = dict(rgb=scan.rgb, depth=scan.depth, confidence=scan.confidence, intrinsics=scan.intrinsics,
                      poses=scan.poses, timestamps=scan.timestamps)
        _atomic(directory / FRAMES_FILE, lambda p: _savez(p, **arrays))
        meta = {"kind": "frames", "frames": scan.frames, "rgb_size": list(scan.rgb.shape[1:3]),
                "depth_size": list(scan.depth.shape[1:3])}
    payload = {"format": FORMAT, "version": VERSION, "convention": CONVENTION, **meta, "source": scan.source}
    _atomic(directory / SCAN_FILE, lambda p: Path(p).write_text(json.dumps(payload, indent=1)))
    return directory


def load_scan(directory: str | Path) -> Scan:
    directory = Path(directory)
    path = directory / SCAN_FILE
    if not path.is_file():
        raise ScanError(f"{directory}: no {SCAN_FILE} (import a phone scan first: wam scan import SRC --out {directory})")
    payload = json.loads(path.read_text())
    if payload.get("format") != FORMAT:
        raise ScanError(f"{path}: format is {payload.get('format')!r}, expected {FORMAT!r}")
    if payload.get("kind") == "mesh":
        with np.load(directory / MESH_FILE) as arrays:
            return Scan.of_mesh(arrays["vertices"], arrays["faces"], payload.get("source", {}))
    with np.load(directory / FRAMES_FILE) as arrays:
        return Scan(arrays["rgb"], arrays["depth"], arrays["confidence"], arrays["intrinsics"], arrays["poses"],
                    arrays["timestamps"], payload.get("source", {}))


def pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def check_intrinsics(K: np.ndarray, width: int, height: int, where: str) -> None:
    """Refuse a pinhole matrix that cannot belong to an image of this size (a principal point outside the
    image, or one far off its centre: intrinsics of another resolution, or width and height swapped)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (fx > 0 and fy > 0):
        raise ScanError(f"{where}: focal lengths must be > 0, got fx={fx:g}, fy={fy:g}")
    if not (0.25 * width < cx < 0.75 * width and 0.25 * height < cy < 0.75 * height):
        raise ScanError(f"{where}: the principal point ({cx:g}, {cy:g}) does not fit a {width}x{height} image "
                        "(intrinsics of another resolution, or width and height swapped?)")


def check_pose_direction(scan: Scan, frames: int = 12) -> None:
    """Catch the classic mix-up: world-to-camera poses read as camera-to-world.

    A phone sweep looks at one static scene, so the world points each frame sees at its image centre lie close
    together; through inverted poses they scatter by metres. If inverting every pose gathers them far better,
    the scan's poses are the other way round."""
    if scan.is_mesh or scan.frames < 3:
        return
    chosen = np.linspace(0, scan.frames - 1, min(frames, scan.frames)).astype(int)

    def spread(poses: np.ndarray) -> float:
        centres = []
        for i in chosen:
            h, w = scan.depth.shape[1:]
            patch = scan.depth[i, h // 2 - h // 8 : h // 2 + h // 8, w // 2 - w // 8 : w // 2 + w // 8]
            depth = np.nanmedian(patch) if np.isfinite(patch).any() else np.nan
            if np.isfinite(depth):
                centres.append((poses[i] @ np.array([0.0, 0.0, depth, 1.0]))[:3])
        if len(centres) < 3:
            return np.nan
        centres = np.array(centres)
        return float(np.median(np.linalg.norm(centres - np.median(centres, 0), axis=1)))

    as_given = spread(scan.poses)
    inverted = spread(np.linalg.inv(scan.poses))
    if np.isfinite(as_given) and np.isfinite(inverted) and as_given > 0.25 and inverted < 0.5 * as_given:
        raise ScanError(f"{scan.source.get('path', 'the scan')}: its poses look world-to-camera, not camera-to-world "
                        f"(the points the frames look at scatter by {as_given:.2f} m as given, {inverted:.2f} m inverted); "
                        "import it with --poses world-to-camera")
