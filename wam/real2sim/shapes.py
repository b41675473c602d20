"""Object shapes as signed distance functions, their meshes, and their convex pieces for collisions.

Every object wam builds (the asset library's mugs and bottles, the held-out "real" objects of the benchmark,
a scanned object's fused voxels) becomes a mesh the same way: a distance field on a grid, marching cubes,
a watertight mesh. Collisions need convex pieces; `convex_pieces` clusters the surface and takes each
cluster's hull, adding clusters until the hulls overfill the solid by less than `overfill` (a mug needs
about 32, a box 1). It runs in tens of milliseconds where CoACD takes tens of seconds on two cores.

Shapes live in the object's own frame: footprint centred on the origin, bottom at z = 0, metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Field = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _trimesh():
    try:
        import trimesh
    except ImportError:
        raise ImportError("meshes need trimesh and scikit-image: pip install 'wam[real2sim]'") from None
    return trimesh


def _cap(d, z, height):
    return np.maximum(d, np.maximum(-z, z - height))


def box(width: float, depth: float, height: float, rounding: float = 0.004) -> Field:
    half = np.array([width, depth]) / 2 - rounding

    def field(x, y, z):
        qx, qy = np.abs(x) - half[0], np.abs(y) - half[1]
        side = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(np.maximum(qx, qy), 0) - rounding
        return _cap(side, z, height)
    return field


def cylinder(radius: float, height: float) -> Field:
    return lambda x, y, z: _cap(np.sqrt(x**2 + y**2) - radius, z, height)


def mug(radius: float, height: float, wall: float = 0.006, handle: float = 0.022) -> Field:
    def field(x, y, z):
        r = np.sqrt(x**2 + y**2)
        shell = np.maximum(_cap(r - radius, z, height), -np.maximum(r - (radius - wall), wall - z))
        ring = np.sqrt((x - radius) ** 2 + (z - height / 2) ** 2) - handle
        grip = np.maximum(np.sqrt(ring**2 + y**2) - 0.006, radius - x)
        return np.minimum(shell, grip)
    return field


def bowl(radius: float, height: float, wall: float = 0.005) -> Field:
    """A spherical cap shell: a sphere of the radius that meets the rim at `height`, hollowed, cut flat."""
    sphere_r = (radius**2 + height**2) / (2 * height)
    center = sphere_r

    def field(x, y, z):
        d = np.sqrt(x**2 + y**2 + (z - center) ** 2)
        shell = np.maximum(d - sphere_r, -(d - (sphere_r - wall)))
        return np.maximum(shell, np.maximum(-z, z - height))
    return field


def bottle(radius: float, height: float, neck: float = 0.012) -> Field:
    shoulder = 0.7 * height

    def field(x, y, z):
        r = np.sqrt(x**2 + y**2)
        body = _cap(r - radius, z, shoulder)
        taper = radius + (neck - radius) * np.clip((z - shoulder) / (0.15 * height), 0, 1)
        top = np.maximum(r - taper, np.maximum(shoulder - z, z - height))
        return np.minimum(body, top)
    return field


def ellipsoid(a: float, b: float, c: float) -> Field:
    """Resting on its bottom, flattened there so it does not roll (the held-out "pear" and "stone")."""
    def field(x, y, z):
        k = np.sqrt((x / a) ** 2 + (y / b) ** 2 + ((z - c) / c) ** 2)
        return np.maximum((k - 1) * min(a, b, c), 0.15 * c - z)
    return field


def l_block(length: float, width: float, height: float, thickness: float) -> Field:
    """An L seen from above: two bars meeting at a corner (held out: no library shape is an L)."""
    long_bar = box(length, thickness, height, 0.002)
    short_bar = box(thickness, width, height, 0.002)
    offset = np.array([(length - thickness) / 2, (width - thickness) / 2])

    def field(x, y, z):
        return np.minimum(long_bar(x, y + offset[1], z), short_bar(x + offset[0], y, z))
    return field


def hexagon(radius: float, height: float) -> Field:
    def field(x, y, z):
        q = np.stack([np.abs(x), np.abs(y)])
        k = np.array([-0.8660254, 0.5])
        dot = np.minimum(k[0] * q[0] + k[1] * q[1], 0)
        px, py = q[0] - 2 * dot * k[0], q[1] - 2 * dot * k[1]
        px = px - np.clip(px, -0.57735 * radius * 0.8660254, 0.57735 * radius * 0.8660254)
        side = np.sqrt(px**2 + (py - radius * 0.8660254) ** 2) * np.sign(py - radius * 0.8660254)
        return _cap(side, z, height)
    return field


def mesh_from_field(field: Field, extent: float, height: float, step: float = 0.003):
    """A watertight mesh of {field < 0} inside |x|, |y| <= extent, 0 <= z <= height, recentred on its footprint."""
    from skimage.measure import marching_cubes

    trimesh = _trimesh()
    axes = [np.arange(-extent - 2 * step, extent + 2 * step + 1e-9, step)] * 2
    axes.append(np.arange(-2 * step, height + 2 * step + 1e-9, step))
    grid = np.meshgrid(*axes, indexing="ij")
    values = field(*grid)
    if not (values < 0).any():
        raise ValueError("the shape is empty at this grid step")
    values[values == 0] = 1e-9  # an exact zero splits marching cubes' surface into an open sheet
    vertices, faces, _, _ = marching_cubes(values, 0.0, spacing=(step, step, step))
    vertices += np.array([a[0] for a in axes])
    # process=False: dropping marching cubes' zero-area triangles would open holes in a closed surface
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return recentre(mesh)


def mesh_from_voxels(occupied: np.ndarray, origin: np.ndarray, step: float):
    """A watertight mesh around occupied voxels (a boolean grid whose cell (0,0,0) is centred at `origin`)."""
    from scipy.ndimage import distance_transform_edt
    from skimage.measure import marching_cubes

    trimesh = _trimesh()
    padded = np.pad(occupied, 2)
    # Signed distance in voxels (outside minus inside): -1 on the boundary's inner cells, +1 on its outer
    # ones, so the zero level runs half-way between them, on the voxels' faces.
    values = (distance_transform_edt(~padded) - distance_transform_edt(padded)).astype(np.float64)
    vertices, faces, _, _ = marching_cubes(values, 0.0, spacing=(step, step, step))
    vertices += np.asarray(origin) - 2 * step
    return trimesh.Trimesh(vertices, faces, process=False)


def recentre(mesh):
    """Move a mesh so its footprint's bounding-box centre is at the origin and its bottom at z = 0."""
    low, high = mesh.bounds
    mesh.apply_translation([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    return mesh


@dataclass(frozen=True)
class Pieces:
    hulls: list  # trimesh.Trimesh, each convex
    overfill: float  # sum of hull volumes / the solid's volume


def convex_pieces(mesh, overfill: float = 1.15, most: int = 32, seed: int = 0, method: str = "clusters") -> Pieces:
    """Convex hulls of k-means clusters of the surface's vertices, k doubling from 1 until the hulls overfill
    the solid by less than `overfill` (or k reaches `most`); or, with method="coacd", CoACD's decomposition
    (slower, better on deep concavities; its own concavity threshold)."""
    from scipy.cluster.vq import kmeans2

    trimesh = _trimesh()
    volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
    if method == "coacd":
        return _coacd_pieces(mesh, volume, most, seed)
    if method != "clusters":
        raise ValueError(f"decomposition must be 'clusters' or 'coacd', got {method!r}")
    vertices = np.asarray(mesh.vertices)
    best = None
    k = 1
    while True:
        if k == 1:
            labels = np.zeros(len(vertices), int)
        else:
            _, labels = kmeans2(vertices, k, seed=seed, minit="++")
        hulls = []
        for label in range(k):
            points = vertices[labels == label]
            if len(points) >= 4:
                try:
                    hulls.append(trimesh.convex.convex_hull(points))
                except Exception:  # a flat cluster has no 3-d hull: its neighbours cover it
                    continue
        total = sum(h.volume for h in hulls)
        best = Pieces(hulls, total / max(volume, 1e-12))
        if best.overfill <= overfill or k >= most:
            return best
        k = min(2 * k, most)


def _coacd_pieces(mesh, volume: float, most: int, seed: int) -> Pieces:
    try:
        import coacd
    except ImportError:
        raise ImportError("the coacd decomposition needs CoACD: pip install 'wam[real2sim]'") from None
    trimesh = _trimesh()
    coacd.set_log_level("off")
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)), threshold=0.08,
                            max_convex_hull=most, preprocess_mode="off", mcts_iterations=40, mcts_max_depth=2,
                            resolution=800, seed=seed)
    hulls = [trimesh.Trimesh(vertices, faces).convex_hull for vertices, faces in parts]
    return Pieces(hulls, sum(h.volume for h in hulls) / max(volume, 1e-12))
