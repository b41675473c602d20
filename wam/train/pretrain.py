"""Stage one of the recipe: learn the next physical state from video, no action labels.

`pretrain` runs two trainings through the shared loop, each resumable on its own:
1. the frame tokenizer, on single frames;
2. the world model (with its latent-action encoder and text encoder), on windows of
   latents that the frozen tokenizer computed once for every frame.
A run directory holds `pretrain.json` (the config), `split.json` (held-out episodes, by
seed), `cache/` (decoded frames and latents), `tokenizer/` and `world_model/` (checkpoints,
TensorBoard logs, metrics.jsonl).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from wam.config import PretrainConfig
from wam.data.layout import STATE_KEY, atomic_write_json
from wam.data.spec import frame_strides, read_spec
from wam.data.stats import dataset_feature_stats
from wam.errors import CheckpointError, DatasetError
from wam.models.tokenizer import FrameTokenizer, psnr
from wam.models.world_model import WorldModel
from wam.runs import RUN_FILES, load_run
from wam.train.batches import FrameBatches, WindowBatches
from wam.train import distributed
from wam.train.checkpoint import TRAINER_FILE, load_checkpoint, resolve
from wam.train.frame_cache import CachedEpisode, FrameCache, build_frame_cache
from wam.train.loop import TrainResult, resolve_device, stage_seconds
from wam.train.stages import train_stage, validation_metrics, warn_ignored_settings
from wam.train.progress import progress_bar

CONFIG_FILE = RUN_FILES["pretrain"]
SPLIT_FILE = "split.json"
INIT_FROM_KEY = "init_from"  # in pretrain.json beside the config: the run this one continues
SPEC_KEY = "spec"  # in pretrain.json beside the config: the feature spec read from the data (wam/data/spec.py)


def split_cached_episodes(cache: FrameCache, val_fraction: float, seed: int) -> tuple[list[CachedEpisode], list[CachedEpisode]]:
    """Held-out episodes chosen by seed, per dataset, so every dataset is represented in both."""
    train_eps, val_eps = [], []
    for dataset in dict.fromkeys(e.dataset for e in cache.episodes):
        episodes = [e for e in cache.episodes if e.dataset == dataset]
        order = np.random.default_rng([seed, len(episodes)]).permutation(len(episodes))
        n_val = max(1, int(round(val_fraction * len(episodes)))) if len(episodes) > 1 and val_fraction > 0 else 0
        val_ids = set(order[:n_val].tolist())
        for i, episode in enumerate(episodes):
            (val_eps if i in val_ids else train_eps).append(episode)
    return train_eps, val_eps


@torch.no_grad()
def encode_latents(tokenizer: FrameTokenizer, cache: FrameCache, path: Path, device: torch.device, progress: bool = True) -> np.ndarray:
    """Latents of every cached frame (float16, memory-mapped), written to a temporary name then renamed. Under
    torchrun, rank 0 encodes and the other ranks read its file."""
    with distributed.main_first() as world:
        return _encode_latents(tokenizer, cache, path, device, progress and world.main)


def _encode_latents(tokenizer: FrameTokenizer, cache: FrameCache, path: Path, device: torch.device, progress: bool) -> np.ndarray:
    if path.exists():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer.to(device).eval()
    n = len(cache.frames)
    c, size = tokenizer.config.latent_channels, tokenizer.config.latent_size
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    latents = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, c, size, cache.views * size))
    with progress_bar("encode latents", n, "frames", enabled=progress) as advance:
        for start in range(0, n, 256):
            frames = torch.from_numpy(np.array(cache.frames[start : start + 256])).permute(0, 3, 1, 2).to(device)
            latents[start : start + len(frames)] = tokenizer.encode(frames).float().cpu().numpy().astype(np.float16)
            advance(len(frames))
    latents.flush()
    del latents
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def load_tokenizer(run: Path) -> FrameTokenizer:
    from wam.models.tokenizer import TokenizerConfig

    directory = resolve(Path(run) / "tokenizer" / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{Path(run) / 'tokenizer'}: no tokenizer checkpoint (was `wam pretrain` run here?)")
    config = json.loads((directory / "config.json").read_text())["config"]
    tokenizer = FrameTokenizer(TokenizerConfig(**{**config, "channels": tuple(config["channels"])}))
    load_checkpoint(directory, tokenizer, expected_kind="tokenizer")
    return tokenizer.eval()


# Weights a world model saved before camera slots and state statistics existed lacks (it loads as one camera, raw state).
OPTIONAL_WORLD_WEIGHTS = ("camera", "state_norm.")


def _matching_stats(data: Sequence[str | Path], key: str, dim: int):
    """Pooled statistics of `key` over the datasets whose `key` has `dim` values (others train as video)."""
    from wam.data.reader import Dataset

    paths = [p for p in data if key in Dataset(p).features and int(np.prod(Dataset(p).features[key].shape)) == dim]
    return dataset_feature_stats(paths, key) if paths else None


def load_world_model(run: Path, which: str = "checkpoint") -> WorldModel:
    from wam.models.world_model import WorldModelConfig

    directory = resolve(Path(run) / "world_model" / which)
    if directory is None:
        raise CheckpointError(f"{Path(run) / 'world_model'}: no world model checkpoint (was `wam pretrain` run here?)")
    config = json.loads((directory / "config.json").read_text())["config"]
    model = WorldModel(WorldModelConfig.from_dict(config))
    load_checkpoint(directory, model, expected_kind="world_model", optional_weights=OPTIONAL_WORLD_WEIGHTS)
    return model.eval()


def load_pretrain_config(run: Path) -> PretrainConfig:
    """`load_run(run, "pretrain").config`, for scripts outside wam (benchmarks, tests)."""
    return load_run(run, "pretrain").config


def pretrain(data: Sequence[str | Path], out: str | Path, config: PretrainConfig, resume: bool = False, progress: bool = True,
             init_from: str | Path | None = None) -> dict:
    """Train tokenizer then world model on the frames of `data`; returns a summary (also in out/summary.json).

    `init_from` continues another pretraining run in a new one: its tokenizer is taken as it is
    and its world model's weights are the start of `config.world_train.steps` more steps, on a
    fresh learning-rate schedule (a warm restart). That is longer pretraining without redoing
    the first run, or continued pretraining on new video; the architecture is the first run's.
    """
    out = Path(out)
    config_path = out / CONFIG_FILE
    if config_path.exists():
        if not resume:
            raise CheckpointError(f"{out}: a pretraining run already exists here; pass --resume to continue it or choose another --out")
        saved = load_run(out, "pretrain")
        if init_from is None:  # only then is `config` the caller's own ask; with init_from it is rebuilt below
            # The state size and camera slots come from the data, not from the ask: not a setting left unused.
            data_decided = replace(config.world, state_dim=saved.config.world.state_dim, views=saved.config.world.views)
            warn_ignored_settings(out, replace(config, world=data_decided).to_dict(), saved.config.to_dict())
        config, init_from = saved.config, saved.init_from  # the run's own config wins
    elif init_from is not None:
        config = continued_config(config, Path(init_from))
    spec = read_spec(data, config.cameras)
    strides = frame_strides(spec, config.stride, config.frame_seconds)
    if init_from is None:  # the state size and camera slots come from the data (a continued run keeps its parent's)
        config = replace(config, world=replace(config.world, state_dim=max(1, spec.state_dim), views=spec.num_views))
    world_cfg = config.world
    if spec.num_views > world_cfg.views:
        raise DatasetError(f"the data has {spec.num_views} camera views, the model continued from {init_from} has "
                           f"{world_cfg.views}; choose views with --cameras")
    ranks = distributed.init_from_env(config.tokenizer_train.device)
    cache = build_frame_cache(data, out / "cache", config.tokenizer.image_size, world_cfg.state_dim, spec.action_dim or 1,
                              progress, spec, config.fit)
    train_eps, val_eps = split_cached_episodes(cache, config.val_fraction, config.seed)
    span = (config.window - 1) * config.stride + 1
    if not any(e.length >= span for e in train_eps):
        raise DatasetError(
            f"{', '.join(sorted({e.dataset for e in cache.episodes}))}: no training episode has the {span} frames a "
            f"window of {config.window} frames at stride {config.stride} needs (longest: {max(e.length for e in cache.episodes)})"
        )
    record = {**config.to_dict(), **({INIT_FROM_KEY: str(init_from)} if init_from is not None else {}),
              SPEC_KEY: spec.to_dict(), "strides": strides}
    if ranks.main:
        config_path.write_text(json.dumps(record, indent=2))  # the data passed its checks: the run exists now
        (out / SPLIT_FILE).write_text(json.dumps({"val": [[e.dataset, e.episode] for e in val_eps]}, indent=2))
    device = resolve_device(config.tokenizer_train.device)
    results: dict[str, TrainResult | None] = {}

    # 1. tokenizer ----------------------------------------------------------------------------
    torch.manual_seed(config.seed)  # initialisation follows the seed too
    tokenizer = FrameTokenizer(config.tokenizer)
    val_frames = FrameBatches(cache, val_eps or train_eps, 256, seed=config.seed + 1).batch(0)["frames"]

    def evaluate_tokenizer(model: FrameTokenizer) -> dict[str, float]:
        frames = FrameTokenizer.to_unit(val_frames.to(next(model.parameters()).device))
        reconstruction = model.decode(model.encode(frames))
        return {"val_loss": torch.nn.functional.mse_loss(reconstruction, frames).item(), "val_psnr": psnr(reconstruction, frames)}

    tokenizer_dir = out / "tokenizer"
    with distributed.main_first():
        if ranks.main and init_from is not None and resolve(tokenizer_dir / "checkpoint") is None:
            _copy_weights(Path(init_from) / "tokenizer" / "checkpoint", tokenizer_dir / "checkpoint")
    results["tokenizer"] = train_stage(
        tokenizer, FrameBatches(cache, train_eps, config.tokenizer_train.batch_size, config.seed),
        config.tokenizer_train, tokenizer_dir, model_config=asdict(config.tokenizer), kind="tokenizer",
        resume=resume, evaluate=evaluate_tokenizer, progress=progress,
    )
    tokenizer = load_tokenizer(out)
    tokenizer_step = json.loads((resolve(tokenizer_dir / "checkpoint") / "config.json").read_text())["step"]
    tokenizer_metrics = evaluate_tokenizer(tokenizer.to(device))

    # 2. world model on cached latents ----------------------------------------------------------
    latents = encode_latents(tokenizer, cache, out / "cache" / f"latents-{tokenizer_step}.npy", device, progress)
    make = lambda episodes, seed, batch: WindowBatches(  # noqa: E731
        cache, latents, episodes, config.window, strides, batch, seed, world_cfg.text)
    train_batches = make(train_eps, config.seed, config.world_train.batch_size)
    val_source = make(val_eps or train_eps, config.seed + 1, 32)
    val_batches = [val_source.batch(i) for i in range(4)]

    def evaluate_world(model: WorldModel) -> dict[str, float]:
        return validation_metrics(model, val_batches, "latent_mse")

    world_dir = out / "world_model"
    torch.manual_seed(config.seed + 1)
    world = WorldModel(world_cfg)
    if init_from is not None and resolve(world_dir / "checkpoint") is None:
        load_checkpoint(resolve(Path(init_from) / "world_model" / "checkpoint"), world, expected_kind="world_model",
                        optional_weights=OPTIONAL_WORLD_WEIGHTS)
    elif init_from is None:  # the state statistics travel in the checkpoint (a resumed run loads its own)
        world.state_norm.set_stats(_matching_stats(data, STATE_KEY, world_cfg.state_dim), config.normalize, clip_to_data=False)
    results["world_model"] = train_stage(
        world, train_batches, config.world_train, world_dir, model_config=world_cfg.to_dict(), kind="world_model",
        resume=resume, evaluate=evaluate_world, progress=progress,
    )
    world = load_world_model(out).to(device)
    summary = {
        "run": str(out),
        "data": [str(p) for p in data],
        "frames": int(len(cache.frames)),
        "episodes": {"train": len(train_eps), "val": len(val_eps)},
        "tokenizer": {"step": tokenizer_step, **tokenizer_metrics},
        "world_model": {"params": sum(p.numel() for p in world.parameters()), **evaluate_world(world)},
        "seconds": stage_seconds(out / "summary.json", results),
    }
    if ranks.main:
        atomic_write_json(out / "summary.json", summary)
    return summary


def continued_config(config: PretrainConfig, init_from: Path) -> PretrainConfig:
    """`config`'s world-model training on the architecture, frames and tokenizer of the run `init_from`."""
    first = load_run(init_from, "pretrain").config
    for stage in ("tokenizer", "world_model"):
        if resolve(init_from / stage / "checkpoint") is None:
            raise CheckpointError(f"{init_from / stage}: no checkpoint to continue from (did that pretraining run finish?)")
    return replace(first, world_train=config.world_train, val_fraction=config.val_fraction, seed=config.seed)


def _copy_weights(source: Path, target: Path) -> None:
    """A checkpoint's weights and config, without its optimiser state: the stage counts as trained here."""
    source = resolve(source)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(TRAINER_FILE))
    os.replace(tmp, target)
