"""How a WAM's action chunks are executed, measured: receding horizons of different lengths
against temporal ensembling, for one trained policy, on the same evaluation scenes.

    python benchmarks/control_modes.py --policy runs/recipe/mt10-wam-k3-s0 --tasks mt10 --episodes 50 \
        --modes execute=2,execute=4,execute=8,ensemble=0.1 --out benchmarks/results/control_modes.json

A mode is `execute=N` (run N actions of each 8-action chunk, then predict again) or
`ensemble=M` (predict at every frame and average the chunks covering each step with
weights exp(-M * age), ACT's scheme). Every mode sees the same scenes (the evaluation seed
fixes them), so the differences are the execution's alone. Each finished mode goes into the
JSON at once and is skipped on rerun. Plot: success (95% Wilson) and policy steps/s per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from wam.dojo.evaluate import EvalConfig, evaluate_policy, wilson_interval
from wam.envs.tasks import resolve_tasks

RESULTS = Path(__file__).parent / "results"


def parse_mode(mode: str) -> dict:
    name, _, value = mode.partition("=")
    if name == "execute" and value.isdigit():
        return {"execute": int(value)}
    if name == "ensemble":
        try:
            return {"ensemble": float(value)}
        except ValueError:
            pass
    raise SystemExit(f"--modes: {mode!r} is neither execute=N nor ensemble=M")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in results["modes"] if m in results["cells"]]
    cells = [results["cells"][m] for m in modes]
    means = np.array([c["mean_success"] for c in cells])
    low = np.array([c["wilson95_pooled"][0] for c in cells])
    high = np.array([c["wilson95_pooled"][1] for c in cells])
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    left.bar(modes, means, yerr=[means - low, high - means], capsize=4, color="tab:blue")
    left.set_ylabel("mean success")
    left.set_ylim(0, 1)
    right.bar(modes, [c["policy_steps_per_s"] for c in cells], color="tab:gray")
    right.axhline(30, color="tab:red", ls="--", lw=1, label="target 30 steps/s")
    right.set_ylabel("policy steps/s (batch 1, 1 thread)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        ax.grid(alpha=0.3, axis="y")
    partial = " (partial)" if results["partial"] else ""
    fig.suptitle(f"{Path(results['policy']).name}: {results['episodes_per_task']} episodes x {len(results['tasks'])} tasks"
                 f"{partial}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--tasks", default="mt10")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="execute=2,execute=4,execute=8,ensemble=0.1")
    parser.add_argument("--out", type=Path, default=RESULTS / "control_modes.json")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    settings = {m: parse_mode(m) for m in modes}
    tasks = tuple(resolve_tasks(args.tasks))
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    if results and (results.get("policy"), results.get("tasks"), results.get("episodes_per_task"), results.get("seed")) != (
            str(args.policy), list(tasks), args.episodes, args.seed):
        raise SystemExit(f"{args.out} holds results of another policy, tasks, episodes or seed; choose another --out")
    results.update(policy=str(args.policy), tasks=list(tasks), episodes_per_task=args.episodes, seed=args.seed,
                   modes=sorted(set(results.get("modes", [])) | set(modes), key=lambda m: (m.split("=")[0], m)),
                   machine={"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
                   command="python benchmarks/control_modes.py " + " ".join(os.sys.argv[1:]))
    cells = results.setdefault("cells", {})
    for mode in modes:
        if mode in cells:
            print(f"{mode}: done, skipped")
            continue
        run = evaluate_policy(EvalConfig(args.policy, tasks, args.episodes, args.workers, seed=args.seed,
                                         max_steps=args.max_steps, **settings[mode]))
        wins = sum(t["successes"] for t in run["tasks"].values())
        total = sum(t["episodes"] for t in run["tasks"].values())
        cells[mode] = {"mean_success": run["mean_success"], "wilson95_pooled": list(wilson_interval(wins, total)),
                       "policy_steps_per_s": run["policy_steps_per_s"], "seconds": run["seconds"],
                       "tasks": {t: r["success_rate"] for t, r in run["tasks"].items()},
                       "mean_length": float(np.mean([r["mean_length"] for r in run["tasks"].values()]))}
        results["partial"] = any(m not in cells for m in results["modes"])
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, args.out)
        plot(results, args.out.with_suffix(".png"))
        print(f"{mode}: mean success {run['mean_success']:.3f}, {run['policy_steps_per_s']:.0f} policy steps/s")
    results["partial"] = any(m not in cells for m in results["modes"])
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
