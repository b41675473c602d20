"""From a posed RGB-D scan (or a scanned mesh) to a table and the objects on it.

1. Fuse: every confident depth reading becomes a world point; points are pooled into voxels, and a voxel
   seen fewer than `min_hits` times is dropped (noise and flying pixels rarely land twice in one place).
   Each kept voxel stands for the mean of its points, not its centre, which keeps millimetre detail.
2. Support: the world is gravity-aligned (ARKit's is), so horizontal surfaces are peaks in the height
   histogram; the support is the highest peak holding a good share of the points (a table, not the floor),
   its extent the largest connected patch of it seen from above.
3. Objects: what stands above the support, voxelised and split into connected parts. Nothing sees under an
   object, so each occupied column is filled from its lowest seen voxel down to the table: a mug keeps its
   cavity (its floor was seen) and gets a solid base.
4. Each object: a watertight mesh (marching cubes over its voxels), a pose (footprint centre, the yaw of its
   footprint's principal axis) and its size in that frame, and its mean colour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from wam.real2sim.scan import Scan
from wam.real2sim.shapes import mesh_from_voxels


@dataclass(frozen=True)
class ReconstructionConfig:
    voxel: float = 0.005  # fusion and object grid (m)
    min_hits: int = 3  # readings a voxel needs to be kept
    min_confidence: int = 1  # ARKit confidence a reading needs
    above: float = 0.012  # what is higher than this above the support is an object (m); columns are filled below
    min_object_height: float = 0.015
    min_object_voxels: int = 40
    max_height: float = 0.4  # objects taller than this above the support are scenery
    mesh_samples: int = 400_000  # points sampled from a mesh scan


@dataclass
class Support:
    top: float  # height (m)
    center: tuple[float, float]
    size: tuple[float, float]


@dataclass
class ReconstructedObject:
    mesh: object  # trimesh.Trimesh in the object's frame (footprint centred, bottom at z = 0)
    position: np.ndarray  # the object frame's origin in the world
    yaw: float
    extents: np.ndarray
    rgba: tuple[float, float, float, float]
    world_centroid: np.ndarray  # the volume centroid of its mesh, in the world
    voxels: int


@dataclass
class Reconstruction:
    support: Support
    objects: list[ReconstructedObject]
    points: np.ndarray  # (P, 3) fused points
    colors: np.ndarray  # (P, 3) in [0, 1]
    seconds: dict = field(default_factory=dict)


def scan_points(scan: Scan, config: ReconstructionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every confident reading as a world point with the colour of its RGB pixel; a mesh's surface, sampled."""
    if scan.is_mesh:
        import trimesh

        mesh = trimesh.Trimesh(scan.vertices, scan.faces, process=False)
        points, _ = trimesh.sample.sample_surface(mesh, config.mesh_samples, seed=0)
        return points, np.full((len(points), 3), 0.6)
    points, colors = [], []
    for i in range(scan.frames):
        depth = scan.depth[i]
        h, w = depth.shape
        keep = np.isfinite(depth) & (depth > 0) & (scan.confidence[i] >= config.min_confidence)
        v, u = np.nonzero(keep)
        points.append(scan.world_points(i, config.min_confidence))
        H, W = scan.rgb.shape[1:3]
        colors.append(scan.rgb[i][(v * H) // h, (u * W) // w] / 255.0)
    return np.concatenate(points), np.concatenate(colors)


def fuse(points: np.ndarray, colors: np.ndarray, config: ReconstructionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Voxels seen at least `min_hits` times, each as the mean of its points and colours."""
    cells = np.floor(points / config.voxel).astype(np.int64)
    cells -= cells.min(0)
    span = cells.max(0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]  # one integer a voxel: a fast unique
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), 6))
    np.add.at(sums, inverse, np.concatenate([points, colors], 1))
    means = sums / counts[:, None]
    kept = means[counts >= config.min_hits]
    return kept[:, :3], kept[:, 3:]


def find_support(points: np.ndarray, config: ReconstructionConfig) -> Support:
    """The highest horizontal surface holding at least a tenth of the points as the biggest one does."""
    z = points[:, 2]
    bins = np.arange(z.min(), z.max() + 2 * config.voxel, config.voxel / 2)
    counts, edges = np.histogram(z, bins)
    smoothed = np.convolve(counts, np.ones(3), mode="same")
    peaks = [i for i in range(1, len(smoothed) - 1)
             if smoothed[i] >= smoothed[i - 1] and smoothed[i] >= smoothed[i + 1] and smoothed[i] >= 0.1 * smoothed.max()]
    if not peaks:
        raise ValueError("no horizontal surface in the scan: is its world z up (a y-up export needs --up y)?")
    peak = max(peaks, key=lambda i: edges[i])
    near = np.abs(z - (edges[peak] + edges[peak + 1]) / 2) < 2 * config.voxel
    top = float(np.median(z[near]))
    surface = points[np.abs(z - top) < 1.5 * config.voxel]
    # its extent: the largest patch of the surface, seen from above on a 1 cm grid
    cell = 0.01
    low = surface[:, :2].min(0)
    index = np.floor((surface[:, :2] - low) / cell).astype(int)
    grid = np.zeros(index.max(0) + 1, bool)
    grid[index[:, 0], index[:, 1]] = True
    grid = ndimage.binary_closing(grid, iterations=3)
    labels, count = ndimage.label(grid)
    biggest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    cells = np.argwhere(labels == biggest)
    lo, hi = low + cells.min(0) * cell, low + (cells.max(0) + 1) * cell
    return Support(top, tuple(((lo + hi) / 2).tolist()), tuple((hi - lo).tolist()))


def _object_voxels(points: np.ndarray, support: Support, config: ReconstructionConfig):
    center, half = np.asarray(support.center), np.asarray(support.size) / 2
    on_table = np.all(np.abs(points[:, :2] - center) < half, axis=1)
    height = points[:, 2] - support.top
    chosen = points[on_table & (height > config.above) & (height < config.max_height)]
    if len(chosen) == 0:
        return None, None
    origin = np.array([*(chosen[:, :2].min(0) - 2 * config.voxel), support.top])
    index = np.floor((chosen - origin) / config.voxel).astype(int)
    grid = np.zeros(index.max(0) + 3, bool)
    grid[index[:, 0], index[:, 1], index[:, 2]] = True
    return grid, origin


def _fill_down(grid: np.ndarray) -> np.ndarray:
    """Fill each column from its lowest occupied voxel down to the table (no one sees under an object)."""
    seen = grid.any(axis=2)
    lowest = np.argmax(grid, axis=2)
    z = np.arange(grid.shape[2])[None, None, :]
    return grid | (seen[..., None] & (z <= lowest[..., None]))


def segment_objects(points: np.ndarray, colors: np.ndarray, support: Support,
                    config: ReconstructionConfig) -> list[ReconstructedObject]:
    grid, origin = _object_voxels(points, support, config)
    if grid is None:
        return []
    closed = ndimage.binary_closing(grid, structure=np.ones((3, 3, 3)), iterations=1)
    labels, count = ndimage.label(closed, structure=np.ones((3, 3, 3)))
    objects = []
    for label in range(1, count + 1):
        part = labels == label
        heights = np.nonzero(part.any(axis=(0, 1)))[0]
        if part.sum() < config.min_object_voxels or (heights.max() + 1) * config.voxel + config.above < config.min_object_height:
            continue
        solid = ndimage.binary_fill_holes(_fill_down(part))
        voxel_origin = origin + config.voxel / 2
        mesh = mesh_from_voxels(solid, voxel_origin, config.voxel)
        inside = np.floor((points - origin) / config.voxel).astype(int)
        valid = np.all((inside >= 0) & (inside < np.array(part.shape)), axis=1)
        mine = np.zeros(len(points), bool)
        mine[valid] = part[inside[valid, 0], inside[valid, 1], inside[valid, 2]]
        objects.append(_posed(mesh, colors[mine].mean(0) if mine.any() else np.full(3, 0.6), support, int(part.sum())))
    return objects


def _posed(mesh, color: np.ndarray, support: Support, voxels: int) -> ReconstructedObject:
    """The object's frame: yaw from its footprint's principal axis, origin at the footprint's centre on the table."""
    centroid = mesh.center_mass if mesh.is_watertight else mesh.vertices.mean(0)
    xy = mesh.vertices[:, :2] - mesh.vertices[:, :2].mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(xy.T @ xy)
    axis = eigenvectors[:, np.argmax(eigenvalues)]
    yaw = float(np.arctan2(axis[1], axis[0]))
    c, s = np.cos(-yaw), np.sin(-yaw)
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    local = mesh.copy()
    local.vertices = mesh.vertices @ turn.T
    low, high = local.bounds
    centre_local = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, support.top])
    local.vertices = local.vertices - centre_local
    local.vertices[:, 2] = np.maximum(local.vertices[:, 2], 0.0)  # marching cubes pads half a voxel below the table
    position = turn.T @ centre_local
    position[2] = support.top
    rgba = (*np.clip(color, 0, 1).tolist(), 1.0)
    return ReconstructedObject(local, position, yaw, local.extents.copy(), rgba, np.asarray(centroid), voxels)


def reconstruct(scan: Scan, config: ReconstructionConfig = ReconstructionConfig()) -> Reconstruction:
    """The table and the objects on it, from a scan in wam's conventions."""
    seconds = {}
    start = time.perf_counter()
    raw, raw_colors = scan_points(scan, config)
    if len(raw) == 0:
        raise ValueError(f"{scan.source.get('path', 'the scan')}: no depth readings to fuse")
    points, colors = fuse(raw, raw_colors, config) if not scan.is_mesh else (raw, raw_colors)
    seconds["fuse"] = time.perf_counter() - start
    support = find_support(points, config)
    seconds["support"] = time.perf_counter() - start - seconds["fuse"]
    objects = segment_objects(points, colors, support, config)
    seconds["objects"] = time.perf_counter() - start - seconds["fuse"] - seconds["support"]
    return Reconstruction(support, objects, points, colors, seconds)
