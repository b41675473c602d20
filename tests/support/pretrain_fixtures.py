"""Synthetic datasets and a shared tiny pretraining run for the pretraining tests.

Frames are 64x64 (the `tiny` preset's image size): a dark gradient that slowly brightens,
with a bright square whose position integrates the action, a random velocity drawn per
episode (reflected at the walls) and, with `change` > 0, drawn anew at random steps. Motion
is visible and smooth, so a tiny world model learns something in a few dozen steps; with
`change=1.0` only the action (or a latent action) tells where the square goes next.
Everything is deterministic in the seeds.

Imported as `tests.support.pretrain_fixtures` by the train, dojo, envs and CLI tests. The tiny
run is built once per test session (cached here, at module level, so every test file that
asks shares one).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from wam.data import DatasetWriter, Episode, Feature
from wam.data import layout

CAMERA = "observation.images.main"
STATE = "observation.state"
ACTION = "action"
FPS = 10
SIZE = 64
SQUARE = 14
SPEED = (3.0, 6.0)  # pixels per frame, each axis
CHANGE = 0.0  # probability that the action changes at a step
DRIFT = 2.0  # grey levels per frame


def features(size: int = SIZE, labelled: bool = True, state: bool = True, rewards: bool = False) -> dict[str, Feature]:
    out = {CAMERA: Feature("video", (size, size, 3))}
    if rewards:
        out["reward"] = Feature("float32", (1,))
        out["success"] = Feature("bool", (1,))
    if state:
        out[STATE] = Feature("float32", (4,), ("x", "y", "vx", "vy"))
    if labelled:
        out[ACTION] = Feature("float32", (4,))
    return out


def _background(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return np.stack([20 + 40 * x / size, 20 + 30 * y / size, 60 + 0 * x], -1)


def make_episode(seed: int, length: int = 24, task: str = "move the square", labelled: bool = True, size: int = SIZE,
                 state: bool = True, change: float = CHANGE, speed_range: tuple[float, float] = SPEED,
                 rewards: bool = False) -> Episode:
    """A bright square moved by the action: a random velocity (reflected at the walls), drawn per episode and drawn
    anew with probability `change` at each step (then the past frames cannot tell where the square goes next)."""
    rng = np.random.default_rng(seed)
    square = max(2, SQUARE * size // SIZE)
    high = size - square
    position = rng.uniform(0, high, size=2)
    speed = rng.uniform(*speed_range, size=2) * rng.choice([-1.0, 1.0], size=2)
    background = _background(size)
    frames = np.empty((length, size, size, 3), np.uint8)
    states = np.empty((length, 4), np.float32)
    actions = np.empty((length, 4), np.float32)
    moved = np.zeros(2)
    top = speed_range[1]
    for t in range(length):
        image = background + DRIFT * t  # the light slowly brightens: frames never repeat
        x, y = np.round(position).astype(int)
        image[y : y + square, x : x + square] = (250, 230, 60)
        frames[t] = image.astype(np.uint8)
        # the action at frame t moves the square to its position at t + 1 (reflected at a wall)
        if t and rng.random() < change:
            speed = rng.uniform(*speed_range, size=2) * rng.choice([-1.0, 1.0], size=2)
        nxt = position + speed
        for axis in range(2):
            if not 0 <= nxt[axis] <= high:  # bounce, at a new speed: the square never retraces its path
                speed[axis] = -np.sign(speed[axis]) * rng.uniform(*speed_range)
        # the state is what a robot senses: where it is and how it last moved, not the action to come
        states[t] = (position[0] / size, position[1] / size, moved[0] / top, moved[1] / top)
        actions[t] = (speed[0] / top, speed[1] / top, 0.0, 0.0)
        moved = np.clip(position + speed, 0, high) - position
        position = position + moved
    data = {STATE: states} if state else {}
    if labelled:
        data[ACTION] = actions
    if rewards:  # the task: be right of the middle; reward grows with x, success past three quarters
        data["reward"] = (10.0 * states[:, 0:1]).astype(np.float32)
        data["success"] = states[:, 0:1] > 0.6
    return Episode(task=task, images={CAMERA: frames}, data=data, success=True, info={"seed": seed})


def write_dataset(root: Path, seeds, length: int = 24, labelled: bool = True, size: int = SIZE,
                  task: str = "move the square", state: bool = True, change: float = CHANGE,
                  speed_range: tuple[float, float] = SPEED, rewards: bool = False) -> Path:
    root = Path(root)
    with DatasetWriter(root, features=features(size, labelled, state, rewards), fps=FPS) as writer:
        for seed in seeds:
            writer.add_episode(make_episode(seed, length, task, labelled, size, state, change, speed_range, rewards))
    return root


def add_episodes(root: Path, seeds, length: int = 24, labelled: bool = True, size: int = SIZE) -> Path:
    with DatasetWriter(root) as writer:
        for seed in seeds:
            writer.add_episode(make_episode(seed, length, labelled=labelled, size=size))
    return root


def write_empty_dataset(root: Path, size: int = SIZE) -> Path:
    """A valid dataset directory (meta/info.json) that holds no episode."""
    root = Path(root)
    root.mkdir(parents=True)
    info = layout.build_info(FPS, features(size), 0, 0, 0, "unknown", {})
    layout.atomic_write_json(root / layout.INFO_PATH, info)
    return root


def poison_state(root: Path, episode: int = 0, frame: int = 3) -> Path:
    """Put a NaN into `observation.state` of one frame, behind the writer's back (the writer refuses NaN)."""
    from wam.data import Dataset

    path = Dataset(root).data_file(episode)
    table = pq.read_table(path)
    column = table[STATE]
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1).copy()
    values[frame, 1] = np.nan
    array = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=column.type.value_type), values.shape[1])
    table = table.set_column(table.column_names.index(STATE), STATE, array)
    pq.write_table(table, path)
    return path


def tiny_config(world_steps: int = 30, seed: int = 0, **world_train):
    """The `tiny` preset on CPU (no progress bars), optionally with other world-model steps and loop settings."""
    from wam.config import pretrain_preset

    config = pretrain_preset("tiny")
    config = replace(config, seed=seed,
                     tokenizer_train=replace(config.tokenizer_train, device="cpu", seed=seed),
                     world_train=replace(config.world_train, device="cpu", seed=seed, **world_train))
    if world_steps != config.world_train.steps:
        config = config.with_steps(world_steps)
    return config



# -- one tiny pretraining run shared by the session -------------------------------------------------

_CACHE: dict[str, object] = {}


def tiny_dataset(tmp_path_factory) -> Path:
    """Eight 24-frame labelled episodes (shared, read-only: copy before changing it)."""
    if "dataset" not in _CACHE:
        _CACHE["dataset"] = write_dataset(tmp_path_factory.mktemp("tiny_data") / "moving", range(8))
    return _CACHE["dataset"]


def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    """(run directory, summary) of the tiny preset on `tiny_dataset` (on CPU, world model evaluated at steps 15 and 30)."""
    if "run" not in _CACHE:
        from wam.train.pretrain import pretrain

        torch.manual_seed(0)
        data = tiny_dataset(tmp_path_factory)
        run = tmp_path_factory.mktemp("tiny_run") / "run"
        config = tiny_config(eval_every=15)
        summary = pretrain([data], run, config, progress=False)
        _CACHE["run"] = (run, summary)
    return _CACHE["run"]


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".writer.lock"))
    return dst


def write_rollouts(root: Path, sources: dict[str, range], length: int = 16) -> Path:
    """Episodes with rewards and success flags, each driven by a named policy (its `source`): one per seed."""
    from dataclasses import replace as changed

    from wam.data import DatasetWriter

    with DatasetWriter(root, features=features(rewards=True), fps=20) as writer:
        for source, seeds in sources.items():
            for seed in seeds:
                episode = make_episode(seed, length, rewards=True)
                writer.add_episode(changed(episode, info={**episode.info, "source": source}))
    return root

