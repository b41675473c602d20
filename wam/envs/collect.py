"""Scripted experts drive Meta-World and their episodes become a dataset.

Labelled robot episodes and action-free video come from the same collector: with
`actions=False` the actions are dropped (absent from the dataset, not zeroed). Episodes
are rendered and encoded in parallel worker processes and committed by this process in a
fixed order, so the dataset is the same whatever the number of workers; rerunning adds
only the episodes that are missing.

Frame t of a recorded episode holds the observation o_t, the action the expert takes
there, the reward received on arriving at o_t (0 at t=0) and whether o_t satisfies the
task. The episode ends at the first success (the success frame is recorded, with the
expert's action there as its label) or at the step limit; with `after_success` = N it runs
N steps more, so that a success head sees the goal state held and not one positive frame
per episode. `explore` turns the expert into a play-data generator (see experts.py). With `policy` = a
finetuning run, that policy drives instead of the expert and its own rollouts, failures
included, are recorded (`PolicyActor` in wam/policy.py says why a world model wants them).
With `env` = "dream/<RUN>" the policy acts in that run's dreams instead of the simulator and
the dreamed episodes are recorded (rewards and success flags from the world's heads): compute
becomes data. A dream of a Meta-World task starts from the simulator's first frame of the
same seed, so episode n of a dream collection and of a real one start in the same scene.

`cameras` records several views of each step, one video feature per camera: a single camera is
`observation.images.main` (as every dataset before multi-camera collection), several are
`observation.images.<camera name>`, e.g. corner2 plus the wrist camera gripperPOV. A policy
that drives is handed the env's observation unchanged (`image` is the first camera, `images` all).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wam.data.episode import Episode
from wam.data.layout import ACTION_KEY, STATE_KEY, Feature
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter, StagedEpisode, stage_episode
from wam.envs.families import MetaWorldFamily, family_of
from wam.envs.metaworld_env import check_cameras, task_cameras
from wam.envs.tasks import MT50, resolve_tasks

IMAGE_KEY = "observation.images.main"  # the one camera of a single-camera dataset


@dataclass(frozen=True)
class CollectConfig:
    tasks: tuple[str, ...]
    episodes: int  # per task
    out: Path
    actions: bool = True
    workers: int = 1
    size: int = 64
    cameras: tuple[str, ...] | None = None  # camera names (default: the family's, corner2 or ego); the first is what a
    # policy sees as `image`
    noise: float = 0.0
    seed: int = 0
    max_steps: int = 500
    explore: float = 0.0  # probability that a 16-step segment is one held random action instead of the expert
    after_success: int = 0  # steps recorded after the first success (the step limit still applies)
    policy: Any = None  # who acts instead of the scripted expert: a picklable (task, noise) -> actor factory, e.g.
    # wam.policy.PolicyActors(RUN) for a finetuned run (the command line chooses; the collector imports no model)
    env: str = "metaworld"  # "hand" (the dexterous hand scenes), or "dream/<RUN>": that finetuned world steps instead of
    # the simulator (needs `policy`)
    embodiment: str = "robot"  # in hand scenes: "robot" (Shadow-hand demos) or "human" (egocentric human video, no actions)
    egodex: Path | None = None  # human video: also keep the EgoDex-layout files it is read back from (default: a temp dir)
    ray: str | None = None  # run the episodes as Ray tasks on this cluster ("auto", "local" or an address), not `workers`


@dataclass(frozen=True)
class EpisodeJob:
    task: str
    number: int  # episode number within the task for this seed
    seed: int  # placement and noise seed of this episode


@dataclass
class CollectResult:
    added: int
    skipped: int
    frames: int
    seconds: float
    successes: int
    first_commit_seconds: float = 0.0  # start-up: worker spawn, env construction, first episode

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def camera_keys(cameras: tuple[str, ...], lone_as_main: bool = True) -> dict[str, str]:
    """Camera name -> its video feature: `main` for a lone Meta-World camera, so single-camera datasets keep one layout;
    a family whose cameras mean the same in every dataset (the hand scenes' `ego`, which human video shares) keeps
    the name."""
    if len(cameras) == 1 and lone_as_main:
        return {cameras[0]: IMAGE_KEY}
    return {camera: f"observation.images.{camera}" for camera in cameras}


def dataset_features(size: int, actions: bool, cameras: tuple[str, ...] = ("corner2",), family=MetaWorldFamily()
                     ) -> dict[str, Feature]:
    state_names, action_names = family.names()
    keys = camera_keys(cameras, family.lone_camera_as_main).values()
    features = {key: Feature("video", (size, size, 3), ("height", "width", "channels")) for key in keys}
    features |= {
        STATE_KEY: Feature("float32", (len(state_names),), state_names),
        "reward": Feature("float32", (1,)),
        "success": Feature("bool", (1,)),
    }
    if actions:
        features[ACTION_KEY] = Feature("float32", (len(action_names),), action_names)
    return features


def episode_seed(seed: int, task: str, number: int) -> int:
    """Independent of the worker that runs the episode and of the other tasks in the run; a task
    outside MT50 (an instruction a dream knows from its data) is keyed by its text."""
    key = MT50.index(task) if task in MT50 else zlib.crc32(task.encode())
    return int(np.random.SeedSequence([seed, key, number]).generate_state(1)[0] & 0x7FFFFFFF)


def env_id(config: CollectConfig, task: str) -> str:
    """What an episode's `info.env` says drove it: the simulator's task env, or the dream run."""
    return f"{config.env}/{task}" if config.env in ("metaworld", "hand") else config.env


def plan_jobs(config: CollectConfig) -> list[EpisodeJob]:
    return [EpisodeJob(t, n, episode_seed(config.seed, t, n)) for t in config.tasks for n in range(config.episodes)]


def _views(obs: dict, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each camera's frame in an observation; a dream has one camera and only `image`."""
    return {camera: obs["images"][camera] for camera in cameras} if len(cameras) > 1 else {cameras[0]: obs["image"]}


def record_episode(env, expert, job: EpisodeJob, config: CollectConfig, start: dict | None = None) -> Episode:
    """Run the expert for one episode and return its frames (actions dropped for video-only runs);
    `start` is the first frame a dream is given (`image`, `state`)."""
    obs, _ = env.reset(seed=job.seed, options=start)
    expert.reset(seed=job.seed)
    images = {camera: [frame] for camera, frame in _views(obs, config.cameras).items()}
    states, actions, rewards, successes = [obs["state"]], [], [0.0], [False]
    extra = None  # steps still to record once the task is first satisfied
    while True:
        action = expert.act(obs)
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        for camera, frame in _views(obs, config.cameras).items():
            images[camera].append(frame)
        states.append(obs["state"])
        rewards.append(reward)
        successes.append(info["success"])
        if extra is None and info["success"]:
            extra = config.after_success
        elif extra is not None:
            extra -= 1
        if truncated or len(actions) >= config.max_steps or (extra is not None and extra <= 0):
            break
    actions.append(expert.act(obs))
    data = {
        STATE_KEY: np.stack(states).astype(np.float32),
        "reward": np.asarray(rewards, dtype=np.float32),
        "success": np.asarray(successes, dtype=bool),
    }
    if config.actions:
        data[ACTION_KEY] = np.stack(actions).astype(np.float32)
    info = {
        "env": env_id(config, job.task),
        "task": job.task,
        "seed": job.seed,
        "collect_seed": config.seed,
        "episode_number": job.number,
        "noise": float(config.noise),
        "explore": float(config.explore),
        "after_success": int(config.after_success),
        "camera": ",".join(config.cameras),
        "source": _source(config),
        "embodiment": config.embodiment,
    }
    family = family_of(config.env, config.embodiment)
    keys = camera_keys(config.cameras, family.lone_camera_as_main if family is not None else True)
    videos = {keys[camera]: np.stack(frames) for camera, frames in images.items()}  # (T, H, W, 3) each
    return Episode(env.task_text, videos, data, success=bool(any(successes)), info=info)


# -- worker side: one env and expert per task, kept for the life of the worker -----------------
_WORKER: dict = {}


def _source(config: CollectConfig) -> str:
    if config.policy is None:
        return "scripted_human" if config.embodiment == "human" else "scripted_expert"
    return getattr(config.policy, "source", f"policy:{config.policy!r}")


def _worker_init(config: CollectConfig) -> None:
    _WORKER.clear()
    _WORKER["config"] = config


def _run_job(job: EpisodeJob) -> StagedEpisode:
    from wam.envs.registry import make

    config: CollectConfig = _WORKER["config"]
    family = family_of(config.env, config.embodiment)
    if job.task not in _WORKER:
        scene = None  # the simulator whose first frames start the dreams of a Meta-World task
        if family is not None:
            env = family.make_env(job.task, config.size, config.cameras, config.max_steps)
        else:  # the collector ends the episode (after_success), so the dream must not end it at the first success
            env = make(config.env, task=job.task, max_episode_steps=config.max_steps, device="cpu", terminate_on_success=False)
            if job.task in MT50:
                scene = make(f"metaworld/{job.task}", obs="pixels", size=config.size, cameras=config.cameras)
        actor = (family.make_expert(job.task, env, config.noise, config.explore) if config.policy is None
                 else config.policy(job.task, config.noise))
        _WORKER[job.task] = (env, actor, scene)
    env, expert, scene = _WORKER[job.task]
    if config.embodiment == "human":
        from wam.envs.hands.human_video import human_features, record_human_episode

        episode = record_human_episode(env, expert, job, config)
        return stage_episode(config.out, episode, human_features(config), family.fps, VideoConfig())
    start = None
    if scene is not None:
        first, _ = scene.reset(seed=job.seed)
        start = {"image": first["image"], "state": first["state"]}
    episode = record_episode(env, expert, job, config, start)
    features = dataset_features(config.size, config.actions, config.cameras, family or MetaWorldFamily())
    return stage_episode(config.out, episode, features, (family or MetaWorldFamily()).fps, VideoConfig())


def _close_worker_envs() -> None:
    for key, value in list(_WORKER.items()):
        if isinstance(value, tuple):
            for env in (value[0], value[2]):
                if env is not None:
                    env.close()
    _WORKER.clear()


def _existing_keys(writer: DatasetWriter) -> set[tuple[str, str, int, int, str]]:
    """(env, task, seed, number, source) of the recorded episodes: the same numbers from another driver, or in
    another env (a dream), are other episodes. Episodes recorded before `info.task` existed name it in `info.env`."""
    from wam.data.meta import read_episode_rows

    keys = set()
    for row in read_episode_rows(writer.root):
        env = row.get("info/env")
        if env is not None and row.get("info/episode_number") is not None:
            task = row.get("info/task") or env.removeprefix("metaworld/")
            keys.add((env, task, row.get("info/collect_seed"), row["info/episode_number"], row.get("info/source") or "scripted_expert"))
    return keys


def _resolve(config: CollectConfig) -> CollectConfig:
    """Task names resolved; a dream also takes an instruction its world's data holds (e.g. a non-Meta-World task)."""
    family = family_of(config.env, config.embodiment)
    if family is not None:
        tasks = list(family.tasks(config.tasks))
    elif config.env.startswith("dream/"):
        tasks = []
        for task in config.tasks:
            try:
                tasks += resolve_tasks(task)
            except ValueError:
                tasks.append(task)
    else:
        raise ValueError(f"env must be 'metaworld', 'hand', 'scan/<SCENE>' or 'dream/<RUN>', got {config.env!r}")
    if not tasks:
        raise ValueError(f"no tasks to collect in {config.env}, got {config.tasks!r}")
    cameras = config.cameras
    if cameras is None:
        cameras = (family.default_cameras if family is not None else ("corner2",))
    cameras = tuple(cameras) if not isinstance(cameras, str) else cameras
    return CollectConfig(**{**config.__dict__, "tasks": tuple(dict.fromkeys(tasks)), "out": Path(config.out), "cameras": cameras})


def _check_cameras(config: CollectConfig) -> None:
    """Camera names checked against the scene before any worker starts (every task of a family shares its cameras)."""
    family = family_of(config.env, config.embodiment)
    if family is not None and family.name != "metaworld":
        check_cameras(config.cameras, family.cameras(config.tasks), f"{family.name} scenes")
        if config.embodiment == "human" and config.cameras != ("ego",):
            raise ValueError(f"human video is filmed by the head camera alone (EgoDex's layout has one), not {', '.join(config.cameras)}")
        return
    scene = next((task for task in config.tasks if task in MT50), None)
    # A dream of tasks outside Meta-World renders no simulator: only the names' form is checked.
    check_cameras(config.cameras, task_cameras(scene) if scene else None, scene or config.env)
    if config.env != "metaworld" and len(config.cameras) > 1:
        raise ValueError(f"{config.env}: a dream has one camera; collect it with one, not {', '.join(config.cameras)}")


def _check_dream(config: CollectConfig) -> None:
    """A dream collection's errors before any worker starts: what drives it, and whether its run can dream."""
    from wam.envs.registry import preflight

    if config.policy is None:
        raise ValueError(f"{config.env}: the scripted experts read the simulator's hidden state, which a dream has none of; "
                         "collect in a dream with a policy (--policy RUN)")
    preflight(config.env, size=config.size)


def collect(config: CollectConfig, progress: bool = True) -> CollectResult:
    """Collect `config.episodes` expert episodes per task into `config.out` (resumable)."""
    config = _resolve(config)
    if config.episodes < 0 or config.workers < 1:
        raise ValueError(f"episodes must be >= 0 and workers >= 1, got {config.episodes}, {config.workers}")
    if config.size % 2 or not 8 <= config.size <= 1024:
        raise ValueError(f"size must be an even number of pixels in 8..1024 (H.264 needs even sizes), got {config.size}")
    _check_cameras(config)
    if config.noise < 0:
        raise ValueError(f"noise must be >= 0, got {config.noise}")
    if not 0.0 <= config.explore <= 1.0:
        raise ValueError(f"explore must be a probability in [0, 1], got {config.explore}")
    if config.after_success < 0:
        raise ValueError(f"after_success must be >= 0 steps, got {config.after_success}")
    family = family_of(config.env, config.embodiment)
    limit = (family or MetaWorldFamily()).max_steps()
    if not 1 <= config.max_steps <= limit:
        raise ValueError(f"max_steps must be in 1..{limit} ({config.env}'s episode limit), got {config.max_steps}")
    if config.embodiment == "human" and (config.actions or config.policy is not None):
        raise ValueError("human video has no actions (a person's muscles are not a robot's commands): collect it with "
                         "--no-actions and the scripted human, then label it with `wam retarget`")
    if config.policy is not None:
        if config.explore > 0:
            raise ValueError("explore is the scripted expert's play mode; a policy run explores with noise instead")
        size = getattr(config.policy, "image_size", config.size)  # a clear error now, not in every worker
        if size != config.size:
            raise ValueError(f"{config.policy} sees {size}-pixel images; collect with --size {size}, not {config.size}")
    if family is None:
        _check_dream(config)
    family = family or MetaWorldFamily()
    if config.embodiment == "human":
        from wam.envs.hands.human_video import human_features

        features = human_features(config)
    else:
        features = dataset_features(config.size, config.actions, config.cameras, family)
    writer = DatasetWriter(config.out, features=features, fps=family.fps, robot_type=family.robot_type)
    try:
        done = _existing_keys(writer)
        jobs = [j for j in plan_jobs(config) if (env_id(config, j.task), j.task, config.seed, j.number, _source(config)) not in done]
        skipped = config.episodes * len(config.tasks) - len(jobs)
        result = CollectResult(0, skipped, 0, 0.0, 0)
        start = time.perf_counter()
        with _progress_bar(progress, len(jobs)) as (bar, task_id):
            for staged in _staged_episodes(config, jobs):
                writer.commit(staged)
                result.added += 1
                result.frames += staged.length
                result.successes += int(bool(staged.success))
                result.seconds = time.perf_counter() - start
                if result.added == 1:
                    result.first_commit_seconds = result.seconds
                bar.update(task_id, advance=1, frames=result.frames, fps=result.frames_per_second)
        result.seconds = time.perf_counter() - start
        return result
    finally:
        writer.close()


def _staged_episodes(config: CollectConfig, jobs: list[EpisodeJob]):
    """Staged episodes in the jobs' order, from this process, local workers or Ray; over Ray the videos come back as
    bytes (a worker on another machine staged them on its own disk)."""
    from functools import partial

    from wam.data.writer import pack_staged, unpack_staged
    from wam.workers import Backend, ordered_map

    over_ray = config.ray is not None
    yield from ordered_map(_worker_init, _run_job, config, jobs, Backend(config.workers, config.ray), close=_close_worker_envs,
                           pack=pack_staged if over_ray else None,
                           unpack=partial(unpack_staged, root=config.out) if over_ray else None)


class _NullBar:
    def update(self, *args, **kwargs) -> None:
        pass


def _progress_bar(enabled: bool, total: int):
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    @contextmanager
    def bar():
        if not enabled:
            yield _NullBar(), None
            return
        columns = (
            TextColumn("[bold]collect"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("episodes  {task.fields[frames]} frames  {task.fields[fps]:.0f} frames/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as progress:
            yield progress, progress.add_task("collect", total=total, frames=0, fps=0.0)

    return bar()
