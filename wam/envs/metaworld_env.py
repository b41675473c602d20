"""Meta-World tasks as Gymnasium environments with fast headless pixels.

Observations are a dict: `image` (uint8 HxWx3, right side up) when pixels are asked for,
`state` (end-effector xyz and gripper opening, the proprioception a real arm reports) and
`sim_state` (Meta-World's full 39-d vector with object and goal poses: privileged, for
scripted experts and reward heads, never for policies that should work on a real robot).
`info["success"]` is the simulator's success flag and `env.task_text` the instruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import atexit
import weakref

import gymnasium as gym
import numpy as np

from wam.envs.rendering import configure_headless_rendering, disable_costly_effects, upright
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
    camera: str = "corner2"
    max_episode_steps: int = 500
    terminate_on_success: bool = True
    # Most triangles per mesh when drawing (wam.envs.mesh_lod): 2000 renders 64x64 ~2x faster with
    # frames >= 36 dB PSNR of full detail, physics unchanged; None draws the full meshes.
    mesh_detail: int | None = 2000


_OPEN_ENVS: "weakref.WeakSet[MetaWorldEnv]" = weakref.WeakSet()
_EXIT_HOOK_REGISTERED = False


def _close_open_envs() -> None:
    # GL contexts freed after EGL has shut down print errors at exit; close them while it is up.
    for env in list(_OPEN_ENVS):
        env.close()


def _register_exit_hook() -> None:
    # Registered after MuJoCo's EGL module registers its own shutdown hook, so ours runs first.
    global _EXIT_HOOK_REGISTERED
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(_close_open_envs)
        _EXIT_HOOK_REGISTERED = True


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
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, config.camera) < 0:
            cameras = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
            raise ValueError(f"unknown camera {config.camera!r} for {config.task}; cameras: {cameras}")
        disable_costly_effects(model)
        self.mesh_lod_stats = None
        if config.mesh_detail is not None:
            self.mesh_lod_stats = simplify_visual_meshes(model, config.mesh_detail)
        self._renderer: mujoco.Renderer | None = None
        _OPEN_ENVS.add(self)
        self._steps = 0
        self._rng_seeded = False

        spaces = {
            "state": gym.spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32),
            "sim_state": gym.spaces.Box(-np.inf, np.inf, (SIM_STATE_DIM,), np.float32),
        }
        if config.obs == "pixels":
            spaces["image"] = gym.spaces.Box(0, 255, (config.size, config.size, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(ACTION_NAMES),), np.float32)

    def render(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self._sim.model, self.config.size, self.config.size)
            _register_exit_hook()
        self._renderer.update_scene(self._sim.data, camera=self.config.camera)
        return upright(self._renderer.render(), self.config.camera)

    def _observation(self, sim_obs: np.ndarray) -> dict[str, np.ndarray]:
        sim_state = np.asarray(sim_obs, dtype=np.float32)
        obs = {"state": sim_state[: len(STATE_NAMES)].copy(), "sim_state": sim_state}
        if self.config.obs == "pixels":
            obs["image"] = self.render()
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
        _OPEN_ENVS.discard(self)
