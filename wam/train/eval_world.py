"""How well does the pretrained world model predict? Next-frame and autoregressive rollouts.

On held-out episodes, from `context` real frames, the model dreams `horizon` frames,
conditioned on latent actions inferred from the true future (what the video did next).
Beside it, in the same run and on the same windows: copy-last-frame, the same model with
its action input zeroed, the model with latent actions shuffled across samples (they
come from other windows), and the model with every action hidden (the unknown-action
token: the future it expects for the task, which is what the WAM acts towards). If latent actions carry control, true beats shuffled and zeroed.
Quality is PSNR and SSIM of decoded frames against the real frames, and latent MSE.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wam.data.export import write_video
from wam.models.metrics import moving_psnr_per_frame, psnr_per_frame, ssim_per_frame
from wam.models.text import tokenize
from wam.models.tokenizer import to_uint8
from wam.train.batches import WindowBatches
from wam.train.checkpoint import resolve
from wam.runs import load_run
from wam.train.frame_cache import build_frame_cache, matching_cache
from wam.train.pretrain import encode_latents, load_tokenizer, load_world_model, split_cached_episodes

METHODS = ("model", "shuffled_actions", "zeroed_actions", "hidden_actions", "copy_last_frame")


@dataclass(frozen=True)
class EvalWorldConfig:
    context: int = 4
    horizons: tuple[int, ...] = (1, 8, 16)
    samples: int = 48
    videos: int = 4
    seed: int = 0
    held_out_only: bool = True  # with the run's own data: only its validation episodes


@torch.no_grad()
def evaluate_world(run: Path, data: list[Path], out: Path, config: EvalWorldConfig = EvalWorldConfig(), progress: bool = True) -> dict:
    run, out = Path(run), Path(out)
    record = load_run(run, "pretrain")
    pretrain_cfg = record.config
    tokenizer, world = load_tokenizer(run), load_world_model(run)
    # The run's own frames when `data` is its data (no second copy on disk), else a cache of our own.
    size = record.image_size
    cache = matching_cache(data, run / "cache", size) or build_frame_cache(
        data, out / "cache", size, world.config.state_dim, 1, progress, record.spec_for(data), record.fit)
    # Named after the tokenizer's weights: an --out shared by two runs never mixes their latents.
    weights = resolve(run / "tokenizer" / "checkpoint") / "model.safetensors"
    tag = hashlib.sha1(weights.read_bytes()).hexdigest()[:12]
    latents = encode_latents(tokenizer, cache, out / "cache" / f"latents-{tag}.npy", torch.device("cpu"), progress)
    episodes = cache.episodes
    own_data = {str(Path(p).resolve()) for p in json.loads((run / "summary.json").read_text())["data"]} if (run / "summary.json").exists() else set()
    if config.held_out_only and own_data and {e.dataset for e in episodes} <= own_data:
        _, episodes = split_cached_episodes(cache, pretrain_cfg.val_fraction, pretrain_cfg.seed)
    horizon = max(config.horizons)
    window = config.context + horizon
    source = WindowBatches(cache, latents, episodes, window, pretrain_cfg.stride, config.samples, config.seed, world.config.text)
    batch = source.batch(0)
    rows = _rows(source, config.seed)
    true_frames = torch.from_numpy(np.array(cache.frames[rows.reshape(-1)])).view(*rows.shape, *cache.frames.shape[1:])
    true_frames = true_frames.permute(0, 1, 4, 2, 3)  # (B, W, 3, H, W) uint8

    z = batch["latents"]  # (B, W, C, h, w)
    text_ids = batch["text_ids"]
    state = batch["state"] if batch["state_mask"].all() else None
    actions, _ = world.latent_actions.infer(z, sample=False)  # (B, W-1, A): from the true future
    k = config.context
    context, context_state = z[:, :k], None if state is None else state[:, :k]
    generator = torch.Generator().manual_seed(config.seed)
    shuffled = actions[torch.randperm(len(actions), generator=generator)]
    dreams = {
        "model": world.rollout(context, actions, text_ids, context_state)[0],
        "shuffled_actions": world.rollout(context, shuffled, text_ids, context_state)[0],
        "zeroed_actions": world.rollout(context, torch.zeros_like(actions), text_ids, context_state)[0],
        # No action at all: the future the model expects for the task, which the WAM acts towards.
        "hidden_actions": world.rollout(context, None, text_ids, context_state, horizon=horizon)[0],
        "copy_last_frame": z[:, k - 1 : k].expand(-1, horizon, -1, -1, -1),
    }
    target_frames = true_frames[:, k:]  # (B, H, 3, H, W)
    target_latents = z[:, k:]
    results: dict = {"run": str(run), "data": [str(p) for p in data], "samples": int(len(z)), "context": k,
                     "stride": pretrain_cfg.stride, "horizons": list(config.horizons), "methods": {}}
    decoded_all, last_psnr, last_moving = {}, {}, {}  # per window at the longest horizon: paired intervals
    for method, dream in dreams.items():
        if method == "copy_last_frame":
            decoded = true_frames[:, k - 1 : k].expand(-1, horizon, -1, -1, -1)  # the real last frame, not its reconstruction
        else:
            decoded = to_uint8(tokenizer.decode(dream.flatten(0, 1))).view_as(target_frames)
        decoded_all[method] = decoded
        psnr = psnr_per_frame(decoded.flatten(0, 1), target_frames.flatten(0, 1)).view(len(z), horizon)
        ssim = ssim_per_frame(decoded.flatten(0, 1), target_frames.flatten(0, 1)).view(len(z), horizon)
        last_given = true_frames[:, k - 1 : k].expand(-1, horizon, -1, -1, -1)
        moving = moving_psnr_per_frame(decoded.flatten(0, 1), target_frames.flatten(0, 1), last_given.flatten(0, 1))
        moving = moving.view(len(z), horizon)
        latent_mse = (dream - target_latents).pow(2).flatten(2).mean(-1)  # (B, H)
        last_psnr[method], last_moving[method] = psnr[:, horizon - 1], moving[:, horizon - 1]
        results["methods"][method] = {
            f"h{h}": {
                "psnr_at": round(psnr[:, h - 1].mean().item(), 3),
                "psnr_mean": round(psnr[:, :h].mean().item(), 3),
                "ssim_at": round(ssim[:, h - 1].mean().item(), 4),
                # over the pixels that moved since the last given frame (NaN-free mean over windows where any did)
                "psnr_moving_at": _finite_mean(moving[:, h - 1]),
                "latent_mse_at": round(latent_mse[:, h - 1].mean().item(), 6),
            }
            for h in config.horizons
        }
    reconstruction = to_uint8(tokenizer.decode(target_latents.flatten(0, 1)))
    results["tokenizer_ceiling_psnr"] = round(psnr_per_frame(reconstruction, target_frames.flatten(0, 1)).mean().item(), 3)
    h = horizon
    model_psnr = results["methods"]["model"][f"h{h}"]["psnr_at"]
    moving = {method: results["methods"][method][f"h{h}"]["psnr_moving_at"] for method in METHODS}
    results["summary"] = {
        f"psnr_h{h}_model_minus_copy_last": round(model_psnr - results["methods"]["copy_last_frame"][f"h{h}"]["psnr_at"], 3),
        f"psnr_h{h}_model_minus_zeroed": round(model_psnr - results["methods"]["zeroed_actions"][f"h{h}"]["psnr_at"], 3),
        f"psnr_h{h}_model_minus_shuffled": round(model_psnr - results["methods"]["shuffled_actions"][f"h{h}"]["psnr_at"], 3),
        # The latent actions' margin where they matter: the pixels that move (wam.models.metrics.moving_psnr_per_frame).
        f"psnr_moving_h{h}_model_minus_zeroed": _difference(moving["model"], moving["zeroed_actions"]),
        f"psnr_moving_h{h}_model_minus_shuffled": _difference(moving["model"], moving["shuffled_actions"]),
    }
    for other, name in (("zeroed_actions", "zeroed"), ("shuffled_actions", "shuffled")):  # the same windows, paired
        results["summary"][f"psnr_h{h}_model_minus_{name}_95"] = _paired_interval(last_psnr["model"], last_psnr[other])
        results["summary"][f"psnr_moving_h{h}_model_minus_{name}_95"] = _paired_interval(last_moving["model"], last_moving[other])
    out.mkdir(parents=True, exist_ok=True)
    results["videos"] = _write_videos(out, true_frames, decoded_all, k, config.videos)
    (out / "eval_world.json").write_text(json.dumps(results, indent=2))
    return results


def _finite_mean(values: torch.Tensor) -> float | None:
    finite = values[torch.isfinite(values)]
    return round(finite.mean().item(), 3) if len(finite) else None


def _paired_interval(a: torch.Tensor, b: torch.Tensor) -> list[float] | None:
    """95% interval of the mean of a - b over the windows where both are finite (normal approximation)."""
    d = (a - b)[torch.isfinite(a) & torch.isfinite(b)].double()
    if len(d) < 2:
        return None
    half = 1.96 * d.std().item() / len(d) ** 0.5
    return [round(d.mean().item() - half, 3), round(d.mean().item() + half, 3)]


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _rows(source: WindowBatches, seed: int) -> np.ndarray:
    """The cache rows of the windows `source.batch(0)` drew (same draw, same seed)."""
    rng = np.random.default_rng([seed, 0])
    chosen = rng.choice(len(source.episodes), source.batch_size, p=source.weights)
    starts = [int(rng.integers(source.starts[i])) for i in chosen]
    offsets = np.arange(source.window) * source.stride
    return np.stack([source.episodes[i].start + s + offsets for i, s in zip(chosen, starts)])


def _write_videos(out: Path, true_frames: torch.Tensor, decoded: dict, context: int, count: int) -> list[str]:
    """Ground truth | dream | zeroed-action dream, side by side, 4x upscaled: mp4 and GIF."""
    paths = []
    for i in range(min(count, len(true_frames))):
        truth = true_frames[i]  # (W, 3, H, W)
        dream = torch.cat([truth[:context], decoded["model"][i]])
        zeroed = torch.cat([truth[:context], decoded["zeroed_actions"][i]])
        panel = torch.cat([truth, dream, zeroed], dim=-1).permute(0, 2, 3, 1).numpy()  # (W, H, 3W, 3)
        panel = panel.repeat(4, axis=1).repeat(4, axis=2)
        for suffix in (".mp4", ".gif"):
            path = out / "videos" / f"sample{i}{suffix}"
            write_video(np.ascontiguousarray(panel), path, fps=8)
            paths.append(str(path.relative_to(out)))
    return paths


def tokenize_tasks(texts: list[str], world) -> torch.Tensor:
    return tokenize(texts, world.config.text)
