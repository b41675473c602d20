"""Dream steps per second at batch sizes 1 to 256, beside the real Meta-World pixel env.

    python benchmarks/dream_throughput.py --run RUN [--batches 1,4,16,64,256] [--steps 64]

RUN is a finetuned WAM (`wam finetune --out RUN`); without one, `--preset cpu` builds a WAM
of the cpu preset's architecture with random weights (speed does not depend on the
weights) and a tiny dataset of first frames. One dream step is one control step for every
dream in the batch (the model runs once every `stride` steps); images are not decoded
(the dojo's fast path) unless `--decode`. The simulator is stepped with random actions and
64x64 rendering in the same run, so the ratio is measured on one machine at one time.
With `--student` the run's distilled dream student (`wam distill --world RUN`) is timed
beside the WAM (a random-weights run gets a random student of the cpu preset's size).
Writes benchmarks/results/dream_throughput.json and a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def real_env_rate(steps: int) -> float:
    from wam.envs import make

    env = make("metaworld/drawer-open-v3", obs="pixels", size=64, max_episode_steps=500)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def dream_rate(run: Path, task: str, batch: int, steps: int, decode: bool, bf16: bool = False, student: bool = False) -> float:
    from wam.config import DreamSettings
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv

    env = DreamVectorEnv(DreamConfig(run, task, num_envs=batch, max_episode_steps=10_000, decode_images=decode, device="auto",
                                     settings=DreamSettings(bf16=bf16, student=student)))
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, batch, 4)).astype(np.float32)
    for a in actions[:4]:
        env.step(a)  # warm-up
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return batch * steps / (time.perf_counter() - t0)


def random_wam_run(out: Path, preset: str) -> tuple[Path, str]:
    """A WAM run directory with random weights of `preset`'s architecture, and one first-frame dataset."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root: its tests package writes the dataset
    from dataclasses import replace

    from tests.support.pretrain_fixtures import write_dataset

    from wam.config import finetune_preset
    from wam.train.finetune import finetune

    if (out / "wam" / "summary.json").exists():
        return out / "wam", "move the square"  # built by an earlier run
    shutil.rmtree(out, ignore_errors=True)
    data = write_dataset(out / "frames", range(8), rewards=True)
    config = finetune_preset(preset)
    config = replace(config, scratch_preset=preset, scratch_tokenizer_steps=1, window=min(config.window, 5),
                     train=replace(config.train, steps=1, warmup_steps=1, eval_every=0, checkpoint_every=1))
    finetune(None, [data], out / "wam", config, progress=False)
    return out / "wam", "move the square"


def random_student(run: Path) -> None:
    from dataclasses import replace

    from wam.config import distill_preset
    from wam.train.checkpoint import resolve
    from wam.train.distill import STUDENT_DIR, distill

    if resolve(run / STUDENT_DIR / "checkpoint") is None:
        config = distill_preset("cpu")
        config = replace(config, train=replace(config.train, steps=1, warmup_steps=1, eval_every=0, checkpoint_every=1, batch_size=2))
        distill(run, config, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--task", default="drawer-open-v3")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batches", default="1,4,16,64,256")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--real-steps", type=int, default=400)
    parser.add_argument("--decode", action="store_true")
    parser.add_argument("--student", action="store_true", help="also time the run's distilled dream student")
    parser.add_argument("--out", type=Path, default=RESULTS / "dream_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    run, task = (args.run, args.task) if args.run else random_wam_run(Path("/tmp/wam-dream-throughput"), args.preset)
    if args.student and args.run is None:
        random_student(run)
    real = real_env_rate(args.real_steps)
    print(f"real Meta-World pixel env (64x64, 1 process): {real:.0f} steps/s")
    rows = []
    models = ("wam", "student") if args.student else ("wam",)
    for batch in [int(b) for b in args.batches.split(",")]:
        for model in models:
            for bf16 in (False, True):
                rate = dream_rate(run, task, batch, args.steps, args.decode, bf16, student=model == "student")
                rows.append({"model": model, "batch": batch, "precision": "bf16" if bf16 else "fp32",
                             "dream_steps_per_s": round(rate, 1), "ratio_to_real": round(rate / real, 2)})
                print(f"dream {model:7s} batch {batch:4d} {rows[-1]['precision']}: {rate:8.0f} steps/s  "
                      f"({rate / real:.1f}x the simulator)")
    result = {"run": str(run), "random_weights": args.run is None, "preset": args.preset, "decode_images": args.decode,
              "real_env_steps_per_s": round(real, 1), "dreams": rows,
              "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
                          "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"},
              "command": "python benchmarks/dream_throughput.py " + " ".join(os.sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for model in models:
        for precision in ("fp32", "bf16"):
            mine = [r for r in rows if r["precision"] == precision and r["model"] == model]
            ax.plot([r["batch"] for r in mine], [r["dream_steps_per_s"] for r in mine], marker="o" if model == "wam" else "s",
                    label=f"dream ({'WAM' if model == 'wam' else 'distilled student'}), {precision}")
    ax.axhline(real, color="k", ls="--", label="Meta-World pixel env")
    ax.axhline(50 * real, color="r", ls=":", label="target: 50x the simulator")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("dreams in the batch")
    ax.set_ylabel("steps/s")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
