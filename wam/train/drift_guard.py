"""Train a world's drift guard: `wam drift-guard --world RUN` (an inverse-dynamics model and its tolerance).

The model (wam/models/inverse_dynamics.py) learns, from the world's own real robot transitions (the frame cache and
latents its finetuning built), which actions lead from one latent frame to the next. Its tolerance is calibrated on
the world's held-out real episodes: over every run of `window` consecutive model steps, the mean error of the actions
it reads off real frames; the tolerance is the `quantile` of those windows. A real episode then trips the guard in
about 1 - quantile of its windows, and a dream that trips it has stopped following its actions the way reality does.
Saved in `RUN/drift_guard/` (checkpoints, `tolerance.json`); `DreamSettings(drift_guard=True)` dreams with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from wam.config import DriftGuardConfig
from wam.data.layout import atomic_write_json
from wam.errors import CheckpointError, DatasetError
from wam.models.inverse_dynamics import InverseDynamics, InverseDynamicsConfig
from wam.runs import load_run
from wam.train.batches import WindowBatches
from wam.train.checkpoint import load_checkpoint, resolve
from wam.train.frame_cache import build_frame_cache
from wam.train.loop import resolve_device
from wam.train.pretrain import SPLIT_FILE, encode_latents, load_tokenizer
from wam.train.stages import train_stage, validation_metrics

GUARD_DIR = "drift_guard"
TOLERANCE_FILE = "tolerance.json"


def train_drift_guard(world: str | Path, config: DriftGuardConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train `world/drift_guard` and calibrate its tolerance; returns the summary (also in its summary.json)."""
    world = Path(world)
    record = load_run(world, "finetune")
    out = world / GUARD_DIR
    if resolve(out / "checkpoint") is not None and not resume:
        raise CheckpointError(f"{out}: a drift guard already exists; pass --resume to continue it, or delete it to train anew")
    wam_config = json.loads((resolve(world / "wam" / "checkpoint") / "config.json").read_text())["config"]
    world_cfg = wam_config["world"]
    device = resolve_device(config.train.device)
    paths = [str(p) for p in record.data["robot"]]
    cache = build_frame_cache(paths, world / "cache", record.image_size, int(world_cfg["state_dim"]),
                              int(wam_config["robot_action_dim"]), progress, record.spec_for(paths), record.fit)
    step = json.loads((resolve(world / "tokenizer" / "checkpoint") / "config.json").read_text())["step"]
    latents = encode_latents(load_tokenizer(world).to(device), cache, world / "cache" / f"latents-{step}.npy", device, progress)
    held = {tuple(v) for v in json.loads((world / SPLIT_FILE).read_text())["val"]}
    labelled = [e for e in cache.episodes if e.has_actions and e.length > record.stride]
    train_eps = [e for e in labelled if (e.dataset, e.episode) not in held]
    val_eps = [e for e in labelled if (e.dataset, e.episode) in held] or train_eps
    if not train_eps:
        raise DatasetError(f"{world}: no labelled robot episode longer than one model step to learn inverse dynamics from")
    guard_cfg = InverseDynamicsConfig(int(world_cfg["latent_channels"]), int(world_cfg["latent_size"]), record.views,
                                      int(world_cfg["state_dim"]), int(wam_config["robot_action_dim"]), record.stride,
                                      config.hidden)
    text = _text(world_cfg)

    def windows(episodes, seed, batch):
        return WindowBatches(cache, latents, episodes, 2, record.stride, batch, seed, text, require_actions=True)

    torch.manual_seed(config.seed)
    guard = InverseDynamics(guard_cfg)
    rows = np.concatenate([np.arange(e.start, e.start + e.length) for e in train_eps])
    actions = cache.action[rows].astype(np.float64)
    guard.action_mean.copy_(torch.from_numpy(actions.mean(0)).float())
    guard.action_scale.copy_(torch.from_numpy(np.maximum(actions.std(0), 1e-3)).float())
    val_batches = [windows(val_eps, config.seed + 1, 64).batch(i) for i in range(4)]
    result = train_stage(guard, windows(train_eps, config.seed, config.train.batch_size), config.train, out,
                         model_config=guard_cfg.to_dict(), kind=InverseDynamics.kind, resume=resume, progress=progress,
                         evaluate=lambda model: validation_metrics(model, val_batches, "action_error"))
    guard = load_guard_model(world).to(device)
    errors = [transition_errors(guard, cache, latents, e, record.stride, device) for e in val_eps]
    windowed = np.concatenate([window_means(e, config.window) for e in errors if len(e) >= config.window] or [np.zeros(0)])
    if not len(windowed):
        raise DatasetError(f"{world}: no held-out episode has {config.window} model steps to calibrate the tolerance on")
    tolerance = {"tolerance": float(np.quantile(windowed, config.quantile)), "window": config.window,
                 "quantile": config.quantile, "windows": int(len(windowed)), "episodes": len(errors),
                 "median_window_error": float(np.median(windowed))}
    atomic_write_json(out / TOLERANCE_FILE, tolerance)
    summary = {"world": str(world), "config": config.to_dict(), "params": sum(p.numel() for p in guard.parameters()),
               "train_episodes": len(train_eps), "calibration": tolerance,
               "seconds": None if result is None else round(result.seconds, 1)}
    atomic_write_json(out / "summary.json", summary)
    return summary


def _text(world_cfg: dict):
    from wam.models.text import TextConfig

    return TextConfig(**world_cfg["text"])


@torch.no_grad()
def transition_errors(guard: InverseDynamics, cache, latents, episode, stride: int, device) -> np.ndarray:
    """The guard's error on each model step of a real episode (frames `stride` control steps apart)."""
    starts = np.arange(episode.start, episode.start + episode.length - stride, stride)
    if not len(starts):
        return np.zeros(0)
    now = torch.from_numpy(np.asarray(latents[starts], np.float32)).to(device)
    later = torch.from_numpy(np.asarray(latents[starts + stride], np.float32)).to(device)
    state = torch.from_numpy(cache.state[starts].astype(np.float32)).to(device)
    next_state = torch.from_numpy(cache.state[starts + stride].astype(np.float32)).to(device)
    commanded = torch.from_numpy(np.stack([cache.action[s: s + stride] for s in starts]).astype(np.float32)).to(device)
    return guard.error(guard.actions(now, later, state, next_state), commanded).cpu().numpy()


def window_means(errors: np.ndarray, window: int) -> np.ndarray:
    """Mean of every run of `window` consecutive errors."""
    return np.lib.stride_tricks.sliding_window_view(np.asarray(errors, np.float64), window).mean(axis=1)


def load_guard_model(world: str | Path) -> InverseDynamics:
    directory = resolve(Path(world) / GUARD_DIR / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{world}: no drift guard; train one first (`wam drift-guard --world {world}`)")
    config = json.loads((directory / "config.json").read_text())["config"]
    guard = InverseDynamics(InverseDynamicsConfig(**config))
    load_checkpoint(directory, guard, expected_kind=InverseDynamics.kind)
    return guard.eval()


def load_drift_guard(world: str | Path) -> tuple[InverseDynamics, dict]:
    """The guard and its calibrated tolerance ({"tolerance", "window", ...})."""
    guard = load_guard_model(world)
    path = Path(world) / GUARD_DIR / TOLERANCE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: the drift guard has no calibrated tolerance (its training did not finish); "
                              f"rerun `wam drift-guard --world {world} --resume`")
    return guard, json.loads(path.read_text())
