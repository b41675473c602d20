"""How good a reconstruction is, against the scene that was scanned: F-score, object centroids, sizes.

Both sides are reduced to what a scan can see: the table top where no object stands on it, and every
object surface except its underside. F-score at tau is the harmonic mean of precision (reconstructed
points within tau of the truth) and recall (true points within tau of the reconstruction), the measure
Tanks and Temples and ACDC's follow-ups report. Objects are paired with the truth by nearest centroid.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import Delaunay, cKDTree

from wam.real2sim.reconstruct import Reconstruction
from wam.real2sim.scanner import GroundTruth

SPACING = 0.003  # surface sampling (m)


def _visible_samples(mesh, spacing: float, seed: int = 0) -> np.ndarray:
    """Points over the mesh's surface except faces that look down (an object's underside)."""
    import trimesh

    keep = mesh.face_normals[:, 2] > -0.7
    part = trimesh.Trimesh(mesh.vertices, mesh.faces[keep], process=False)
    count = max(int(part.area / spacing**2), 100)
    points, _ = trimesh.sample.sample_surface(part, count, seed=seed)
    return np.asarray(points)


def _table_samples(center, size, top: float, footprints: list[np.ndarray], spacing: float) -> np.ndarray:
    xs = np.arange(center[0] - size[0] / 2, center[0] + size[0] / 2, spacing)
    ys = np.arange(center[1] - size[1] / 2, center[1] + size[1] / 2, spacing)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    free = np.ones(len(grid), bool)
    for footprint in footprints:
        free &= Delaunay(footprint).find_simplex(grid) < 0
    return np.column_stack([grid[free], np.full(free.sum(), top)])


def true_meshes(truth: GroundTruth) -> dict:
    """Each object's mesh in the world, where it stood while scanned."""
    import trimesh

    meshes = {}
    for item in truth.scene.objects:
        mesh = trimesh.load(truth.directory / item.mesh, force="mesh", process=False)
        transform = np.eye(4)
        transform[:3, :3], transform[:3, 3] = truth.rotations[item.name], truth.positions[item.name]
        meshes[item.name] = mesh.apply_transform(transform)
    return meshes


def reconstructed_meshes(reconstruction: Reconstruction) -> list:
    meshes = []
    for item in reconstruction.objects:
        c, s = np.cos(item.yaw), np.sin(item.yaw)
        transform = np.eye(4)
        transform[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        transform[:3, 3] = item.position
        meshes.append(item.mesh.copy().apply_transform(transform))
    return meshes


def _footprint(mesh) -> np.ndarray:
    from scipy.spatial import ConvexHull

    xy = mesh.vertices[:, :2]
    return xy[ConvexHull(xy).vertices]


def f_score(predicted: np.ndarray, truth: np.ndarray, tau: float) -> dict:
    precision = float(np.mean(cKDTree(truth).query(predicted)[0] < tau)) if len(predicted) else 0.0
    recall = float(np.mean(cKDTree(predicted).query(truth)[0] < tau)) if len(predicted) else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f_score": f}


def evaluate(reconstruction: Reconstruction, truth: GroundTruth, taus=(0.005, 0.01, 0.02)) -> dict:
    """F-scores of the scene's visible surfaces, and per object: centroid error, size error, found or not."""
    table = truth.scene.table
    true_by_name = true_meshes(truth)
    true_list = list(true_by_name.values())
    rebuilt = reconstructed_meshes(reconstruction)
    truth_points = np.concatenate([_table_samples(table.center, table.size, table.top, [_footprint(m) for m in true_list],
                                                  SPACING)] + [_visible_samples(m, SPACING) for m in true_list])
    support = reconstruction.support
    predicted = [_table_samples(support.center, support.size, support.top, [_footprint(m) for m in rebuilt], SPACING)]
    predicted += [_visible_samples(m, SPACING) for m in rebuilt]
    predicted_points = np.concatenate(predicted)
    inside = np.all(np.abs(predicted_points[:, :2] - np.asarray(table.center)) <= np.asarray(table.size) / 2, axis=1)
    predicted_points = predicted_points[inside]
    scores = {f"{tau * 100:g}cm": f_score(predicted_points, truth_points, tau) for tau in taus}
    true_centroids = np.array([m.center_mass for m in true_list])
    found = np.array([m.center_mass if m.is_watertight else m.vertices.mean(0) for m in rebuilt]).reshape(-1, 3)
    objects = {}
    if len(found):
        cost = np.linalg.norm(true_centroids[:, None] - found[None], axis=2)
        rows, cols = linear_sum_assignment(cost)
        pairs = dict(zip(rows.tolist(), cols.tolist()))
    else:
        pairs = {}
    for i, (name, mesh) in enumerate(true_by_name.items()):
        j = pairs.get(i)
        if j is None or cost[i, j] > 0.05:
            objects[name] = {"found": False}
            continue
        objects[name] = {"found": True, "centroid_error_m": float(cost[i, j]),
                         "height_error_m": float(rebuilt[j].extents[2] - mesh.extents[2]),
                         "volume_ratio": float(abs(rebuilt[j].volume) / abs(mesh.volume))}
    errors = [o["centroid_error_m"] for o in objects.values() if o["found"]]
    return {"f_scores": scores, "objects": objects, "objects_found": sum(o["found"] for o in objects.values()),
            "objects_true": len(true_list), "spurious_objects": max(len(rebuilt) - len(errors), 0),
            "max_centroid_error_m": max(errors) if errors else None,
            "support_height_error_m": float(support.top - table.top)}
