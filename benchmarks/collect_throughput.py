"""Collection throughput: frames/s with 1 and 2 workers at 64x64, beside raw physics, in one run.

    python benchmarks/collect_throughput.py [--episodes 12] [--tasks reach-v3,drawer-open-v3]

Writes benchmarks/results/collect_throughput.json and a PNG bar chart beside it. Every
figure comes from this one run on this machine, so ratios between them are meaningful
even when the machine is shared. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from wam.envs import make
from wam.envs.collect import CollectConfig, collect
from wam.envs.experts import ScriptedExpert

RESULTS = Path(__file__).parent / "results"


def physics_steps_per_second(tasks: list[str], steps: int, seed: int = 0) -> float:
    """Expert + simulator step with no rendering (state observations), one process."""
    total, elapsed = 0, 0.0
    for task in tasks:
        env = make(f"metaworld/{task}", obs="state")
        expert = ScriptedExpert(task, noise=0.1)
        obs, _ = env.reset(seed=seed)
        start = time.perf_counter()
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(expert.act(obs))
            if terminated or truncated:
                obs, _ = env.reset()
        elapsed += time.perf_counter() - start
        total += steps
        env.close()
    return total / elapsed


def collect_rate(tasks: list[str], episodes: int, workers: int, size: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"wam-bench-w{workers}-"))
    try:
        result = collect(CollectConfig(tuple(tasks), episodes, out, workers=workers, size=size, noise=0.1), progress=False)
        steady = (result.seconds - result.first_commit_seconds)
        return {
            "workers": workers,
            "episodes": result.added,
            "frames": result.frames,
            "seconds": round(result.seconds, 2),
            "frames_per_s": round(result.frames_per_second, 1),
            "startup_s": round(result.first_commit_seconds, 2),
            # frames after the first committed episode, over the time after it: start-up excluded
            "steady_frames_per_s": round((result.frames - result.frames / max(result.added, 1)) / steady, 1) if steady > 0 else None,
            "successes": result.successes,
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="reach-v3,drawer-open-v3,button-press-topdown-v3,window-close-v3")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per task per configuration")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--physics-steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "collect_throughput.json")
    args = parser.parse_args()
    tasks = args.tasks.split(",")

    physics = physics_steps_per_second(tasks, args.physics_steps)
    print(f"physics only (no rendering), 1 process: {physics:.0f} steps/s")
    runs = []
    for workers in (1, 2):
        run = collect_rate(tasks, args.episodes, workers, args.size)
        runs.append(run)
        print(f"collect, {workers} worker(s): {run['frames_per_s']:.0f} frames/s overall, "
              f"{run['steady_frames_per_s']} frames/s after start-up ({run['frames']} frames, {run['seconds']} s)")
    results = {
        "benchmark": "collect_throughput",
        "command": "python benchmarks/collect_throughput.py",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "complete": True,
        "config": {"tasks": tasks, "episodes_per_task": args.episodes, "size": args.size, "noise": 0.1,
                   "rendering": "MuJoCo EGL (Mesa llvmpipe), shadows/reflections/multisampling off"},
        "physics_steps_per_s": round(physics, 1),
        "collect": runs,
        "speedup_2_workers": round(runs[1]["frames_per_s"] / runs[0]["frames_per_s"], 2),
        "target": {"frames_per_s_2_workers": 250, "met": runs[1]["frames_per_s"] >= 250},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["physics only\n(1 proc, no render)"] + [f"collect\n{r['workers']} worker(s)" for r in results["collect"]]
    values = [results["physics_steps_per_s"]] + [r["frames_per_s"] for r in results["collect"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(labels, values, color=["#999", "#4c72b0", "#dd8452"])
    ax.bar_label(bars, fmt="%.0f")
    ax.axhline(250, color="k", ls="--", lw=1, label="target: 250 frames/s with 2 workers")
    ax.set_yscale("log")
    ax.set_ylabel("steps or frames per second")
    ax.set_title(f"Meta-World collection at {results['config']['size']}x{results['config']['size']}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
