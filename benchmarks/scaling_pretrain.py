"""Scaling law of pretraining: world-model validation loss against the amount of video.

    python benchmarks/scaling_pretrain.py --run RUN [--sizes 10,20,45,90,180,360] [--steps 600]
        [--steps-power 0.5 --min-steps 600 --early-stop]

A fixed world model is trained from scratch on nested subsets of the run's training
episodes (the smallest inside the next) and evaluated on the run's held-out episodes.
Latents come from the run's frozen tokenizer, so every point measures loss in the same space.
Fits loss = a - b * log10(frames) and reports R^2, beside a power law with a floor
(loss = e + c * frames^-alpha) for comparison; the largest size also gives a loss-versus-compute
curve. Each finished cell is written to the JSON at once and skipped on rerun.

Two protocols. The default trains every size for the same `--steps`: small sets overfit and
large ones are cut short, so the curve measures the step budget as much as the data.
`--steps-power P` gives size n the budget steps * (n / largest)^P (at least `--min-steps`),
and `--early-stop` reports the best validation loss seen during training (checked 12 times
or more), as data-limited scaling studies do: each point then estimates what that much
video can teach this model, not where one schedule happened to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from wam.models.world_model import WorldModel, WorldModelConfig
from wam.train.batches import WindowBatches
from wam.train.frame_cache import build_frame_cache, load_frame_cache
from wam.train.loop import TrainConfig, train
from wam.train.pretrain import encode_latents, load_pretrain_config, load_tokenizer, split_cached_episodes

RESULTS = Path(__file__).parent / "results"


def model_config(run_world: WorldModelConfig) -> WorldModelConfig:
    """The fixed model of every cell; what it reads is the pretraining run's: its state size (its data's), text
    encoder, camera slots and the latent grid its tokenizer writes."""
    return WorldModelConfig(d_model=128, n_layers=4, n_heads=4, context=8, latent_action_hidden=128, text=run_world.text,
                            state_dim=run_world.state_dim, latent_channels=run_world.latent_channels,
                            latent_size=run_world.latent_size, patch=run_world.patch, views=run_world.views)


def nested_order(episodes: list, seed: int, stratify: bool) -> list[int]:
    """A seeded order of the training episodes; the first n of it is the subset of size n.

    With `stratify`, tasks take turns, so even a small subset holds every task about equally.
    """
    order = np.random.default_rng(seed).permutation(len(episodes)).tolist()
    if not stratify:
        return order
    by_task: dict[str, list[int]] = {}
    for i in order:
        by_task.setdefault(episodes[i].task, []).append(i)
    queues = list(by_task.values())
    interleaved = []
    while any(queues):
        for queue in queues:
            if queue:
                interleaved.append(queue.pop(0))
    return interleaved


def steps_for(size: int, largest: int, steps: int, power: float, min_steps: int) -> int:
    """The step budget of one data size: `steps` at the largest, scaled by (size / largest)^power."""
    return max(min_steps, round(steps * (size / largest) ** power))


def transfer_source(run: Path, data: list[Path], root: Path):
    """Another dataset (e.g. held-out robot-hand video beside a human-video run) as the run's frozen tokenizer sees it:
    (cache, latents), both kept under `root` and reused. A state of another size than the run's enters as zeros
    (the frame cache keeps frames only), so the loss measures how well video predicts that data's video."""
    config = load_pretrain_config(run)
    root = root / f"{zlib.crc32(' '.join(sorted(str(Path(p).resolve()) for p in data)).encode()):08x}"  # one per data
    cache = build_frame_cache(data, root, config.tokenizer.image_size, config.world.state_dim, 1, progress=False, fit=config.fit)
    latents = root / f"latents-{len(cache.frames)}.npy"  # a cache rebuilt for grown data gets new latents
    return cache, encode_latents(load_tokenizer(run), cache, latents, torch.device("cpu"), progress=False)


def run_cell(run: Path, size: int, steps: int, seed: int, eval_every: int, stratify: bool = False, transfer=None) -> dict:
    """One (size, seed) point; `transfer` = (cache, latents) of another dataset whose loss is reported beside."""
    config = load_pretrain_config(run)
    cache = load_frame_cache(run / "cache")
    latents_path = max((run / "cache").glob("latents-*.npy"), key=lambda p: int(p.stem.split("-")[1]))
    latents = np.load(latents_path, mmap_mode="r")
    train_eps, val_eps = split_cached_episodes(cache, config.val_fraction, config.seed)
    order = nested_order(train_eps, seed, stratify)
    subset = [train_eps[i] for i in sorted(order[:size])]  # nested: the first `size` of one seeded order
    world_cfg = model_config(config.world)
    batches = WindowBatches(cache, latents, subset, config.window, config.stride, 16, seed, world_cfg.text)
    val = WindowBatches(cache, latents, val_eps, config.window, config.stride, 64, 12345, world_cfg.text)
    val_batches = [val.batch(i) for i in range(4)]
    other_batches = []
    if transfer is not None:
        other = WindowBatches(transfer[0], transfer[1], transfer[0].episodes, config.window, config.stride, 64, 12345,
                              world_cfg.text)
        other_batches = [other.batch(i) for i in range(4)]

    def evaluate(model: WorldModel) -> dict[str, float]:
        metrics = {"val_loss": float(np.mean([model(b)[1]["latent_mse"] for b in val_batches]))}
        if other_batches:
            metrics["transfer_loss"] = float(np.mean([model(b)[1]["latent_mse"] for b in other_batches]))
        return metrics

    train_cfg = TrainConfig(steps=steps, batch_size=16, lr=6e-4, warmup_steps=min(100, steps // 10), log_every=25,
                            eval_every=eval_every, checkpoint_every=steps, seed=seed)
    out = Path(tempfile.mkdtemp(prefix=f"wam-scaling-{size}-"))
    try:
        torch.manual_seed(seed)
        model = WorldModel(world_cfg)
        result = train(model, batches, train_cfg, out, model_config=world_cfg.to_dict(), kind="world_model", evaluate=evaluate, progress=False)
        curve = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        curve = [{"step": c["step"], "val_loss": c["eval/val_loss"]} for c in curve if "eval/val_loss" in c]
        final_metrics = evaluate(model.eval())
        final = final_metrics["val_loss"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    frames = sum(e.length for e in subset)
    best = min([{"step": steps, "val_loss": final}] + curve, key=lambda c: c["val_loss"])
    return {
        "episodes": size, "frames": frames, "val_loss": final, "val_loss_best": best["val_loss"], "best_step": best["step"],
        "steps": steps, "batch_size": 16,
        "window": config.window, "frames_seen": steps * 16 * config.window, "seconds": round(result.seconds, 1),
        "params": sum(p.numel() for p in model.parameters()), "curve": curve,
        **({"transfer_loss": final_metrics["transfer_loss"]} if "transfer_loss" in final_metrics else {}),
    }


def mean_by_size(cells: dict, early_stop: bool = False, key: str | None = None) -> list[dict]:
    """One point per data size: the mean validation loss (final, or best seen) over the seeds run so far; `key`
    picks another loss (transfer_loss: the other dataset's)."""
    key = key or ("val_loss_best" if early_stop else "val_loss")
    sizes: dict[int, list[dict]] = {}
    for cell in cells.values():
        sizes.setdefault(cell["episodes"], []).append(cell)
    return [{"episodes": n, "frames": float(np.mean([c["frames"] for c in group])), "val_loss": float(np.mean([c[key] for c in group])),
             "val_loss_std": float(np.std([c[key] for c in group])), "seeds": len(group),
             "steps": int(np.mean([c["steps"] for c in group]))}
            for n, group in sorted(sizes.items())]


def r_squared(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def fit(points: list[dict]) -> dict:
    x = np.log10([p["frames"] for p in points])
    y = np.array([p["val_loss"] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    return {"a": float(intercept), "b": float(-slope), "r2": r_squared(y, intercept + slope * x),
            "decades": float(x.max() - x.min()), "power_law": fit_power_law(10**x, y)}


def fit_power_law(frames: np.ndarray, y: np.ndarray) -> dict | None:
    """loss = e + c * frames^-alpha, the form of compute-optimal scaling studies, for comparison."""
    from scipy.optimize import curve_fit

    if len(y) < 4:
        return None
    scale = frames / frames.min()
    try:
        (e, c, alpha), _ = curve_fit(lambda d, e, c, alpha: e + c * d**-alpha, scale, y,
                                     p0=(y.min() * 0.5, y.max() - y.min() * 0.5, 0.3),
                                     bounds=([0, 0, 0], [np.inf, np.inf, 3]), maxfev=20000)
    except RuntimeError:
        return None
    predicted = e + c * scale**-alpha
    return {"e": float(e), "c": float(c * frames.min() ** alpha), "alpha": float(alpha), "r2": r_squared(y, predicted)}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = mean_by_size(results["cells"], results.get("early_stop", False))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    frames = np.array([p["frames"] for p in points])
    left.errorbar(frames, [p["val_loss"] for p in points], yerr=[p["val_loss_std"] for p in points], fmt="o",
                  label=f"measured (mean of {min(p['seeds'] for p in points)}+ seeds)")
    left.set_xscale("log")
    if "fit" in results:
        f = results["fit"]
        xs = np.logspace(np.log10(frames.min()), np.log10(frames.max()), 50)
        left.semilogx(xs, f["a"] - f["b"] * np.log10(xs), "-", label=f"{f['a']:.4f} - {f['b']:.4f} log10(D), R²={f['r2']:.3f}")
        if f.get("power_law"):
            p = f["power_law"]
            left.semilogx(xs, p["e"] + p["c"] * xs ** -p["alpha"], ":", color="gray",
                          label=f"power law e + c D^-{p['alpha']:.2f}, R²={p['r2']:.3f}")
    left.set_xlabel("pretraining video frames (D)")
    left.set_ylabel("validation latent MSE" + (" (best seen)" if results.get("early_stop") else ""))
    left.set_title("loss vs data")
    left.legend(fontsize=8)
    largest = max((c for c in results["cells"].values() if c["curve"]), key=lambda c: c["frames"], default=None)
    if largest is not None:
        compute = [c["step"] * largest["batch_size"] * largest["window"] for c in largest["curve"]]
        right.loglog(compute, [c["val_loss"] for c in largest["curve"]], "o-")
        right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels of a short log axis collide
    right.set_xlabel("training frames processed (compute)")
    right.set_ylabel("validation latent MSE")
    right.set_title(f"loss vs compute at D={largest['frames']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a pretraining run (its cache, tokenizer and split)")
    parser.add_argument("--sizes", default="10,20,45,90,180,360")
    parser.add_argument("--steps", type=int, default=600, help="training steps (at the largest size, with --steps-power)")
    parser.add_argument("--steps-power", type=float, default=0.0, help="size n trains steps * (n / largest)^P steps; 0: all equal")
    parser.add_argument("--min-steps", type=int, default=0, help="no size trains fewer steps than this")
    parser.add_argument("--early-stop", action="store_true", help="fit the best validation loss seen, not the last")
    parser.add_argument("--seeds", default="0", help="comma list; each seed draws its own nested subsets and initialisation")
    parser.add_argument("--stratify", action="store_true", help="subsets hold every task about equally")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling_pretrain.json")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 leaves a core to other work)")
    parser.add_argument("--eval-data", type=Path, nargs="*", default=[],
                        help="also report each point's loss on these datasets (e.g. held-out robot-hand video beside a "
                             "human-video run), and fit it")
    parser.add_argument("--eval-cache", type=Path, default=None, help="where their frames and latents are kept "
                                                                      "(default: <run>/transfer_cache)")
    args = parser.parse_args()
    if args.threads < 1 or args.min_steps < 0 or args.steps < 1:
        parser.error(f"--threads and --steps must be at least 1 and --min-steps at least 0, got "
                     f"{args.threads}, {args.steps} and {args.min_steps}")
    torch.set_num_threads(min(args.threads, os.cpu_count() or 1))
    sizes = [int(s) for s in args.sizes.split(",")]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({
        "benchmark": "scaling_pretrain", "command": f"python benchmarks/scaling_pretrain.py --run {args.run} --sizes {args.sizes} --steps {args.steps} --seeds {args.seeds}"
        + (f" --steps-power {args.steps_power} --min-steps {args.min_steps}" if args.steps_power or args.min_steps else "")
        + (" --early-stop" if args.early_stop else "") + (" --stratify" if args.stratify else "") + f" --out {args.out}",
        "stratified": args.stratify, "early_stop": args.early_stop,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name()},
        "model": "world model d128, 4 layers, 4 heads (fixed across points)", "sizes_planned": sizes,
    })
    results.setdefault("cells", {})
    transfer = None
    if args.eval_data:
        results["eval_data"] = [str(p) for p in args.eval_data]
        results["command"] += " --eval-data " + " ".join(map(str, args.eval_data))
        transfer = transfer_source(args.run, args.eval_data, args.eval_cache or args.run / "transfer_cache")
    seeds = [int(s) for s in args.seeds.split(",")]
    keys = [(seed, size, f"{size}" if seed == 0 else f"{size}/s{seed}") for seed in seeds for size in sizes]
    for seed, size, key in keys:
        if key in results["cells"]:
            print(f"size {size} seed {seed}: done already, skipped")
            continue
        start = time.time()
        steps = steps_for(size, max(sizes), args.steps, args.steps_power, args.min_steps)
        track = args.early_stop or (size == max(sizes) and seed == seeds[0])
        cell = run_cell(args.run, size, steps, seed, eval_every=max(min(steps // 12, 100), 1) if track else 0,
                        stratify=args.stratify, transfer=transfer)
        cell["seed"] = seed
        results["cells"][key] = cell
        results["complete"] = all(k in results["cells"] for _, _, k in keys)
        results["seeds_planned"] = seeds
        if len({c["episodes"] for c in results["cells"].values()}) >= 2:
            results["points"] = mean_by_size(results["cells"], args.early_stop)
            results["fit"] = fit(results["points"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"size {size} episodes ({cell['frames']} frames), seed {seed}: val loss {cell['val_loss']:.5f} in {time.time() - start:.0f} s")
    if len({c["episodes"] for c in results["cells"].values()}) >= 2:
        results["points"] = mean_by_size(results["cells"], args.early_stop)
        results["fit"] = fit(results["points"])
        if all("transfer_loss" in c for c in results["cells"].values()):
            results["transfer_fit"] = fit(mean_by_size(results["cells"], key="transfer_loss"))
            print(f"on {', '.join(map(str, args.eval_data))}: R^2 = {results['transfer_fit']['r2']:.4f}")
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"fit: loss = {results['fit']['a']:.5f} - {results['fit']['b']:.5f} log10(frames), R^2 = {results['fit']['r2']:.4f} "
              f"over {results['fit']['decades']:.2f} decades")
    plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
