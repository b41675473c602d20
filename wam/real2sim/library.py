"""The asset library digital cousins are drawn from, and the held-out objects of the benchmark's real scene.

The library is procedural: six kinds (box, cylinder, mug, bowl, bottle, can) at proportions drawn from a seed,
so it ships as code, not as an asset download, and any size is a parameter away. The held-out kinds (an
ellipsoid "stone", an L-shaped block, a hexagonal prism) are never in the library: a policy trained on cousins
has never seen them, as ACDC's real scenes hold objects its BEHAVIOR assets only resemble.

`write_object` turns any mesh into the files a scene names: the visual mesh, its convex pieces, its extents
and a mass from its volume and the kind's density (a small material table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.envs.tabletop.scene import SceneObject
from wam.real2sim import shapes

# kg/m^3 of the solid (a mug's ceramic, a bottle's filled volume counted as its plastic shell)
DENSITY = {"box": 400.0, "cylinder": 500.0, "mug": 1500.0, "bowl": 1200.0, "bottle": 300.0, "can": 600.0,
           "stone": 1200.0, "l-block": 600.0, "hexagon": 500.0, "scanned": 500.0}
LIBRARY_KINDS = ("box", "cylinder", "mug", "bowl", "bottle", "can")
HELD_OUT_KINDS = ("stone", "l-block", "hexagon")


@dataclass(frozen=True)
class Asset:
    """One shape at one set of proportions: `field` makes its mesh."""

    kind: str
    params: tuple[float, ...]
    field: shapes.Field
    extent: float  # half of the largest horizontal size (m), for the meshing grid
    height: float


def make_asset(kind: str, rng: np.random.Generator, scale: float = 1.0) -> Asset:
    """A `kind` at proportions drawn from `rng`, its sizes multiplied by `scale`."""
    u = rng.uniform
    if kind == "box":
        w, d, h = u(0.04, 0.07) * scale, u(0.04, 0.09) * scale, u(0.03, 0.09) * scale
        return Asset(kind, (w, d, h), shapes.box(w, d, h), max(w, d) / 2, h)
    if kind == "cylinder":
        r, h = u(0.02, 0.035) * scale, u(0.03, 0.1) * scale
        return Asset(kind, (r, h), shapes.cylinder(r, h), r, h)
    if kind == "can":
        r, h = u(0.025, 0.033) * scale, u(0.08, 0.12) * scale
        return Asset(kind, (r, h), shapes.cylinder(r, h), r, h)
    if kind == "mug":
        r, h = u(0.03, 0.04) * scale, u(0.06, 0.1) * scale
        return Asset(kind, (r, h), shapes.mug(r, h, handle=0.35 * h), r + 0.35 * h + 0.01, h)
    if kind == "bowl":
        r, h = u(0.045, 0.07) * scale, u(0.03, 0.05) * scale
        return Asset(kind, (r, h), shapes.bowl(r, h), r, h)
    if kind == "bottle":
        r, h = u(0.025, 0.035) * scale, u(0.12, 0.2) * scale
        return Asset(kind, (r, h), shapes.bottle(r, h), r, h)
    if kind == "stone":
        a, b, c = u(0.03, 0.045) * scale, u(0.022, 0.035) * scale, u(0.02, 0.03) * scale
        return Asset(kind, (a, b, c), shapes.ellipsoid(a, b, c), max(a, b), 2 * c)
    if kind == "l-block":
        length, width, h, t = u(0.06, 0.08) * scale, u(0.04, 0.06) * scale, u(0.025, 0.04) * scale, 0.022 * scale
        return Asset(kind, (length, width, h, t), shapes.l_block(length, width, h, t), max(length, width) / 2 + 0.01, h)
    if kind == "hexagon":
        r, h = u(0.025, 0.035) * scale, u(0.03, 0.07) * scale
        return Asset(kind, (r, h), shapes.hexagon(r, h), r * 1.2, h)
    raise ValueError(f"unknown object kind {kind!r}; library: {', '.join(LIBRARY_KINDS)}; "
                     f"held out: {', '.join(HELD_OUT_KINDS)}")


def asset_mesh(asset: Asset, step: float = 0.003):
    return shapes.mesh_from_field(asset.field, asset.extent, asset.height, step)


def library(count_per_kind: int = 8, seed: int = 0) -> list[Asset]:
    """The cousin library: `count_per_kind` proportions of every library kind."""
    rng = np.random.default_rng(seed)
    return [make_asset(kind, rng) for kind in LIBRARY_KINDS for _ in range(count_per_kind)]


def write_object(mesh, directory: Path, name: str, kind: str, position, yaw: float = 0.0,
                 rgba=(0.8, 0.3, 0.2, 1.0), friction: float = 1.0, mass: float | None = None,
                 decomposition: str = "clusters") -> SceneObject:
    """Write `mesh` (in the object's frame) and its convex pieces under `directory/meshes`; the scene entry."""
    meshes = Path(directory) / "meshes"
    meshes.mkdir(parents=True, exist_ok=True)
    if len(mesh.faces) == 0:
        raise ValueError(f"object {name!r}: the mesh is empty")
    # The object's frame sits under its volume's centroid, not its box's centre: a mug is grasped by its body,
    # not half-way to its handle. The world geometry stays put (the position moves by the same offset).
    centroid = mesh.center_mass if mesh.is_watertight else mesh.vertices.mean(0)
    offset = np.array([centroid[0], centroid[1], 0.0])
    mesh = mesh.copy()
    mesh.vertices = mesh.vertices - offset
    c, s = np.cos(yaw), np.sin(yaw)
    position = np.asarray(position, float) + np.array([c * offset[0] - s * offset[1], s * offset[0] + c * offset[1], 0.0])
    mesh.export(meshes / f"{name}.obj")
    pieces = shapes.convex_pieces(mesh, method=decomposition)
    hulls = []
    for i, hull in enumerate(pieces.hulls):
        hull.export(meshes / f"{name}_hull{i}.obj")
        hulls.append(f"meshes/{name}_hull{i}.obj")
    low, high = mesh.bounds
    volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
    if mass is None:
        mass = float(np.clip(volume * DENSITY.get(kind, DENSITY["scanned"]), 0.02, 2.0))
    return SceneObject(name=name, mesh=f"meshes/{name}.obj", hulls=tuple(hulls),
                       position=tuple(float(v) for v in position), yaw=float(yaw),
                       extents=tuple(float(v) for v in high - low), mass=mass, friction=friction,
                       rgba=tuple(float(v) for v in rgba), kind=kind)
