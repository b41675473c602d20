"""Some episodes of a dataset as a new dataset in the same format: one episode to download, or only the successes.

Behaviour cloning learns what its demonstrations do, failures included; `wam data filter --success` keeps the
episodes that reached their task (a scripted expert that failed on an awkward object, a teleoperator's bad take).
The copy is a LeRobot v3 dataset written by wam's own writer: frames re-encoded, every low-dimensional feature, the
task, the success flag and the per-episode info kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from wam.data.episode import Episode
from wam.data.reader import Dataset
from wam.data.writer import DatasetWriter
from wam.errors import DatasetError


def copy_episodes(source: Dataset, indices: Sequence[int], out: str | Path) -> Path:
    """Write episodes `indices` of `source` (in that order) into a new dataset at `out`."""
    out = Path(out)
    if (out / "meta" / "info.json").exists():
        raise DatasetError(f"{out}: a dataset is already there; filter into a new directory")
    for index in indices:
        if not 0 <= index < source.num_episodes:
            raise DatasetError(f"{source.root}: no episode {index} (it has {source.num_episodes})")
    keys = set(source.data_keys) | set(source.camera_keys)
    features = {k: f for k, f in source.features.items() if k in keys}
    writer = DatasetWriter(out, features=features, fps=int(source.info.get("fps") or 10),
                           robot_type=source.info.get("robot_type") or "unknown")
    try:
        for index in indices:
            meta = source.episodes[index]
            low = source.low_dim(index)
            data = {k: v for k, v in low.items() if k in source.data_keys and (k != "action" or meta.has_actions)}
            images = {c: source.frames(index, c) for c in source.camera_keys}
            info = {k.removeprefix("info/"): v for k, v in meta.row.items() if k.startswith("info/") and v is not None}
            writer.add_episode(Episode(meta.task, images, data, meta.success, info))
    finally:
        writer.close()
    return out


def successful(source: Dataset) -> list[int]:
    """The episodes that reached their task (an episode with no success flag is not counted as one)."""
    return [e.index for e in source.episodes if e.success]
