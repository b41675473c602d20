"""Tabletop scenes made from assets: where each object stands, its colour, and the scene written to disk.

`arranged_scene` builds the benchmark's "real" scene (held-out objects at seeded places); cousins reuse a
scene's layout with other assets. Objects stand apart by their footprints plus a margin, inside the part
of the table the gripper's goals may use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wam.envs.tabletop.scene import SceneObject, Table, TabletopScene, save_scene
from wam.real2sim.library import Asset, asset_mesh, make_asset, write_object

PALETTE = ((0.85, 0.25, 0.2), (0.2, 0.45, 0.85), (0.95, 0.75, 0.2), (0.3, 0.7, 0.35), (0.6, 0.35, 0.7),
           (0.9, 0.5, 0.2), (0.25, 0.7, 0.75), (0.75, 0.75, 0.72))
TABLE = Table(center=(0.0, 0.0), size=(0.7, 0.5), top=0.0)


def place(radii: list[float], rng: np.random.Generator, table: Table = TABLE, margin: float = 0.03,
          area: float = 0.12) -> list[np.ndarray]:
    """(x, y) for each footprint radius, at least `margin` apart, within `area` of the table's centre."""
    for _ in range(200):
        spots: list[np.ndarray] = []
        for radius in radii:
            for _ in range(100):
                spot = np.asarray(table.center) + rng.uniform(-area, area, 2)
                if all(np.linalg.norm(spot - other) > radius + r + margin for other, r in zip(spots, radii)):
                    spots.append(spot)
                    break
            else:
                break
        if len(spots) == len(radii):
            return spots
    raise ValueError(f"cannot place {len(radii)} objects of radii {radii} {margin} m apart on the table")


def arranged_scene(directory: str | Path, kinds: tuple[str, ...], seed: int, name: str | None = None,
                   table: Table = TABLE, step: float = 0.003) -> TabletopScene:
    """Objects of `kinds` (the first is the tasks' target) at seeded proportions, places and colours."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    assets = [make_asset(kind, rng) for kind in kinds]
    meshes = [asset_mesh(asset, step) for asset in assets]
    radii = [float(np.linalg.norm(m.extents[:2]) / 2) for m in meshes]
    spots = place(radii, rng, table)
    colours = rng.permutation(len(PALETTE))
    objects = []
    for i, (asset, mesh, spot) in enumerate(zip(assets, meshes, spots)):
        rgba = (*PALETTE[colours[i % len(PALETTE)]], 1.0)
        objects.append(write_object(mesh, directory, f"object{i}", asset.kind, (*spot, table.top),
                                    yaw=float(rng.uniform(-np.pi, np.pi)), rgba=rgba))
    scene = TabletopScene(name=name or directory.name, table=table, objects=tuple(objects), target="object0",
                          robot_start=(table.center[0], table.center[1] - 0.2, table.top + 0.15),
                          source={"made": "arranged", "kinds": list(kinds), "seed": seed})
    save_scene(scene, directory)
    return scene


def asset_object(asset: Asset, directory: Path, like: SceneObject, rgba, yaw: float, step: float = 0.003) -> SceneObject:
    """`asset` standing where `like` stands (a cousin of it)."""
    return write_object(asset_mesh(asset, step), directory, like.name, asset.kind, like.position, yaw=yaw, rgba=rgba)
