"""The resolution and wrist-camera grid's report: MT10 success at K = 3 per setting, method and task.

    python benchmarks/resolution_report.py [--settings s64,s128,s64w]

Reads benchmarks/results/resolution_<setting>.json (written cell by cell by benchmarks/recipe.py through
benchmarks/resolution_grid.sh) and writes benchmarks/results/resolution.json (per setting and method: the mean
over seeds, its spread, the pooled 95% Wilson interval, and per task) and resolution.png (per task bars). A
setting or method with fewer than all its planned cells is marked partial, and its figures are not compared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from wam.dojo.evaluate import wilson_interval

RESULTS = Path(__file__).parent / "results"
LABELS = {"s64": "64 px, corner2", "s128": "128 px, corner2", "s64w": "64 px, corner2 + wrist"}


def summarise(grid: dict) -> dict:
    """Per method: seeds done, mean success over seeds, std, pooled Wilson interval, and per task pooled rates."""
    out = {}
    cells = [c for c in grid.get("cells", {}).values() if c.get("k") == 3]
    planned = [name for name in grid.get("planned", []) if "-k3-" in name]
    for method in ("scratch", "wam"):
        mine = [c for c in cells if c["method"] == method]
        if not mine:
            continue
        tasks = sorted(mine[0]["tasks"])
        wins = sum(c["tasks"][t]["successes"] for c in mine for t in tasks)
        n = sum(c["tasks"][t]["episodes"] for c in mine for t in tasks)
        means = [c["mean_success"] for c in mine]
        out[method] = {
            "seeds": sorted(c["seed"] for c in mine),
            "complete": len(mine) >= len([p for p in planned if f"-{method}-" in p]) and len(mine) >= 3,
            "mean": round(float(np.mean(means)), 4), "std": round(float(np.std(means)), 4),
            "wilson95": [round(x, 4) for x in wilson_interval(wins, n)],
            "tasks": {t: round(sum(c["tasks"][t]["successes"] for c in mine) / sum(c["tasks"][t]["episodes"] for c in mine), 4)
                      for t in tasks},
        }
    return out


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [(s, m, r) for s, methods in report["settings"].items() for m, r in methods.items()]
    if not bars:
        return
    tasks = sorted(bars[0][2]["tasks"])
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(bars)
    for i, (setting, method, row) in enumerate(bars):
        x = np.arange(len(tasks)) + i * width
        label = f"{LABELS.get(setting, setting)}, {method} ({'3 seeds' if row['complete'] else 'partial: ' + str(len(row['seeds'])) + ' seed(s)'})"
        ax.bar(x, [row["tasks"][t] for t in tasks], width, label=label)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, [t.removesuffix("-v3") for t in tasks], rotation=30, ha="right")
    ax.set_ylabel("success rate (pooled over seeds)")
    ax.set_title("MT10, K = 3 demos a task, 50 episodes a task and seed")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="s64,s128,s64w")
    parser.add_argument("--out", type=Path, default=RESULTS / "resolution.json")
    args = parser.parse_args()
    report = {"benchmark": "resolution", "command": "bash benchmarks/resolution_grid.sh; python benchmarks/resolution_report.py",
              "settings": {}, "labels": LABELS}
    for setting in args.settings.split(","):
        path = RESULTS / f"resolution_{setting}.json"
        if path.exists():
            grid = json.loads(path.read_text())
            report["settings"][setting] = summarise(grid)
            report.setdefault("machine", grid.get("machine"))
    report["partial"] = not all(m.get("complete") for s in report["settings"].values() for m in s.values()) or \
        len(report["settings"]) < len(args.settings.split(","))
    for setting, methods in report["settings"].items():
        for method, row in methods.items():
            print(f"{LABELS.get(setting, setting):24s} {method:8s} {row['mean']:.3f} (std {row['std']:.3f}) "
                  f"[{row['wilson95'][0]:.3f}, {row['wilson95'][1]:.3f}] seeds {row['seeds']}{'' if row['complete'] else '  PARTIAL'}")
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
