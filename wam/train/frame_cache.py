"""Decode every frame of the training datasets once into a memory-mapped array.

Pretraining visits each frame many times. Decoding video at every visit would cost more
than the model on a CPU, so frames are decoded once into `frames.npy` (uint8, memory-
mapped: the OS pages in what is used), with states, actions and their masks beside them.
The frozen tokenizer then turns the frames into `latents.npy` the same way, and the world
model trains on latents alone. A cache is rebuilt only when its datasets, its resolution,
its cameras or its image fit change.

What is cached comes from the run's feature spec (`wam/data/spec.py`): every camera slot
(views side by side, each brought to the model's square resolution by `wam/data/fit.py`),
the state and action at the model's sizes (a dataset whose state has another size is kept
as video, its state masked), and the reward and success fields under whichever names the
dataset uses (`reward`/`success` or lerobot's `next.reward`/`next.success`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from wam.data import ACTION_KEY, STATE_KEY, Dataset
from wam.data.fit import fit_frames
from wam.data.spec import FeatureSpec, read_spec
from wam.errors import DatasetError

CACHE_VERSION = 2  # 2: camera views side by side, spec-driven fields, fps per episode


@dataclass(frozen=True)
class CachedEpisode:
    dataset: str
    episode: int
    start: int  # first row in the cache
    length: int
    task: str
    has_state: bool
    has_actions: bool
    has_reward: bool = False  # per-frame reward and success flags from the simulator
    fps: float = 80.0  # the dataset's frame rate (caches written before it existed held 80 fps Meta-World data)


@dataclass
class FrameCache:
    root: Path
    frames: np.ndarray  # (N, S, V*S, 3) uint8, memory-mapped: V camera views side by side
    state: np.ndarray  # (N, S) float32, zeros where absent
    action: np.ndarray  # (N, A) float32, zeros where absent
    episodes: list[CachedEpisode]
    reward: np.ndarray | None = None  # (N,) float32, zeros where absent
    success: np.ndarray | None = None  # (N,) bool, False where absent

    def __post_init__(self) -> None:
        if self.reward is None:
            self.reward = np.zeros(len(self.state), np.float32)
        if self.success is None:
            self.success = np.zeros(len(self.state), bool)

    @property
    def image_size(self) -> int:
        return int(self.frames.shape[1])

    @property
    def views(self) -> int:
        return int(self.frames.shape[2]) // int(self.frames.shape[1])

    @property
    def tasks(self) -> list[str]:
        return sorted({e.task for e in self.episodes})

    def latents_path(self) -> Path:
        return self.root / "latents.npy"


def _fingerprint(datasets: Sequence[Dataset]) -> list[dict]:
    return [{"path": str(d.root.resolve()), "episodes": d.num_episodes, "frames": d.num_frames} for d in datasets]


def _identity(datasets: Sequence[Dataset], image_size: int, spec: FeatureSpec | None, fit: str, state_dim: int | None,
              action_dim: int | None) -> dict:
    """What a cache's contents depend on; a cache is reused only when all of it matches."""
    cameras = None if spec is None else {k: list(v) for k, v in spec.camera_keys.items()}
    return {"version": CACHE_VERSION, "fingerprint": _fingerprint(datasets), "image_size": image_size, "cameras": cameras,
            "fit": fit, "state_dim": state_dim, "action_dim": action_dim}


def _matches(manifest: dict | None, identity: dict) -> bool:
    if manifest is None:
        return False
    # `matching_cache` asks without a spec: any cameras, fit and sizes of a current cache will do.
    keys = [k for k, v in identity.items() if v is not None]
    return all(manifest.get(k) == identity[k] for k in keys)


def matching_cache(paths: Sequence[str | Path], root: Path, image_size: int) -> FrameCache | None:
    """The cache at `root` if it holds exactly `paths` at `image_size`, else None (nothing is rebuilt)."""
    manifest = _manifest(Path(root))
    if _matches(manifest, _identity([Dataset(p) for p in paths], image_size, None, None, None, None)):
        return load_frame_cache(root)
    return None


def _manifest(root: Path) -> dict | None:
    """The cache's manifest, None where there is no cache; a damaged one is an error naming the file."""
    path = root / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: unreadable frame-cache manifest ({err}); delete {root} to rebuild") from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path}: not a frame-cache manifest; delete {root} to rebuild")
    return manifest


def _staging(root: Path) -> Path:
    """An empty directory beside `root` to write a cache into before `_publish` swaps it in."""
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _publish(tmp: Path, root: Path) -> None:
    """Replace `root` by the finished cache in `tmp`: a reader never sees half a cache."""
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)


CACHE_FILES = ("frames.npy", "state.npy", "action.npy", "reward.npy", "success.npy", "manifest.json")


def link_matching_cache(paths: Sequence[str | Path], source: Path, root: Path, image_size: int) -> bool:
    """Give `root` the decoded frames of the cache at `source` when that holds exactly `paths`.

    A Dyna update of a world (`wam finetune --init-from`) reads the data its parent decoded plus
    a little more; decoding tens of thousands of frames again costs minutes. Hard links (a copy
    where the filesystem refuses them) are safe because a cache is never written in place: a
    rebuild writes new files under a temporary name and renames. Latents are not shared: they
    belong to one tokenizer. Returns whether `root` was given the frames.
    """
    root, source = Path(root), Path(source)
    if (root / "manifest.json").exists() or matching_cache(paths, source, image_size) is None:
        return False
    tmp = _staging(root)
    for name in CACHE_FILES:
        if not (source / name).exists():
            continue
        try:
            os.link(source / name, tmp / name)
        except OSError:
            shutil.copy2(source / name, tmp / name)
    _publish(tmp, root)
    return True


def build_frame_cache(
    paths: Sequence[str | Path], root: Path, image_size: int, state_dim: int, action_dim: int, progress: bool = True,
    spec: FeatureSpec | None = None, fit: str = "pad",
) -> FrameCache:
    """Decode `paths` into `root` (reused when nothing it depends on changed); checks the data first.

    `spec` names each dataset's cameras and reward fields (default: `read_spec(paths)`, the data's
    own); `state_dim` and `action_dim` are the model's sizes (a dataset whose state or action has
    another size contributes frames only). Under torchrun, rank 0 decodes and the other ranks read its cache.
    """
    from wam.train import distributed

    with distributed.main_first() as world:
        return _build(paths, Path(root), image_size, state_dim, action_dim, progress and world.main, spec, fit)


def _build(paths: Sequence[str | Path], root: Path, image_size: int, state_dim: int, action_dim: int, progress: bool,
           spec: FeatureSpec | None, fit: str) -> FrameCache:
    spec = read_spec(paths) if spec is None else spec
    datasets = [Dataset(p) for p in paths]
    root = Path(root)
    identity = _identity(datasets, image_size, spec, fit, state_dim, action_dim)
    if _matches(_manifest(root), identity):
        return load_frame_cache(root)
    _validate(datasets, spec)
    total = sum(d.num_frames for d in datasets)
    views = spec.num_views
    tmp = _staging(root)
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8,
                                       shape=(total, image_size, views * image_size, 3))
    state = np.zeros((total, state_dim), np.float32)
    action = np.zeros((total, action_dim), np.float32)
    reward = np.zeros(total, np.float32)
    success = np.zeros(total, bool)
    episodes: list[CachedEpisode] = []
    row = 0
    from wam.train.progress import progress_bar

    with progress_bar("decode frames", total, "frames", enabled=progress) as advance:
        for dataset in datasets:
            key = str(dataset.root)
            cameras = spec.camera_keys[key]
            reward_key, success_key = spec.reward_keys.get(key), spec.success_keys.get(key)
            for meta in dataset.episodes:
                n = meta.length
                for v, camera in enumerate(cameras):
                    frames[row : row + n, :, v * image_size : (v + 1) * image_size] = fit_frames(
                        dataset.frames(meta.index, camera), image_size, fit)
                low = dataset.low_dim(meta.index)
                has_state = STATE_KEY in low and low[STATE_KEY].reshape(n, -1).shape[1] == state_dim
                if has_state:
                    state[row : row + n] = low[STATE_KEY].reshape(n, -1)
                has_actions = ACTION_KEY in low and low[ACTION_KEY].reshape(n, -1).shape[1] == action_dim
                if has_actions:
                    action[row : row + n] = low[ACTION_KEY].reshape(n, -1)
                has_reward = reward_key in low and success_key in low
                if has_reward:
                    _store_outcome(reward, success, row, n, low, reward_key, success_key)
                episodes.append(CachedEpisode(str(dataset.root.resolve()), meta.index, row, n, meta.task, has_state,
                                              has_actions, has_reward, float(dataset.info["fps"])))
                row += n
                advance(n)
    frames.flush()
    del frames
    np.save(tmp / "state.npy", state)
    np.save(tmp / "action.npy", action)
    np.save(tmp / "reward.npy", reward)
    np.save(tmp / "success.npy", success)
    manifest = {**identity, "episodes": [asdict(e) for e in episodes]}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    _publish(tmp, root)
    return load_frame_cache(root)


def _store_outcome(reward: np.ndarray, success: np.ndarray, row: int, n: int, low: dict, reward_key: str,
                   success_key: str) -> None:
    """wam's reward at frame t is received on arriving at t; lerobot's `next.reward` at t is received after acting at t,
    i.e. on arriving at t + 1. So `next.` fields move one frame later (the first frame has received nothing), and the
    last transition, which arrives at a frame nobody recorded, is credited to the episode's last frame: that is where
    lerobot's gym recordings (and robomimic's demos) put their success flag."""
    r = np.asarray(low[reward_key], np.float32).reshape(n)
    s = np.asarray(low[success_key]).reshape(n).astype(bool)
    if reward_key.startswith("next.") and success_key.startswith("next."):
        reward[row + 1 : row + n], success[row + 1 : row + n] = r[:-1], s[:-1]
        reward[row + n - 1] += r[-1]
        success[row + n - 1] |= s[-1]
    else:
        reward[row : row + n], success[row : row + n] = r, s


def load_frame_cache(root: Path) -> FrameCache:
    root = Path(root)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        return FrameCache(
            root,
            np.load(root / "frames.npy", mmap_mode="r"),
            np.load(root / "state.npy"),
            np.load(root / "action.npy"),
            [CachedEpisode(**e) for e in manifest["episodes"]],
            # caches written before rewards were cached have neither file: no episode claims a reward then
            np.load(root / "reward.npy") if (root / "reward.npy").exists() else None,
            np.load(root / "success.npy") if (root / "success.npy").exists() else None,
        )
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"{root}: unreadable frame cache ({err}); delete it to rebuild") from None


def _validate(datasets: Sequence[Dataset], spec: FeatureSpec) -> None:
    """Everything that would otherwise fail (or silently train on garbage) mid-run."""
    if not datasets:
        raise DatasetError("no dataset given")
    for dataset in datasets:
        if dataset.num_episodes == 0:
            raise DatasetError(f"{dataset.root}: dataset has no episodes")
        if str(dataset.root) not in spec.camera_keys:
            raise DatasetError(f"{dataset.root}: not in the run's feature spec (datasets: {', '.join(spec.camera_keys)})")
        for meta in dataset.episodes:
            low = dataset.low_dim(meta.index)
            for key in (STATE_KEY, ACTION_KEY):
                if key in low and not np.all(np.isfinite(low[key])):
                    raise DatasetError(f"{dataset.data_file(meta.index)}: NaN or inf in {key!r} of episode {meta.index}")
