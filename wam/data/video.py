"""Camera streams as mp4 files: encode with PyAV, decode whole or a window by seeking.

H.264 with full-resolution colour (yuv444p) is the default: at 64x64, lerobot's default of
AV1 with 4:2:0 chroma loses about 5 dB PSNR to chroma subsampling alone (32 vs 37 dB on
Meta-World frames), and H.264 encodes and decodes faster on a CPU. Keyframes every
`gop` frames bound what a random-access read decodes and throws away.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from wam.errors import DatasetError


@dataclass(frozen=True)
class VideoConfig:
    codec: str = "libx264"
    pix_fmt: str = "yuv444p"
    crf: int = 12
    gop: int = 8
    preset: str = "veryfast"


def feature_info(config: VideoConfig, height: int, width: int, fps: int) -> dict[str, Any]:
    """The `info` block lerobot keeps beside a video feature in meta/info.json."""
    return {
        "video.height": height,
        "video.width": width,
        "video.codec": "h264" if config.codec in ("libx264", "h264") else config.codec,
        "video.pix_fmt": config.pix_fmt,
        "video.is_depth_map": False,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": False,
        "wam.video": asdict(config),
    }


def encode_video(frames: np.ndarray, path: Path, fps: int, config: VideoConfig = VideoConfig()) -> None:
    """Write (T, H, W, 3) uint8 frames to `path` (the caller renames it into place)."""
    import av  # here, not at import: model code (and a GPU machine without PyAV) needs no video

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("cannot encode an empty video")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"frame size must be even for H.264, got {height}x{width}")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"crf": str(config.crf), "preset": config.preset, "threads": "1"}
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(config.codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, config.pix_fmt
        stream.gop_size = config.gop
        stream.codec_context.time_base = Fraction(1, fps)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _frame_number(frame: Any, fps: int) -> int:
    return int(round(float(frame.pts * frame.time_base) * fps))


def decode_video(path: Path, fps: int, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames [start, start+count) as (count, H, W, 3) uint8; seeks to the keyframe before `start`.

    Raises DatasetError naming the file when it cannot be opened or holds fewer frames.
    """
    import av  # here, not at import: model code (and a GPU machine without PyAV) needs no video

    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise DatasetError(f"{path}: unreadable video ({err})") from None
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        if start > 0:
            container.seek(int(start / fps / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            number = _frame_number(frame, fps)
            if number < start:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if count is not None and len(frames) >= count:
                break
    except (av.FFmpegError, IndexError, ValueError) as err:
        raise DatasetError(f"{path}: video decoding failed at frame {start + len(frames)} ({err})") from None
    finally:
        container.close()
    if count is not None and len(frames) < count:
        raise DatasetError(f"{path}: asked for frames {start}..{start + count - 1}, only {len(frames)} of them decode (the file ends early)")
    if not frames:
        raise DatasetError(f"{path}: no frames decoded")
    return np.stack(frames)


@dataclass(frozen=True)
class VideoScan:
    """What decoding a whole file found: the frames that decoded before any error, and the error."""

    frames: int
    size: tuple[int, int] | None  # (H, W) from the stream header; None when the file did not open
    error: str | None


def scan_video(path: Path) -> VideoScan:
    """Decode every frame (a real integrity check, not the header's claim), keeping what decoded before an error.

    A truncated mp4 whose index sits at the front (faststart) decodes up to the cut and then
    fails: `frames` says where the damage starts, so a packed file can name the episodes it breaks.
    """
    import av  # here, not at import: model code (and a GPU machine without PyAV) needs no video

    frames, size = 0, None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            size = (stream.codec_context.height, stream.codec_context.width)
            for _ in container.decode(stream):
                frames += 1
    except (av.FFmpegError, IndexError, OSError) as err:
        return VideoScan(frames, size, str(err))
    return VideoScan(frames, size, None)


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """Decode every frame: (count, (H, W)); raises DatasetError naming the file on any decoding error."""
    scan = scan_video(path)
    if scan.error is not None or scan.size is None:
        raise DatasetError(f"{path}: unreadable video ({scan.error})")
    return scan.frames, scan.size


def file_size(path: Path) -> int:
    return os.path.getsize(path) if path.exists() else 0
