"""Datasets laid out exactly as lerobot 0.4.4 writes LeRobot v3, without lerobot installed.

lerobot packs every episode into one data parquet (one row group per `save_episode`) and
one mp4 per camera: each episode is encoded on its own (yuv420p, GOP 2, CRF 30), then the
episodes are joined by PyAV's concat demuxer without re-encoding, and an episode's place in
the shared mp4 is its `videos/<key>/from_timestamp`..`to_timestamp` in meta/episodes.
Cameras stored as `dtype: image` are PNG bytes in the data parquet instead (a
struct<bytes, path> column, as Hugging Face `datasets` writes its Image feature).
See /work/shared/notes/lerobot-v3-layout.md for the reference dataset this copies.

The content is deterministic in `seed` and means something: states are joint angles in
radians (about 0..3) and grippers in 0..0.08 m, actions are the next state, and each
camera shows a coloured square whose position follows two state dimensions.
`episode_arrays` regenerates what was written, for tests to compare against.

Import it from any test:
    from tests.support.lerobot_like import write_lerobot_dataset
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from wam.data.meta import write_tasks
from wam.data.stats import aggregate_stats, episode_stats, stats_to_json

AV1_ENCODER: str | None = next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)
CODECS: tuple[str, ...] = ("h264",) + (("av1",) if AV1_ENCODER else ())  # what write_lerobot_dataset can encode here
DEFAULT_CAMERAS = {"observation.images.top": (96, 96)}
DATA_FILE = "data/chunk-000/file-000.parquet"
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"
INDEX_FEATURES = {
    "timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64", "task_index": "int64",
}
# Small datasets, one per way lerobot stores things, quick to write (well under a second each).
# Video frames are at least 48 px: at 32x32, 4:2:0 chroma costs H.264 at CRF 30 its margin over 25 dB PSNR.
# "av1" is left out where PyAV has no AV1 encoder, so tests parametrised over VARIANTS never skip.
VARIANTS: dict[str, dict[str, Any]] = {
    "h264": dict(codec="h264", cameras={"observation.images.top": (48, 64)}, length=(12, 9, 14)),
    **({"av1": dict(codec="av1", cameras={"observation.images.top": (64, 64)}, length=(12, 9, 14))} if AV1_ENCODER else {}),
    "image": dict(image_storage="image", cameras={"observation.images.top": (48, 64), "observation.images.wrist": (32, 32)},
                  length=(12, 9, 14)),
    "two_cameras": dict(cameras={"observation.images.top": (48, 64), "observation.images.wrist": (48, 48)},
                        length=(10, 13, 8), fps=30, state_dim=7, action_dim=7),
    "no_next": dict(next_fields=False, cameras={"observation.images.top": (48, 48)}, state_dim=6, action_dim=4,
                    episodes=4, length=(10, 9, 11, 8), tasks=("stack",)),
}
ARM = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")


def video_file(root: str | Path, key: str) -> Path:
    return Path(root) / f"videos/{key}/chunk-000/file-000.mp4"


def data_file(root: str | Path) -> Path:
    return Path(root) / DATA_FILE


def truncate_file(path: str | Path, keep: float = 0.5) -> Path:
    """Cut a file to `keep` of its bytes, as a copy or a writer that died mid-file leaves it."""
    path = Path(path)
    payload = path.read_bytes()
    path.write_bytes(payload[: int(len(payload) * keep)])
    return path


def drop_rows(path: str | Path, keep_rows: int) -> Path:
    """Rewrite a parquet with only its first `keep_rows` rows (readable, but short)."""
    path = Path(path)
    table = pq.read_table(path)
    pq.write_table(table.slice(0, keep_rows), path)
    return path


# -- content -----------------------------------------------------------------------------------
def _is_gripper(dim: int) -> bool:
    return dim % len(ARM) == len(ARM) - 1


def _names(dim: int, prefix: str = "") -> list[str]:
    sides = ("left", "right") if dim == 2 * len(ARM) else tuple(f"arm{i}" for i in range((dim + len(ARM) - 1) // len(ARM)))
    return [f"{prefix}{sides[d // len(ARM)]}_{ARM[d % len(ARM)]}" for d in range(dim)]


def _unit(value: float, dim: int) -> float:
    """A joint angle (0..3 rad) or gripper opening (0..0.08 m) as 0..1."""
    return float(np.clip(value / (0.08 if _is_gripper(dim) else 3.0), 0.0, 1.0))


def _lengths(episodes: int, length: int | Sequence[int]) -> list[int]:
    lengths = [int(length)] * episodes if isinstance(length, int) else [int(n) for n in length]
    if len(lengths) != episodes:
        raise ValueError(f"length has {len(lengths)} entries for {episodes} episodes")
    return lengths


def render(state: np.ndarray, height: int, width: int, camera: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: a dark gradient per camera and a bright square placed by two state dimensions."""
    dim = len(state)
    dx, dy = (2 * camera) % dim, (2 * camera + 1) % dim
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([20 + 60 * x / width, 20 + 60 * y / height, np.full_like(x, 60 + 40 * camera)], -1)
    side = max(min(height, width) // 4, 4)
    px = int(round(_unit(state[dx], dx) * (width - side)))
    py = int(round(_unit(state[dy], dy) * (height - side)))
    grip = next((_unit(state[d], d) for d in range(dim) if _is_gripper(d)), 0.5)
    image[py : py + side, px : px + side] = (250, 150 + 100 * grip, 90)  # bright: a luma edge survives 4:2:0
    return image.astype(np.uint8)


def episode_arrays(
    episode: int,
    *,
    cameras: dict[str, tuple[int, int]] = DEFAULT_CAMERAS,
    state_dim: int = 14,
    action_dim: int = 14,
    episodes: int = 3,
    length: int | Sequence[int] = 20,
    next_fields: bool = True,
    seed: int = 0,
    **_: Any,
) -> dict[str, np.ndarray]:
    """What `write_lerobot_dataset(**same kwargs)` writes for one episode: every feature, every frame."""
    n = _lengths(episodes, length)[episode]
    rng = np.random.default_rng([seed, episode])
    dims = max(state_dim, action_dim)
    # Fast for a robot (1.5-3 Hz swings) on purpose: the square moves a few pixels every frame,
    # so a frame read one off its place in a packed mp4 is clearly worse than the right one.
    t = np.arange(n + 1)[:, None] / 50.0
    centre = np.where([_is_gripper(d) for d in range(dims)], 0.04, rng.uniform(0.9, 2.1, dims))
    amplitude = np.where([_is_gripper(d) for d in range(dims)], 0.038, rng.uniform(0.5, 0.9, dims))
    trajectory = centre + amplitude * np.sin(2 * np.pi * rng.uniform(1.5, 3.0, dims) * t + rng.uniform(0, 2 * np.pi, dims))
    out: dict[str, np.ndarray] = {}
    state = trajectory[:n, :state_dim].astype(np.float32)  # (n, state_dim)
    for c, (key, (height, width)) in enumerate(cameras.items()):
        out[key] = np.stack([render(s, height, width, c) for s in state])  # (n, H, W, 3)
    out["observation.state"] = state
    out["action"] = trajectory[1:, :action_dim].astype(np.float32)  # the next state is the command
    if next_fields:
        out["next.reward"] = (1.0 - np.abs(state[:, 0] / 3.0 - 0.5) * 2).astype(np.float32)
        out["next.done"] = np.arange(n) == n - 1
        out["next.success"] = out["next.done"] & (episode % 2 == 0)
    return out


# -- files -------------------------------------------------------------------------------------
def _encode(frames: np.ndarray, path: Path, fps: int, encoder: str) -> None:
    """One episode as lerobot's encode_video_frames does it (PyAV, g=2, crf=30, yuv420p)."""
    with av.open(str(path), "w") as output:
        stream = output.add_stream(encoder, fps, options={"g": "2", "crf": "30"})
        stream.pix_fmt, stream.width, stream.height = "yuv420p", frames.shape[2], frames.shape[1]
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration / av.time_base)


def _concatenate(paths: list[Path], target: Path) -> None:
    """lerobot's concatenate_video_files: the concat demuxer, packets copied, moov atom first."""
    listing = paths[0].with_suffix(".ffconcat")
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in paths))
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(listing), "r", format="concat", options={"safe": "0"}) as source, av.open(
        str(target), "w", format="mp4", options={"movflags": "faststart"}
    ) as output:
        streams = {}
        for stream in source.streams.video:
            streams[stream.index] = output.add_stream_from_template(template=stream, opaque=True)
            streams[stream.index].time_base = stream.time_base
        for packet in source.demux():
            if packet.stream.index not in streams or packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            output.mux(packet)
    listing.unlink()


def _video_info(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height, "video.width": stream.width, "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt, "video.is_depth_map": False, "video.fps": int(stream.base_rate),
            "video.channels": 3, "has_audio": False,
        }


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _column(values: np.ndarray, dtype: str) -> pa.Array:
    scalar = pa.bool_() if dtype == "bool" else pa.from_numpy_dtype(np.dtype(dtype))
    if values.ndim == 1:
        return pa.array(values, type=scalar)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=scalar), values.shape[1])


def _hf_feature(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": spec["dtype"], "_type": "Value"}
    return value if list(spec["shape"]) == [1] else {"feature": value, "length": spec["shape"][0], "_type": "List"}


def _stats(values: np.ndarray, dtype: str, is_image: bool = False) -> dict[str, np.ndarray]:
    stats = episode_stats(values if is_image else values.reshape(len(values), -1), is_image=is_image)
    if dtype == "int64":
        stats["min"], stats["max"] = stats["min"].astype(np.int64), stats["max"].astype(np.int64)
    return stats


def write_lerobot_dataset(
    root: str | Path,
    *,
    cameras: dict[str, tuple[int, int]] = DEFAULT_CAMERAS,
    state_dim: int = 14,
    action_dim: int = 14,
    fps: int = 50,
    episodes: int = 3,
    length: int | Sequence[int] = 20,
    codec: str = "h264",
    image_storage: str = "video",
    next_fields: bool = True,
    tasks: Sequence[str] = ("pick the cube", "push the cube"),
    seed: int = 0,
) -> Path:
    """A finished (`finalize()`d) lerobot v3 dataset at `root`; episode i has task tasks[i % len(tasks)].

    `cameras` maps keys to (height, width), even sizes for video. `codec` is "h264" or "av1"
    (lerobot's default); "av1" falls back to h264, with a warning, where PyAV has no AV1
    encoder (`AV1_ENCODER` is None; `CODECS` lists what works here). `image_storage="image"`
    stores every camera as PNG bytes in the data parquet instead of mp4.
    """
    if codec not in ("h264", "av1"):
        raise ValueError(f"codec must be 'h264' or 'av1', got {codec!r}")
    if image_storage not in ("video", "image"):
        raise ValueError(f"image_storage must be 'video' or 'image', got {image_storage!r}")
    if codec == "av1" and AV1_ENCODER is None:
        warnings.warn("PyAV has no AV1 encoder here (libsvtav1, libaom-av1, librav1e); writing h264", stacklevel=2)
        codec = "h264"
    encoder = "libx264" if codec == "h264" else AV1_ENCODER
    root = Path(root)
    root.mkdir(parents=True, exist_ok=False)  # lerobot's create refuses an existing root too
    kwargs = dict(cameras=cameras, state_dim=state_dim, action_dim=action_dim, episodes=episodes, length=length,
                  next_fields=next_fields, seed=seed)
    lengths = _lengths(episodes, length)

    features: dict[str, dict[str, Any]] = {}
    for key, (height, width) in cameras.items():
        features[key] = {"dtype": "video" if image_storage == "video" else "image", "shape": [height, width, 3],
                         "names": ["height", "width", "channels"]}
    features["observation.state"] = {"dtype": "float32", "shape": [state_dim], "names": _names(state_dim)}
    features["action"] = {"dtype": "float32", "shape": [action_dim], "names": _names(action_dim)}
    if next_fields:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
        features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
        features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    features.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in INDEX_FEATURES.items()})
    columns = [k for k, f in features.items() if f["dtype"] != "video"]
    task_list = list(dict.fromkeys(tasks[i % len(tasks)] for i in range(episodes)))

    staging = Path(tempfile.mkdtemp(prefix="lerobot-like-"))
    writer: pq.ParquetWriter | None = None
    rows: list[dict[str, Any]] = []
    all_stats: list[dict[str, dict[str, np.ndarray]]] = []
    clips: dict[str, list[Path]] = {key: [] for key in cameras}
    timestamps: dict[str, float] = {key: 0.0 for key in cameras}
    try:
        for e, n in enumerate(lengths):
            arrays = episode_arrays(e, **kwargs)
            start = sum(lengths[:e])
            task = tasks[e % len(tasks)]
            frame_index = np.arange(n, dtype=np.int64)
            arrays.update(timestamp=(frame_index / fps).astype(np.float32), frame_index=frame_index,
                          episode_index=np.full(n, e, np.int64), index=frame_index + start,
                          task_index=np.full(n, task_list.index(task), np.int64))
            table: dict[str, pa.Array] = {}
            for key in columns:
                if features[key]["dtype"] == "image":
                    table[key] = pa.array(
                        [{"bytes": _png(image), "path": f"frame-{i:06d}.png"} for i, image in enumerate(arrays[key])],
                        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                    )
                else:
                    table[key] = _column(arrays[key], features[key]["dtype"])
            hf = {"info": {"features": {k: _hf_feature(features[k]) for k in columns}}}
            episode_table = pa.table(table).replace_schema_metadata({"huggingface": json.dumps(hf)})
            if writer is None:
                data_file(root).parent.mkdir(parents=True)
                writer = pq.ParquetWriter(data_file(root), episode_table.schema)
            writer.write_table(episode_table)  # one row group per episode, as save_episode appends

            row: dict[str, Any] = {"episode_index": e, "tasks": [task], "length": n, "data/chunk_index": 0,
                                   "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": start + n}
            if image_storage == "video":
                for key in cameras:
                    clip = staging / f"{key}-{e}.mp4"
                    _encode(arrays[key], clip, fps, encoder)
                    clips[key].append(clip)
                    duration = _duration(clip)
                    row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                                f"videos/{key}/from_timestamp": timestamps[key],
                                f"videos/{key}/to_timestamp": timestamps[key] + duration})
                    timestamps[key] += duration
            stats = {key: _stats(arrays[key], features[key]["dtype"], key in cameras) for key in features}
            all_stats.append(stats)
            for key, feature_stats in stats.items():
                for name, value in feature_stats.items():
                    row[f"stats/{key}/{name}"] = np.asarray(value).tolist()
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            rows.append(row)
        if writer is not None:
            writer.close()
            writer = None
        for key, paths in clips.items():
            if paths:
                _concatenate(paths, video_file(root, key))
                (root / "images" / key).mkdir(parents=True, exist_ok=True)  # lerobot leaves it behind, empty
    finally:
        if writer is not None:
            writer.close()
        shutil.rmtree(staging, ignore_errors=True)

    (root / EPISODES_FILE).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / EPISODES_FILE)
    write_tasks(root, task_list)
    dataset_stats = {key: aggregate_stats([s[key] for s in all_stats]) for key in features}
    for key, feature in features.items():
        if feature["dtype"] == "int64":
            for name in ("min", "max"):
                dataset_stats[key][name] = dataset_stats[key][name].astype(np.int64)
    (root / "meta/stats.json").write_text(json.dumps(stats_to_json(dataset_stats), indent=4))
    for key in cameras:
        if image_storage == "video":
            features[key]["info"] = _video_info(video_file(root, key))
    info = {
        "codebase_version": "v3.0", "robot_type": "aloha_like", "total_episodes": episodes,
        "total_frames": sum(lengths), "total_tasks": len(task_list), "chunks_size": 1000,
        "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        if image_storage == "video" else None,
        "features": features,
    }
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root
