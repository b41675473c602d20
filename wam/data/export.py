"""Look at an episode: write its frames as an mp4 or GIF, scaled up for human eyes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wam.data.reader import Dataset
from wam.data.video import VideoConfig, encode_video
from wam.errors import DatasetError


def export_episode(dataset: Dataset, episode: int, out: Path, camera: str | None = None, scale: int = 4, fps: int | None = None) -> Path:
    """Write episode `episode` to `out` (.mp4 or .gif); frames upscaled `scale` times by pixel repetition."""
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise DatasetError(f"{out}: export writes .mp4 or .gif, not {out.suffix or 'no extension'!r}")
    if not 0 <= episode < dataset.num_episodes:
        raise DatasetError(f"{dataset.root}: episode {episode} out of range (0..{dataset.num_episodes - 1})")
    if camera is not None and camera not in dataset.camera_keys:
        raise DatasetError(f"{dataset.root}: no camera {camera!r}; cameras: {dataset.camera_keys}")
    frames = dataset.frames(episode, camera)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    fps = fps or min(dataset.fps, 30)
    write_video(frames, out, fps)
    return out


def write_video(frames: np.ndarray, out: Path, fps: int) -> None:
    """(T, H, W, 3) uint8 to an mp4 (widely playable H.264 4:2:0) or a looping GIF."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return
    encode_video(frames, out, fps, VideoConfig(pix_fmt="yuv420p", crf=18))
