"""Train a world's success judge on real frames: `wam judge --world RUN [--data ROLLOUTS ...]`.

Frames are the world's own robot and play data (the caches its finetuning built) plus any
`--data` with success flags, above all rollouts of policies (`wam collect --policy`): their
failures are the near misses a dream must not call a success, and the play data's goals
are the positives. Every frame's label is the simulator's success flag for that frame.
`exclude_sources` drops the episodes of named drivers (substrings of an episode's
`source`), so a benchmark can test the judge on policies it never saw.

With `config.dreamed` the extra data's training episodes are also replayed in the world's
dream (open loop, from their first frames, their recorded actions): every frame the dream
predicts is labelled with the real frame's success flag. A judge of real frames alone is
fooled by what a dream draws (benchmarks/results/dream_eval_judge.json: every policy
succeeds in most of its dreams); these frames show it the dream's versions of failures.

Held out: the world's own validation episodes and `val_fraction` of the extra data's; the
summary gives the judge's episode verdicts on them (success called at any frame against a
success flag at any frame). The judge is saved in `RUN/judge/` with the usual checkpoints
(atomic, resumable); `DreamSettings(judge=True)` dreams with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from wam.config import JudgeConfig
from wam.errors import CheckpointError, DatasetError
from wam.models.judge import SuccessJudge, SuccessJudgeConfig
from wam.models.text import TextConfig, tokenize
from wam.train.checkpoint import load_checkpoint, resolve
from wam.runs import load_run
from wam.train.frame_cache import CachedEpisode, FrameCache, build_frame_cache
from wam.train.loop import resolve_device
from wam.train.pretrain import SPLIT_FILE, encode_latents, load_tokenizer, split_cached_episodes
from wam.data.layout import atomic_write_json
from wam.train import distributed
from wam.train.stages import train_stage, validation_metrics

JUDGE_DIR = "judge"


@dataclass(frozen=True)
class JudgeSource:
    cache: FrameCache
    latents: np.ndarray  # (N, C, h, w) float16, memory-mapped
    train: list[CachedEpisode]
    val: list[CachedEpisode]


# (world, a source's real episodes, device, progress=...) -> the same episodes' frames as the world dreams them
DreamReplay = Callable[..., "JudgeSource"]


class JudgeBatches:
    """Random labelled frames of the training episodes: a pure function of the step, so resume is exact.

    `balance` draws every (source, label) group equally often instead of every frame: dreamed
    replays hold a few dozen success frames among thousands, and drawn by frame the judge learns
    that a dreamed frame is a failure (benchmarks/results/dream_eval_judge_dreamed.json).
    """

    def __init__(self, sources: list[JudgeSource], text_config, batch_size: int, seed: int, split: str = "train",
                 balance: bool = False):
        self.sources, self.batch_size, self.seed = sources, batch_size, seed
        rows, texts = [], []
        for s, source in enumerate(sources):
            for episode in getattr(source, split):
                rows.append(np.stack([np.full(episode.length, s), np.arange(episode.start, episode.start + episode.length),
                                      np.full(episode.length, len(texts))], 1))
                texts.append(episode.task)
        if not rows:
            raise DatasetError(f"no {split} episode with success flags to train the judge on")
        self.rows = np.concatenate(rows)  # (N, 3): source, cache row, text
        self.text_ids = tokenize(texts, text_config)
        self.groups: list[np.ndarray] = []  # row indices per non-empty (source, label) group, when balancing
        if balance:
            labels = np.array([bool(sources[s].cache.success[r]) for s, r, _ in self.rows])
            keys = self.rows[:, 0] * 2 + labels
            self.groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        if self.groups:
            group = rng.integers(len(self.groups), size=self.batch_size)
            picked = self.rows[[self.groups[g][rng.integers(len(self.groups[g]))] for g in group]]
        else:
            picked = self.rows[rng.integers(len(self.rows), size=self.batch_size)]
        latents, states, success = [], [], []
        for s, row, _ in picked:
            source = self.sources[s]
            latents.append(np.asarray(source.latents[row], np.float32))
            states.append(source.cache.state[row])
            success.append(source.cache.success[row])
        return {"latents": torch.from_numpy(np.stack(latents)), "state": torch.from_numpy(np.stack(states).astype(np.float32)),
                "text_ids": self.text_ids[picked[:, 2]], "success": torch.from_numpy(np.array(success, np.float32))}


def _sources_of(episodes: list[CachedEpisode], exclude: tuple[str, ...]) -> list[CachedEpisode]:
    """Episodes with success flags, less those driven by an excluded source."""
    if not exclude:
        return [e for e in episodes if e.has_reward]
    from wam.data import Dataset

    opened: dict[str, Dataset] = {}
    kept = []
    for e in episodes:
        if not e.has_reward:
            continue
        dataset = opened.setdefault(e.dataset, Dataset(e.dataset))
        source = str(dataset.episodes[e.episode].info.get("source", ""))
        if not any(name in source for name in exclude):
            kept.append(e)
    return kept


def train_judge(world: str | Path, data: list[str | Path], config: JudgeConfig, exclude_sources: tuple[str, ...] = (),
                resume: bool = False, progress: bool = True, dream_replay: DreamReplay | None = None) -> dict:
    """Train `world/judge`; returns its summary (also judge/summary.json).

    `dream_replay` makes the dreamed frames `config.dreamed` asks for (wam.dojo.judge_replay.dreamed_source):
    dreaming is the dojo's, a later stage than training, so the caller hands it in."""
    world = Path(world)
    if config.dreamed and dream_replay is None:
        raise ValueError("config.dreamed needs dream_replay (wam.dojo.judge_replay.dreamed_source) to dream the frames")
    record = load_run(world, "finetune")
    out = world / JUDGE_DIR
    if resolve(out / "checkpoint") is not None and not resume:
        raise CheckpointError(f"{out}: a judge already exists; pass --resume to continue it, or delete it to train anew")
    device = resolve_device(config.train.device)
    tokenizer = load_tokenizer(world).to(device)
    step = json.loads((resolve(world / "tokenizer" / "checkpoint") / "config.json").read_text())["step"]
    world_cfg = json.loads((resolve(world / "wam" / "checkpoint") / "config.json").read_text())["config"]["world"]
    held_out = {tuple(v) for v in json.loads((world / SPLIT_FILE).read_text())["val"]}
    state_dim, size = int(world_cfg["state_dim"]), record.image_size
    action_dim = int(json.loads((resolve(world / "wam" / "checkpoint") / "config.json").read_text())["config"]["robot_action_dim"])

    sources = []
    for name, paths in (("cache", record.data["robot"]), ("cache_play", record.data["play"]), ("cache_judge", list(data))):
        if not paths:
            continue
        cache = build_frame_cache([str(p) for p in paths], world / name, size, state_dim, action_dim, progress,
                                  record.spec_for([str(p) for p in paths]), record.fit)
        episodes = _sources_of(cache.episodes, tuple(exclude_sources))
        if name == "cache":
            train_eps = [e for e in episodes if (e.dataset, e.episode) not in held_out]
            val_eps = [e for e in episodes if (e.dataset, e.episode) in held_out]
        elif name == "cache_judge":
            train_eps, val_eps = split_cached_episodes(FrameCache(cache.root, cache.frames, cache.state, cache.action, episodes,
                                                                  cache.reward, cache.success), config.val_fraction, config.seed)
        else:
            train_eps, val_eps = episodes, []
        if train_eps or val_eps:
            latents = encode_latents(tokenizer, cache, world / name / f"latents-{step}.npy", device, progress)
            sources.append(JudgeSource(cache, latents, train_eps, val_eps))
            if name == "cache_judge" and config.dreamed:
                sources.append(dream_replay(world, sources[-1], device, progress=progress))
    if not sources:
        raise DatasetError(f"{world}: none of its data nor {', '.join(map(str, data)) or 'any --data'} has success flags")

    # The world's text hashing: dreams tokenize the task with it, and the judge must read the same ids.
    judge_cfg = SuccessJudgeConfig(int(world_cfg["latent_channels"]), int(world_cfg["latent_size"]), state_dim, config.hidden,
                                   text=TextConfig(**world_cfg["text"]), views=record.views)
    batches = JudgeBatches(sources, judge_cfg.text, config.train.batch_size, config.seed, balance=config.balance)
    has_val = any(s.val for s in sources)
    val_batches = ([JudgeBatches(sources, judge_cfg.text, 256, config.seed + 1, "val").batch(i) for i in range(4)]
                   if has_val else [])
    torch.manual_seed(config.seed)
    judge = SuccessJudge(judge_cfg)
    result = train_stage(judge, batches, config.train, out, model_config=judge_cfg.to_dict(), kind=SuccessJudge.kind,
                         resume=resume, progress=progress,
                         evaluate=(lambda model: validation_metrics(model, val_batches, "success_bce")) if has_val else None)
    judge = load_judge(world).to(device)
    summary = {"world": str(world), "data": [str(p) for p in data], "exclude_sources": list(exclude_sources),
               "dreamed_frames": int(sum(len(s.cache.state) for s in sources if s.cache.root.name == "dreamed")),
               "config": config.to_dict(), "params": sum(p.numel() for p in judge.parameters()),
               "train_frames": int(len(batches.rows)), "train_positives": int(sum(
                   s.cache.success[e.start: e.start + e.length].sum() for s in sources for e in s.train)),
               "seconds": None if result is None else round(result.seconds, 1),
               "held_out": _episode_rates(judge, sources, judge_cfg, device)}
    if distributed.current().main:  # under torchrun, rank 0 writes
        atomic_write_json(out / "summary.json", summary)
    return summary


@torch.no_grad()
def _episode_rates(judge: SuccessJudge, sources: list[JudgeSource], config: SuccessJudgeConfig, device) -> dict:
    """The judge's verdict on every held-out episode (success called at any frame after the first)."""
    real, called = [], []
    for source in sources:
        for e in source.val:
            rows = slice(e.start + 1, e.start + e.length)
            latents = torch.from_numpy(np.asarray(source.latents[rows], np.float32)).to(device)
            states = torch.from_numpy(source.cache.state[rows].astype(np.float32)).to(device)
            text_ids = tokenize([e.task], config.text).to(device).expand(len(states), -1)
            called.append(bool((judge.logit(latents, states, text_ids) > 0).any()))
            real.append(bool(source.cache.success[rows].any()))
    real_arr, called_arr = np.array(real, bool), np.array(called, bool)
    return {"episodes": len(real), "real_successes": int(real_arr.sum()),
            "true_positive_rate": float(called_arr[real_arr].mean()) if real_arr.any() else None,
            "false_positive_rate": float(called_arr[~real_arr].mean()) if (~real_arr).any() else None}


def load_judge(world: str | Path) -> SuccessJudge:
    directory = resolve(Path(world) / JUDGE_DIR / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{world}: no success judge; train one first (`wam judge --world {world} --data ROLLOUTS`)")
    config = json.loads((directory / "config.json").read_text())["config"]
    judge = SuccessJudge(SuccessJudgeConfig.from_dict(config))
    load_checkpoint(directory, judge, expected_kind=SuccessJudge.kind)
    return judge.eval()
