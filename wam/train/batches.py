"""Batches drawn from the frame cache, each one a pure function of (seed, step).

That is what makes resume exact without saving any sampler state: the batch at step
1,234 is the same whether the run got there in one go or was killed at step 1,000.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from pathlib import Path

import numpy as np
import torch

from wam.models.text import TextConfig, tokenize
from wam.train.contract import CHUNK_KEYS, FRAME_BATCH, WINDOW_BATCH, check_batch
from wam.train.frame_cache import CachedEpisode, FrameCache


def _rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


class FrameBatches:
    """Single frames for the tokenizer: {"frames": (B, 3, H, W) uint8}."""

    def __init__(self, cache: FrameCache, episodes: Sequence[CachedEpisode], batch_size: int, seed: int):
        self.cache, self.batch_size, self.seed = cache, batch_size, seed
        self.rows = np.concatenate([np.arange(e.start, e.start + e.length) for e in episodes])

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rows = np.sort(_rng(self.seed, step).choice(self.rows, self.batch_size, replace=len(self.rows) < self.batch_size))
        frames = torch.from_numpy(np.ascontiguousarray(self.cache.frames[rows]))
        batch = {"frames": frames.permute(0, 3, 1, 2).contiguous()}
        check_batch(batch, FRAME_BATCH, "FrameBatches")
        return batch


class WindowBatches:
    """Windows of `window` latent frames, `stride` control steps apart, with state, actions and text.

    `stride` is one number, or one per dataset (its resolved root -> steps) when datasets at
    different frame rates share one time base (`wam.data.spec.frame_strides`). Windows with
    actions need one stride (the actions between two frames are the WAM's input), so mixed
    strides are for action-free video only.
    """

    def __init__(
        self,
        cache: FrameCache,
        latents: np.ndarray,  # (N, C, h, w)
        episodes: Sequence[CachedEpisode],
        window: int,
        stride: int | Mapping[str, int],
        batch_size: int,
        seed: int,
        text: TextConfig,
        require_actions: bool = False,
        chunk: int = 0,  # > 0: also the next `chunk` control actions from every frame (the WAM's targets)
        shifted: np.ndarray | None = None,  # (copies, N, C, h, w): latents of shifted frames (wam/train/augment.py)
    ):
        self.cache, self.latents, self.chunk, self.shifted = cache, latents, chunk, shifted
        self.window, self.batch_size, self.seed, self.text = window, batch_size, seed, text
        stride_of = (lambda e: stride) if isinstance(stride, int) else (lambda e: _stride_of(stride, e))  # noqa: E731
        span = lambda e: (window - 1) * stride_of(e) + 1  # noqa: E731
        self.episodes = [e for e in episodes if e.length >= span(e) and (e.has_actions or not require_actions)]
        if not self.episodes:
            raise ValueError(f"no episode is long enough for {window} frames at stride {stride} "
                             f"({', '.join(sorted({str(span(e)) for e in episodes}))} steps)")
        self.strides = np.array([stride_of(e) for e in self.episodes])
        uniform = len(set(self.strides.tolist())) == 1
        if (require_actions or chunk) and not uniform:
            raise ValueError(f"labelled windows need one frame stride, the datasets give {sorted(set(self.strides.tolist()))}")
        self.stride = int(self.strides[0]) if uniform else 0  # 0: mixed, no actions between frames
        self.starts = np.array([e.length - span(e) + 1 for e in self.episodes])
        self.weights = self.starts / self.starts.sum()

    def window_at(
        self, episodes: Sequence[CachedEpisode], starts: Sequence[int], copies: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`copies[i]` picks window i's frames: 0 the frames as recorded, c > 0 the c-th shifted copy."""
        strides = [self.stride] * len(episodes) if strides is None else strides
        rows = np.stack([e.start + s + np.arange(self.window) * k for e, s, k in zip(episodes, starts, strides)])  # (B, W)
        ends = np.array([e.start + e.length - 1 for e in episodes])[:, None, None]  # last row of each episode
        latents = np.asarray(self.latents[rows.reshape(-1)], dtype=np.float32).reshape(len(episodes), self.window, -1)  # (B, W, C*h*w)
        for i, c in enumerate(() if copies is None else copies):
            if c > 0:
                latents[i] = np.asarray(self.shifted[c - 1, rows[i]], dtype=np.float32).reshape(self.window, -1)
        latents = torch.from_numpy(latents).view(len(episodes), self.window, *self.latents.shape[1:])
        has_state = torch.tensor([e.has_state for e in episodes])[:, None].expand(-1, self.window)
        has_actions = torch.tensor([e.has_actions for e in episodes])[:, None].expand(-1, self.window)
        has_reward = torch.tensor([e.has_reward for e in episodes])[:, None].expand(-1, self.window)
        batch = {
            "latents": latents,  # (B, W, C, h, w)
            "state": torch.from_numpy(self.cache.state[rows]),  # (B, W, S)
            "state_mask": has_state.contiguous(),  # (B, W)
            "action": torch.from_numpy(self.action_chunks(rows, ends)),  # (B, W, stride, A): the actions between frames
            "action_mask": has_actions.contiguous(),
            "reward": torch.from_numpy(self.cache.reward[rows]),  # (B, W): received on arriving at each frame
            "success": torch.from_numpy(self.cache.success[rows]),  # (B, W) bool: the frame satisfies the task
            "reward_mask": has_reward.contiguous(),
            "text_ids": tokenize([e.task for e in episodes], self.text),  # (B, L)
        }
        if self.chunk:
            steps = rows[..., None] + np.arange(self.chunk)  # (B, W, H)
            batch["action_chunk"] = torch.from_numpy(self.cache.action[np.minimum(steps, ends)])  # (B, W, H, A)
            batch["action_chunk_mask"] = torch.from_numpy(steps <= ends)  # (B, W, H): False past the episode's end
        check_batch(batch, {**WINDOW_BATCH, **CHUNK_KEYS} if self.chunk else WINDOW_BATCH, "WindowBatches")
        return batch

    def action_chunks(self, rows: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The `stride` control actions from each frame to the next (past the episode's end: repeat its last);
        with mixed strides (action-free video only) one zero action per frame."""
        if self.stride == 0:
            return np.zeros((*rows.shape, 1, self.cache.action.shape[1]), np.float32)
        steps = rows[..., None] + np.arange(self.stride)  # (B, W, stride)
        return self.cache.action[np.minimum(steps, ends)]

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = _rng(self.seed, step)
        chosen = rng.choice(len(self.episodes), self.batch_size, p=self.weights)
        starts = [int(rng.integers(self.starts[i])) for i in chosen]
        copies = None if self.shifted is None else rng.integers(len(self.shifted) + 1, size=len(chosen)).tolist()
        return self.window_at([self.episodes[i] for i in chosen], starts, copies, [int(self.strides[i]) for i in chosen])


def _stride_of(strides: Mapping[str, int], episode: CachedEpisode) -> int:
    """An episode's stride, looked up by its dataset (keys may be given as typed or resolved)."""
    if episode.dataset in strides:
        return int(strides[episode.dataset])
    for root, stride in strides.items():
        if str(Path(root).resolve()) == episode.dataset:
            return int(stride)
    raise KeyError(f"no frame stride for dataset {episode.dataset}")
