"""Random-shift augmentation of the labelled robot frames, paid once at cache time.

Behaviour cloning from a handful of pixel demonstrations overfits to exactly where things
sit in the frame; shifting every image by a few pixels (pad with the border, crop back) is
the standard remedy for image-based control (DrQ, RAD, the random crops of diffusion
policy). Training here runs on cached latents of a frozen tokenizer, so the shifted copies
are encoded once, `copies` of them, rather than re-encoding frames every step.

One shift per episode and copy, shared by all its frames: a window stays a physically
consistent clip, so the next-state and dynamics losses still see a world in which only the
camera moved, never one that jitters between frames.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from wam.models.tokenizer import FrameTokenizer
from wam.train.frame_cache import CachedEpisode, FrameCache
from wam.train.progress import progress_bar


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """(N, H, W, 3) images moved by (dx, dy) pixels, the uncovered border filled by repeating the edge. Camera views
    side by side (W a multiple of H) are shifted each on its own, so no view slides into its neighbour."""
    if dx == 0 and dy == 0:
        return images
    h, width = images.shape[1:3]
    if width > h and width % h == 0:
        return np.concatenate([shift_images(images[:, :, v * h : (v + 1) * h], dx, dy) for v in range(width // h)], axis=2)
    pad = max(abs(dx), abs(dy))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    top, left = pad - dy, pad - dx
    return padded[:, top : top + h, left : left + w]


def episode_shifts(episodes: Sequence[CachedEpisode], copies: int, pad: int, seed: int) -> np.ndarray:
    """(copies, len(episodes), 2) integer shifts in [-pad, pad], a pure function of seed and episode (its dataset's
    folder name and index, not where the cache put it)."""
    shifts = np.zeros((copies, len(episodes), 2), dtype=np.int64)
    for c in range(copies):
        for i, e in enumerate(episodes):
            key = [seed, c, zlib.crc32(Path(e.dataset).name.encode()), e.episode]
            shifts[c, i] = np.random.default_rng(key).integers(-pad, pad + 1, size=2)
    return shifts


def encode_shifted_latents(
    tokenizer: FrameTokenizer,
    cache: FrameCache,
    episodes: Sequence[CachedEpisode],
    copies: int,
    pad: int,
    seed: int,
    path: Path,
    device: torch.device,
    progress: bool = True,
) -> np.ndarray:
    """(copies, N, C, h, w) float16 latents of shifted frames, aligned with the cache's rows.

    Only the given episodes' rows are encoded (the others stay zero and are never sampled);
    written to a temporary name, then renamed, so a killed run never leaves half a file. Under torchrun, rank 0
    encodes and the other ranks read its file.
    """
    from wam.train import distributed

    with distributed.main_first() as world:
        return _encode_shifted(tokenizer, cache, episodes, copies, pad, seed, path, device, progress and world.main)


def _encode_shifted(tokenizer: FrameTokenizer, cache: FrameCache, episodes: Sequence[CachedEpisode], copies: int, pad: int,
                    seed: int, path: Path, device: torch.device, progress: bool) -> np.ndarray:
    if path.exists():
        return np.load(path, mmap_mode="r")
    if copies < 1 or pad < 1:
        raise ValueError(f"augmentation needs copies >= 1 and pad >= 1, got copies={copies}, pad={pad}")
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".tmp-*-{path.name}"):  # a killed encode's half-written file: as big as the copies
        stale.unlink(missing_ok=True)
    tokenizer = tokenizer.to(device).eval()
    c_, size = tokenizer.config.latent_channels, tokenizer.config.latent_size
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(copies, len(cache.frames), c_, size, cache.views * size))
    shifts = episode_shifts(episodes, copies, pad, seed)
    total = copies * sum(e.length for e in episodes)
    with progress_bar("encode shifted latents", total, "frames", enabled=progress) as advance:
        for c in range(copies):
            for e, (dx, dy) in zip(episodes, shifts[c]):
                for start in range(e.start, e.start + e.length, 256):
                    stop = min(start + 256, e.start + e.length)
                    images = shift_images(np.array(cache.frames[start:stop]), int(dx), int(dy))
                    out[c, start:stop] = tokenizer.encode_images(images).float().cpu().numpy().astype(np.float16)
                    advance(stop - start)
    out.flush()
    del out
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")
