"""What the progress judge learns from (wam/models/progress_judge.py): clips of real episodes, their progress, and
hard negatives.

Progress of a frame, from the simulator's success flags: in an episode that succeeds first at frame s, t / s up to 1
(and 1 after); in one that never succeeds, `failure_ceiling` * t / (T - 1), so a failure never looks more than that
far along however close it came. A clip is K frames `spacing` control steps apart ending at the frame judged (one model
step apart: `stride` on real episodes, 1 on dreamed replays, whose frames are model steps already); frames before
the episode's start repeat its first frame. Hard negatives, as reward models are trained against over-rewarding:
- `relabel`: the clip shown with another task's instruction: progress 0, no success;
- `reverse`: a clip with no success frame played backwards: it ends where it began, so its progress is that of its
  (original) first frame, and no success; the judge must read the motion, not only the last scene.
Every batch is a pure function of (seed, step), like every batch in wam.
"""

from __future__ import annotations

import numpy as np
import torch

from wam.errors import DatasetError
from wam.models.text import tokenize


def progress_targets(success: np.ndarray, failure_ceiling: float) -> np.ndarray:
    """Per-frame progress of one episode from its success flags (see the module's docstring)."""
    success = np.asarray(success, bool).reshape(-1)
    t = np.arange(len(success), dtype=np.float32)
    if success.any():
        first = int(np.argmax(success))
        return np.minimum(1.0, t / max(first, 1)).astype(np.float32) if first else np.ones(len(t), np.float32)
    return (failure_ceiling * t / max(len(t) - 1, 1)).astype(np.float32)


def clip_rows(start: int, end: int, clip: int, spacing: int) -> np.ndarray:
    """Cache rows of the clip ending at row `end` of an episode beginning at row `start`: (clip,)."""
    return np.maximum(start, end - spacing * np.arange(clip - 1, -1, -1))


def spacing_of(source, stride: int) -> int:
    return 1 if source.cache.root.name == "dreamed" else stride


class ClipBatches:
    """Random clips of the sources' episodes with their progress and success, plus hard negatives."""

    def __init__(self, sources: list, text_config, clip: int, stride: int, batch_size: int, seed: int, split: str = "train",
                 failure_ceiling: float = 0.5, relabel: float = 0.0, reverse: float = 0.0):
        self.sources, self.clip, self.stride, self.batch_size, self.seed = sources, clip, stride, batch_size, seed
        self.relabel, self.reverse = relabel, reverse
        ends, texts, progress = [], [], []
        for s, source in enumerate(sources):
            for episode in getattr(source, split):
                rows = np.arange(episode.start, episode.start + episode.length)
                ends.append(np.stack([np.full(len(rows), s), rows, np.full(len(rows), episode.start),
                                      np.full(len(rows), len(texts))], 1))
                texts.append(episode.task)
                progress.append(progress_targets(source.cache.success[rows], failure_ceiling))
        if not ends:
            raise DatasetError(f"no {split} episode with success flags to train the progress judge on")
        self.ends = np.concatenate(ends)  # (N, 4): source, row judged, episode start, text
        self.progress = np.concatenate(progress)  # (N,) aligned with ends
        self.text_ids = tokenize(texts, text_config)
        names = sorted(set(texts))
        self.task_of_text = np.array([names.index(t) for t in texts])
        self.text_of_task = np.array([texts.index(t) for t in names])

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        picked = rng.integers(len(self.ends), size=self.batch_size)
        latents, states, success = [], [], np.zeros(self.batch_size, np.float32)
        progress, texts = self.progress[picked].copy(), self.ends[picked, 3].copy()
        reverse = rng.random(self.batch_size) < self.reverse
        relabel = rng.random(self.batch_size) < self.relabel
        for i, (s, end, start, _) in enumerate(self.ends[picked]):
            source = self.sources[s]
            rows = clip_rows(start, end, self.clip, spacing_of(source, self.stride))
            flags = source.cache.success[rows]
            if reverse[i] and not flags.any():
                progress[i] = self.progress[picked[i] - (end - rows[0])]  # its original first frame's
                rows = rows[::-1]
            success[i] = float(source.cache.success[rows[-1]]) if not (reverse[i] and not flags.any()) else 0.0
            latents.append(np.asarray(source.latents[rows], np.float32))
            states.append(source.cache.state[rows].astype(np.float32))
        tasks = len(self.text_of_task)
        if tasks > 1 and relabel.any():  # another task's instruction: nothing of it is done
            other = (self.task_of_text[texts[relabel]] + rng.integers(1, tasks, size=int(relabel.sum()))) % tasks
            texts[relabel] = self.text_of_task[other]
            progress[relabel], success[relabel] = 0.0, 0.0
        return {"latents": torch.from_numpy(np.stack(latents)), "state": torch.from_numpy(np.stack(states)),
                "text_ids": self.text_ids[texts], "progress": torch.from_numpy(progress), "success": torch.from_numpy(success)}


@torch.no_grad()
def episode_progress(judge, source, episode, stride: int, text, device) -> np.ndarray:
    """The judge's progress at every frame of an episode after its first (each read as the clip ending there)."""
    ends = np.arange(episode.start + 1, episode.start + episode.length)
    rows = np.stack([clip_rows(episode.start, end, judge.config.clip, spacing_of(source, stride)) for end in ends])
    latents = torch.from_numpy(np.asarray(source.latents[rows.reshape(-1)], np.float32)).view(len(ends), judge.config.clip,
                                                                                              *source.latents.shape[1:])
    states = torch.from_numpy(source.cache.state[rows].astype(np.float32))
    text_ids = tokenize([episode.task], text).expand(len(ends), -1)
    progress, _ = judge.scores(latents.to(device), states.to(device), text_ids.to(device))
    return progress.float().cpu().numpy()
