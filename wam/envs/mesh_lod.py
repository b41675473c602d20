"""Level of detail for headless rendering: fewer triangles in the meshes the renderer draws.

Meta-World's Sawyer arm is ~68,000 mesh triangles, and on a software rasteriser (llvmpipe)
drawing them is nearly the whole cost of a 64x64 frame, although at that size the detail
is invisible. `simplify_visual_meshes` swaps each large mesh's triangle list for a
quadric-decimated one (meshoptimizer's edge-collapse simplifier) before the renderer
uploads the meshes.

Why meshoptimizer: these CAD meshes are full of T-junction cracks (l0 has ~4,700 open edges
in 13,500 faces). A plain quadric decimator (fast-simplification) slides open edges off the
surface and gaps open: at 1,500 faces per mesh its frames were 31.6 dB PSNR against full
detail, where meshoptimizer, which collapses open edges only along themselves, gave 37.8 dB.

Physics is left exactly as it was. meshoptimizer collapses edges onto existing vertices, so
the simplified surface is made of the mesh's own vertices and only the triangle lists
change: `mesh_face`, `mesh_facenormal`, `mesh_facetexcoord` (their first slots in the
mesh's range) and `mesh_facenum`. `mesh_vert`, `mesh_vertnum`, `mesh_normal`, `mesh_graph`
(the convex hull), the hull polygons and the BVH are untouched, and MuJoCo collides mesh
geoms through the convex hull and its vertices alone, never through the triangle list; so
even meshes of colliding geoms (the Sawyer hand is one) can be simplified for drawing.
What does read the triangles: the renderer (`mjr_uploadMesh`, which loops over
`mesh_facenum` faces from `mesh_faceadr`, so a smaller count is safe), ray casting
(`mj_ray`: rangefinder sensors and viewer picking) and SDF geoms. Models with rangefinders
are left alone, and meshes that back SDF geoms are skipped.

The renderer copies the meshes into its GL context when it is created, so this must run
before the first `mujoco.Renderer(model, ...)`; a renderer that already exists keeps the
full meshes until `mjr_uploadMesh` is called again.
"""

from __future__ import annotations

import hashlib
import warnings

import meshoptimizer
import mujoco
import numpy as np

# Fewer faces than this per mesh make blobs even at 64x64.
MIN_FACES = 16
# Decimated triangle lists, keyed by the mesh's bytes and the budget: every Meta-World task
# loads the same Sawyer meshes, so a process building many envs decimates each mesh once.
_CACHE: dict[tuple[bytes, int], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}


def _decimate(verts: np.ndarray, faces: np.ndarray, max_faces: int) -> np.ndarray:
    """A triangle list of at most ~max_faces faces over the mesh's own vertex indices."""
    indices = np.ascontiguousarray(faces, dtype=np.uint32).ravel()
    out = np.zeros_like(indices)
    count = meshoptimizer.simplify(
        out,
        indices,
        np.ascontiguousarray(verts, dtype=np.float32),
        target_index_count=3 * max_faces,
        target_error=1.0,  # relative to the mesh's size: no bound, the face budget decides
    )
    new_faces = out[:count].reshape(-1, 3).astype(np.int64)
    keep = (new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2]) & (new_faces[:, 0] != new_faces[:, 2])
    return new_faces[keep]


def _corner_map(faces: np.ndarray, corner_data: np.ndarray, nvert: int) -> np.ndarray:
    """For each vertex, the normal (or texcoord) index one of its face corners used."""
    table = np.zeros(nvert, dtype=np.int64)
    table[faces.ravel()] = corner_data.ravel()
    return table


def _mesh_users(model: mujoco.MjModel) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    for g in np.flatnonzero(model.geom_dataid >= 0):
        if model.geom_type[g] in (mujoco.mjtGeom.mjGEOM_MESH, mujoco.mjtGeom.mjGEOM_SDF):
            users.setdefault(int(model.geom_dataid[g]), []).append(int(g))
    return users


def simplify_visual_meshes(model: mujoco.MjModel, max_faces: int = 2000, include_colliding: bool = True) -> dict:
    """Decimate, in place, every mesh with more than `max_faces` triangles for drawing.

    Call before the first renderer is made for `model`. Meshes of colliding geoms are included
    unless `include_colliding` is False; either way no array that physics reads changes.
    Returns `{"max_faces", "faces_before", "faces_after", "meshes": {name: (before, after)},
    "skipped": {name: reason}}`, face counts summed over all the model's meshes.
    """
    if int(max_faces) < MIN_FACES:
        raise ValueError(f"max_faces must be at least {MIN_FACES}, got {max_faces}")
    max_faces = int(max_faces)
    stats: dict = {
        "max_faces": max_faces,
        "faces_before": int(model.mesh_facenum.sum()),
        "faces_after": int(model.mesh_facenum.sum()),
        "meshes": {},
        "skipped": {},
    }
    if np.any(model.sensor_type == mujoco.mjtSensor.mjSENS_RANGEFINDER):
        warnings.warn("model has rangefinder sensors, which ray-cast the full meshes; meshes left as they are")
        stats["skipped"]["*"] = "rangefinder sensors ray-cast mesh triangles"
        return stats

    users = _mesh_users(model)
    for mesh_id in range(model.nmesh):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MESH, mesh_id) or f"mesh{mesh_id}"
        nface = int(model.mesh_facenum[mesh_id])
        geoms = users.get(mesh_id, [])
        if nface <= max_faces or not geoms:
            continue
        if any(model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SDF for g in geoms):
            stats["skipped"][name] = "backs an SDF geom, whose collisions read the triangles"
            continue
        if not include_colliding and any(model.geom_contype[g] or model.geom_conaffinity[g] for g in geoms):
            stats["skipped"][name] = "used by a colliding geom"
            continue

        vadr, nvert = int(model.mesh_vertadr[mesh_id]), int(model.mesh_vertnum[mesh_id])
        fadr = int(model.mesh_faceadr[mesh_id])
        verts = model.mesh_vert[vadr : vadr + nvert]
        faces = model.mesh_face[fadr : fadr + nface]
        facenormal = model.mesh_facenormal[fadr : fadr + nface]
        has_tex = int(model.mesh_texcoordadr[mesh_id]) >= 0
        facetex = model.mesh_facetexcoord[fadr : fadr + nface] if has_tex else None

        digest = hashlib.blake2b(verts.tobytes(), digest_size=16)
        digest.update(faces.tobytes())
        digest.update(facenormal.tobytes())
        if facetex is not None:
            digest.update(facetex.tobytes())
        key = (digest.digest(), max_faces)
        if key not in _CACHE:
            new_faces = _decimate(verts, faces, max_faces)
            new_normals = _corner_map(faces, facenormal, nvert)[new_faces]
            new_tex = _corner_map(faces, facetex, nvert)[new_faces] if facetex is not None else None
            _CACHE[key] = (new_faces, new_normals, new_tex)
        new_faces, new_normals, new_tex = _CACHE[key]
        if not 0 < len(new_faces) < nface:
            stats["skipped"][name] = f"decimation gave {len(new_faces)} faces"
            continue

        k = len(new_faces)
        model.mesh_face[fadr : fadr + k] = new_faces
        model.mesh_facenormal[fadr : fadr + k] = new_normals
        if new_tex is not None:
            model.mesh_facetexcoord[fadr : fadr + k] = new_tex
        model.mesh_facenum[mesh_id] = k
        stats["meshes"][name] = (nface, k)

    stats["faces_after"] = int(model.mesh_facenum.sum())
    return stats
