"""Does practice in dreams help in reality? Real success before and after `wam rl`.

    python benchmarks/dream_rl.py --policy runs/recipe/mt10-wam-k3-s0 --world runs/recipe/mt10-wam-k10-s0 \
        --tasks drawer-open-v3,window-open-v3,push-v3 --seeds 0,1,2 --episodes 20

For every task and seed: the policy's real success (Meta-World episodes), then RL in dreams
of `--world` on that task (group-relative policy gradient, BC anchor), then the real success
of the result on the same scenes; also the dream's own verdict before and after, which is
where exploitation shows (dream success up, real success not). Cells are written to the JSON
as they finish and skipped on rerun. Plot: real success before vs after per task.
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
from wam.train.rl import RLConfig, rl

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--tasks", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/dream_rl"))
    parser.add_argument("--out", type=Path, default=RESULTS / "dream_rl.json")
    args = parser.parse_args()
    tasks = resolve_tasks(args.tasks)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"cells": {}}
    results.update(policy=str(args.policy), world=str(args.world), episodes_per_task=args.episodes,
                   machine={"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
                   command="python benchmarks/dream_rl.py " + " ".join(os.sys.argv[1:]))

    def success(policy: Path, task: str, env: str = "metaworld") -> float:
        return evaluate_policy(EvalConfig(policy, (task,), args.episodes, args.workers, seed=0, max_steps=args.max_steps,
                                          env=env), progress=False)["mean_success"]

    for task in tasks:
        for seed in [int(s) for s in args.seeds.split(",")]:
            key = f"{task}|{seed}"
            if key in results["cells"]:
                continue
            out = args.runs / f"{task}-s{seed}"
            summary = rl(args.policy, args.world, out, RLConfig(task=task, iterations=args.iterations, seed=seed),
                         resume=(out / "rl.json").exists())
            results["cells"][key] = {
                "task": task, "seed": seed, "real_before": success(args.policy, task), "real_after": success(out, task),
                "dream_before": success(args.policy, task, f"dream/{args.world}"), "dream_after": success(out, task, f"dream/{args.world}"),
                "rl": summary,
            }
            args.out.write_text(json.dumps(results, indent=2))
            print(key, {k: v for k, v in results["cells"][key].items() if k.startswith(("real", "dream"))})
    cells = list(results["cells"].values())
    results["mean_real_gain"] = float(np.mean([c["real_after"] - c["real_before"] for c in cells]))
    results["per_task"] = {t: {"real_before": float(np.mean([c["real_before"] for c in cells if c["task"] == t])),
                               "real_after": float(np.mean([c["real_after"] for c in cells if c["task"] == t]))} for t in tasks}
    args.out.write_text(json.dumps(results, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = np.arange(len(tasks))
    ax.bar(x - 0.2, [results["per_task"][t]["real_before"] for t in tasks], 0.4, label="finetuned WAM")
    ax.bar(x + 0.2, [results["per_task"][t]["real_after"] for t in tasks], 0.4, label="after RL in dreams")
    ax.set_xticks(x, [t.removesuffix("-v3") for t in tasks], fontsize=8)
    ax.set_ylabel("real success")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
