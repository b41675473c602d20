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
from wam.train.pretrain import SPLIT_FILE, encode_latents, load_tokenizer
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

    `relabel` makes hard negatives: that fraction of every batch's frames is shown with the instruction of another
    task in the data and labelled a failure, whatever its own flag (a drawer opened is no window closed), so the
    judge must read the task, not only whether the scene looks finished.
    """

    def __init__(self, sources: list[JudgeSource], text_config, batch_size: int, seed: int, split: str = "train",
                 balance: bool = False, relabel: float = 0.0):
        self.sources, self.batch_size, self.seed, self.relabel = sources, batch_size, seed, relabel
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
        self.task_of_text = np.array([sorted(set(texts)).index(t) for t in texts])  # text index -> task number
        self.text_of_task = [texts.index(t) for t in sorted(set(texts))]  # task number -> one of its text indices
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
        texts, success = picked[:, 2].copy(), np.array(success, np.float32)
        tasks = len(self.text_of_task)
        if self.relabel > 0 and tasks > 1:  # hard negatives: another task's instruction, so not its success
            swap = rng.random(len(picked)) < self.relabel
            own = self.task_of_text[texts[swap]]
            other = (own + rng.integers(1, tasks, size=len(own))) % tasks  # any task but its own
            texts[swap] = np.array(self.text_of_task)[other]
            success[swap] = 0.0
        return {"latents": torch.from_numpy(np.stack(latents)), "state": torch.from_numpy(np.stack(states).astype(np.float32)),
                "text_ids": self.text_ids[texts], "success": torch.from_numpy(success)}


def policies_of(episodes: list[CachedEpisode]) -> dict[tuple[str, int], str]:
    """Who drove each episode: its `source` (a policy run, the scripted expert, a person), "" when unrecorded."""
    from wam.data import Dataset

    opened: dict[str, Dataset] = {}
    found = {}
    for e in episodes:
        dataset = opened.setdefault(e.dataset, Dataset(e.dataset))
        found[(e.dataset, e.episode)] = str(dataset.episodes[e.episode].info.get("source", ""))
    return found


def _sources_of(episodes: list[CachedEpisode], exclude: tuple[str, ...]) -> list[CachedEpisode]:
    """Episodes with success flags, less those driven by an excluded source."""
    flagged = [e for e in episodes if e.has_reward]
    if not exclude:
        return flagged
    policy = policies_of(flagged)
    return [e for e in flagged if not any(name in policy[(e.dataset, e.episode)] for name in exclude)]


def split_by_policy(episodes: list[CachedEpisode], fraction: float, seed: int,
                    named: tuple[str, ...] = ()) -> tuple[list[CachedEpisode], list[CachedEpisode], list[str]]:
    """(train, held out, held-out policies): whole policies held out, never episodes of a training policy. `named`
    policies (substrings of the source) are held out; else `fraction` of them, at least one, chosen by the seed.
    With a single policy nothing can be held out this way: all train, and the caller says so."""
    policy = policies_of(episodes)
    names = sorted(set(policy.values()))
    if named:
        held = [n for n in names if any(part in n for part in named)]
    elif len(names) < 2 or fraction <= 0:
        held = []
    else:
        count = min(len(names) - 1, max(1, round(fraction * len(names))))
        held = sorted(np.random.default_rng(seed).choice(names, count, replace=False).tolist())
    train = [e for e in episodes if policy[(e.dataset, e.episode)] not in held]
    val = [e for e in episodes if policy[(e.dataset, e.episode)] in held]
    return train, val, held


def train_judge(world: str | Path, data: list[str | Path], config: JudgeConfig, exclude_sources: tuple[str, ...] = (),
                resume: bool = False, progress: bool = True, dream_replay: DreamReplay | None = None,
                hold_out: tuple[str, ...] = ()) -> dict:
    """Train `world/judge`; returns its summary (also judge/summary.json).

    `dream_replay` makes the dreamed frames `config.dreamed` asks for (wam.dojo.judge_replay.dreamed_source):
    dreaming is the dojo's, a later stage than training, so the caller hands it in."""
    world = Path(world)
    if config.dreamed and dream_replay is None:
        raise ValueError("config.dreamed needs dream_replay (wam.dojo.judge_replay.dreamed_source) to dream the frames")
    # dream_replay, when given, also replays the held-out policies' episodes: the judge's rates in dreams
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

    sources, held_policies = [], []
    for name, paths in (("cache", record.data["robot"]), ("cache_play", record.data["play"]), ("cache_judge", list(data))):
        if not paths:
            continue
        cache = build_frame_cache([str(p) for p in paths], world / name, size, state_dim, action_dim, progress,
                                  record.spec_for([str(p) for p in paths]), record.fit)
        episodes = _sources_of(cache.episodes, tuple(exclude_sources))
        if name == "cache":
            train_eps = [e for e in episodes if (e.dataset, e.episode) not in held_out]
            val_eps = [e for e in episodes if (e.dataset, e.episode) in held_out]
        elif name == "cache_judge":  # whole policies held out: the calibration's episodes
            train_eps, val_eps, held_policies = split_by_policy(episodes, config.val_fraction, config.seed, hold_out)
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
    text = TextConfig(**world_cfg["text"])
    latent_channels, latent_size = int(world_cfg["latent_channels"]), int(world_cfg["latent_size"])
    if config.kind == "progress":
        from wam.models.progress_judge import ProgressJudge, ProgressJudgeConfig
        from wam.train.progress_judge import ClipBatches

        judge_cfg = ProgressJudgeConfig(latent_channels, latent_size, state_dim, config.hidden, clip=config.clip, text=text,
                                        views=record.views)
        model_class, val_key = ProgressJudge, "progress_mse"

        def make_batches(split: str, batch: int, seed: int):
            train = split == "train"
            return ClipBatches(sources, text, config.clip, record.stride, batch, seed, split, config.failure_ceiling,
                               relabel=config.relabel if train else 0.0, reverse=config.reverse if train else 0.0)
    else:
        judge_cfg = SuccessJudgeConfig(latent_channels, latent_size, state_dim, config.hidden, text=text, views=record.views)
        model_class, val_key = SuccessJudge, "success_bce"

        def make_batches(split: str, batch: int, seed: int):
            return (JudgeBatches(sources, text, batch, seed, balance=config.balance, relabel=config.relabel)
                    if split == "train" else JudgeBatches(sources, text, batch, seed, "val"))
    batches = make_batches("train", config.train.batch_size, config.seed)
    has_val = any(s.val for s in sources)
    val_batches = [make_batches("val", 256, config.seed + 1).batch(i) for i in range(4)] if has_val else []
    torch.manual_seed(config.seed)
    judge = model_class(judge_cfg)
    result = train_stage(judge, batches, config.train, out, model_config=judge_cfg.to_dict(), kind=model_class.kind,
                         resume=resume, progress=progress,
                         evaluate=(lambda model: validation_metrics(model, val_batches, val_key)) if has_val else None)
    judge = load_judge(world).to(device)
    summary = {"world": str(world), "data": [str(p) for p in data], "exclude_sources": list(exclude_sources),
               "dreamed_frames": int(sum(len(s.cache.state) for s in sources if s.cache.root.name == "dreamed")),
               "config": config.to_dict(), "params": sum(p.numel() for p in judge.parameters()),
               "train_frames": int(sum(e.length for s in sources for e in s.train)), "train_positives": int(sum(
                   s.cache.success[e.start: e.start + e.length].sum() for s in sources for e in s.train)),
               "seconds": None if result is None else round(result.seconds, 1),
               "held_out": _held_out(judge, sources, judge_cfg, device, config, held_policies, out, record.stride,
                                     (lambda src: dream_replay(world, src, device, progress=progress)) if dream_replay else None)}
    if distributed.current().main:  # under torchrun, rank 0 writes
        atomic_write_json(out / "summary.json", summary)
    return summary


def episode_scores(judge, source: JudgeSource, episode: CachedEpisode, stride: int, text, device) -> np.ndarray:
    """What the verdict thresholds at every frame after the first: a frame judge's success probability, a progress
    judge's progress (the clip ending at that frame)."""
    if judge.kind == "progress_judge":
        from wam.train.progress_judge import episode_progress

        return episode_progress(judge, source, episode, stride, text, device)
    return episode_probabilities(judge, source, episode, text, device)


@torch.no_grad()
def episode_probabilities(judge: SuccessJudge, source: JudgeSource, episode: CachedEpisode, text, device) -> np.ndarray:
    """The judge's success probability at every frame of an episode after its first."""
    rows = slice(episode.start + 1, episode.start + episode.length)
    latents = torch.from_numpy(np.asarray(source.latents[rows], np.float32)).to(device)
    states = torch.from_numpy(source.cache.state[rows].astype(np.float32)).to(device)
    text_ids = tokenize([episode.task], text).to(device).expand(len(states), -1)
    return torch.sigmoid(judge.logit(latents, states, text_ids)).float().cpu().numpy()


def _held_out(judge, sources: list[JudgeSource], config, device, judge_config: JudgeConfig, policies: list[str], out: Path,
              stride: int, dream: Callable | None = None) -> dict:
    """Rates and calibration on the held-out policies' real episodes, and with `dream` (a source -> its episodes
    replayed in the world's dream) the rates at that threshold on the same episodes as the dream draws them; without
    held-out policies, on the world's own held-out episodes, marked as such: those are the training policies' own
    and overstate the judge."""
    from wam.train.judge_calibration import calibrate, held_score, rates, save_calibration

    on_policies = [(s, e) for s in sources if s.cache.root.name == "cache_judge" for e in s.val]
    chosen = on_policies or [(s, e) for s in sources if s.cache.root.name != "dreamed" for e in s.val]
    if not chosen:
        return {"episodes": 0, "split": "none"}
    probabilities = [episode_scores(judge, s, e, stride, config.text, device) for s, e in chosen]
    labels = [s.cache.success[e.start + 1: e.start + e.length] for s, e in chosen]
    calibration = calibrate(probabilities, [bool(y.any()) for y in labels], labels, judge_config.precision,
                            judge_config.hold, policies if on_policies else [])
    if distributed.current().main:
        save_calibration(out, calibration)
    split = "policies" if on_policies else "episodes of the training policies (no other policy to hold out)"
    result = {"split": split, **{k: v for k, v in calibration.to_dict().items() if k not in ("curve", "reliability")}}
    if dream is not None and on_policies:
        scores, real = [], []
        for source in {id(s): s for s, _ in on_policies}.values():
            dreamed = dream(JudgeSource(source.cache, source.latents, list(source.val), []))
            for e in dreamed.train:
                probabilities = episode_scores(judge, dreamed, e, stride, config.text, device)
                scores.append(held_score(probabilities, calibration.hold))
                real.append(bool(dreamed.cache.success[e.start + 1: e.start + e.length].any()))
        if scores:
            result["in_dreams"] = {"episodes": len(scores), **rates(np.array(scores), np.array(real, bool), calibration.threshold)}
    return result


def load_judge(world: str | Path):
    """The world's judge: a frame judge (SuccessJudge) or a progress judge (ProgressJudge), as its checkpoint says."""
    directory = resolve(Path(world) / JUDGE_DIR / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{world}: no success judge; train one first (`wam judge --world {world} --data ROLLOUTS`)")
    saved = json.loads((directory / "config.json").read_text())
    if saved.get("kind") == "progress_judge":
        from wam.models.progress_judge import ProgressJudge, ProgressJudgeConfig

        judge = ProgressJudge(ProgressJudgeConfig.from_dict(saved["config"]))
    else:
        judge = SuccessJudge(SuccessJudgeConfig.from_dict(saved["config"]))
    load_checkpoint(directory, judge, expected_kind=judge.kind)
    return judge.eval()
