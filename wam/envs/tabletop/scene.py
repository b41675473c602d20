"""A tabletop scene as data: the table, the objects on it (meshes, collision hulls, mass, friction, colour)
and where the robot and the camera stand, in one `scene.json` beside its mesh files.

It is what a phone scan becomes (wam.real2sim writes it) and what `wam.envs.make("scan/<SCENE>")` reads:
the env knows nothing of scans, only of scene directories. World frame: z up, metres, the table top at
`table.top`. Each object's meshes are in the object's own frame (its footprint's centre at the origin,
its bottom at z = 0); `position` and `yaw` place that frame on the table.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

SCENE_FILE = "scene.json"
FORMAT = "wam-tabletop-scene"
VERSION = 1


class SceneError(ValueError):
    """A scene directory that cannot be built, naming the file and field at fault."""


@dataclass(frozen=True)
class Table:
    center: tuple[float, float] = (0.0, 0.0)  # (x, y) of the top's centre
    size: tuple[float, float] = (0.8, 0.6)  # full extent along x and y (m)
    top: float = 0.0  # height of the top surface (m)
    friction: float = 0.8
    rgba: tuple[float, float, float, float] = (0.55, 0.45, 0.35, 1.0)


@dataclass(frozen=True)
class SceneObject:
    name: str
    mesh: str  # visual mesh (.obj), relative to the scene directory, in the object's frame
    hulls: tuple[str, ...]  # convex pieces for collisions, same frame
    position: tuple[float, float, float]  # the object frame's origin (footprint centre, bottom) in the world
    yaw: float = 0.0  # rotation about z (rad)
    extents: tuple[float, float, float] = (0.05, 0.05, 0.05)  # bounding box in its own frame (m)
    mass: float = 0.1  # kg
    friction: float = 1.0
    rgba: tuple[float, float, float, float] = (0.8, 0.3, 0.2, 1.0)
    kind: str = ""  # what it was made as or matched to ("box", "mug", "scanned", ...)


@dataclass(frozen=True)
class TabletopScene:
    """Everything an env needs to build the scene; `target` is the object the tasks act on."""

    name: str
    table: Table
    objects: tuple[SceneObject, ...]
    target: str = ""
    robot_start: tuple[float, float, float] = (0.0, -0.2, 0.15)  # gripper's start (world, m)
    camera_eye: tuple[float, float, float] = (0.28, -0.42, 0.42)  # front right, above: the gripper hides little
    camera_lookat: tuple[float, float, float] = (0.0, -0.03, 0.0)
    camera_fovy: float = 45.0
    source: dict = field(default_factory=dict)  # where it came from (scan, cousin of, seed): provenance only

    def object(self, name: str) -> SceneObject:
        for item in self.objects:
            if item.name == name:
                return item
        raise SceneError(f"scene {self.name!r} has no object {name!r}; objects: {[o.name for o in self.objects]}")

    @property
    def target_object(self) -> SceneObject:
        return self.object(self.target or self.objects[0].name)


def save_scene(scene: TabletopScene, directory: str | Path) -> Path:
    """Write `scene.json` atomically (the meshes it names must already be in `directory`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for item in scene.objects:
        for path in (item.mesh, *item.hulls):
            if not (directory / path).is_file():
                raise SceneError(f"{directory / SCENE_FILE}: object {item.name!r} names {path}, which is not there")
    payload = {"format": FORMAT, "version": VERSION, **asdict(scene)}
    target = directory / SCENE_FILE
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".scene-", suffix=".json")
    with os.fdopen(handle, "w") as stream:
        json.dump(payload, stream, indent=1)
    os.replace(temporary, target)
    return target


def load_scene(directory: str | Path) -> TabletopScene:
    directory = Path(directory)
    path = directory / SCENE_FILE
    if not path.is_file():
        raise SceneError(f"{directory}: no {SCENE_FILE} (a scene directory is written by `wam scan build` or "
                         "`wam scan cousins`)")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SceneError(f"{path}: not JSON ({error})") from None
    if payload.get("format") != FORMAT:
        raise SceneError(f"{path}: format is {payload.get('format')!r}, expected {FORMAT!r}")
    try:
        table = Table(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["table"].items()})
        objects = tuple(SceneObject(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})
                        for item in payload["objects"])
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()
                  if k not in ("format", "version", "table", "objects")}
        scene = TabletopScene(table=table, objects=objects, **fields)
    except (KeyError, TypeError) as error:
        raise SceneError(f"{path}: a field is missing or unknown ({error})") from None
    if not scene.objects:
        raise SceneError(f"{path}: the scene has no objects")
    for item in scene.objects:
        for mesh in (item.mesh, *item.hulls):
            if not (directory / mesh).is_file():
                raise SceneError(f"{path}: object {item.name!r} names {mesh}, which is not in {directory}")
        if not item.hulls:
            raise SceneError(f"{path}: object {item.name!r} has no collision hulls")
        if item.mass <= 0:
            raise SceneError(f"{path}: object {item.name!r} has mass {item.mass}; it must be > 0")
    scene.target_object  # noqa: B018  (raises on a target that names no object)
    return scene


def moved(scene: TabletopScene, name: str, position, yaw: float) -> TabletopScene:
    """The scene with one object placed elsewhere."""
    objects = tuple(replace(o, position=tuple(float(v) for v in position), yaw=float(yaw)) if o.name == name else o
                    for o in scene.objects)
    return replace(scene, objects=objects)


def _vector(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _look_at_axes(eye, target) -> str:
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return _vector((*right, *up))


def objects_xml(scene: TabletopScene, directory: Path) -> tuple[str, str]:
    """(assets, bodies): each object a free body of convex hull geoms (its mass spread by volume) and a visual mesh."""
    assets, bodies = [], []
    for item in scene.objects:
        assets.append(f'<mesh name="{item.name}_visual" file="{(directory / item.mesh).resolve()}"/>')
        hulls = []
        for i, hull in enumerate(item.hulls):
            assets.append(f'<mesh name="{item.name}_hull{i}" file="{(directory / hull).resolve()}"/>')
            hulls.append(f'<geom name="{item.name}_hull{i}" type="mesh" mesh="{item.name}_hull{i}" group="3" '
                         f'friction="{item.friction} 0.01 0.0001" rgba="0 0 0 0" condim="4"/>')
        half = np.asarray(item.extents) / 2
        bodies.append(
            f'<body name="{item.name}" pos="{_vector(item.position)}" euler="0 0 {item.yaw:.6g}">'
            f'<freejoint name="{item.name}_joint"/>'
            f'<inertial pos="0 0 {half[2]:.6g}" mass="{item.mass:.6g}" diaginertia="{_vector(_box_inertia(item.mass, half))}"/>'
            f'<geom name="{item.name}_visual" type="mesh" mesh="{item.name}_visual" contype="0" conaffinity="0" '
            f'group="1" mass="0" rgba="{_vector(item.rgba)}"/>{"".join(hulls)}</body>')
    return "".join(assets), "".join(bodies)


def _box_inertia(mass: float, half: np.ndarray) -> np.ndarray:
    """The inertia of the object's bounding box: near enough for objects pushed and lifted slowly, and
    defined for any visual mesh (MuJoCo's own mesh inertia refuses open or inverted scanned meshes)."""
    a, b, c = (2 * half) ** 2
    return mass / 12 * np.array([b + c, a + c, a + b])


def table_xml(table: Table) -> str:
    """The top as a box 4 cm thick, its upper face at `table.top`."""
    half = (table.size[0] / 2, table.size[1] / 2, 0.02)
    center = (table.center[0], table.center[1], table.top - 0.02)
    return (f'<geom name="table" type="box" pos="{_vector(center)}" size="{_vector(half)}" rgba="{_vector(table.rgba)}" '
            f'friction="{table.friction} 0.005 0.0001"/>')


def room_xml(scene: TabletopScene) -> str:
    """The light, the floor 75 cm below the top and the table: what the env and the synthetic scanner both render."""
    return ('<light directional="true" pos="0 0 2" dir="0.2 0.3 -1" diffuse="0.7 0.7 0.7" ambient="0.35 0.35 0.35"/>'
            f'<geom name="floor" type="plane" size="3 3 0.1" pos="0 0 {scene.table.top - 0.75:.4f}" rgba="0.3 0.32 0.35 1"/>'
            f'{table_xml(scene.table)}')


def camera_xml(scene: TabletopScene) -> str:
    return (f'<camera name="front" pos="{_vector(scene.camera_eye)}" '
            f'xyaxes="{_look_at_axes(scene.camera_eye, scene.camera_lookat)}" fovy="{scene.camera_fovy:.6g}"/>')
