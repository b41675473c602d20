"""Does planning in the dream beat the policy? CEM over action chunks vs the WAM policy, both in reality.

    python benchmarks/plan.py --world runs/recipe/mt10-wam-k1-s0 \
        --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3 --episodes 10 --plans 16x2,64x3

For every task: the WAM policy of `--world` acting alone, and `wam plan` (CEM whose Gaussian
starts at that policy's chunk, scored by the world's reward and success heads) at each
`SAMPLESxITERATIONS` setting, all on the same real Meta-World scenes. Reports real success
per task with Wilson intervals and the control rate (control steps per second of time
spent choosing actions), the price of planning. Cells (method x task) are written to the
JSON as they finish and skipped on rerun; a PNG shows success per task and method.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from wam.dojo.evaluate import EvalConfig, evaluate_policy
from wam.envs.tasks import resolve_tasks

RESULTS = Path(__file__).parent / "results"


def parse_plans(text: str) -> list[tuple[int, int]]:
    plans = []
    for item in text.split(","):
        try:
            samples, iterations = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--plans: {item!r} is not SAMPLESxITERATIONS (e.g. 64x3)") from None
        plans.append((samples, iterations))
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True, help="finetuned WAM run: policy, world model and heads")
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--plans", default="16x2,64x3", help="CEM settings, SAMPLESxITERATIONS, comma separated")
    parser.add_argument("--elites", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="run nothing: summarise and plot the cells already in --out")
    parser.add_argument("--out", type=Path, default=RESULTS / "plan.json")
    args = parser.parse_args()
    tasks = tuple(resolve_tasks(args.tasks))
    plans = parse_plans(args.plans)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"cells": {}}
    results.update(world=str(args.world), tasks=list(tasks), episodes_per_task=args.episodes, max_steps=args.max_steps,
                   machine={"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
                   command=results.get("command") if args.report_only else "python benchmarks/plan.py " + " ".join(os.sys.argv[1:]))
    methods = {"policy": None} | {f"cem {s}x{i}": {"samples": s, "iterations": i, "elites": min(args.elites, s), "seed": 0}
                                   for s, i in plans}
    for method, planner in methods.items():
        for task in tasks:
            key = f"{method}|{task}"
            if key in results["cells"] or args.report_only:
                continue
            r = evaluate_policy(EvalConfig(args.world, (task,), args.episodes, args.workers, seed=0, max_steps=args.max_steps,
                                           planner=planner))
            t = r["tasks"][task]
            results["cells"][key] = {"method": method, "task": task, "success_rate": t["success_rate"], "wilson95": t["wilson95"],
                                     "control_steps_per_s": t["policy_steps_per_s"], "mean_length": t["mean_length"],
                                     "seconds": r["seconds"]}
            args.out.write_text(json.dumps(results, indent=2))
            print(f"{key}: success {t['success_rate']:.2f}, {t['policy_steps_per_s']:.1f} control steps/s")
    planned = [f"{m}|{t}" for m in methods for t in tasks]
    results["planned"], results["partial"] = planned, any(k not in results["cells"] for k in planned)
    results["summary"] = {}
    for m in methods:  # over the tasks finished so far; "tasks" says which
        mine = [results["cells"][f"{m}|{t}"] for t in tasks if f"{m}|{t}" in results["cells"]]
        if mine:
            results["summary"][m] = {"tasks": [c["task"] for c in mine],
                                     "mean_success": float(np.mean([c["success_rate"] for c in mine])),
                                     "control_steps_per_s": float(np.mean([c["control_steps_per_s"] for c in mine]))}
    args.out.write_text(json.dumps(results, indent=2))
    for m, s in results["summary"].items():
        print(f"{m}: mean success {s['mean_success']:.3f}, {s['control_steps_per_s']:.1f} control steps/s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = list(results["summary"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / max(1, len(done))
    for j, m in enumerate(done):
        where = [i for i, t in enumerate(tasks) if f"{m}|{t}" in results["cells"]]
        cells = [results["cells"][f"{m}|{tasks[i]}"] for i in where]
        rates = [c["success_rate"] for c in cells]
        errors = np.array([[r - c["wilson95"][0], c["wilson95"][1] - r] for r, c in zip(rates, cells)]).T
        label = f"{m} ({results['summary'][m]['control_steps_per_s']:.1f} steps/s)"
        ax.bar(np.array(where) + (j - (len(done) - 1) / 2) * width, rates, width, yerr=errors, capsize=2, label=label)
    ax.set_xticks(np.arange(len(tasks)), [t.removesuffix("-v3") for t in tasks], fontsize=8)
    ax.set_ylabel(f"real success ({args.episodes} episodes)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(("PARTIAL: " if results["partial"] else "") + f"planning in the dream of {args.world.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
