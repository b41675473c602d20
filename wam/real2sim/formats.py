"""Phone scans as the apps export them, read into wam's `Scan` (and the frame formats written back).

Every reader ends in the same conventions (wam.real2sim.scan: world z up, camera-to-world OpenCV poses, depth
in metres with NaN for no reading) and the same checks, so what follows an import never asks which app made it:
- Record3D `.r3d` (wam.real2sim.formats_r3d): a ZIP of JPEGs, LZFSE depth and ARKit poses;
- Polycam raw data (wam.real2sim.formats_polycam): a folder holding `keyframes/`;
- a mesh (`.glb`/`.gltf`, `.obj`, `.ply`): a surface, no frames; glTF is y up by its specification, OBJ and PLY
  exports are taken as z up unless told (`up=`).

`import_scan` picks the reader from the path. Faults the scan cannot survive raise a ScanError naming the file,
frame or key; losses it can survive (a frame without depth, a mesh with holes) warn with a ScanWarning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from wam.real2sim.formats_common import CAMERA_TO_WORLD, ScanWarning, check_direction, trimesh_module
from wam.real2sim.formats_polycam import KEYFRAMES, read_polycam, write_polycam
from wam.real2sim.formats_r3d import read_r3d, write_r3d
from wam.real2sim.scan import Y_UP_TO_Z_UP, Scan, ScanError

__all__ = ["ScanWarning", "import_scan", "read_mesh", "read_polycam", "read_r3d", "write_polycam", "write_r3d"]

# glTF's specification says y up; OBJ and PLY say nothing, and CAD and scanning tools mostly write z up.
MESH_UP = {".glb": "y", ".gltf": "y", ".obj": "z", ".ply": "z"}
ACCEPTED = "a Record3D .r3d file, a Polycam raw-data folder (holding keyframes/), or a .glb, .gltf, .obj or .ply mesh"


def _load_mesh(path: Path):
    """The file's triangles as one trimesh (a glTF scene's nodes flattened with their transforms applied)."""
    trimesh = trimesh_module()
    try:
        loaded = trimesh.load(path, force="mesh")
    except Exception as error:  # trimesh's loaders raise anything from ValueError to KeyError on a bad file
        raise ScanError(f"{path}: not a readable mesh ({type(error).__name__}: {error})") from None
    if isinstance(loaded, trimesh.Scene):  # older trimesh returns a scene even when forced
        loaded = loaded.to_geometry() if hasattr(loaded, "to_geometry") else trimesh.util.concatenate(loaded.dump())
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))))
    if faces.size == 0:
        raise ScanError(f"{path}: the mesh has no faces (an empty export, or a point cloud?)")
    # Rebuilt from positions alone: exporters split vertices along texture seams, which would read as holes.
    return trimesh.Trimesh(np.asarray(loaded.vertices, np.float64), faces, process=True)


def read_mesh(path: str | Path, up: str | None = None) -> Scan:
    """A mesh file as a mesh Scan, turned z up: `up="y"` or `"z"` says which axis the file has up (by default
    y for glTF, z for OBJ and PLY)."""
    path = Path(path)
    if not path.is_file():
        raise ScanError(f"{path}: no such file")
    up = up or MESH_UP.get(path.suffix.lower(), "z")
    if up not in ("y", "z"):
        raise ScanError(f"{path}: up must be 'y' or 'z', got {up!r}")
    mesh = _load_mesh(path)
    vertices = np.asarray(mesh.vertices, np.float64)
    if not np.all(np.isfinite(vertices)):
        raise ScanError(f"{path}: the mesh has non-finite vertices")
    if up == "y":
        vertices = vertices @ Y_UP_TO_Z_UP[:3, :3].T
    if not mesh.is_watertight:
        # Fusion samples the surface, so an open or non-manifold mesh still imports; a solid made from it may leak.
        warnings.warn(f"{path}: the mesh is not watertight (holes or non-manifold edges); importing its surface "
                      "anyway", ScanWarning, stacklevel=2)
    source = {"path": str(path), "format": "mesh", "up": up, "file_type": path.suffix.lower().lstrip("."),
              "watertight": bool(mesh.is_watertight)}
    return Scan.of_mesh(vertices, np.asarray(mesh.faces, np.int64), source)


def _polycam_root(path: Path) -> Path | None:
    """The Polycam export folder for `path` (the folder holding keyframes/, or keyframes/ itself), else None."""
    if (path / KEYFRAMES).is_dir():
        return path
    if path.name == KEYFRAMES and (path / "images").is_dir():
        return path.parent
    return None


def _kind(path: Path) -> str | None:
    if path.is_file() and path.suffix.lower() in MESH_UP:
        return "mesh"
    if path.is_file() and path.suffix.lower() == ".r3d":
        return "record3d"
    if path.is_dir() and _polycam_root(path) is not None:
        return "polycam"
    return None


def import_scan(src: str | Path, poses: str = CAMERA_TO_WORLD, up: str | None = None) -> Scan:
    """Read whichever phone scan `src` is (see ACCEPTED). `poses` applies to frame scans, `up` to meshes."""
    path = Path(src)
    check_direction(poses)
    if not path.exists():
        raise ScanError(f"{path}: no such file or folder; expected {ACCEPTED}")
    kind = _kind(path)
    if kind is None:
        raise ScanError(f"{path}: not a scan wam can import; expected {ACCEPTED}")
    if kind == "mesh":
        if poses != CAMERA_TO_WORLD:
            raise ScanError(f"{path}: a mesh has no camera poses; poses={poses!r} applies to .r3d and Polycam scans")
        return read_mesh(path, up)
    if up is not None:
        raise ScanError(f"{path}: up={up!r} applies to meshes; frame scans carry their own gravity direction")
    return read_r3d(path, poses) if kind == "record3d" else read_polycam(_polycam_root(path), poses)
