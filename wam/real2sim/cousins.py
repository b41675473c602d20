"""Digital cousins: scenes that keep a scan's layout and what its objects are like, not their exact geometry.

ACDC's finding is that a policy trained across several near matches of each object transfers to the real
scene far better than one trained on a single twin, whose small errors it learns by heart. Here each object
is matched against the procedural library (`library.py`) by a shape descriptor (the log of its three sizes,
how much of its bounding box it fills, how tall it is for its footprint), and cousin j takes, for every
object, its j-th nearest asset (cycling through the k best), scaled towards the object's size with a random
factor, turned to a random yaw, moved a little, and coloured at random. `wam scan cousins SCENE --k 8 --out DIR`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wam.envs.tabletop.scene import load_scene, save_scene
from wam.real2sim.arrange import PALETTE
from wam.real2sim.library import Asset, asset_mesh, library, write_object


@dataclass(frozen=True)
class CousinConfig:
    k: int = 8  # cousin scenes
    matches: int = 4  # nearest library assets each object cycles through
    per_kind: int = 6  # library proportions of each kind
    scale_jitter: float = 0.15  # each size times U(1 - j, 1 + j) after matching the object's size
    move: float = 0.02  # m
    colour: bool = True  # random colours (the texture randomisation a 64-pixel camera can tell)
    seed: int = 0


def descriptor(mesh) -> np.ndarray:
    """Scale and shape in one vector: log sizes (sorted footprint, then height), fill of the box, height/footprint."""
    extents = np.maximum(np.asarray(mesh.extents, float), 1e-4)
    footprint = np.sort(extents[:2])[::-1]
    volume = abs(mesh.volume) if mesh.is_watertight else mesh.convex_hull.volume
    fill = volume / np.prod(extents)
    return np.array([*np.log(footprint), np.log(extents[2]), 2.0 * fill, np.log(extents[2] / footprint[0])])


def match(mesh, candidates: list[tuple[Asset, object]], count: int) -> list[tuple[Asset, object]]:
    """The `count` library assets nearest `mesh` by descriptor, each of a different proportion."""
    target = descriptor(mesh)
    distances = [np.linalg.norm(descriptor(m) - target) for _, m in candidates]
    return [candidates[i] for i in np.argsort(distances)[:count]]


def _resized(mesh, extents, rng: np.random.Generator, jitter: float):
    """The asset stretched to the object's footprint and height, each size then jittered."""
    from wam.real2sim.shapes import recentre

    mesh = mesh.copy()
    source, wanted = np.asarray(mesh.extents), np.asarray(extents, float)
    # match the long side to the long side
    order = np.argsort(source[:2])[::-1]
    goal = np.empty(3)
    goal[order] = np.sort(wanted[:2])[::-1]
    goal[2] = wanted[2]
    factors = goal / np.maximum(source, 1e-6) * rng.uniform(1 - jitter, 1 + jitter, 3)
    mesh.vertices = mesh.vertices * factors
    return recentre(mesh)


def make_cousins(scene_dir: str | Path, out: str | Path, config: CousinConfig = CousinConfig()) -> list[Path]:
    """Write `config.k` cousin scenes of `scene_dir` under `out` (cousin0, cousin1, ...); their directories."""
    import trimesh

    scene_dir, out = Path(scene_dir), Path(out)
    scene = load_scene(scene_dir)
    if config.k < 1 or config.matches < 1:
        raise ValueError(f"k and matches must be >= 1, got {config.k} and {config.matches}")
    candidates = [(asset, asset_mesh(asset, 0.004)) for asset in library(config.per_kind, config.seed)]
    matched = {item.name: match(trimesh.load(scene_dir / item.mesh, force="mesh", process=False), candidates, config.matches)
               for item in scene.objects}
    rng = np.random.default_rng(config.seed)
    directories = []
    for j in range(config.k):
        directory = out / f"cousin{j}"
        objects = []
        for item in scene.objects:
            asset, mesh = matched[item.name][j % len(matched[item.name])]
            mesh = _resized(asset_mesh(asset, 0.003), item.extents, rng, config.scale_jitter)
            rgba = (*PALETTE[rng.integers(len(PALETTE))], 1.0) if config.colour else item.rgba
            position = np.asarray(item.position) + np.array([*rng.uniform(-config.move, config.move, 2), 0.0])
            objects.append(write_object(mesh, directory, item.name, asset.kind, position, float(rng.uniform(-np.pi, np.pi)),
                                        rgba, item.friction))
        cousin = replace(scene, name=f"{scene.name}-cousin{j}", objects=tuple(objects),
                         source={"cousin_of": str(scene_dir), "index": j, "seed": config.seed,
                                 "kinds": {o.name: o.kind for o in objects}})
        save_scene(cousin, directory)
        directories.append(directory)
    return directories

