"""Read a dataset: its episodes, tasks, and windows of T consecutive frames.

Windows decode only the frames they need (a seek to the keyframe before the window), so
random access costs a few frames, not a whole file. The object holds no open files and
pickles cheaply, so DataLoader worker processes each get their own copy.

Both packings read the same way: wam's one file per episode and lerobot's shared files (one
data parquet with a row group per episode, one mp4 per camera where an episode starts at its
`from_timestamp`). Cameras are `dtype: video` (mp4) or `dtype: image` (PNG bytes in the data
parquet, as lerobot stores image features).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from wam.data import layout
from wam.data.layout import ACTION_KEY, Feature
from wam.data.meta import read_episode_rows, read_tasks
from wam.data.video import decode_video
from wam.errors import DatasetError

CAMERA_DTYPES = ("video", "image")
# Columns every frame row has besides the features; what low_dim reads with them.
ROW_INDEX_COLUMNS = ("frame_index", "timestamp", "task_index")


@dataclass(frozen=True)
class EpisodeInfo:
    index: int
    length: int
    task: str
    has_actions: bool
    success: bool | None
    from_index: int
    row: dict[str, Any]

    @property
    def info(self) -> dict[str, Any]:
        """The episode's own metadata (`info/<key>` columns): env id, seed, noise, ..."""
        return {k.removeprefix("info/"): v for k, v in self.row.items() if k.startswith("info/") and v is not None}


class Dataset:
    """A LeRobot v3 dataset on disk, as wam writes it (lerobot's own packed files read too)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.info = layout.load_info(self.root)
        self.fps = int(self.info["fps"])
        self.features: dict[str, Feature] = layout.parse_features(self.info, str(self.root / layout.INFO_PATH))
        self.camera_keys = [k for k, f in self.features.items() if f.dtype in CAMERA_DTYPES]
        self.data_keys = [k for k, f in self.features.items() if f.dtype not in CAMERA_DTYPES]
        rows = read_episode_rows(self.root)
        self.episodes = [
            EpisodeInfo(
                index=row["episode_index"],
                length=int(row["length"]),
                task=row["tasks"][0],
                has_actions=bool(row.get("has_actions", ACTION_KEY in self.features)),
                success=row.get("success"),
                from_index=int(row["dataset_from_index"]),
                row=row,
            )
            for row in rows
        ]
        self._low_dim: dict[int, dict[str, np.ndarray]] = {}

    # -- summary -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames}, fps={self.fps})"

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return sum(e.length for e in self.episodes)

    @cached_property
    def tasks(self) -> list[str]:
        return read_tasks(self.root)

    @property
    def has_actions(self) -> bool:
        return ACTION_KEY in self.features

    @property
    def action_dim(self) -> int | None:
        return int(np.prod(self.features[ACTION_KEY].shape)) if self.has_actions else None

    # -- cameras -------------------------------------------------------------------------------
    def camera_storage(self, key: str) -> str:
        """How a camera's frames are stored: `video` (an mp4) or `image` (PNG bytes in the data parquet)."""
        if key not in self.camera_keys:
            raise DatasetError(f"{self.root}: no camera {key!r}; cameras: {self.camera_keys}")
        return self.features[key].dtype

    def camera_size(self, key: str) -> tuple[int, int]:
        """(height, width) of a camera's frames, as meta/info.json states them."""
        self.camera_storage(key)
        return camera_size(self.info["features"][key], self.features[key])

    # -- files ---------------------------------------------------------------------------------
    def data_file(self, episode: int) -> Path:
        row = self.episodes[episode].row
        return self.root / layout.DATA_PATH.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def video_file(self, episode: int, key: str) -> Path:
        row = self.episodes[episode].row
        return self.root / layout.VIDEO_PATH.format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
        )

    def _video_offset(self, episode: int, key: str) -> int:
        """First frame of the episode inside its (possibly shared) video file."""
        return int(round(float(self.episodes[episode].row.get(f"videos/{key}/from_timestamp", 0.0)) * self.fps))

    # -- low-dimensional data -------------------------------------------------------------------
    def low_dim(self, episode: int) -> dict[str, np.ndarray]:
        """All low-dimensional features of one episode (cached); `action` is absent for action-free video."""
        if episode < 0 or episode >= self.num_episodes:
            raise DatasetError(f"{self.root}: episode {episode} out of range (0..{self.num_episodes - 1})")
        if episode in self._low_dim:
            return self._low_dim[episode]
        meta = self.episodes[episode]
        table = self._episode_rows(episode, [*self.data_keys, *ROW_INDEX_COLUMNS])
        out: dict[str, np.ndarray] = {}
        for key in table.column_names:
            column = table[key]
            if column.null_count == len(column):
                continue
            feature = self.features.get(key)
            if pa.types.is_fixed_size_list(column.type):
                values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                values = values.reshape(meta.length, *(feature.shape if feature else (-1,)))
            else:
                values = column.to_numpy(zero_copy_only=False)
            out[key] = values
        if not meta.has_actions:
            out.pop(ACTION_KEY, None)
        self._low_dim[episode] = out
        return out

    def _episode_rows(self, episode: int, columns: list[str]) -> pa.Table:
        """The episode's rows of its data file, only `columns` (those the file has).

        A file holding other episodes too (lerobot packs them) is read through a filter on
        `episode_index`, which skips the row groups of other episodes unread.
        """
        meta = self.episodes[episode]
        path = self.data_file(episode)
        try:
            with pq.ParquetFile(path) as parquet:
                present = [c for c in dict.fromkeys(columns) if c in parquet.schema_arrow.names]
                whole = parquet.metadata.num_rows == meta.length
                table = parquet.read(columns=present) if whole else None
            if table is None:
                table = pq.read_table(path, columns=present, filters=[("episode_index", "=", episode)])
        except (pa.ArrowException, OSError) as err:
            raise DatasetError(f"{path}: unreadable parquet ({err})") from None
        if table.num_rows != meta.length:
            raise DatasetError(f"{path}: episode {episode} has {table.num_rows} rows, meta/episodes says {meta.length}")
        return table

    # -- frames --------------------------------------------------------------------------------
    def frames(self, episode: int, key: str | None = None, start: int = 0, count: int | None = None) -> np.ndarray:
        """Decoded frames (count, H, W, 3) uint8 of one camera, from `start`."""
        key = key or self._default_camera()
        length = self.episodes[episode].length
        count = length - start if count is None else count
        if start < 0 or count < 1 or start + count > length:
            raise DatasetError(f"{self.root}: frames {start}..{start + count - 1} outside episode {episode} (length {length})")
        if self.camera_storage(key) == "image":
            return self._image_frames(episode, key, start, count)
        offset = self._video_offset(episode, key)
        return decode_video(self.video_file(episode, key), self.fps, offset + start, count)

    def _image_frames(self, episode: int, key: str, start: int, count: int) -> np.ndarray:
        """PNG-stored frames: decode the `bytes` of the episode's rows start..start+count-1."""
        path = self.data_file(episode)
        table = self._episode_rows(episode, [key])
        if key not in table.column_names:
            raise DatasetError(f"{path}: no column {key!r} for the image feature of that name")
        size = self.camera_size(key)
        frames = []
        for i, cell in enumerate(table[key].slice(start, count).to_pylist()):
            where = f"{path}: episode {episode} frame {start + i} of {key!r}"
            frames.append(decode_png(cell, where))
            if frames[-1].shape[:2] != size:
                raise DatasetError(f"{where}: image is {frames[-1].shape[0]}x{frames[-1].shape[1]}, info.json says {size[0]}x{size[1]}")
        return np.stack(frames)  # (count, H, W, 3)

    def _default_camera(self) -> str:
        if not self.camera_keys:
            raise DatasetError(f"{self.root}: dataset has no camera")
        return self.camera_keys[0]

    def window(self, episode: int, start: int, length: int, cameras: list[str] | None = None) -> dict[str, Any]:
        """Frames [start, start+length) of an episode with state, actions and their mask, and the task.

        `action` is zeros where the episode has no actions and `action_mask` says which rows are real.
        """
        meta = self.episodes[episode]
        if start < 0 or length < 1 or start + length > meta.length:
            raise DatasetError(f"{self.root}: window {start}+{length} outside episode {episode} (length {meta.length})")
        low = self.low_dim(episode)
        out: dict[str, Any] = {key: low[key][start : start + length] for key in self.data_keys if key in low}
        for key in self.camera_keys if cameras is None else cameras:
            out[key] = self.frames(episode, key, start, length)
        if self.has_actions:
            shape = (length, *self.features[ACTION_KEY].shape)
            out[ACTION_KEY] = out.get(ACTION_KEY, np.zeros(shape, dtype=np.float32))
            out["action_mask"] = np.full(length, meta.has_actions)
        else:
            out["action_mask"] = np.zeros(length, dtype=bool)
        out["task"] = meta.task
        out["episode_index"] = episode
        out["frame_index"] = np.arange(start, start + length)
        return out

    def episode(self, episode: int) -> dict[str, Any]:
        """A whole episode: every feature, every frame."""
        return self.window(episode, 0, self.episodes[episode].length)


def camera_size(spec: dict[str, Any], feature: Feature) -> tuple[int, int]:
    """(height, width) of a camera feature: from its axis names, else its video info, else its shape.

    lerobot writes (H, W, 3) with names [height, width, channels]; some converted datasets
    are channels-first (3, H, W), which the names (or the shape) give away.
    """
    names = [str(n).lower() for n in feature.names] if feature.names else []
    if len(names) == len(feature.shape) and "height" in names and "width" in names:
        return feature.shape[names.index("height")], feature.shape[names.index("width")]
    video = spec.get("info") or {}
    if "video.height" in video and "video.width" in video:
        return int(video["video.height"]), int(video["video.width"])
    if len(feature.shape) == 3 and feature.shape[0] in (1, 3) and feature.shape[2] not in (1, 3):
        return feature.shape[1], feature.shape[2]
    return feature.shape[0], feature.shape[1]


def decode_png(cell: Any, where: str) -> np.ndarray:
    """One image cell of a data parquet (`{"bytes": ..., "path": ...}`, as `datasets` stores an Image) as (H, W, 3) uint8."""
    payload = cell.get("bytes") if isinstance(cell, dict) else cell
    if not payload:
        raise DatasetError(f"{where}: no image bytes")
    try:
        with Image.open(io.BytesIO(payload)) as image:
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise DatasetError(f"{where}: undecodable image (not an image format Pillow reads)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise DatasetError(f"{where}: undecodable image ({err})") from None
