"""Stage two of the recipe: a few labelled robot episodes turn the world model into a WAM.

`finetune` starts from a pretraining run (its frozen tokenizer and its world model) and
trains the World Action Model (`wam/models/wam.py`) through the shared loop: the action
chunk, the imagined next state and the action-conditioned dynamics on labelled windows,
optionally with action-free video windows mixed into every step, and optionally with
labelled play episodes (`play`: exploration and failures) that train only the
action-conditioned dynamics and the reward and success heads, the dream dojo's simulator,
never the policy. Without a pretraining
run it is the from-scratch baseline: the same architecture, a tokenizer trained on the
robot frames alone, and a randomly initialised world model.

A run directory holds `finetune.json` (config and provenance), `split.json` (the K
training episodes per task and the held-out ones), `cache/` (robot frames and latents),
`tokenizer/` (copied from the pretraining run, or trained here) and `wam/` (checkpoints,
logs, metrics.jsonl). `wam.policy.load(run)` needs nothing else.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from wam.config import FinetuneConfig, pretrain_preset
from wam.data.layout import ACTION_KEY, STATE_KEY, atomic_write_json
from wam.data.spec import FeatureSpec, frame_strides, read_spec
from wam.data.stats import dataset_feature_stats
from wam.errors import CheckpointError, DatasetError
from wam.models.tokenizer import FrameTokenizer
from wam.models.wam import WAMConfig, WorldActionModel
from wam.models.world_model import WorldModel
from wam.train.augment import encode_shifted_latents
from wam.train.batches import FrameBatches, WindowBatches
from wam.train.checkpoint import resolve
from wam.train.frame_cache import CachedEpisode, FrameCache, build_frame_cache, link_matching_cache, matching_cache
from wam.train.loop import SNAPSHOT_DIR, TrainResult, resolve_device, snapshot_name, stage_seconds
from wam.train import distributed
from wam.train.stages import train_stage, validation_metrics, warn_ignored_settings
from wam.runs import RUN_FILES, load_run
from wam.train.pretrain import SPLIT_FILE, encode_latents, load_tokenizer, load_world_model, split_cached_episodes

CONFIG_FILE = RUN_FILES["finetune"]


class MixedBatches:
    """Labelled robot windows, plus action-free video under "video" and play under "play"; a pure function of step."""

    def __init__(self, robot: WindowBatches, video: WindowBatches | None, play: WindowBatches | None = None):
        self.robot, self.video, self.play = robot, video, play

    def batch(self, step: int) -> dict:
        batch = self.robot.batch(step)
        if self.video is not None:
            batch["video"] = self.video.batch(step)
        if self.play is not None:
            batch["play"] = self.play.batch(step)
        return batch


def select_episodes(
    episodes: Sequence[CachedEpisode], per_task: int | None, val_episodes: int, seed: int
) -> tuple[list[CachedEpisode], list[CachedEpisode]]:
    """K labelled episodes per task for training (chosen by seed); up to `val_episodes` of the rest held out."""
    labelled = [e for e in episodes if e.has_actions]
    if per_task is None:
        fraction = min(0.5, val_episodes / max(1, len(labelled)))
        cache = FrameCache(Path("."), np.empty(0), np.empty(0), np.empty(0), labelled)
        return split_cached_episodes(cache, fraction, seed)
    train_eps, rest = [], []
    for task in sorted({e.task for e in labelled}):
        of_task = [e for e in labelled if e.task == task]
        order = np.random.default_rng([seed, len(of_task), sum(map(ord, task))]).permutation(len(of_task))
        train_eps += [of_task[i] for i in order[:per_task]]
        rest.append([of_task[i] for i in order[per_task:]])
    val_eps = [e for round_ in zip(*rest) for e in round_] if rest and all(rest) else [e for r in rest for e in r]
    return train_eps, val_eps[:val_episodes]


def load_finetune_config(run: Path) -> tuple[FinetuneConfig, dict]:
    """The config and the file as saved, for scripts outside wam (benchmarks); wam reads `wam.runs.load_run`."""
    record = load_run(run, "finetune")
    return record.config, record.raw


def finetune(
    pretrained: str | Path | None,
    robot: Sequence[str | Path],
    out: str | Path,
    config: FinetuneConfig,
    video: Sequence[str | Path] = (),
    resume: bool = False,
    progress: bool = True,
    play: Sequence[str | Path] = (),
    init_from: str | Path | None = None,
) -> dict:
    """Train a WAM in `out`; returns a summary (also written to out/summary.json).

    `init_from` starts from another finetuned WAM's weights instead of the pretrained world
    model's: the world update of a Dyna loop, where a trained world takes in new rollouts
    (`wam collect --policy`) in a few hundred steps rather than being trained again.
    """
    out = Path(out)
    if (out / CONFIG_FILE).exists():
        if not resume:
            raise CheckpointError(f"{out}: a finetuning run already exists here; pass --resume to continue it or choose another --out")
        asked = config
        record = load_run(out, "finetune")
        config = record.config  # the run's own config wins
        warn_ignored_settings(out, asked.to_dict(), config.to_dict())
        pretrained, play, init_from = record.pretrained, record.data["play"], record.init_from
    if not robot:
        raise DatasetError("no robot dataset given (--data)")

    # What the robot data holds decides the action size, the state size and the camera slots; the architecture
    # and the frames' resolution come from the pretraining run (or the scratch preset).
    spec = read_spec(robot, config.cameras)
    if spec.action_dim is None:
        raise DatasetError(f"{', '.join(map(str, robot))}: no labelled episode (every episode is action-free video); "
                           "finetuning needs robot episodes with actions")
    if pretrained is not None:
        pretrained = Path(pretrained)
        pre_record = load_run(pretrained, "pretrain")
        pre = pre_record.config
        frame_seconds = _frame_seconds(pre, pre_record.spec)
    else:
        pre = pretrain_preset(config.scratch_preset).with_image_size(config.scratch_image_size)
        frame_seconds = None
    tokenizer_cfg = pre.tokenizer
    world_cfg = replace(pre.world, views=max(pre.world.views, spec.num_views), state_dim=max(1, spec.state_dim))
    stride = _robot_stride(spec, pre.stride, frame_seconds)
    if init_from is not None:
        _check_init_from(Path(init_from), pretrained, spec)
    if config.window - 1 > world_cfg.context:
        raise ValueError(f"window {config.window} needs a world-model context of {config.window - 1}, the model has {world_cfg.context}")

    ranks = distributed.init_from_env(config.train.device)

    def decoded(paths, name: str, data_spec: FeatureSpec = spec):  # a Dyna update links the frames its parent decoded
        with distributed.main_first():
            if init_from is not None and ranks.main:
                link_matching_cache(paths, Path(init_from) / name, out / name, tokenizer_cfg.image_size)
        return build_frame_cache(paths, out / name, tokenizer_cfg.image_size, world_cfg.state_dim, spec.action_dim,
                                 progress, data_spec, config.fit)

    cache = decoded(robot, "cache")
    if not any(e.has_actions for e in cache.episodes):
        raise DatasetError(f"{', '.join(map(str, robot))}: no labelled episode (every episode is action-free video); "
                           "finetuning needs robot episodes with actions")
    train_eps, val_eps = select_episodes(cache.episodes, config.episodes_per_task, config.val_episodes, config.subset_seed)
    span = (config.window - 1) * stride + 1
    if not any(e.length >= span for e in train_eps):
        raise DatasetError(f"no selected robot episode has the {span} frames a window of {config.window} at stride {stride} needs")
    out.mkdir(parents=True, exist_ok=True)
    provenance = {"config": config.to_dict(), "pretrained": None if pretrained is None else str(pretrained),
                  "robot": [str(p) for p in robot], "video": [str(p) for p in video], "play": [str(p) for p in play],
                  "init_from": None if init_from is None else str(init_from), "stride": stride,
                  "frame_seconds": frame_seconds, "spec": spec.to_dict(),
                  "image_size": tokenizer_cfg.image_size, "tasks": sorted({e.task for e in train_eps}),
                  "rewards": any(e.has_reward for e in train_eps)}  # whether the reward and success heads learned anything
    if ranks.main:
        (out / CONFIG_FILE).write_text(json.dumps(provenance, indent=2))
        (out / SPLIT_FILE).write_text(json.dumps({"train": [[e.dataset, e.episode] for e in train_eps],
                                                  "val": [[e.dataset, e.episode] for e in val_eps]}, indent=2))
    device = resolve_device(config.train.device)
    results: dict[str, TrainResult] = {}

    # 1. tokenizer: the pretrained one, frozen; or one trained on the robot frames alone ----------
    tokenizer_dir = out / "tokenizer"
    if pretrained is not None:
        source = resolve(pretrained / "tokenizer" / "checkpoint")
        if source is None:
            raise CheckpointError(f"{pretrained / 'tokenizer'}: no tokenizer checkpoint")
        with distributed.main_first():
            if ranks.main and resolve(tokenizer_dir / "checkpoint") is None:
                shutil.copytree(source, tokenizer_dir / "checkpoint.tmp", dirs_exist_ok=True)
                (tokenizer_dir / "checkpoint.tmp").rename(tokenizer_dir / "checkpoint")
    else:
        tokenizer_train = replace(pre.tokenizer_train, steps=config.scratch_tokenizer_steps, seed=config.seed, bf16=config.train.bf16,
                                  warmup_steps=min(pre.tokenizer_train.warmup_steps, max(1, config.scratch_tokenizer_steps // 10)),
                                  checkpoint_every=max(1, config.scratch_tokenizer_steps // 4))
        torch.manual_seed(config.seed)
        results["tokenizer"] = train_stage(
            FrameTokenizer(tokenizer_cfg), FrameBatches(cache, train_eps, tokenizer_train.batch_size, config.seed),
            tokenizer_train, tokenizer_dir, model_config=asdict(tokenizer_cfg), kind="tokenizer", resume=resume, progress=progress,
        )
    tokenizer = load_tokenizer(out)
    tokenizer_step = json.loads((resolve(tokenizer_dir / "checkpoint") / "config.json").read_text())["step"]
    latents = encode_latents(tokenizer, cache, out / "cache" / f"latents-{tokenizer_step}.npy", device, progress)

    # 2. batches -------------------------------------------------------------------------------
    shifted = None
    if config.augment_copies:
        shifted = encode_shifted_latents(
            tokenizer, cache, train_eps, config.augment_copies, config.augment_pad, config.seed,
            out / "cache" / f"shifted-{tokenizer_step}-{config.augment_copies}x{config.augment_pad}.npy", device, progress)

    def robot_windows(episodes, seed, batch_size, shifted=None):
        return WindowBatches(cache, latents, episodes, config.window, stride, batch_size, seed, world_cfg.text,
                             require_actions=True, chunk=config.chunk, shifted=shifted)

    video_windows = None
    if video:
        video_spec = read_spec(video)
        video_strides = frame_strides(video_spec, stride, frame_seconds) if frame_seconds is not None else stride
        video_cache, video_latents, video_eps = _video_source(video, pretrained, out, tokenizer, tokenizer_step, device, progress,
                                                              tokenizer_cfg.image_size, lambda p, n: decoded(p, n, video_spec))
        if video_cache.state.shape[1] != world_cfg.state_dim:  # the pretraining cache holds another state: decode anew
            video_cache = decoded(video, "cache_video", video_spec)
            video_latents = encode_latents(tokenizer, video_cache, out / "cache_video" / f"latents-{tokenizer_step}.npy", device,
                                           progress)
            video_eps = list(video_cache.episodes)
        video_windows = WindowBatches(video_cache, video_latents, video_eps, config.window, video_strides, config.video_batch,
                                      config.seed + 7, world_cfg.text)
    play_windows = None
    if play:
        play_spec = read_spec(play, spec.views if config.cameras is None and spec.num_views > 1 else config.cameras)
        if play_spec.action_dim is not None and play_spec.action_dim != spec.action_dim:
            raise DatasetError(f"play data has {play_spec.action_dim}-d actions, the robot data {spec.action_dim}-d")
        play_cache = decoded(play, "cache_play", play_spec)
        play_eps = [e for e in play_cache.episodes if e.has_actions]
        if not play_eps:
            raise DatasetError(f"{', '.join(map(str, play))}: no labelled episode; play data needs the actions taken")
        play_latents = encode_latents(tokenizer, play_cache, out / "cache_play" / f"latents-{tokenizer_step}.npy", device, progress)
        play_windows = WindowBatches(play_cache, play_latents, play_eps, config.window, stride, config.play_batch,
                                     config.seed + 11, world_cfg.text, require_actions=True)
    batches = MixedBatches(robot_windows(train_eps, config.train.seed, config.train.batch_size, shifted), video_windows, play_windows)
    val_source = robot_windows(val_eps or train_eps, config.seed + 1, 32)
    val_batches = [val_source.batch(i) for i in range(4)]

    def evaluate(model: WorldActionModel) -> dict[str, float]:
        return validation_metrics(model, val_batches, "action_l1")

    # 3. the WAM -------------------------------------------------------------------------------
    wam_cfg = WAMConfig(world=world_cfg, chunk=config.chunk, robot_action_dim=spec.action_dim, stride=stride,
                        hidden=config.hidden, action_weight=config.action_weight, latent_weight=config.latent_weight,
                        align_weight=config.align_weight, state_weight=config.state_weight,
                        task_free_dynamics=config.task_free_dynamics, normalize=config.normalize)
    torch.manual_seed(config.seed + 1)
    world = fit_world(load_world_model(pretrained), world_cfg) if pretrained is not None else WorldModel(world_cfg)
    model = WorldActionModel(wam_cfg, world)
    # The robot data's statistics, saved with the weights (a resumed run restores its own, init_from copies its parent's).
    model.state_norm.set_stats(_stats(robot, STATE_KEY, world_cfg.state_dim), config.normalize, clip_to_data=False)
    model.action_norm.set_stats(_stats(robot, ACTION_KEY, spec.action_dim), config.normalize, clip_to_data=True)
    if init_from is not None:
        start = load_wam(init_from)
        try:
            model.load_state_dict(start.state_dict())
        except RuntimeError as err:
            raise CheckpointError(f"{init_from}: its WAM has another architecture than this run's ({err})") from None
    wam_dir = out / "wam"
    results["wam"] = train_stage(model, batches, config.train, wam_dir, model_config=wam_cfg.to_dict(), kind="wam",
                                 resume=resume, evaluate=evaluate, progress=progress)
    model = load_wam(out).to(device)
    summary = {
        "run": str(out),
        "pretrained": provenance["pretrained"],
        "episodes": {"train": len(train_eps), "val": len(val_eps), "per_task": config.episodes_per_task},
        "frames": {"train": int(sum(e.length for e in train_eps))},
        "video": provenance["video"],
        "play": {"datasets": provenance["play"], "episodes": 0 if play_windows is None else len(play_windows.episodes)},
        "wam": {"params": sum(p.numel() for p in model.parameters()), **evaluate(model.eval())},
        "seconds": stage_seconds(out / "summary.json", results),
    }
    if ranks.main:
        atomic_write_json(out / "summary.json", summary)
    return summary


def _stats(paths, key: str, dim: int):
    from wam.data.reader import Dataset

    chosen = [p for p in paths if key in Dataset(p).features and int(np.prod(Dataset(p).features[key].shape)) == dim]
    return dataset_feature_stats(chosen, key) if chosen else None


def _frame_seconds(pre, pre_spec: FeatureSpec | None) -> float | None:
    """The pretrained model's frame interval in seconds: its own setting, else its stride at its data's rate."""
    if pre.frame_seconds is not None:
        return pre.frame_seconds
    if pre_spec is None or not pre_spec.fps:
        return None  # a run saved before specs: its stride in steps is all there is
    return pre.stride / next(iter(pre_spec.fps.values()))


def _robot_stride(spec: FeatureSpec, stride: int, frame_seconds: float | None) -> int:
    """One stride for the labelled data (its actions between frames are the WAM's input), in the pretrained time base."""
    rates = sorted(set(spec.fps.values()))
    if len(rates) > 1:
        detail = ", ".join(f"{root}: {fps:g} fps" for root, fps in spec.fps.items())
        raise DatasetError(f"labelled robot datasets have different frame rates ({detail}); the WAM's actions between frames "
                           "need one rate: finetune on datasets recorded at the same fps")
    if frame_seconds is None:
        return stride
    steps = frame_seconds * rates[0]
    chosen = max(1, round(steps))
    if abs(chosen - steps) > 0.25 * steps:
        print(f"note: the pretrained model's frames are {frame_seconds:.4f} s apart; at {rates[0]:g} fps the robot data's "
              f"nearest stride, {chosen} frame(s), is {chosen / rates[0]:.4f} s")
    return chosen


def fit_world(world: WorldModel, config) -> WorldModel:
    """A pretrained world model made to fit the robot data: more camera slots (new ones start as slot 0) and,
    when the state has another size, fresh state layers (the video's state meant something else)."""
    old = world.config
    if old.views == config.views and old.state_dim == config.state_dim:
        return world
    fitted = WorldModel(config)
    own = fitted.state_dict()
    for name, value in world.state_dict().items():
        if name == "camera":
            own[name][: old.views] = value
            own[name][old.views :] = value[0]
        elif own[name].shape == value.shape:
            own[name] = value
    fitted.load_state_dict(own)
    if old.state_dim != config.state_dim:
        print(f"note: the pretrained world model knows a {old.state_dim}-d state, the robot data has {config.state_dim}-d: "
              "its state layers start fresh")
    return fitted


def _check_init_from(run: Path, pretrained: Path | None, spec: FeatureSpec) -> None:
    """A WAM to start from must share this run's pretraining (its frame tokenizer and latent space) and its data's
    action and state sizes and cameras."""
    record = load_run(run, "finetune")
    if record.spec is not None:
        for what, mine, their in (("action size", spec.action_dim, record.spec.action_dim),
                                  ("state size", spec.state_dim, record.spec.state_dim),
                                  ("number of cameras", spec.num_views, record.spec.num_views)):
            if mine != their:
                raise CheckpointError(f"{run}: its WAM was trained on data with {what} {their}, this data has {mine}; "
                                      "--init-from needs a WAM of the same robot")
    theirs = record.pretrained
    if (theirs is None) != (pretrained is None) or (theirs is not None and theirs.resolve() != Path(pretrained).resolve()):
        raise CheckpointError(f"{run}: finetuned from pretraining run {theirs}, this run from {pretrained}; --init-from "
                              "needs a WAM of the same pretraining (the same frame tokenizer)")


def split_snapshot(run: str | Path, which: str = "checkpoint") -> tuple[Path, str]:
    """`RUN@STEP` names the weights RUN kept at STEP (`TrainConfig.snapshot_every`); plain `RUN` its `which`."""
    run = Path(run)
    name, at, step = run.name.rpartition("@")
    if not at or not step.isdigit() or run.exists():  # a directory that merely has "@" in its name is itself
        return run, which
    return run.with_name(name), f"{SNAPSHOT_DIR}/{snapshot_name(int(step))}"


def snapshot_steps(run: str | Path) -> list[int]:
    """The steps at which a finetuning run kept its weights."""
    found = Path(run) / "wam" / SNAPSHOT_DIR
    steps = [d.name.removeprefix("step-") for d in found.glob("step-*")]  # also matches a killed save's leftovers
    return sorted(int(step) for step in steps if step.isdigit() and resolve(found / f"step-{step}") is not None)


def load_wam(run: str | Path, which: str = "checkpoint") -> WorldActionModel:
    from wam.train.checkpoint import load_checkpoint

    run, which = split_snapshot(run, which)
    load_run(run, "finetune")  # a clear error for a pretraining run or any other directory
    directory = resolve(run / "wam" / which)
    if directory is None and which.startswith(SNAPSHOT_DIR):
        raise CheckpointError(f"{run / 'wam' / which}: no such snapshot; this run kept steps {snapshot_steps(run) or 'none'} "
                              "(finetune with snapshot_every > 0 to keep some)")
    if directory is None:
        raise CheckpointError(f"{run / 'wam'}: no WAM checkpoint yet (finetuning has not saved one)")
    config = json.loads((directory / "config.json").read_text())["config"]
    model = WorldActionModel(WAMConfig.from_dict(config))
    # WAMs finetuned before the reward and success heads existed still load as policies.
    load_checkpoint(directory, model, expected_kind="wam", optional_weights=(
        "reward.", "success.", "robot_action_in.", "robot_state_skip.", "state_norm.", "action_norm.", "world.camera",
        "world.state_norm."))
    return model.eval()


def _video_source(video, pretrained, out, tokenizer: FrameTokenizer, tokenizer_step: int, device, progress, image_size, decoded):
    """Action-free windows: the pretraining run's own cache and latents when the video is its data."""
    if pretrained is not None:
        cache = matching_cache(video, pretrained / "cache", image_size)
        if cache is not None:
            latents = encode_latents(tokenizer, cache, pretrained / "cache" / f"latents-{tokenizer_step}.npy", device, progress)
            held_out = {tuple(v) for v in json.loads((pretrained / SPLIT_FILE).read_text())["val"]}
            episodes = [e for e in cache.episodes if (e.dataset, e.episode) not in held_out]
            return cache, latents, episodes
    cache = decoded(video, "cache_video")
    latents = encode_latents(tokenizer, cache, out / "cache_video" / f"latents-{tokenizer_step}.npy", device, progress)
    return cache, latents, list(cache.episodes)
