"""Meta-World tasks as Gymnasium environments with fast headless pixels.

Observations are a dict: with pixels, `images` holds one uint8 HxWx3 frame, right side up,
per camera in `config.cameras` and `image` is the first of them (what single-camera
consumers read); `state` (end-effector xyz and gripper opening, the proprioception a real
arm reports) and `sim_state` (Meta-World's full 39-d vector with object and goal poses: privileged, for
scripted experts and reward heads, never for policies that should work on a real robot).
`info["success"]` is the simulator's success flag and `env.task_text` the instruction.

Meta-World's Sawyer scene has seven cameras (`camera_names`): `corner`, `corner2`, `corner3`,
`corner4` and `topview` fixed in the world, and two on the hand. `gripperPOV` is the wrist
camera: it looks straight down between the fingers, which stay in view at the frame's edges
with the object they approach or hold. `behindGripper` looks over the hand from behind,
where the arm fills the frame in some tasks (button-press-topdown, window-*) and the object
leaves the view once it is under the fingers. Every camera is drawn by one renderer with the
same fast settings, so each extra camera costs about one more render per step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from wam.envs.rendering import close_at_exit, configure_headless_rendering, disable_costly_effects, forget_at_exit, upright
from wam.envs.tasks import task_text

configure_headless_rendering()

import metaworld  # noqa: E402  (after the rendering set-up, which must precede MuJoCo's GL import)
import mujoco  # noqa: E402

from wam.envs.mesh_lod import simplify_visual_meshes  # noqa: E402

STATE_NAMES = ("ee_x", "ee_y", "ee_z", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "grip")
SIM_STATE_DIM = 39
# MuJoCo timestep 0.0025 s x frame skip 5: Meta-World's control rate.
CONTROL_FPS = 80


@dataclass(frozen=True)
class MetaWorldConfig:
    """How a Meta-World task is observed."""

    task: str
    obs: str = "pixels"  # "pixels" (image + state) or "state"
    size: int = 64
    cameras: tuple[str, ...] = ("corner2",)  # the first is `image`; "gripperPOV" is the wrist camera
    max_episode_steps: int = 500
    terminate_on_success: bool = True
    # Most triangles per mesh when drawing (wam.envs.mesh_lod): 2000 renders 64x64 ~2x faster with
    # frames >= 36 dB PSNR of full detail, physics unchanged; None draws the full meshes.
    mesh_detail: int | None = 2000

    @property
    def camera(self) -> str:
        """The camera behind `image` and `render()`."""
        return self.cameras[0]


def camera_names(model) -> tuple[str, ...]:
    """The cameras of a MuJoCo model, in model order."""
    return tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam))


@functools.lru_cache(maxsize=None)
def task_cameras(task: str) -> tuple[str, ...]:
    """The cameras of a task's scene, without a renderer (every task has the Sawyer scene's seven)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    sim = ALL_V3_ENVIRONMENTS[task]()
    try:
        return camera_names(sim.model)
    finally:
        sim.close()


def check_cameras(cameras: tuple[str, ...], available: tuple[str, ...] | None, where: str) -> None:
    """One line naming the bad camera and the ones there are (`available` None: only the form is checked)."""
    if isinstance(cameras, str) or not cameras or not all(isinstance(c, str) for c in cameras):
        raise ValueError(f"cameras must be a non-empty tuple of camera names, e.g. ('corner2',), got {cameras!r}")
    if len(set(cameras)) != len(cameras):
        raise ValueError(f"cameras must not repeat a name, got {', '.join(cameras)}")
    unknown = [c for c in cameras if available is not None and c not in available]
    if unknown:
        raise ValueError(f"unknown camera {', '.join(map(repr, unknown))} for {where}; cameras: {', '.join(available)}")


class MetaWorldEnv(gym.Env):
    """One Meta-World task; every reset draws a new object and goal placement from the seed."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_FPS}

    def __init__(self, config: MetaWorldConfig, render_mode: str | None = "rgb_array"):
        if config.obs not in ("pixels", "state"):
            raise ValueError(f"obs must be 'pixels' or 'state', got {config.obs!r}")
        if config.size < 8 or config.size > 1024:
            raise ValueError(f"size must be between 8 and 1024 pixels, got {config.size}")
        if not 1 <= config.max_episode_steps <= 500:
            raise ValueError(f"max_episode_steps must be in 1..500 (Meta-World's limit), got {config.max_episode_steps}")
        self.config = config
        self.task_name = config.task
        self.task_text = task_text(config.task)
        self.render_mode = render_mode
        benchmark = metaworld.MT1(config.task, seed=0)
        self._sim = benchmark.train_classes[config.task]()
        self._sim.set_task(benchmark.train_tasks[0])
        # Fresh placement at each reset, drawn from the seed given to reset().
        self._sim._freeze_rand_vec = False
        self._sim.seeded_rand_vec = True
        model = self._sim.model
        check_cameras(config.cameras, camera_names(model), config.task)
        disable_costly_effects(model)
        self.mesh_lod_stats = None
        if config.mesh_detail is not None:
            self.mesh_lod_stats = simplify_visual_meshes(model, config.mesh_detail)
        self._renderer: mujoco.Renderer | None = None
        self._steps = 0
        self._rng_seeded = False

        spaces = {
            "state": gym.spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32),
            "sim_state": gym.spaces.Box(-np.inf, np.inf, (SIM_STATE_DIM,), np.float32),
        }
        if config.obs == "pixels":
            shape = (config.size, config.size, 3)
            spaces["image"] = gym.spaces.Box(0, 255, shape, np.uint8)
            spaces["images"] = gym.spaces.Dict({camera: gym.spaces.Box(0, 255, shape, np.uint8) for camera in config.cameras})
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(ACTION_NAMES),), np.float32)

    def render(self) -> np.ndarray:
        """The first camera's frame."""
        return self._render(self.config.camera)

    def _render(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self._sim.model, self.config.size, self.config.size)
            close_at_exit(self)
        self._renderer.update_scene(self._sim.data, camera=camera)
        return upright(self._renderer.render(), camera)  # (H, W, 3) uint8, a fresh array

    def _observation(self, sim_obs: np.ndarray) -> dict:
        sim_state = np.asarray(sim_obs, dtype=np.float32)
        obs = {"state": sim_state[: len(STATE_NAMES)].copy(), "sim_state": sim_state}
        if self.config.obs == "pixels":
            obs["images"] = {camera: self._render(camera) for camera in self.config.cameras}
            obs["image"] = obs["images"][self.config.camera]
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._sim.seed(int(seed))
            self._rng_seeded = True
        elif not self._rng_seeded:
            self._sim.seed(int(self.np_random.integers(2**31 - 1)))
            self._rng_seeded = True
        sim_obs, _ = self._sim.reset()
        self._steps = 0
        return self._observation(sim_obs), {"success": False, "task": self.task_text}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        sim_obs, reward, _, _, sim_info = self._sim.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        success = bool(sim_info.get("success", 0.0) > 0)
        terminated = success and self.config.terminate_on_success
        truncated = self._steps >= self.config.max_episode_steps and not terminated
        info = {"success": success, "task": self.task_text}
        return self._observation(sim_obs), float(reward), terminated, truncated, info

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._sim.close()
        forget_at_exit(self)
