"""Closed-loop evaluation: run a policy for real episodes and count successes.

`evaluate_policy` runs `episodes` episodes per task in any environment of the registry
(the Meta-World simulator, or `dream/<RUN>`: the same episodes inside a learned world model), in worker processes
(spawned, one per core). Every episode's placement seed is a function of (seed, task,
episode number), drawn from a range the collector never uses, so evaluation scenes are
never training scenes; each worker runs torch on one thread, so results are the same
for any number of workers. Reports per task: success rate with a 95% Wilson interval,
mean episode length, and the closed-loop control rate (policy steps per second of time
spent inside `act`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wam.config import DreamSettings
from wam.data.export import write_video
from wam.envs.collect import episode_seed
from wam.envs.families import family_of
from wam.envs.registry import make
from wam.envs.tasks import MT50
from wam.train.progress import progress_bar

EVAL_SEED_OFFSET = 1_000_003  # collection seeds are small numbers; evaluation seeds live far from them


@dataclass(frozen=True)
class EvalConfig:
    policy: Path
    tasks: tuple[str, ...]
    episodes: int = 50  # per task
    workers: int = 1
    seed: int = 0
    max_steps: int = 300  # scripted experts finish every MT10 task by step 258
    camera: str | None = None  # the one camera of a single-camera policy; default: the env family's (corner2, ego)
    video_out: Path | None = None
    videos_per_task: int = 1
    env: str = "metaworld"  # "hand" (the hand scenes, Shadow hand), or "dream/<WAM RUN>": the same episodes inside a
    # learned world model
    planner: dict | None = None  # PlanConfig fields: plan with CEM in the policy run's world model instead of acting
    # Where a dream starts: "scene", the simulator's first frame of the same evaluation scene (so the dream
    # and the simulator judge the same episodes), or "data", a first frame of the world's robot data.
    dream_start: str = "scene"
    dream: DreamSettings = DreamSettings()  # how the dreams step and judge (student, judge, success_hold, verdict)
    execute: int | None = None  # actions run per predicted chunk (receding horizon); None: the run's own
    ensemble: float | None = None  # temporal ensembling with this weight decay instead (wam/policy.py)
    ray: str | None = None  # run the episodes as Ray tasks on this cluster ("auto", "local" or an address), not `workers`;
    # the policy run must be readable at the same path on every node


@dataclass
class EpisodeResult:
    task: str
    number: int
    seed: int
    success: bool
    length: int
    policy_seconds: float
    frames: np.ndarray | None = field(default=None, repr=False)
    undecided: bool = False  # a dream whose drift guard withheld the verdict (counted as no success, reported apart)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval for a success rate that stays inside [0, 1] and is honest at 0/n and n/n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(wins_a: int, n_a: int, wins_b: int, n_b: int) -> tuple[float, float]:
    """95% interval of p_a - p_b by Newcombe's hybrid score method (built from the two Wilson
    intervals): it stays inside [-1, 1] and keeps its coverage near 0 and 1, where most tasks sit."""
    p_a, p_b = wins_a / n_a, wins_b / n_b
    (low_a, high_a), (low_b, high_b) = wilson_interval(wins_a, n_a), wilson_interval(wins_b, n_b)
    difference = p_a - p_b
    return (difference - float(np.hypot(p_a - low_a, high_b - p_b)),
            difference + float(np.hypot(high_a - p_a, p_b - low_b)))


def run_episode(env, policy, task: str, seed: int, record: bool,
                options: dict | None = None) -> tuple[bool, int, float, np.ndarray | None, bool]:
    """(success, steps, seconds inside the policy, frames if recorded, undecided: a dream's drift guard withheld the
    verdict; never a success)."""
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset(task)
    frames = [obs["image"]] if record else None
    success, steps, policy_seconds, undecided = False, 0, 0.0, False
    while True:
        t0 = time.perf_counter()
        action = policy.act(obs)
        policy_seconds += time.perf_counter() - t0
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        undecided = undecided or bool(info.get("undecided", False))
        success = (success or bool(info["success"])) and not undecided
        if record:
            frames.append(obs["image"])
        if terminated or truncated:
            break
    return success, steps, policy_seconds, None if frames is None else np.stack(frames), undecided


def evaluation_seed(seed: int, task: str, number: int) -> int:
    """The placement seed of evaluation episode `number` of `task`; tasks outside MT50 (dreams of other
    data) are keyed by their text."""
    return episode_seed(EVAL_SEED_OFFSET + seed, task, number)


# -- worker side ------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(config: EvalConfig) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER["config"] = config


def _run_job(job: tuple[str, int]) -> EpisodeResult:
    from wam.policy import load

    config: EvalConfig = _WORKER["config"]
    task, number = job
    if "policy" not in _WORKER:
        if config.planner is not None:
            from wam.dojo.plan import CEMPlanner, PlanConfig

            _WORKER["policy"] = CEMPlanner(config.policy, PlanConfig(**config.planner), device="cpu")
        else:
            _WORKER["policy"] = load(config.policy, device="cpu", execute=config.execute, ensemble=config.ensemble)
    policy = _WORKER["policy"]
    if task not in _WORKER:
        if config.env.startswith("dream/"):
            _WORKER[task] = make(config.env, task=task, max_episode_steps=config.max_steps, device="cpu",
                                 settings=config.dream)
        else:
            # a policy trained on several cameras is shown the same cameras (they are named after the simulator's)
            cameras = policy.views if len(policy.views) > 1 else (view_camera(config),)
            _WORKER[task] = family_of(config.env).make_env(task, policy.image_size, cameras, config.max_steps)
    env_actions = _WORKER[task].action_space.shape[-1]
    if getattr(policy, "action_dim", env_actions) != env_actions:
        raise ValueError(f"{config.policy} acts with {policy.action_dim}-d actions (its data's), {config.env}/{task} "
                         f"takes {env_actions}-d ones: evaluate a policy on the robot it was trained for")
    seed = evaluation_seed(config.seed, task, number)
    record = config.video_out is not None and number < config.videos_per_task
    options = None
    if config.env.startswith("dream/") and config.dream_start == "scene" and task in MT50:
        options = scene_start(task, seed, policy.image_size, view_camera(config))
    success, length, seconds, frames, undecided = run_episode(_WORKER[task], policy, task, seed, record, options)
    return EpisodeResult(task, number, seed, success, length, seconds, frames, undecided)


def view_camera(config: EvalConfig) -> str:
    """The camera a single-camera policy is shown: the config's, else the family's first (a dream starts from
    Meta-World's scenes: corner2)."""

    if config.camera is not None:
        return config.camera
    family = family_of(config.env) if not config.env.startswith("dream/") else None
    return family.default_cameras[0] if family is not None else "corner2"


def scene_start(task: str, seed: int, size: int, camera: str, family: str = "metaworld") -> dict:
    """The simulator's first image and state of the evaluation scene `seed` (of Meta-World, or the hand scenes):
    where its dream starts."""
    key = f"scene/{family}/{task}"
    if key not in _WORKER:
        _WORKER[key] = make(f"{family}/{task}", obs="pixels", size=size, camera=camera)
    obs, _ = _WORKER[key].reset(seed=seed)
    return {"image": obs["image"], "state": obs["state"]}


def _close_worker() -> None:
    for key, value in list(_WORKER.items()):
        if hasattr(value, "close") and key not in ("config", "policy"):
            value.close()
    _WORKER.clear()


def _results(config: EvalConfig, jobs: list[tuple[str, int]], progress: bool):
    """Episode results in the jobs' order, from this process, local workers or Ray tasks."""
    import torch

    from wam.workers import Backend, ordered_map

    threads = torch.get_num_threads()  # a worker runs torch on one thread; in this process too, then restored
    try:
        with progress_bar("evaluate", len(jobs), "episodes", enabled=progress) as advance:
            for result in ordered_map(_worker_init, _run_job, config, jobs, Backend(config.workers, config.ray),
                                      close=_close_worker):
                yield result
                advance(1)
    finally:
        torch.set_num_threads(threads)


def evaluate_policy(config: EvalConfig, progress: bool = True) -> dict:
    """Success per task (Wilson 95%), mean length and control rate; writes videos when asked."""

    family = family_of(config.env) if not config.env.startswith("dream/") else None
    tasks = tuple(family.tasks(tuple(config.tasks))) if family is not None else tuple(config.tasks)
    if config.dream_start not in ("scene", "data"):
        raise ValueError(f"dream_start must be 'scene' or 'data', got {config.dream_start!r}")
    if config.episodes < 1 or config.workers < 1:
        raise ValueError(f"episodes and workers must be >= 1, got {config.episodes}, {config.workers}")
    from wam.policy import load

    load(config.policy, device="cpu", execute=config.execute, ensemble=config.ensemble)  # fails here, not in a worker
    jobs = [(task, n) for task in tasks for n in range(config.episodes)]
    start = time.perf_counter()
    episodes = list(_results(config, jobs, progress))
    seconds = time.perf_counter() - start
    per_task = {}
    for task in tasks:
        mine = [e for e in episodes if e.task == task]
        wins = sum(e.success for e in mine)
        low, high = wilson_interval(wins, len(mine))
        steps = sum(e.length for e in mine)
        undecided = sum(e.undecided for e in mine)
        per_task[task] = {
            "episodes": len(mine), "successes": wins, "success_rate": wins / len(mine), "wilson95": [low, high],
            "undecided": undecided, "success_rate_decided": wins / (len(mine) - undecided) if len(mine) > undecided else None,
            "mean_length": steps / len(mine), "policy_steps_per_s": steps / max(1e-9, sum(e.policy_seconds for e in mine)),
        }
    videos = _write_videos(config, episodes) if config.video_out is not None else []
    total_steps = sum(e.length for e in episodes)
    rates = [v["success_rate"] for v in per_task.values()]
    return {
        "policy": str(config.policy),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "tasks": per_task,
        "mean_success": float(np.mean(rates)),
        "episodes": len(episodes),
        "policy_steps_per_s": total_steps / max(1e-9, sum(e.policy_seconds for e in episodes)),
        "env_steps_per_s": total_steps / max(1e-9, seconds),
        "seconds": round(seconds, 1),
        "episode_results": [{"task": e.task, "number": e.number, "seed": e.seed, "success": e.success, "length": e.length,
                             **({"undecided": True} if e.undecided else {})} for e in episodes],
        "videos": videos,
    }


def _write_videos(config: EvalConfig, episodes: list[EpisodeResult]) -> list[str]:
    from wam.envs.metaworld_env import CONTROL_FPS

    written = []
    for e in episodes:
        if e.frames is None:
            continue
        frames = e.frames.repeat(2, axis=1).repeat(2, axis=2)
        for suffix in (".mp4", ".gif"):
            path = Path(config.video_out) / f"{e.task}-{e.number}-{'success' if e.success else 'failure'}{suffix}"
            write_video(frames if suffix == ".mp4" else frames[::2], path, CONTROL_FPS if suffix == ".mp4" else CONTROL_FPS // 2)
            written.append(str(path))
    return written
