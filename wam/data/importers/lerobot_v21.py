"""Import a LeRobot v2.0/v2.1 dataset directory, the layout many datasets on the Hub still use.

Source layout (one file per episode):
    meta/info.json            codebase_version "v2.x", fps, robot_type, features, chunks_size,
                              data_path "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                              video_path "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    meta/episodes.jsonl       {"episode_index", "tasks": [str, ...], "length"} per line
    meta/tasks.jsonl          {"task_index", "task"} per line
    data/...parquet           features as columns + timestamp, frame_index, episode_index, index, task_index
    videos/...mp4             one per episode per `dtype: video` camera

What carries over: fps, robot_type, the tasks, and every feature under its own key and dtype:
cameras (`dtype: video`, and `dtype: image` stored in the parquet as PNG/JPEG structs, which
become video cameras too), `observation.state`, `action`, `next.reward` / `next.done` /
`next.success` and any other numeric feature; non-numeric ones (strings) are left out and
listed in the result's notes. Episodes are renumbered 0..N-1 in source order; the source
number is kept per episode as `info/source_episode_index`. wam gives an episode one task:
the first of its episodes.jsonl `tasks` (the rest are kept as the JSON list `info/source_tasks`).
An episode with `next.success` counts as successful when any of its frames is.

Video is re-encoded: every camera is decoded (each parquet row takes the frame at its
`timestamp`) and written with wam's codec, `VideoConfig` (by default H.264, yuv444p, CRF 12),
so frames come back close to, not bit-equal with, the source (typically > 40 dB PSNR).
Low-dimensional values are copied exactly.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from wam.data import layout
from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import Feature
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter
from wam.errors import DatasetError

FORMAT = "lerobot-v2.1"
DEFAULT_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
DEFAULT_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
NUMERIC = {"bool", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
CAMERA_DTYPES = ("video", "image")


@dataclass
class Source:
    """A v2.x dataset's metadata, read and checked."""

    root: Path
    info: dict[str, Any]
    fps: int
    features: dict[str, dict[str, Any]]  # user features (index columns left out), as info.json has them
    episodes: list[dict[str, Any]]  # episodes.jsonl rows in episode order
    tasks: dict[int, str]  # task_index -> text

    def data_file(self, episode_index: int) -> Path:
        return self.root / self._format("data_path", DEFAULT_DATA_PATH, episode_index)

    def video_file(self, key: str, episode_index: int) -> Path:
        return self.root / self._format("video_path", DEFAULT_VIDEO_PATH, episode_index, video_key=key)

    def _format(self, field: str, default: str, episode_index: int, **extra: str) -> str:
        chunk = episode_index // int(self.info.get("chunks_size") or layout.CHUNKS_SIZE)
        template = self.info.get(field) or default
        try:
            return template.format(episode_chunk=chunk, episode_index=episode_index, **extra)
        except (KeyError, IndexError, ValueError) as err:
            raise DatasetError(f"{self.root / layout.INFO_PATH}: cannot use {field} {template!r} ({err})") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}: line {number} is not valid JSON ({err})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def read_source(root: str | Path) -> Source:
    """Read and check meta/info.json, meta/episodes.jsonl and meta/tasks.jsonl."""
    root = Path(root)
    info_path = root / layout.INFO_PATH
    info = layout.load_info(root, "v2.", "a LeRobot v2.x dataset")
    fps = float(info["fps"])
    if fps <= 0 or fps != int(fps):
        raise DatasetError(f"{info_path}: fps {info['fps']!r} is not a positive whole number")
    features = {k: v for k, v in info["features"].items() if k not in layout.INDEX_FEATURES}
    for key, spec in features.items():
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise DatasetError(f"{info_path}: feature {key!r} has no dtype or shape")
    episodes = sorted(_read_jsonl(root / "meta/episodes.jsonl"), key=lambda row: int(row.get("episode_index", -1)))
    for row in episodes:
        if "episode_index" not in row or "length" not in row:
            raise DatasetError(f"{root / 'meta/episodes.jsonl'}: a row lacks episode_index or length: {row}")
    if not episodes:
        raise DatasetError(f"{root / 'meta/episodes.jsonl'}: no episodes")
    tasks_path = root / "meta/tasks.jsonl"
    tasks = {int(row["task_index"]): str(row["task"]) for row in _read_jsonl(tasks_path) if "task_index" in row and "task" in row} if tasks_path.exists() else {}
    return Source(root, info, int(fps), features, episodes, tasks)


def _names(spec: dict[str, Any], size: int) -> tuple[str, ...] | None:
    """Per-dimension names; lerobot sometimes nests them ({"motors": [...]})."""
    names = spec.get("names")
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == size and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def camera_size(key: str, spec: dict[str, Any], where: str) -> tuple[int, int]:
    """(height, width) of a camera from its shape: (H, W, C), or (C, H, W) when its names say so."""
    shape, names = [int(s) for s in spec["shape"]], spec.get("names")
    if len(shape) != 3:
        raise DatasetError(f"{where}: camera {key!r} has shape {shape}, expected 3 dimensions")
    channels_first = isinstance(names, list) and names and str(names[0]).lower() in ("channel", "channels", "c")
    return (shape[1], shape[2]) if channels_first else (shape[0], shape[1])


def plan_features(source: Source) -> tuple[dict[str, Feature], list[str]]:
    """wam features for the source's, and notes on what is left out."""
    where = str(source.root / layout.INFO_PATH)
    features: dict[str, Feature] = {}
    notes: list[str] = []
    for key, spec in source.features.items():
        dtype = str(spec["dtype"])
        if dtype in CAMERA_DTYPES:
            height, width = camera_size(key, spec, where)
            features[key] = Feature("video", (height, width, 3), ("height", "width", "channels"))
        elif dtype in NUMERIC:
            shape = tuple(int(s) for s in spec["shape"]) or (1,)
            features[key] = Feature(dtype, shape, _names(spec, int(np.prod(shape))))
        else:
            notes.append(f"feature {key!r} (dtype {dtype}) left out: not numeric and not a camera")
    if not features:
        raise DatasetError(f"{where}: no camera or numeric feature to import")
    return features, notes


def _decode_at(path: Path, timestamps: np.ndarray, fps: int, size: tuple[int, int]) -> np.ndarray:
    """The frames of `path` nearest each timestamp (within half a frame): (T, H, W, 3) uint8."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                times.append(frame.time if frame.time is not None else len(times) / fps)
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, IndexError, OSError) as err:
        raise DatasetError(f"{path}: unreadable video ({err})") from None
    if not frames:
        raise DatasetError(f"{path}: no frames decoded")
    if frames[0].shape[:2] != size:
        raise DatasetError(f"{path}: frames are {frames[0].shape[0]}x{frames[0].shape[1]}, info.json says {size[0]}x{size[1]}")
    order = np.argsort(times)
    times_sorted = np.asarray(times, dtype=np.float64)[order]
    right = np.clip(np.searchsorted(times_sorted, timestamps), 1, len(times_sorted) - 1) if len(times_sorted) > 1 else np.zeros(len(timestamps), int)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(times_sorted[left] - timestamps) <= np.abs(times_sorted[right] - timestamps), left, right)
    gap = np.abs(times_sorted[nearest] - timestamps)
    if np.any(gap > 0.5 / fps):
        bad = int(np.argmax(gap > 0.5 / fps))
        raise DatasetError(
            f"{path}: no frame at {timestamps[bad]:.3f} s (row {bad}; the video has {len(frames)} frames "
            f"from {times_sorted[0]:.3f} to {times_sorted[-1]:.3f} s)"
        )
    return np.stack([frames[i] for i in order[nearest]])


def _decode_images(column: pa.ChunkedArray, root: Path, where: str, size: tuple[int, int]) -> np.ndarray:
    """A `dtype: image` column (structs of PNG/JPEG bytes, or paths) as (T, H, W, 3) uint8."""
    images = []
    for row, value in enumerate(column.to_pylist()):
        if isinstance(value, dict):
            payload, path = value.get("bytes"), value.get("path")
        else:
            payload, path = value, None
        try:
            if payload:
                image = Image.open(io.BytesIO(payload))
            elif path:
                image = Image.open(root / path if not Path(path).is_absolute() else path)
            else:
                raise DatasetError(f"{where}: row {row} has no image")
            images.append(np.asarray(image.convert("RGB")))
        except (OSError, ValueError) as err:
            raise DatasetError(f"{where}: row {row} is not a readable image ({err})") from None
        if images[-1].shape[:2] != size:
            raise DatasetError(f"{where}: row {row} is {images[-1].shape[0]}x{images[-1].shape[1]}, info.json says {size[0]}x{size[1]}")
    return np.stack(images)


def _numeric(column: pa.ChunkedArray, feature: Feature, length: int, where: str) -> np.ndarray:
    """A scalar or (nested) list column as (T, *shape) in the feature's dtype."""
    if column.null_count:
        raise DatasetError(f"{where}: {column.null_count} null value(s)")
    array = column.combine_chunks()
    while pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    values = array.to_numpy(zero_copy_only=False)
    size = int(np.prod(feature.shape))
    if values.size != length * size:
        raise DatasetError(f"{where}: {values.size} values for {length} frames of shape {feature.shape}")
    dtype = np.bool_ if feature.dtype == "bool" else np.dtype(feature.dtype)
    return values.reshape(length, *feature.shape).astype(dtype)


def _episode_task(source: Source, row: dict[str, Any], table: pa.Table, where: str) -> tuple[str, list[str]]:
    tasks = row.get("tasks") or []
    tasks = [tasks] if isinstance(tasks, str) else [str(t) for t in tasks]
    if not tasks and "task_index" in table.column_names and table.num_rows:
        index = int(table["task_index"][0].as_py())
        if index in source.tasks:
            tasks = [source.tasks[index]]
    if not tasks:
        raise DatasetError(f"{where}: episode {row['episode_index']} has no task in meta/episodes.jsonl or meta/tasks.jsonl; give one with --task")
    return tasks[0], tasks


def load_episode(source: Source, row: dict[str, Any], features: dict[str, Feature], task: str | None = None) -> Episode:
    """One source episode in memory, every planned feature read and checked."""
    index, length = int(row["episode_index"]), int(row["length"])
    path = source.data_file(index)
    if not path.is_file():
        raise DatasetError(f"{path}: missing (episode {index})")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable parquet ({err})") from None
    if "episode_index" in table.column_names and table.num_rows:
        table = table.filter(pc.equal(table["episode_index"], index))
    if "frame_index" in table.column_names:
        table = table.sort_by("frame_index")
    if table.num_rows != length:
        raise DatasetError(f"{path}: episode {index} has {table.num_rows} rows, meta/episodes.jsonl says {length}")
    if "timestamp" in table.column_names:
        timestamps = table["timestamp"].to_numpy().astype(np.float64)
    else:
        timestamps = np.arange(length) / source.fps
    first_task, all_tasks = _episode_task(source, row, table, str(path))
    images, data = {}, {}
    for key, feature in features.items():
        dtype = source.features[key]["dtype"]
        if dtype == "video":
            images[key] = _decode_at(source.video_file(key, index), timestamps, source.fps, feature.shape[:2])
            continue
        if key not in table.column_names:
            raise DatasetError(f"{path}: no column {key!r} (info.json declares it)")
        where = f"{path}: column {key!r}"
        if dtype == "image":
            images[key] = _decode_images(table[key], source.root, where, feature.shape[:2])
        else:
            data[key] = _numeric(table[key], feature, length, where)
    success = bool(np.any(data["next.success"])) if "next.success" in data else None
    info: dict[str, str | int] = {"source_episode_index": index}
    if len(all_tasks) > 1:
        info["source_tasks"] = json.dumps(all_tasks)
    return Episode(task or first_task, images, data, success=success, info=info)


def import_lerobot_v21(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Convert the v2.x dataset at `src` into a wam dataset at `out` (a new directory; see `convert_dataset`
    for the whole-or-nothing wrapper). `task` replaces every episode's task; `fps` overrides the stated rate."""
    source = read_source(src)
    features, notes = plan_features(source)
    out_fps = int(fps) if fps else source.fps
    if out_fps != source.fps:
        notes.append(f"fps {source.fps} of the source written as {out_fps}")
    robot_type = str(source.info.get("robot_type") or "unknown")
    frames, tasks = 0, {}
    with DatasetWriter(out, features=features, fps=out_fps, robot_type=robot_type, video=video) as writer:
        for number, row in enumerate(source.episodes):
            episode = load_episode(source, row, features, task)
            writer.add_episode(episode)
            frames += episode.length
            tasks.setdefault(episode.task, None)
            if progress is not None:
                progress(number + 1, len(source.episodes))
    cameras = {k: (f.shape[0], f.shape[1]) for k, f in features.items() if f.is_video}
    return ImportResult(str(src), str(out), FORMAT, len(source.episodes), frames, out_fps, cameras, list(tasks), notes)
