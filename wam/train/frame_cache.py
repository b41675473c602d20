"""Decode every frame of the training datasets once into a memory-mapped array.

Pretraining visits each frame many times. Decoding video at every visit would cost more
than the model on a CPU, so frames are decoded once into `frames.npy` (uint8, memory-
mapped: the OS pages in what is used), with states, actions and their masks beside them.
The frozen tokenizer then turns the frames into `latents.npy` the same way, and the world
model trains on latents alone. A cache is rebuilt only when its datasets change.
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
from wam.errors import DatasetError


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


@dataclass
class FrameCache:
    root: Path
    frames: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
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
    def tasks(self) -> list[str]:
        return sorted({e.task for e in self.episodes})

    def latents_path(self) -> Path:
        return self.root / "latents.npy"


def _fingerprint(datasets: Sequence[Dataset]) -> list[dict]:
    return [{"path": str(d.root.resolve()), "episodes": d.num_episodes, "frames": d.num_frames} for d in datasets]


def matching_cache(paths: Sequence[str | Path], root: Path, image_size: int) -> FrameCache | None:
    """The cache at `root` if it holds exactly `paths` at `image_size`, else None (nothing is rebuilt)."""
    manifest = _manifest(Path(root))
    if manifest is None:
        return None
    fingerprint = _fingerprint([Dataset(p) for p in paths])
    if manifest.get("fingerprint") == fingerprint and manifest.get("image_size") == image_size:
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
    paths: Sequence[str | Path], root: Path, image_size: int, state_dim: int = 4, action_dim: int = 4, progress: bool = True
) -> FrameCache:
    """Decode `paths` into `root` (reused when the datasets are unchanged); checks the data first."""
    datasets = [Dataset(p) for p in paths]
    root = Path(root)
    fingerprint = _fingerprint(datasets)
    manifest = _manifest(root)
    if manifest is not None and manifest.get("fingerprint") == fingerprint and manifest.get("image_size") == image_size:
        return load_frame_cache(root)
    _validate(datasets, image_size, state_dim, action_dim)
    total = sum(d.num_frames for d in datasets)
    tmp = _staging(root)
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8, shape=(total, image_size, image_size, 3))
    state = np.zeros((total, state_dim), np.float32)
    action = np.zeros((total, action_dim), np.float32)
    reward = np.zeros(total, np.float32)
    success = np.zeros(total, bool)
    episodes: list[CachedEpisode] = []
    row = 0
    from wam.train.progress import progress_bar

    with progress_bar("decode frames", total, "frames", enabled=progress) as advance:
        for dataset in datasets:
            camera = dataset.camera_keys[0]
            for meta in dataset.episodes:
                n = meta.length
                frames[row : row + n] = dataset.frames(meta.index, camera)
                low = dataset.low_dim(meta.index)
                has_state = STATE_KEY in low
                if has_state:
                    state[row : row + n] = low[STATE_KEY]
                if ACTION_KEY in low:
                    action[row : row + n] = low[ACTION_KEY]
                has_reward = "reward" in low and "success" in low
                if has_reward:
                    reward[row : row + n] = np.asarray(low["reward"], np.float32).reshape(n)
                    success[row : row + n] = np.asarray(low["success"]).reshape(n).astype(bool)
                episodes.append(CachedEpisode(str(dataset.root.resolve()), meta.index, row, n, meta.task, has_state,
                                              ACTION_KEY in low, has_reward))
                row += n
                advance(n)
    frames.flush()
    del frames
    np.save(tmp / "state.npy", state)
    np.save(tmp / "action.npy", action)
    np.save(tmp / "reward.npy", reward)
    np.save(tmp / "success.npy", success)
    manifest = {"fingerprint": fingerprint, "image_size": image_size, "episodes": [asdict(e) for e in episodes]}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    _publish(tmp, root)
    return load_frame_cache(root)


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


def _validate(datasets: Sequence[Dataset], image_size: int, state_dim: int, action_dim: int) -> None:
    """Everything that would otherwise fail (or silently train on garbage) mid-run."""
    if not datasets:
        raise DatasetError("no dataset given")
    for dataset in datasets:
        if dataset.num_episodes == 0:
            raise DatasetError(f"{dataset.root}: dataset has no episodes")
        if not dataset.camera_keys:
            raise DatasetError(f"{dataset.root}: dataset has no camera to learn from")
        shape = dataset.features[dataset.camera_keys[0]].shape
        if tuple(shape[:2]) != (image_size, image_size):
            raise DatasetError(
                f"{dataset.root}: frames are {shape[0]}x{shape[1]}, the model expects {image_size}x{image_size} "
                f"(collect with --size {image_size} or choose a preset for this size)"
            )
        for key, dim in ((STATE_KEY, state_dim), (ACTION_KEY, action_dim)):
            if key in dataset.features and int(np.prod(dataset.features[key].shape)) != dim:
                raise DatasetError(f"{dataset.root}: feature {key!r} has size {dataset.features[key].shape}, the model expects {dim}")
        for meta in dataset.episodes:
            low = dataset.low_dim(meta.index)
            for key in (STATE_KEY, ACTION_KEY):
                if key in low and not np.all(np.isfinite(low[key])):
                    raise DatasetError(f"{dataset.data_file(meta.index)}: NaN or inf in {key!r} of episode {meta.index}")
