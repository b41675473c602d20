"""The hand tasks: what is on the table, where it starts, when the task is done, and the expert's plan.

One table (its top at z = 0, x forward from the person, y to their left, z up), five tasks of different kinds:

    touch          reach: put the index fingertip on a red mark
    push           non-prehensile: push a cube onto a green goal
    lift           grasp: pick a cube up off the table
    press-button   articulated, pressing: push a spring button down
    open-drawer    articulated, pulling: hook the drawer's handle and pull it open

Goals and marks are mocap bodies (moved at reset without recompiling); fixed furniture is placed by moving
its body in the model. A task's `plan` is the scripted expert's route as phases: which point of the hand
goes where (the palm, the index tip or the fingertips' centre), in which finger pose, until how close.
The plan is written in terms of the scene, not of a hand, so the robot and the human hand share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TABLE_XML = ('<geom name="table" type="box" pos="0.1 0 -0.02" size="0.45 0.45 0.02" rgba="0.58 0.46 0.36 1" '
             'contype="1" conaffinity="1" friction="0.6 0.005 0.0001"/>')


@dataclass(frozen=True)
class Phase:
    """Move `point` ("palm", "index", "tips", "grip") to `target` (world, m) in finger pose `pose`, the palm turned by
    `turn` (a world rotation vector applied to the starting orientation: (0, 0.6, 0) tips the fingers down, (1.57, 0, 0)
    turns the palm to face left); done within `tolerance` (m), or after `hold` steps when the phase is a wait."""

    point: str
    target: np.ndarray
    pose: str
    tolerance: float = 0.01
    hold: int = 0
    turn: tuple[float, float, float] = (0.0, 0.0, 0.0)


TIP_DOWN = (0.0, 0.6, 0.0)  # fingers tipped 34 degrees down, as a person points at or presses something
PALM_LEFT = (1.5708, 0.0, 0.0)  # palm turned to face left, thumb up: the hand of a handshake or a can grasp


class HandTask:
    """Base: subclasses say what is on the table (`xml`), `reset`, `success`, `privileged` and `plan`."""

    name = ""
    text = ""
    xml = ""

    def reset(self, model, data, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def success(self, model, data) -> bool:
        raise NotImplementedError

    def object_position(self, model, data) -> np.ndarray:
        """Where the task's object (or mark) is: the 3 numbers of the privileged state every task has."""
        raise NotImplementedError

    def goal_position(self, model, data) -> np.ndarray:
        return self.object_position(model, data)

    def progress(self, model, data) -> float:
        """The articulation's travel or the lift height, 0 where the task has none: one more privileged number."""
        return 0.0

    def plan(self, start: np.ndarray, goal: np.ndarray) -> list[Phase]:
        """The expert's phases from where the object (`start`) and goal are at the episode's start."""
        raise NotImplementedError


def _mocap(model, data, body: str, position) -> None:
    data.mocap_pos[model.body_mocapid[model.body(body).id]] = position


def _free_object(model, data, joint: str, position) -> None:
    address = model.joint(joint).qposadr[0]
    data.qpos[address : address + 3] = position
    data.qpos[address + 3 : address + 7] = (1, 0, 0, 0)


def _mark(name: str, rgba: str, radius: float = 0.02) -> str:
    return (f'<body name="{name}" mocap="true" pos="0 0 0.001"><geom type="cylinder" size="{radius} 0.001" rgba="{rgba}" '
            'contype="0" conaffinity="0"/></body>')


class Touch(HandTask):
    name, text = "touch", "touch the red mark with the index finger"
    xml = _mark("mark", "0.85 0.1 0.1 1")

    def reset(self, model, data, rng):
        _mocap(model, data, "mark", (rng.uniform(0.05, 0.2), rng.uniform(-0.12, 0.12), 0.001))

    def object_position(self, model, data):
        return data.body("mark").xpos.copy()

    def success(self, model, data):
        tip = data.site("kp_index_tip").xpos
        return bool(np.linalg.norm(tip - self.object_position(model, data)) < 0.025)

    def plan(self, start, goal):
        mark = start
        return [Phase("index", mark + (0, 0, 0.06), "point", 0.015, turn=TIP_DOWN),
                Phase("index", mark + (0, 0, 0.006), "point", 0.008, turn=TIP_DOWN),
                Phase("index", mark + (0, 0, 0.006), "point", 1.0, hold=6, turn=TIP_DOWN)]


class Push(HandTask):
    name, text = "push", "push the blue cube onto the green mark"
    xml = ('<body name="cube" pos="0.1 0 0.022"><freejoint name="cube"/><geom type="box" size="0.022 0.022 0.022" '
           'rgba="0.15 0.3 0.8 1" mass="0.05" friction="0.5 0.005 0.0001" contype="1" conaffinity="1"/></body>'
           + _mark("goal", "0.1 0.75 0.2 1", 0.03))

    def reset(self, model, data, rng):
        start = np.array([rng.uniform(0.1, 0.16), rng.uniform(-0.1, 0.1), 0.022])  # beyond the fingers at the start
        _free_object(model, data, "cube", start)
        _mocap(model, data, "goal", (start[0] + rng.uniform(0.1, 0.15), start[1] + rng.uniform(-0.04, 0.04), 0.001))

    def object_position(self, model, data):
        return data.body("cube").xpos.copy()

    def goal_position(self, model, data):
        return data.body("goal").xpos.copy()

    def success(self, model, data):
        return bool(np.linalg.norm((self.object_position(model, data) - self.goal_position(model, data))[:2]) < 0.03)

    def plan(self, start, goal):
        cube = start
        heading = (goal - cube)[:2] / max(np.linalg.norm((goal - cube)[:2]), 1e-6)
        behind = np.r_[cube[:2] - heading * 0.05, 0.015]
        through = np.r_[goal[:2] - heading * 0.03, 0.015]
        # Fingers tipped down, in the hand's own pushing pose (Shadow: straight, a wall of fingertips; the person: curled).
        return [Phase("tips", behind + (0, 0, 0.1), "push", 0.02, turn=TIP_DOWN),
                Phase("tips", behind, "push", 0.012, turn=TIP_DOWN), Phase("tips", through, "push", 0.01, turn=TIP_DOWN),
                Phase("tips", through, "push", 1.0, hold=4, turn=TIP_DOWN)]


class Lift(HandTask):
    name, text = "lift", "pick up the orange can"
    xml = ('<body name="can" pos="0.1 0 0.05"><freejoint name="can"/><geom type="cylinder" size="0.025 0.05" '
           'rgba="0.95 0.55 0.1 1" mass="0.05" friction="1.5 0.01 0.001" condim="4" contype="1" conaffinity="1"/></body>')

    def reset(self, model, data, rng):
        _free_object(model, data, "can", (rng.uniform(0.06, 0.16), rng.uniform(-0.06, 0.1), 0.05))

    def object_position(self, model, data):
        return data.body("can").xpos.copy()

    def progress(self, model, data):
        return float(self.object_position(model, data)[2] - 0.05)

    def success(self, model, data):
        return self.progress(model, data) > 0.06

    def plan(self, start, goal):
        # The can goes against the palm at the fingers' roots, approached from the right with the palm facing it.
        beside = start + (-0.07, -0.10, 0.02)  # the palm high enough that the little finger clears the table
        grip = start + (-0.07, -0.037, 0.02)
        return [Phase("palm", start + (-0.2, -0.13, 0.08), "open", 0.03, turn=PALM_LEFT),
                Phase("palm", beside + (0, -0.03, 0.05), "open", 0.02, turn=PALM_LEFT),
                Phase("palm", beside, "open", 0.012, turn=PALM_LEFT), Phase("palm", grip, "open", 0.008, turn=PALM_LEFT),
                Phase("palm", grip, "grasp", 1.0, hold=10, turn=PALM_LEFT),
                Phase("palm", grip + (0, 0, 0.12), "grasp", 0.02, turn=PALM_LEFT)]


class PressButton(HandTask):
    name, text = "press-button", "press the red button"
    xml = ('<body name="button_base" pos="0.12 0 0.02"><geom type="box" size="0.04 0.04 0.02" rgba="0.3 0.3 0.32 1" '
           'contype="1" conaffinity="1"/><body name="button" pos="0 0 0.026"><joint name="button" type="slide" axis="0 0 1" '
           'range="-0.015 0" stiffness="20" damping="1" springref="0"/><geom type="cylinder" size="0.02 0.008" '
           'rgba="0.85 0.1 0.1 1" mass="0.01" contype="1" conaffinity="1"/></body></body>')

    def reset(self, model, data, rng):
        model.body("button_base").pos[:] = (rng.uniform(0.06, 0.18), rng.uniform(-0.12, 0.12), 0.02)

    def object_position(self, model, data):
        return data.body("button").xpos.copy()

    def progress(self, model, data):
        return float(-data.joint("button").qpos[0])

    def success(self, model, data):
        return self.progress(model, data) > 0.009

    def plan(self, start, goal):
        top = start + (0, 0, 0.008)
        return [Phase("index", top + (0, 0, 0.05), "point", 0.012, turn=TIP_DOWN),
                Phase("index", top - (0, 0, 0.018), "point", 0.006, turn=TIP_DOWN),
                Phase("index", top - (0, 0, 0.018), "point", 1.0, hold=4, turn=TIP_DOWN)]


class OpenDrawer(HandTask):
    name, text = "open-drawer", "pull the drawer open"
    # The drawer slides along x out of its cabinet towards the person; its handle is a bar standing 5.6 cm off its front.
    xml = ('<body name="cabinet" pos="0.2 0 0.05"><geom type="box" pos="0.06 0 0" size="0.06 0.09 0.05" '
           'rgba="0.45 0.33 0.25 1" contype="1" conaffinity="1"/>'
           '<body name="drawer" pos="-0.03 0 0"><joint name="drawer" type="slide" axis="1 0 0" range="-0.14 0" damping="3"/>'
           '<geom type="box" size="0.03 0.085 0.045" rgba="0.62 0.48 0.34 1" mass="0.3" contype="1" conaffinity="1"/>'
           '<geom type="box" pos="-0.058 -0.05 0.0" size="0.028 0.006 0.006" rgba="0.7 0.7 0.72 1" contype="1" conaffinity="1"/>'
           '<geom type="box" pos="-0.058 0.05 0.0" size="0.028 0.006 0.006" rgba="0.7 0.7 0.72 1" contype="1" conaffinity="1"/>'
           '<geom name="handle" type="capsule" fromto="-0.086 -0.055 0 -0.086 0.055 0" size="0.006" rgba="0.75 0.75 0.78 1" '
           'contype="1" conaffinity="1"/></body></body>')

    def reset(self, model, data, rng):
        model.body("cabinet").pos[:] = (rng.uniform(0.17, 0.23), rng.uniform(-0.08, 0.08), 0.05)

    def object_position(self, model, data):
        return data.geom("handle").xpos.copy()

    def progress(self, model, data):
        return float(-data.joint("drawer").qpos[0])

    def success(self, model, data):
        return self.progress(model, data) > 0.06

    def plan(self, start, goal):
        handle = start
        gap = handle + (0.028, 0, -0.005)  # between the bar and the drawer's front
        # Fingers curled into a hook above the bar, lowered into the gap behind it, then pulled towards the person.
        return [Phase("tips", gap + (0, 0, 0.07), "hook", 0.012), Phase("tips", gap, "hook", 0.015),
                Phase("tips", gap - (0.12, 0, 0), "hook", 0.012)]


TASKS: dict[str, HandTask] = {task.name: task for task in (Touch(), Push(), Lift(), PressButton(), OpenDrawer())}
HAND_TASKS = tuple(TASKS)


def resolve_hand_tasks(names: str) -> tuple[str, ...]:
    """"all" or a comma list of task names, checked."""
    if names.strip() == "all":
        return HAND_TASKS
    tasks = tuple(dict.fromkeys(n.strip().removeprefix("hand/") for n in names.split(",") if n.strip()))
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"unknown hand task {', '.join(map(repr, unknown)) or repr(names)}; tasks: {', '.join(HAND_TASKS)}, all")
    return tasks


def set_mocap_pose(model, data, body: str, position, quat) -> None:
    index = model.body_mocapid[model.body(body).id]
    data.mocap_pos[index], data.mocap_quat[index] = position, quat

