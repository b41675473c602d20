"""The LeRobot v3 on-disk layout: paths, feature specs and `meta/info.json`.

A dataset directory holds:
    meta/info.json                                   version, fps, features, totals, path templates
    meta/tasks.parquet                               task text -> task_index
    meta/episodes/chunk-XXX/file-XXX.parquet         one row per episode (lengths, file locations, stats)
    meta/stats.json                                  feature statistics over the whole dataset
    data/chunk-XXX/file-XXX.parquet                  low-dimensional features, one row per frame
    videos/<camera key>/chunk-XXX/file-XXX.mp4        camera streams

Where wam differs from what lerobot writes: each episode gets its own data and video file
(lerobot packs many episodes per file up to 100/200 MB). That is what makes an append
atomic: an episode's files appear whole by rename, and the episode exists once its row
lands in meta/episodes. lerobot's loader locates frames through the per-episode file
indices and timestamps, so it reads both packings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wam.errors import DatasetError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
# Episodes per meta/episodes file: each append rewrites one such file, so it stays small
# (appending costs the same at episode 10 and at episode 10,000).
EPISODES_PER_META_FILE = 100
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_PATH = "meta/stats.json"
TMP_PREFIX = ".tmp-"

# Columns lerobot adds to every frame; wam writes them the same way.
INDEX_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
ACTION_KEY = "action"
STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class Feature:
    """One per-frame feature: `video` for cameras, else a numeric dtype with a fixed shape."""

    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "names": list(self.names) if self.names else None}

    @classmethod
    def from_json(cls, spec: dict[str, Any], where: str) -> "Feature":
        try:
            names = spec.get("names")
            if isinstance(names, dict):  # lerobot sometimes nests names per axis
                names = None
            return cls(str(spec["dtype"]), tuple(int(s) for s in spec["shape"]), tuple(names) if names else None)
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{where}: malformed feature spec {spec!r} ({err})") from None

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"


def chunk_and_file(index: int) -> tuple[int, int]:
    return index // CHUNKS_SIZE, index % CHUNKS_SIZE


def data_path(root: Path, episode_index: int) -> Path:
    chunk, file = chunk_and_file(episode_index)
    return root / DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_path(root: Path, video_key: str, episode_index: int) -> Path:
    chunk, file = chunk_and_file(episode_index)
    return root / VIDEO_PATH.format(video_key=video_key, chunk_index=chunk, file_index=file)


def episodes_meta_index(episode_index: int) -> tuple[int, int]:
    return chunk_and_file(episode_index // EPISODES_PER_META_FILE)


def episodes_meta_path(root: Path, episode_index: int) -> Path:
    chunk, file = episodes_meta_index(episode_index)
    return root / EPISODES_PATH.format(chunk_index=chunk, file_index=file)


def tmp_path_for(path: Path) -> Path:
    """A temporary sibling of `path`: same directory, so the final rename is atomic."""
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=4) + "\n").encode())


def build_info(
    fps: int,
    features: dict[str, Feature],
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    robot_type: str,
    video_info: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    feature_specs: dict[str, Any] = {}
    for key, feature in features.items():
        spec = feature.to_json()
        if feature.is_video:
            spec["info"] = video_info.get(key, {})
        feature_specs[key] = spec
    feature_specs.update(INDEX_FEATURES)
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": feature_specs,
    }


def load_info(root: Path, version: str = CODEBASE_VERSION, what: str = "a wam/LeRobot v3 dataset, or an unfinished one"
              ) -> dict[str, Any]:
    """meta/info.json, checked; `version` is the codebase_version expected (a prefix such as "v2." for any v2.x)."""
    path = root / INFO_PATH
    if not path.exists():
        if not root.exists():
            raise DatasetError(f"{root}: no such dataset directory")
        raise DatasetError(f"{path}: missing (not {what})")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from None
    for field in ("codebase_version", "fps", "features"):
        if field not in info:
            raise DatasetError(f"{path}: missing field {field!r}")
    if not str(info["codebase_version"]).startswith(version):
        expected = repr(version) if version == CODEBASE_VERSION else f"{version}x"
        raise DatasetError(f"{path}: codebase_version {info['codebase_version']!r}, expected {expected}")
    return info


def parse_features(info: dict[str, Any], where: str) -> dict[str, Feature]:
    """The user features of a dataset (the index columns lerobot adds are left out)."""
    return {
        key: Feature.from_json(spec, f"{where} features.{key}")
        for key, spec in info["features"].items()
        if key not in INDEX_FEATURES
    }
