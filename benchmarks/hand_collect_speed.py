"""Collection speed of the hand scenes beside Meta-World's, in one run on this machine (2 cores).

    python benchmarks/hand_collect_speed.py [--episodes 8] [--size 64]

Frames per second end to end (`wam.envs.collect.collect`: simulate, render the egocentric camera, encode,
commit a LeRobot v3 dataset) for the Shadow hand's demonstrations, the human hand's video (which also
writes and reads back EgoDex's files) and Meta-World's experts at the same image size, with 1 and 2
workers. Every figure comes from this one run, so the ratios hold on a shared machine; run it on an
otherwise idle one. Writes benchmarks/results/headline/hand_collect_speed.json and a plot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Claim, Result, write_result  # noqa: E402

from wam.envs.collect import CollectConfig, collect  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "headline" / "hand_collect_speed.json"
PLOT = ROOT / "benchmarks" / "results" / "hand_collect_speed.png"
SETTINGS = {
    "metaworld (Sawyer, corner2)": dict(env="metaworld", tasks=("reach-v3", "drawer-open-v3"), actions=True, max_steps=100),
    "hand, robot (Shadow, ego)": dict(env="hand", tasks=("lift", "push"), actions=True, max_steps=100),
    "hand, human (ego, EgoDex round trip)": dict(env="hand", tasks=("lift", "push"), actions=False, max_steps=100,
                                                 embodiment="human"),
}


def cell(name: str, setting: dict, episodes: int, workers: int, size: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="wam-hand-speed-"))
    try:
        config = CollectConfig(setting["tasks"], episodes // len(setting["tasks"]), out / "data", setting["actions"], workers,
                               size, None, 0.0, 0, setting["max_steps"], env=setting["env"],
                               embodiment=setting.get("embodiment", "robot"))
        result = collect(config, progress=False)
        return {"setting": name, "workers": workers, "episodes": result.added, "frames": result.frames,
                "seconds": result.seconds, "frames_per_s": result.frames_per_second}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def plot(cells: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(SETTINGS)
    figure, axis = plt.subplots(figsize=(7, 3))
    for offset, workers in ((-0.2, 1), (0.2, 2)):
        rates = [next(c["frames_per_s"] for c in cells if c["setting"] == n and c["workers"] == workers) for n in names]
        axis.bar(np.arange(len(names)) + offset, rates, 0.4, label=f"{workers} worker{'s' if workers > 1 else ''}")
    axis.set_xticks(range(len(names)), [n.split(" (")[0] for n in names])
    axis.set_ylabel("frames/s, end to end")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    cells = []
    for workers in (1, 2):
        for name, setting in SETTINGS.items():
            cells.append(cell(name, setting, args.episodes, workers, args.size))
            print(f"{name:40s} workers={workers}: {cells[-1]['frames_per_s']:.0f} frames/s")
    reference = next(c["frames_per_s"] for c in cells if c["workers"] == 2 and c["setting"].startswith("metaworld"))
    claims: list[Claim] = []  # a measurement beside Meta-World's, not a target
    rows = [[c["setting"], str(c["workers"]), str(c["episodes"]), str(c["frames"]), f"{c['frames_per_s']:.0f}",
             f"{c['frames_per_s'] / reference:.2f}"] for c in cells]
    plot(cells)
    result = Result("hand_collect_speed", "Collection speed: hand scenes beside Meta-World",
                    f"python benchmarks/hand_collect_speed.py --episodes {args.episodes} --size {args.size}", claims,
                    {"columns": ["setting", "workers", "episodes", "frames", "frames/s", "x Meta-World (2 workers)"],
                     "rows": rows}, str(PLOT.relative_to(ROOT)),
                    summary=f"End-to-end collection at {args.size}x{args.size} pixels: simulate, render, encode, commit.",
                    data={"cells": cells}, rank=10)
    write_result(OUT, result)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
