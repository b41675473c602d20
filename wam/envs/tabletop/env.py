"""Any tabletop scene directory as a Gymnasium env: `wam.envs.make("scan/<SCENE>", task="push")`.

The robot is a parallel gripper hanging from a mocap body that stands for the arm, as Meta-World's Sawyer
hand does: the action moves its fingertips' centre and opens or closes the fingers. That keeps every
scanned scene usable without fitting an arm's reach to it, and the action space is Meta-World's.

Action (values in [-1, 1]): dx, dy, dz of the fingertips' centre (1 = 1 cm a step), then grip (1 closes,
-1 opens). Observation: `state` = the fingertips' centre (x, y, z) and the finger opening (m); `sim_state`
is privileged (gripper, opening, the target object's position and yaw, the goal, the task's progress) for
scripted experts only; `images` one frame per camera (`front`, `wrist`), `image` the first. 20 steps a second.

Tasks act on the scene's target object: `reach` (fingertips to its top), `push` (slide it onto a goal on
the table), `pick-place` (lift it to a goal in the air). Every reset jitters where the objects stand and
draws the goal from the seed; the task text names no object kind, so a policy trained on a scene's
digital cousins is asked the same thing in the real scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from wam.envs.rendering import CameraFrames, configure_headless_rendering, disable_costly_effects

configure_headless_rendering()

import mujoco  # noqa: E402  (after the rendering set-up)

from wam.envs.tabletop.scene import TabletopScene, camera_xml, load_scene, objects_xml, room_xml  # noqa: E402

CONTROL_FPS = 20
SUBSTEPS = 25  # of 2 ms
MOVE_M = 0.01
FINGER_LENGTH = 0.05
FINGER_OPEN = 0.045  # each finger's travel from the centre line (m)
CAMERAS = ("front", "wrist")
TASKS = {
    "reach": "reach the top of the object",
    "push": "push the object to the goal",
    "pick-place": "pick up the object and place it at the goal",
}
STATE_NAMES = ("tip_x", "tip_y", "tip_z", "opening")
ACTION_NAMES = ("dx", "dy", "dz", "grip")
SIM_STATE_DIM = 3 + 1 + 3 + 1 + 3 + 1


@dataclass(frozen=True)
class TabletopConfig:
    scene: str  # the scene directory
    task: str = "push"
    obs: str = "pixels"
    size: int = 64
    cameras: tuple[str, ...] = ("front",)
    max_episode_steps: int = 150
    terminate_on_success: bool = True
    jitter: float = 0.03  # how far (m) reset moves each object from where the scene puts it


def gripper_xml() -> str:
    """A palm with two sliding fingers under it and a wrist camera looking down between them, pulled by a weld
    toward the mocap target the actions move (a stiff spring, not a teleport: a push is a push, not a jump)."""
    finger = ('<body name="{name}" pos="0 {side:.3f} {z:.3f}" gravcomp="1"><joint name="{name}_slide" type="slide" '
              'axis="0 {axis} 0" range="0 {travel}" damping="20" armature="0.01"/><geom name="{name}_pad" type="box" '
              'size="0.008 0.006 {half}" mass="0.05" friction="2 0.02 0.0001" condim="4" rgba="0.2 0.2 0.25 1"/></body>')
    half = FINGER_LENGTH / 2
    fingers = "".join(finger.format(name=name, side=side * 0.006, z=-half, axis=side, travel=FINGER_OPEN, half=half)
                      for name, side in (("left_finger", 1), ("right_finger", -1)))
    return ('<body name="gripper_target" mocap="true" pos="0 0 0.3"/>'
            '<body name="gripper" pos="0 0 0.3" gravcomp="1"><freejoint name="gripper_free"/>'
            '<geom name="palm" type="box" size="0.015 0.06 0.008" pos="0 0 0.008" mass="0.5" rgba="0.3 0.3 0.35 1" '
            'contype="0" conaffinity="0"/><camera name="wrist" pos="0 0.0 0.02" xyaxes="0 -1 0 1 0 0" fovy="75"/>'
            f'{fingers}</body>')


WELD = '<equality><weld body1="gripper_target" body2="gripper" solref="0.02 1"/></equality>'
ACTUATORS = ('<actuator><position name="left_grip" joint="left_finger_slide" kp="400" ctrlrange="0 {t}"/>'
             '<position name="right_grip" joint="right_finger_slide" kp="400" ctrlrange="0 {t}"/></actuator>'
             ).format(t=FINGER_OPEN)


def scene_xml(scene: TabletopScene, directory: Path) -> str:
    assets, bodies = objects_xml(scene, directory)
    return (f'<mujoco model="tabletop-{scene.name}"><compiler angle="radian" autolimits="true"/>'
            '<option timestep="0.002" iterations="30" cone="elliptic" impratio="5"/>'
            '<visual><global offwidth="640" offheight="640"/></visual>'
            f'<asset>{assets}</asset><worldbody>'
            f'{room_xml(scene)}{camera_xml(scene)}'
            '<body name="goal" mocap="true"><geom name="goal_mark" type="sphere" size="0.015" rgba="0.1 0.8 0.2 0.6" '
            'contype="0" conaffinity="0"/></body>'
            f'{gripper_xml()}{bodies}</worldbody>{WELD}{ACTUATORS}</mujoco>')


def build_model(scene: TabletopScene, directory: Path) -> mujoco.MjModel:
    try:
        model = mujoco.MjModel.from_xml_string(scene_xml(scene, directory))
    except ValueError as error:
        raise ValueError(f"{directory}: MuJoCo cannot build the scene ({error})") from None
    disable_costly_effects(model)
    return model


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class TabletopEnv(gym.Env):
    """One task on one scene; every reset draws object jitter and a goal from the seed."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_FPS}

    def __init__(self, config: TabletopConfig, render_mode: str | None = "rgb_array"):
        if config.task not in TASKS:
            raise ValueError(f"unknown tabletop task {config.task!r}; tasks: {', '.join(TASKS)}")
        if config.obs not in ("pixels", "state"):
            raise ValueError(f"obs must be 'pixels' or 'state', got {config.obs!r}")
        if not 8 <= config.size <= 640:
            raise ValueError(f"size must be between 8 and 640 pixels, got {config.size}")
        if isinstance(config.cameras, str) or not config.cameras or any(c not in CAMERAS for c in config.cameras):
            raise ValueError(f"cameras must be a tuple of {', '.join(CAMERAS)}, got {config.cameras!r}")
        self.config, self.directory = config, Path(config.scene)
        self.scene = load_scene(self.directory)
        self.model = build_model(self.scene, self.directory)
        self.data = mujoco.MjData(self.model)
        self.target = self.scene.target_object
        self.task_name, self.task_text, self.render_mode = config.task, TASKS[config.task], render_mode
        self.state_names, self.action_names = STATE_NAMES, ACTION_NAMES
        self._mocap = self.model.body_mocapid[self.model.body("gripper_target").id]
        self._gripper = self.model.joint("gripper_free").qposadr[0]
        self._goal_mocap = self.model.body_mocapid[self.model.body("goal").id]
        self._fingers = [self.model.joint(f"{side}_finger_slide").qposadr[0] for side in ("left", "right")]
        table = self.scene.table
        low = np.array([table.center[0] - table.size[0] / 2, table.center[1] - table.size[1] / 2, table.top + 0.004])
        high = np.array([table.center[0] + table.size[0] / 2, table.center[1] + table.size[1] / 2, table.top + 0.35])
        self.workspace = np.stack([low, high])
        self.goal = np.zeros(3)
        self._frames = CameraFrames(self, config.size)
        self._steps = 0
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32),
                  "sim_state": gym.spaces.Box(-np.inf, np.inf, (SIM_STATE_DIM,), np.float32)}
        if config.obs == "pixels":
            shape = (config.size, config.size, 3)
            spaces["image"] = gym.spaces.Box(0, 255, shape, np.uint8)
            spaces["images"] = gym.spaces.Dict({c: gym.spaces.Box(0, 255, shape, np.uint8) for c in config.cameras})
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(ACTION_NAMES),), np.float32)

    # -- where things are -----------------------------------------------------------------------
    def tip(self) -> np.ndarray:
        return self.data.body("gripper").xpos - np.array([0.0, 0.0, FINGER_LENGTH])

    def opening(self) -> float:
        """The gap between the finger pads (m)."""
        return float(self.data.qpos[self._fingers].sum())

    def object_pose(self, name: str | None = None) -> tuple[np.ndarray, float]:
        """(position of the object frame's origin, yaw) of `name` (default: the target)."""
        body = self.data.body(name or self.target.name)
        rotation = body.xmat.reshape(3, 3)
        return body.xpos.copy(), float(np.arctan2(rotation[1, 0], rotation[0, 0]))

    def object_top(self) -> np.ndarray:
        body = self.data.body(self.target.name)
        return body.xpos + body.xmat.reshape(3, 3) @ np.array([0.0, 0.0, self.target.extents[2]])

    def object_center(self) -> np.ndarray:
        body = self.data.body(self.target.name)
        return body.xpos + body.xmat.reshape(3, 3) @ np.array([0.0, 0.0, self.target.extents[2] / 2])

    def progress(self) -> float:
        """1 at success, falling with the distance still to go (0 from 30 cm away)."""
        if self.config.task == "reach":
            distance = np.linalg.norm(self.tip() - self.object_top())
        elif self.config.task == "push":
            distance = np.linalg.norm((self.object_center() - self.goal)[:2])
        else:
            distance = np.linalg.norm(self.object_center() - self.goal)
        return float(np.clip(1.0 - max(distance - self.tolerance, 0.0) / 0.3, 0.0, 1.0))

    @property
    def tolerance(self) -> float:
        return 0.03 if self.config.task != "pick-place" else 0.04

    def success(self) -> bool:
        return self.progress() >= 1.0

    def _observation(self) -> dict:
        tip, opening = self.tip(), self.opening()
        position, yaw = self.object_pose()
        state = np.array([*tip, opening], np.float32)
        sim_state = np.array([*tip, opening, *position, yaw, *self.goal, self.progress()], np.float32)
        obs = {"state": state, "sim_state": sim_state}
        if self.config.obs == "pixels":
            obs["images"] = {camera: self._render(camera) for camera in self.config.cameras}
            obs["image"] = obs["images"][self.config.cameras[0]]
        return obs

    def render(self) -> np.ndarray:
        return self._render(self.config.cameras[0])

    def _render(self, camera: str) -> np.ndarray:
        return self._frames.frame(self.model, self.data, camera)

    # -- control ------------------------------------------------------------------------------
    def _draw_goal(self, rng: np.random.Generator) -> np.ndarray:
        start = self.object_center()
        table = self.scene.table
        for _ in range(100):
            angle = rng.uniform(-np.pi, np.pi)
            goal = start + np.array([np.cos(angle), np.sin(angle), 0.0]) * rng.uniform(0.08, 0.14)
            margin = 0.05
            inside = (abs(goal[0] - table.center[0]) < table.size[0] / 2 - margin
                      and abs(goal[1] - table.center[1]) < table.size[1] / 2 - margin)
            if inside:
                break
        if self.config.task == "pick-place":
            goal[2] = table.top + self.target.extents[2] / 2 + rng.uniform(0.06, 0.12)
        return goal

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        rng = self.np_random
        for item in self.scene.objects:
            joint = self.model.joint(f"{item.name}_joint").qposadr[0]
            shift = rng.uniform(-self.config.jitter, self.config.jitter, 2) if self.config.jitter > 0 else np.zeros(2)
            turn = rng.uniform(-0.3, 0.3) if self.config.jitter > 0 else 0.0
            self.data.qpos[joint : joint + 3] = np.asarray(item.position) + np.array([*shift, 0.002])
            self.data.qpos[joint + 3 : joint + 7] = _yaw_quat(item.yaw + turn)
        start = np.asarray(self.scene.robot_start) + rng.uniform(-0.02, 0.02, 3)
        self.data.mocap_pos[self._mocap] = start + np.array([0.0, 0.0, FINGER_LENGTH])
        self.data.qpos[self._gripper : self._gripper + 3] = self.data.mocap_pos[self._mocap]
        self.data.ctrl[:] = FINGER_OPEN
        self.data.qpos[self._fingers] = FINGER_OPEN
        mujoco.mj_forward(self.model, self.data)
        for _ in range(10):  # let the objects settle on the table
            mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self.goal = self._draw_goal(rng) if self.config.task != "reach" else self.object_top()
        self.data.mocap_pos[self._goal_mocap] = self.goal
        mujoco.mj_forward(self.model, self.data)
        self._steps = 0
        return self._observation(), {"success": False, "task": self.task_text}

    def apply(self, action: np.ndarray) -> None:
        """Move the target the gripper is pulled toward (from where the target is, as Meta-World does) and set the grip."""
        tip = np.clip(self.data.mocap_pos[self._mocap] - np.array([0.0, 0.0, FINGER_LENGTH]) + action[:3] * MOVE_M,
                      *self.workspace)
        self.data.mocap_pos[self._mocap] = tip + np.array([0.0, 0.0, FINGER_LENGTH])
        self.data.ctrl[:] = FINGER_OPEN * (1.0 - np.clip(action[3], -1, 1)) / 2

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        self.apply(np.clip(action, -1.0, 1.0))
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self._steps += 1
        if self.config.task == "reach":
            self.goal = self.object_top()
        success = self.success()
        terminated = success and self.config.terminate_on_success
        truncated = self._steps >= self.config.max_episode_steps and not terminated
        return self._observation(), float(success), terminated, truncated, {"success": success, "task": self.task_text}

    def close(self) -> None:
        self._frames.close()


def make_scan_env(name: str, task: str = "push", obs: str = "pixels", size: int = 64, cameras: tuple[str, ...] | None = None,
                  camera: str | None = None, max_episode_steps: int = 150, terminate_on_success: bool = True,
                  jitter: float = 0.03, render_mode: str | None = "rgb_array") -> TabletopEnv:
    """The registry's factory for `scan/<SCENE>`: SCENE is a scene directory; `task=` one of TASKS."""
    views = (camera,) if camera else tuple(cameras) if cameras and not isinstance(cameras, str) else cameras or ("front",)
    return TabletopEnv(TabletopConfig(name, task, obs, size, views, max_episode_steps, terminate_on_success, jitter),
                       render_mode=render_mode)
