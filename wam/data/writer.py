"""Append episodes to a new or existing dataset, each one whole or not at all.

Writing an episode has two halves. `stage_episode` checks it and encodes its videos to
temporary files (slow; collector workers run it in parallel). `DatasetWriter.commit`
renames the files into place and then rewrites the episode index file: the rename of
meta/episodes/... is the moment the episode exists. A writer killed at any point leaves
every committed episode readable; files of an uncommitted one are unreferenced, and the
next writer to open the dataset removes them and rebuilds the derived metadata.

Durable, not only atomic: an episode's data and video files, and the directory entries
that name them, are fsynced before the meta/episodes rename, and that rename is fsynced
before `commit` returns, so a power cut never leaves a committed episode pointing at a
file the disk does not hold.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wam.data import layout
from wam.data.episode import Episode, InfoValue
from wam.data.layout import ACTION_KEY, Feature
from wam.data.meta import read_episode_rows, write_tasks
from wam.data.stats import aggregate_stats, episode_stats, stats_to_json
from wam.data.video import VideoConfig, encode_video, feature_info
from wam.errors import DatasetError

STAGING_DIR = ".staging"
LOCK_FILE = ".writer.lock"


@dataclass
class StagedEpisode:
    """An episode checked and encoded, waiting for its commit."""

    task: str
    length: int
    data: dict[str, np.ndarray]
    videos: dict[str, Path]
    stats: dict[str, dict[str, np.ndarray]]
    success: bool | None
    has_actions: bool
    info: dict[str, InfoValue] = field(default_factory=dict)


def stage_episode(root: Path, episode: Episode, features: dict[str, Feature], fps: int, video: VideoConfig) -> StagedEpisode:
    """Validate and encode an episode into `root/.staging`; safe to run in a worker process."""
    episode.validate(features)
    staging = Path(root) / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    videos, stats = {}, {}
    for key, frames in episode.images.items():
        path = staging / f"{uuid.uuid4().hex}.mp4"
        encode_video(frames, path, fps, video)
        _fsync_file(path)  # here, in the worker that encoded it, rather than in the single writer's commit
        videos[key] = path
        stats[key] = episode_stats(frames, is_image=True)
    data = {}
    for key, values in episode.data.items():
        feature = features[key]
        dtype = np.bool_ if feature.dtype == "bool" else np.dtype(feature.dtype)
        data[key] = np.asarray(values).astype(dtype).reshape(episode.length, *feature.shape)
        stats[key] = episode_stats(data[key].astype(np.float64))
    return StagedEpisode(
        episode.task, episode.length, data, videos, stats, episode.success, episode.has_actions, dict(episode.info)
    )


def pack_staged(staged: StagedEpisode) -> StagedEpisode:
    """The staged episode with its encoded videos as bytes instead of files: it can travel from a worker on another
    machine (a Ray node) to the one writer. The worker's files are removed."""
    videos = {}
    for key, path in staged.videos.items():
        videos[key] = Path(path).read_bytes()
        Path(path).unlink(missing_ok=True)
    return StagedEpisode(staged.task, staged.length, staged.data, videos, staged.stats, staged.success, staged.has_actions,
                         staged.info)


def unpack_staged(packed: StagedEpisode, root: Path) -> StagedEpisode:
    """A packed episode's videos written back into `root/.staging` (fsynced), ready for `DatasetWriter.commit`."""
    staging = Path(root) / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    videos = {}
    for key, content in packed.videos.items():
        path = staging / f"{uuid.uuid4().hex}.mp4"
        path.write_bytes(content)
        _fsync_file(path)
        videos[key] = path
    return StagedEpisode(packed.task, packed.length, packed.data, videos, packed.stats, packed.success, packed.has_actions,
                         packed.info)


def _arrow_type(feature: Feature) -> pa.DataType:
    scalar = pa.bool_() if feature.dtype == "bool" else pa.from_numpy_dtype(np.dtype(feature.dtype))
    if feature.shape == (1,):
        return scalar
    return pa.list_(scalar, int(np.prod(feature.shape)))


def _hf_features(features: dict[str, Feature]) -> dict[str, Any]:
    """The `huggingface` schema metadata lerobot's loader reads the column types from."""
    out: dict[str, Any] = {}
    for key, feature in list(features.items()) + [(k, Feature(v["dtype"], (1,))) for k, v in layout.INDEX_FEATURES.items()]:
        if feature.is_video:
            continue
        value = {"dtype": feature.dtype, "_type": "Value"}
        out[key] = value if feature.shape == (1,) else {"feature": value, "length": int(np.prod(feature.shape)), "_type": "List"}
    return out


class DatasetWriter:
    """Opens (or creates) a dataset for appending; one writer per dataset at a time (a file lock)."""

    def __init__(
        self,
        root: str | Path,
        features: dict[str, Feature] | None = None,
        fps: int | None = None,
        robot_type: str = "unknown",
        video: VideoConfig = VideoConfig(),
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / LOCK_FILE, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DatasetError(f"{self.root}: another writer has this dataset open") from None
        try:
            self._open(features, fps, robot_type, video)
        except BaseException:
            self.close()
            raise

    def _open(self, features, fps, robot_type, video) -> None:
        info_path = self.root / layout.INFO_PATH
        if info_path.exists():
            info = layout.load_info(self.root)
            self.fps = int(info["fps"])
            self.features = layout.parse_features(info, str(info_path))
            self.robot_type = info.get("robot_type", robot_type)
            self._video_info = {k: v.get("info", {}) for k, v in info["features"].items() if v.get("dtype") == "video"}
            stored = self._video_info and next(iter(self._video_info.values())).get("wam.video")
            self.video = VideoConfig(**stored) if stored else video
            if fps is not None and fps != self.fps:
                raise DatasetError(f"{info_path}: dataset fps is {self.fps}, the new episodes have {fps}")
            if features is not None:
                self._check_compatible(features, info_path)
            self._rows = read_episode_rows(self.root)
        else:
            if features is None or fps is None:
                raise DatasetError(f"{self.root}: new dataset needs features and fps")
            for key, feature in features.items():
                if feature.is_video and (len(feature.shape) != 3 or feature.shape[2] != 3 or feature.shape[0] % 2 or feature.shape[1] % 2):
                    raise DatasetError(f"{self.root}: camera {key!r} must be (H, W, 3) with even H and W, got {feature.shape}")
            self.fps, self.features, self.robot_type, self.video = int(fps), dict(features), robot_type, video
            self._video_info = {
                k: feature_info(video, f.shape[0], f.shape[1], self.fps) for k, f in features.items() if f.is_video
            }
            self._rows = []
        self._tasks: dict[str, int] = {}
        for row in self._rows:
            for task in row["tasks"]:
                self._tasks.setdefault(task, len(self._tasks))
        # Running dataset stats: combining is associative, so each append costs the same.
        self._stats: dict[str, dict[str, np.ndarray]] = {}
        for row in self._rows:
            self._merge_stats(self._row_stats(row))
        self._repair()

    # -- opening -----------------------------------------------------------------------------
    def _check_compatible(self, features: dict[str, Feature], info_path: Path) -> None:
        for key, feature in features.items():
            if key == ACTION_KEY and key not in self.features:
                raise DatasetError(
                    f"{info_path}: dataset was created without an 'action' feature (action-free video); "
                    "write labelled episodes to a new dataset"
                )
            if key not in self.features:
                raise DatasetError(f"{info_path}: dataset has no feature {key!r}")
            if self.features[key] != feature:
                raise DatasetError(f"{info_path}: feature {key!r} is {self.features[key]}, new episodes have {feature}")
        missing = [k for k in self.features if k not in features and k != ACTION_KEY]
        if missing:
            raise DatasetError(f"{info_path}: new episodes lack features {missing}")

    def _row_stats(self, row: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        stats: dict[str, dict[str, np.ndarray]] = {}
        for column, value in row.items():
            if column.startswith("stats/") and value is not None:
                _, key, name = column.split("/", 2)
                stats.setdefault(key, {})[name] = np.asarray(value)
        return stats

    def _repair(self) -> None:
        """Remove what an interrupted writer left behind and rewrite the derived metadata."""
        shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)
        n = len(self._rows)
        for path in self.root.rglob(f"{layout.TMP_PREFIX}*"):
            path.unlink(missing_ok=True)
        if self._is_own_layout():
            for path in list((self.root / "data").rglob("*.parquet")) + list((self.root / "videos").rglob("*.mp4")):
                if _file_number(path) >= n:
                    path.unlink(missing_ok=True)
        if self._rows or (self.root / layout.INFO_PATH).exists():
            # A new dataset gets its metadata with its first episode: a failed first episode leaves no dataset behind.
            self._write_derived_meta()

    def _is_own_layout(self) -> bool:
        return all(row.get("data/file_index") == layout.chunk_and_file(row["episode_index"])[1] for row in self._rows)

    # -- writing -----------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self._rows)

    @property
    def num_frames(self) -> int:
        return int(self._rows[-1]["dataset_to_index"]) if self._rows else 0

    def episode_row(self, index: int) -> dict[str, Any]:
        """The meta/episodes row of a committed episode (task, length, success, info/...)."""
        return dict(self._rows[index])

    def add_episode(self, episode: Episode) -> int:
        """Validate, encode and commit one episode; returns its episode index."""
        return self.commit(stage_episode(self.root, episode, self.features, self.fps, self.video))

    def commit(self, staged: StagedEpisode) -> int:
        index, start = self.num_episodes, self.num_frames
        new_task = staged.task not in self._tasks
        task_index = self._tasks.get(staged.task, len(self._tasks))
        if new_task:
            # Listed before the commit point: a task no episode uses yet is harmless, the reverse is not.
            write_tasks(self.root, list(self._tasks) + [staged.task])
        columns: dict[str, pa.Array] = {}
        for key, feature in self.features.items():
            if feature.is_video:
                continue
            arrow_type = _arrow_type(feature)
            if key not in staged.data:
                columns[key] = pa.nulls(staged.length, type=arrow_type)
            elif feature.shape == (1,):
                columns[key] = pa.array(staged.data[key].reshape(-1), type=arrow_type)
            else:
                flat = pa.array(staged.data[key].reshape(-1), type=arrow_type.value_type)
                columns[key] = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(feature.shape)))
        frame_index = np.arange(staged.length, dtype=np.int64)
        columns["timestamp"] = pa.array((frame_index / self.fps).astype(np.float32))
        columns["frame_index"] = pa.array(frame_index)
        columns["episode_index"] = pa.array(np.full(staged.length, index, dtype=np.int64))
        columns["index"] = pa.array(frame_index + start)
        columns["task_index"] = pa.array(np.full(staged.length, task_index, dtype=np.int64))
        table = pa.table(columns).replace_schema_metadata(
            {"huggingface": json.dumps({"info": {"features": _hf_features(self.features)}})}
        )
        data_file = layout.data_path(self.root, index)
        changed = _make_dirs(data_file.parent)  # directories whose entries must reach the disk before the commit
        tmp = layout.tmp_path_for(data_file)
        pq.write_table(table, tmp)
        _fsync_file(tmp)
        os.replace(tmp, data_file)
        changed.add(data_file.parent)
        for key, staged_video in staged.videos.items():
            target = layout.video_path(self.root, key, index)
            changed |= _make_dirs(target.parent)
            os.replace(staged_video, target)  # fsynced when it was staged
            changed.add(target.parent)
        for directory in sorted(changed, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)

        row = self._episode_row(index, start, task_index, staged)
        self._rows.append(row)
        try:
            self._write_episode_rows(index)
        except BaseException:
            self._rows.pop()
            if new_task:
                write_tasks(self.root, list(self._tasks))
            raise
        if new_task:
            self._tasks[staged.task] = task_index
        self._merge_stats(staged.stats)
        self._write_derived_meta()
        return index

    def _episode_row(self, index: int, start: int, task_index: int, staged: StagedEpisode) -> dict[str, Any]:
        chunk, file = layout.chunk_and_file(index)
        meta_chunk, meta_file = layout.episodes_meta_index(index)
        row: dict[str, Any] = {
            "episode_index": index,
            "tasks": [staged.task],
            "length": staged.length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": start,
            "dataset_to_index": start + staged.length,
        }
        for key in self.features:
            if self.features[key].is_video:
                row[f"videos/{key}/chunk_index"] = chunk
                row[f"videos/{key}/file_index"] = file
                row[f"videos/{key}/from_timestamp"] = 0.0
                row[f"videos/{key}/to_timestamp"] = staged.length / self.fps
        for key, stats in staged.stats.items():
            for name, value in stats.items():
                row[f"stats/{key}/{name}"] = np.asarray(value).tolist()
        row["meta/episodes/chunk_index"] = meta_chunk
        row["meta/episodes/file_index"] = meta_file
        row["has_actions"] = staged.has_actions
        row["success"] = staged.success
        for key, value in staged.info.items():
            row[f"info/{key}"] = value
        return row

    def _write_episode_rows(self, index: int) -> None:
        """Rewrite the meta/episodes file holding `index`: the commit point of that episode."""
        first = (index // layout.EPISODES_PER_META_FILE) * layout.EPISODES_PER_META_FILE
        rows = self._rows[first : index + 1]
        columns = list(dict.fromkeys(c for row in rows for c in row))
        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
        path = layout.episodes_meta_path(self.root, index)
        changed = _make_dirs(path.parent)
        tmp = layout.tmp_path_for(path)
        pq.write_table(table, tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
        for directory in sorted(changed | {path.parent}, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)  # the rename itself: durable before the caller is told the episode exists

    def _write_derived_meta(self) -> None:
        write_tasks(self.root, list(self._tasks))
        info = layout.build_info(
            self.fps, self.features, self.num_episodes, self.num_frames, len(self._tasks), self.robot_type, self._video_info
        )
        layout.atomic_write_json(self.root / layout.INFO_PATH, info)
        layout.atomic_write_json(self.root / layout.STATS_PATH, stats_to_json(dict(sorted(self._stats.items()))))

    def _merge_stats(self, episode: dict[str, dict[str, np.ndarray]]) -> None:
        for key, stats in episode.items():
            self._stats[key] = aggregate_stats([self._stats[key], stats]) if key in self._stats else stats

    def close(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make the entries of a directory (a rename into it, a new subdirectory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> set[Path]:
    """`mkdir -p`; returns the parents of the directories it created (their entries changed)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
    return {directory.parent for directory in missing}


def _file_number(path: Path) -> int:
    """Episode number encoded in chunk-XXX/file-YYY (wam writes one file per episode)."""
    try:
        chunk = int(path.parent.name.removeprefix("chunk-"))
        file = int(path.stem.removeprefix("file-"))
    except ValueError:
        return -1
    return chunk * layout.CHUNKS_SIZE + file
