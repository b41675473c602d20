"""A reconstruction becomes a scene directory the tabletop env runs: `wam scan build SCAN --out SCENE`.

The table is the support's extent at its height; each object keeps its fused mesh for looks and gets convex
pieces for contact, a mass from its volume and a default density, its mean colour. The robot starts 20 cm
on the near side of the table's centre, and the front camera looks at the table from that side, as in
every other tabletop scene. Then the scene is held at rest for `settle_seconds` in simulation: an object
that slides, sinks or tips more than `stability_m` is reported (a bad reconstruction shows here first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.envs.tabletop.scene import Table, TabletopScene, save_scene
from wam.real2sim.library import write_object
from wam.real2sim.reconstruct import Reconstruction, ReconstructionConfig, reconstruct
from wam.real2sim.scan import Scan


@dataclass(frozen=True)
class BuildConfig:
    target: int | None = None  # which object the tasks act on (index); default: the one nearest the table's centre
    density: float = 500.0  # kg/m^3 for every scanned object (a material table would refine this)
    friction: float = 1.0
    settle_seconds: float = 2.0
    stability_m: float = 0.005
    decomposition: str = "clusters"  # convex pieces for contact: "clusters" (fast) or "coacd"


def scene_from_reconstruction(reconstruction: Reconstruction, directory: str | Path, name: str,
                              config: BuildConfig = BuildConfig(), source: dict | None = None) -> TabletopScene:
    directory = Path(directory)
    support = reconstruction.support
    if not reconstruction.objects:
        raise ValueError(f"{name}: the reconstruction found no object on the table; nothing to build tasks on")
    table = Table(center=tuple(support.center), size=tuple(support.size), top=support.top)
    centre = np.asarray(support.center)
    order = sorted(range(len(reconstruction.objects)),
                   key=lambda i: np.linalg.norm(reconstruction.objects[i].position[:2] - centre))
    target = order[0] if config.target is None else config.target
    if not 0 <= target < len(reconstruction.objects):
        raise ValueError(f"target {target} is not an object index: the scan has {len(reconstruction.objects)} objects")
    objects = []
    for i, item in enumerate(reconstruction.objects):
        volume = abs(item.mesh.volume) if item.mesh.is_watertight else item.mesh.convex_hull.volume
        objects.append(write_object(item.mesh, directory, f"object{i}", "scanned", item.position, item.yaw, item.rgba,
                                    config.friction, mass=float(np.clip(volume * config.density, 0.02, 2.0)),
                                    decomposition=config.decomposition))
    near = (support.center[0], support.center[1] - min(0.2, support.size[1] / 2 - 0.05), support.top + 0.15)
    scene = TabletopScene(name=name, table=table, objects=tuple(objects), target=f"object{target}", robot_start=near,
                          camera_eye=(support.center[0] + 0.28, support.center[1] - 0.42, support.top + 0.42),
                          camera_lookat=(support.center[0], support.center[1] - 0.03, support.top), source=source or {})
    save_scene(scene, directory)
    return scene


def settle_drift(directory: str | Path, seconds: float = 2.0) -> dict[str, float]:
    """How far (m) each object moves when the scene is left alone for `seconds`."""
    from wam.envs.tabletop.env import SUBSTEPS, make_scan_env

    env = make_scan_env(str(directory), task="reach", obs="state", jitter=0.0)
    try:
        env.reset(seed=0)
        names = [o.name for o in env.scene.objects]
        before = {n: env.object_pose(n)[0] for n in names}
        steps = int(round(seconds / (SUBSTEPS * env.model.opt.timestep)))
        env.data.mocap_pos[env._mocap][2] += 0.2  # the gripper out of the way
        for _ in range(steps):
            env.step(np.array([0.0, 0.0, 0.0, -1.0]))
        return {n: float(np.linalg.norm(env.object_pose(n)[0] - before[n])) for n in names}
    finally:
        env.close()


def build_scene(scan: Scan, directory: str | Path, name: str | None = None, config: BuildConfig = BuildConfig(),
                reconstruction: ReconstructionConfig = ReconstructionConfig()) -> dict:
    """Scan to scene directory; what was found, the stability check and the time each part took."""
    directory = Path(directory)
    start = time.perf_counter()
    rebuilt = reconstruct(scan, reconstruction)
    reconstructed = time.perf_counter()
    scene = scene_from_reconstruction(rebuilt, directory, name or directory.name, config,
                                      source={"scan": scan.source.get("path", ""), "format": scan.source.get("format", "")})
    written = time.perf_counter()
    drift = settle_drift(directory, config.settle_seconds)
    unstable = {k: v for k, v in drift.items() if v > config.stability_m}
    return {"scene": str(directory), "objects": len(scene.objects), "target": scene.target,
            "table": {"center": scene.table.center, "size": scene.table.size, "top": scene.table.top},
            "drift_m": drift, "unstable": unstable,
            "seconds": {"reconstruct": reconstructed - start, "write": written - reconstructed,
                        "settle": time.perf_counter() - written, "total": time.perf_counter() - start}}
