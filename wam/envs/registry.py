"""Every simulator behind one name: `make("metaworld/reach-v3", ...)`.

The registry is a plain dict from a family prefix to a constructor; later stages add
their own families (the dream dojo adds `dream/<run>`), and every tool that takes an env
id (collection, evaluation, the Physical API) gets them for free.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym

EnvFactory = Callable[..., gym.Env]
# A factory, or "module:function" for families defined by later stages (imported only when used,
# so this package never imports from a stage that comes after it).
REGISTRY: dict[str, EnvFactory | str] = {"dream": "wam.dojo.dream_env:make_dream", "hand": "wam.envs.hands.env:make_hand_env",
                                         "scan": "wam.envs.tabletop.env:make_scan_env"}
# What a family checks before any env of it is made (a clear error up front, not one per worker), e.g. that a
# dream's run can dream at the asked image size. Same form as REGISTRY.
PREFLIGHT: dict[str, Callable[..., None] | str] = {"dream": "wam.dojo.dream_env:preflight"}


def register(family: str, factory: EnvFactory | str) -> None:
    REGISTRY[family] = factory


def _resolve(entry):
    if isinstance(entry, str):
        import importlib

        module, function = entry.split(":")
        return getattr(importlib.import_module(module), function)
    return entry


def preflight(env_id: str, **options) -> None:
    """Raise the error `make(env_id, **options)` would meet, where the family can tell without building the env."""
    family, _, name = env_id.partition("/")
    if family in PREFLIGHT:
        _resolve(PREFLIGHT[family])(name, **options)


def make(env_id: str, **kwargs) -> gym.Env:
    """Build an environment from `<family>/<name>`, e.g. `metaworld/drawer-open-v3`."""
    family, sep, name = env_id.partition("/")
    if not sep or not name:
        raise ValueError(f"env id {env_id!r} must look like <family>/<name>, e.g. metaworld/reach-v3")
    if family not in REGISTRY:
        raise ValueError(f"unknown env family {family!r} in {env_id!r}; known: {sorted(REGISTRY)}")
    return _resolve(REGISTRY[family])(name, **kwargs)


def _make_metaworld(
    name: str,
    obs: str = "pixels",
    size: int = 64,
    camera: str | None = None,
    max_episode_steps: int = 500,
    terminate_on_success: bool = True,
    render_mode: str | None = "rgb_array",
    mesh_detail: int | None = 2000,
    cameras: tuple[str, ...] | None = None,
) -> gym.Env:
    """`camera` names one camera, `cameras` several (the first is `image`); default corner2."""
    from wam.envs.metaworld_env import MetaWorldConfig, MetaWorldEnv
    from wam.envs.tasks import resolve_tasks

    tasks = resolve_tasks(name)
    if len(tasks) != 1:
        raise ValueError(f"env id metaworld/{name} names {len(tasks)} tasks; make() builds one, e.g. metaworld/{tasks[0]}")
    task = tasks[0]
    if camera is not None and cameras is not None:
        raise ValueError(f"give camera ({camera!r}) or cameras ({cameras!r}), not both")
    if camera is not None:
        cameras = (camera,)
    elif cameras is None:
        cameras = ("corner2",)
    elif not isinstance(cameras, str):  # a string is refused by the env with a message saying what to pass
        cameras = tuple(cameras)
    config = MetaWorldConfig(task, obs, size, cameras, max_episode_steps, terminate_on_success, mesh_detail=mesh_detail)
    return MetaWorldEnv(config, render_mode=render_mode)


register("metaworld", _make_metaworld)
