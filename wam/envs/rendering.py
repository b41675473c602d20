"""Headless rendering set-up: MuJoCo through EGL on Mesa, with the costly effects off.

Meta-World renders ten times faster at 64x64 with shadows, reflections and multisampling
off (notes/measured-facts.md), and llvmpipe's own worker threads only add contention at
that size, so rendering happens in the calling thread. Everything here is a default the
user can override by setting the variable first.
"""

from __future__ import annotations

import atexit
import os
import weakref

import numpy as np

_CONFIGURED = False


def configure_headless_rendering() -> None:
    """Point MuJoCo at EGL before it is first imported; a no-op when the user chose otherwise."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    # llvmpipe: 0 = rasterise in the calling thread (fastest for small frames, one worker per core).
    os.environ.setdefault("LP_NUM_THREADS", "0")
    _CONFIGURED = True


def disable_costly_effects(model) -> None:
    """Shadows, reflections and multisampling off; must run before the first render."""
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0
    model.vis.quality.offsamples = 0


def needs_rotation(camera: str) -> bool:
    """Meta-World's corner cameras are mounted upside down (image up points down in the world); their frames
    come out rotated 180 degrees. topview and the two hand cameras, behindGripper (image up is world up) and
    gripperPOV (looking down, image up away from the robot's base), come out right side up. MuJoCo cameras
    never mirror, so a rotation is the only fix there is."""
    return camera.startswith("corner")


def upright(image: np.ndarray, camera: str) -> np.ndarray:
    """Return the frame right side up (a contiguous copy)."""
    if needs_rotation(camera):
        return np.ascontiguousarray(image[::-1, ::-1])
    return np.ascontiguousarray(image)


_OPEN_ENVS: "weakref.WeakSet" = weakref.WeakSet()
_EXIT_HOOK_REGISTERED = False


def close_at_exit(env) -> None:
    """Close `env` (its renderer) before EGL shuts down: GL contexts freed after that print errors at exit.
    Call when the env makes its first renderer, which is after MuJoCo's EGL module registered its own hook,
    so ours runs first."""
    global _EXIT_HOOK_REGISTERED
    _OPEN_ENVS.add(env)
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(_close_open_envs)
        _EXIT_HOOK_REGISTERED = True


def forget_at_exit(env) -> None:
    _OPEN_ENVS.discard(env)


class CameraFrames:
    """Square frames of a model's named cameras for one env: the GL context is made at the first frame (an env that
    is never rendered never opens one) and closed with the env, or at exit before EGL shuts down."""

    def __init__(self, env, size: int):
        self.env, self.size, self.renderer = env, size, None

    def frame(self, model, data, camera: str) -> np.ndarray:
        if self.renderer is None:
            import mujoco

            self.renderer = mujoco.Renderer(model, self.size, self.size)
            close_at_exit(self.env)
        self.renderer.update_scene(data, camera=camera)
        return self.renderer.render()

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        forget_at_exit(self.env)


def _close_open_envs() -> None:
    for env in list(_OPEN_ENVS):
        env.close()
