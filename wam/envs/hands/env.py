"""Dexterous hand tasks as Gymnasium environments: `wam.envs.make("hand/<task>", embodiment="robot" | "human")`.

The scene: a table, the task's objects, a head-mounted egocentric camera `ego` (where a seated person's eyes
are, looking down at the table) and a wrist camera `wrist` on the hand's palm. The hand hangs from a mocap
body that stands for the arm: it follows the commanded palm pose through a weld (see embodiments.py).

Action (values in [-1, 1]): the palm's move this step (dx, dy, dz; 1 = 1.5 cm) and turn (a rotation vector
in the world frame; 1 = 0.1 rad), then one target per finger actuator, -1..1 spanning the actuator's
range. 26 values for the Shadow hand, 22 for the human hand. Relative wrist motion plus absolute joint
targets is how EgoScale labels its human video, so retargeted human motion lands in this same space.

Observation: `state` is the palm's position and the first two columns of its rotation, then every hand
joint's angle (33 values for Shadow); `sim_state` is privileged (the palm again, the 21 keypoints, the
object, the goal and the task's progress), for scripted experts only; `images` one frame per camera,
`image` the first. `info["success"]` and `env.task_text` as for Meta-World. 25 steps a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from wam.envs.rendering import CameraFrames, configure_headless_rendering, disable_costly_effects

configure_headless_rendering()

import mujoco  # noqa: E402  (after the rendering set-up, which must precede MuJoCo's GL import)

from wam.ego.hands import KEYPOINTS  # noqa: E402
from wam.envs.hands import embodiments as emb  # noqa: E402
from wam.envs.hands.tasks import TABLE_XML, TASKS, set_mocap_pose  # noqa: E402

CONTROL_FPS = 25
SUBSTEPS = 20  # of 2 ms
MOVE_M, TURN_RAD = 0.015, 0.1  # per step at action 1
CAMERAS = ("ego", "wrist")
WORKSPACE = np.array([[-0.3, -0.3, 0.0], [0.4, 0.3, 0.35]])  # palm position bounds (m)
START = np.array([-0.1, 0.0, 0.14])
# Fingers forward (+x), palm down, thumb to the left (+y): columns are the hand's x, y, z in the world.
START_ROTATION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
POSE_NAMES = ("x", "y", "z", "r0", "r1", "r2", "r3", "r4", "r5")
SIM_STATE_DIM = 9 + 3 * len(KEYPOINTS) + 3 + 3 + 1


@dataclass(frozen=True)
class HandConfig:
    """Which task, which hand, and how it is observed."""

    task: str
    embodiment: str = "robot"  # "robot" (Shadow) or "human"
    obs: str = "pixels"  # "pixels" (images + state) or "state"
    size: int = 64
    cameras: tuple[str, ...] = ("ego",)
    max_episode_steps: int = 100
    terminate_on_success: bool = True


def _look_at(eye, target) -> str:
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0, 0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.4f}" for v in (*right, *up))


EGO_EYE = np.array([-0.25, 0.08, 0.42])
EGO_XML = f'<camera name="ego" pos="{" ".join(map(str, EGO_EYE))}" xyaxes="{_look_at(EGO_EYE, (0.1, -0.02, 0.0))}" fovy="60"/>'


def scene_xml(task: str, embodiment: str) -> str:
    head, asset, body = emb.shadow_xml() if embodiment == "robot" else emb.human_xml()
    return (f'<mujoco model="hand-{task}"><compiler angle="radian"/>{head}<option timestep="0.002" iterations="20"/>'
            '<visual><global offwidth="640" offheight="640"/></visual>'
            f'<asset>{asset}</asset><worldbody>'
            '<light directional="true" pos="0 0 2" dir="0.2 0.1 -1" diffuse="0.75 0.75 0.75" ambient="0.3 0.3 0.3"/>'
            f'{TABLE_XML}{EGO_XML}<body name="{emb.TARGET_BODY}" mocap="true"/>{body}{TASKS[task].xml}</worldbody>'
            f'<equality><weld body1="{emb.TARGET_BODY}" body2="{emb.ROOT_BODY}" solref="0.01 1"/></equality></mujoco>')


def build_model(task: str, embodiment: str) -> tuple[mujoco.MjModel, emb.HandModel]:
    """Compile the scene twice: once to find where the palm sits on the hand's root, then with the root
    placed so the palm starts at START, facing down, and the mocap on the palm (the weld keeps that offset)."""
    if task not in TASKS:
        raise ValueError(f"unknown hand task {task!r}; tasks: {', '.join(TASKS)}")
    if embodiment not in emb.EMBODIMENTS:
        raise ValueError(f"embodiment must be one of {', '.join(emb.EMBODIMENTS)}, got {embodiment!r}")
    spec = mujoco.MjSpec.from_string(scene_xml(task, embodiment))
    if embodiment == "robot":
        emb.finish_shadow(spec)
    root = spec.body(emb.ROOT_BODY)
    root.add_freejoint(name="hand_root")
    root.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
    root.pos, root.quat = [0, 0, 0], [1, 0, 0, 0]
    _compensate_gravity(root)
    probe = spec.compile()
    data = mujoco.MjData(probe)
    mujoco.mj_kinematics(probe, data)
    palm_position, palm_rotation = data.body(emb.PALM_BODY).xpos.copy(), data.body(emb.PALM_BODY).xmat.reshape(3, 3).copy()
    root_rotation = START_ROTATION @ palm_rotation.T
    root.pos = (START - root_rotation @ palm_position).tolist()
    root.quat = _quat(root_rotation).tolist()
    target = spec.body(emb.TARGET_BODY)
    target.pos, target.quat = START.tolist(), _quat(START_ROTATION).tolist()
    model = spec.compile()
    disable_costly_effects(model)
    hand = emb.shadow_model(model) if embodiment == "robot" else emb.human_model(model)
    return model, hand


def _compensate_gravity(body) -> None:
    body.gravcomp = 1.0
    for child in body.bodies:
        _compensate_gravity(child)


def _quat(rotation: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rotation, float).reshape(-1))
    return quat


def rotation_6d(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix).reshape(3, 3)
    return np.concatenate([matrix[:, 0], matrix[:, 1]])


class HandEnv(gym.Env):
    """One hand task with one embodiment; every reset draws a new placement from the seed."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_FPS}

    def __init__(self, config: HandConfig, render_mode: str | None = "rgb_array"):
        if config.obs not in ("pixels", "state"):
            raise ValueError(f"obs must be 'pixels' or 'state', got {config.obs!r}")
        if not 8 <= config.size <= 640:
            raise ValueError(f"size must be between 8 and 640 pixels, got {config.size}")
        if isinstance(config.cameras, str) or not config.cameras or any(c not in CAMERAS for c in config.cameras):
            raise ValueError(f"cameras must be a tuple of {', '.join(CAMERAS)}, got {config.cameras!r}")
        if config.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {config.max_episode_steps}")
        self.config = config
        self.task = TASKS.get(config.task)
        self.model, self.hand = build_model(config.task, config.embodiment)
        self.data = mujoco.MjData(self.model)
        self.task_name, self.task_text, self.render_mode = config.task, self.task.text, render_mode
        self._actuator_low, self._actuator_high = self.model.actuator_ctrlrange.T.copy()
        self._joint_addresses = np.array([self.model.joint(j).qposadr[0] for j in self.hand.joints])
        self._keypoint_ids = [self.model.site(s).id for s in emb.keypoint_sites()]
        self.state_names = POSE_NAMES + tuple(j.removeprefix("robot0:") for j in self.hand.joints)
        self.action_names = ("dx", "dy", "dz", "rx", "ry", "rz") + tuple(
            a.removeprefix("robot0:A_").removeprefix("A_") for a in self.hand.actuators)
        self._frames = CameraFrames(self, config.size)
        self._steps = 0
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (len(self.state_names),), np.float32),
                  "sim_state": gym.spaces.Box(-np.inf, np.inf, (SIM_STATE_DIM,), np.float32)}
        if config.obs == "pixels":
            shape = (config.size, config.size, 3)
            spaces["image"] = gym.spaces.Box(0, 255, shape, np.uint8)
            spaces["images"] = gym.spaces.Dict({c: gym.spaces.Box(0, 255, shape, np.uint8) for c in config.cameras})
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.action_names),), np.float32)

    # -- observation --------------------------------------------------------------------------
    def palm_pose(self) -> tuple[np.ndarray, np.ndarray]:
        body = self.data.body(emb.PALM_BODY)
        return body.xpos.copy(), body.xmat.reshape(3, 3).copy()

    def keypoints(self) -> np.ndarray:
        """(21, 3) world positions of the hand's canonical keypoints."""
        return self.data.site_xpos[self._keypoint_ids].copy()

    def _observation(self) -> dict:
        position, rotation = self.palm_pose()
        palm = np.concatenate([position, rotation_6d(rotation)])
        state = np.concatenate([palm, self.data.qpos[self._joint_addresses]]).astype(np.float32)
        model, data = self.model, self.data
        sim_state = np.concatenate([palm, self.keypoints().reshape(-1), self.task.object_position(model, data),
                                    self.task.goal_position(model, data), [self.task.progress(model, data)]])
        obs = {"state": state, "sim_state": sim_state.astype(np.float32)}
        if self.config.obs == "pixels":
            obs["images"] = {camera: self._render(camera) for camera in self.config.cameras}
            obs["image"] = obs["images"][self.config.cameras[0]]
        return obs

    def render(self) -> np.ndarray:
        return self._render(self.config.cameras[0])

    def _render(self, camera: str) -> np.ndarray:
        return self._frames.frame(self.model, self.data, camera)

    # -- control ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        rng = self.np_random
        start = START + rng.uniform(-0.02, 0.02, 3)
        root = self.model.joint("hand_root").qposadr[0]
        self.data.qpos[root : root + 3] += start - START
        set_mocap_pose(self.model, self.data, emb.TARGET_BODY, start, _quat(START_ROTATION))
        self.task.reset(self.model, self.data, rng)
        self.data.ctrl[:] = self._controls(self.hand.synergy["open"])
        mujoco.mj_forward(self.model, self.data)
        for _ in range(5):  # let the fingers reach the open pose and objects settle
            mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self._steps = 0
        return self._observation(), {"success": False, "task": self.task_text}

    def _controls(self, targets: np.ndarray) -> np.ndarray:
        return self._actuator_low + (np.clip(targets, -1, 1) + 1) / 2 * (self._actuator_high - self._actuator_low)

    def apply(self, action: np.ndarray) -> None:
        """Move the palm's target and set the finger targets (the part of `step` that acts)."""
        index = self.model.body_mocapid[self.model.body(emb.TARGET_BODY).id]
        position = np.clip(self.data.mocap_pos[index] + action[:3] * MOVE_M, *WORKSPACE)
        turn = np.zeros(4)
        mujoco.mju_axisAngle2Quat(turn, action[3:6] / max(np.linalg.norm(action[3:6]), 1e-12),
                                  float(np.linalg.norm(action[3:6])) * TURN_RAD)
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, turn, self.data.mocap_quat[index])
        self.data.mocap_pos[index], self.data.mocap_quat[index] = position, quat / np.linalg.norm(quat)
        self.data.ctrl[:] = self._controls(action[6:])

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape} for the {self.config.embodiment} hand, "
                             f"got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        self.apply(np.clip(action, -1.0, 1.0))
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        self._steps += 1
        success = self.task.success(self.model, self.data)
        terminated = success and self.config.terminate_on_success
        truncated = self._steps >= self.config.max_episode_steps and not terminated
        return self._observation(), float(success), terminated, truncated, {"success": success, "task": self.task_text}

    def close(self) -> None:
        self._frames.close()


def make_hand_env(name: str, embodiment: str = "robot", obs: str = "pixels", size: int = 64,
                  cameras: tuple[str, ...] | None = None, camera: str | None = None, max_episode_steps: int = 100,
                  terminate_on_success: bool = True, render_mode: str | None = "rgb_array") -> HandEnv:
    """The registry's factory for `hand/<task>`; `camera` names one camera, `cameras` several (default: ego)."""
    if name not in TASKS:
        raise ValueError(f"unknown hand task {name!r} in hand/{name}; tasks: {', '.join(TASKS)}")
    views = (camera,) if camera else tuple(cameras) if cameras and not isinstance(cameras, str) else cameras or ("ego",)
    config = HandConfig(name, embodiment, obs, size, views, max_episode_steps, terminate_on_success)
    return HandEnv(config, render_mode=render_mode)
