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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wam.config import DreamSettings
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
    parser.add_argument("--starts", type=int, default=RLConfig.starts, help="first frames per RL iteration")
    parser.add_argument("--group", type=int, default=RLConfig.group, help="rollouts per first frame")
    parser.add_argument("--horizon", type=int, default=RLConfig.horizon, help="control steps per dream rollout")
    parser.add_argument("--report-only", action="store_true", help="run nothing: summarise and plot the cells already in --out")
    parser.add_argument("--lr", type=float, default=RLConfig.lr)
    parser.add_argument("--bc-weight", type=float, default=RLConfig.bc_weight, help="weight of the anchor to the finetuned policy")
    parser.add_argument("--sigma", type=float, default=RLConfig.sigma, help="exploration std on every action")
    parser.add_argument("--student", action="store_true", help="practise and judge in dreams of the world's distilled student")
    parser.add_argument("--start-data", type=Path, nargs="*", default=[],
                        help="datasets whose first frames start the practice dreams (default: the world's robot data)")
    parser.add_argument("--success-hold", type=int, default=1, help="model steps the success head must agree, in practice dreams")
    parser.add_argument("--advantage", choices=("center", "std"), default="center",
                        help="group-relative advantage: centred, or also over the group std (GRPO; runs before 2026-12-04)")
    parser.add_argument("--success-timing", action="store_true", help="a practice success earns more the sooner it comes")
    parser.add_argument("--start-anywhere", action="store_true",
                        help="practice dreams start at any frame of --start-data before its success (branched rollouts)")
    parser.add_argument("--judge", action="store_true", help="practise and judge with the world's success judge (wam judge)")
    parser.add_argument("--real-before-from", type=Path, default=None,
                        help="reuse the real before-RL success of another results file (same policy, episodes, step limit)")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/dream_rl"))
    parser.add_argument("--out", type=Path, default=RESULTS / "dream_rl.json")
    args = parser.parse_args()
    tasks = resolve_tasks(args.tasks)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"cells": {}}
    results.update(policy=str(args.policy), world=str(args.world), episodes_per_task=args.episodes, student=args.student,
                   judge=args.judge, machine={"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
                   command=results.get("command") if args.report_only else "python benchmarks/dream_rl.py " + " ".join(os.sys.argv[1:]))

    def success(policy: Path, task: str, env: str = "metaworld") -> float:
        return evaluate_policy(EvalConfig(policy, (task,), args.episodes, args.workers, seed=0, max_steps=args.max_steps,
                                          env=env, dream=DreamSettings(student=args.student, judge=args.judge)),
                              progress=False)["mean_success"]

    real_before = {}
    if args.real_before_from is not None:
        other = json.loads(args.real_before_from.read_text())
        if (other["policy"], other["episodes_per_task"]) != (str(args.policy), args.episodes):
            raise SystemExit(f"{args.real_before_from}: another policy or episode count, its before-RL figures do not apply")
        real_before = {task: row["real"] for task, row in other.get("before", {}).items()}

    # The policy before RL is the same for every seed, and evaluation is deterministic (same scenes, same
    # result), so its real and dream success are measured once per task.
    before = results.setdefault("before", {})
    for seed in [] if args.report_only else [int(s) for s in args.seeds.split(",")]:  # seed-major: a cut-off run has every task
        for task in tasks:
            if task not in before:
                real = real_before[task] if task in real_before else success(args.policy, task)
                before[task] = {"real": real, "dream": success(args.policy, task, f"dream/{args.world}")}
                args.out.write_text(json.dumps(results, indent=2))
                print(task, "before RL:", before[task])
            key = f"{task}|{seed}"
            if key in results["cells"]:
                continue
            out = args.runs / f"{task}-s{seed}"
            config = RLConfig(task=task, iterations=args.iterations, starts=args.starts, group=args.group,
                              horizon=args.horizon, lr=args.lr, bc_weight=args.bc_weight,
                              sigma=args.sigma, seed=seed, start_data=tuple(str(p) for p in args.start_data),
                              dream=DreamSettings(student=args.student, success_hold=args.success_hold, judge=args.judge),
                              start_anywhere=args.start_anywhere, advantage=args.advantage,
                              success_timing=args.success_timing)
            summary = rl(args.policy, args.world, out, config, resume=(out / "rl.json").exists())
            results["cells"][key] = {
                "task": task, "seed": seed, "real_before": before[task]["real"], "real_after": success(out, task),
                "dream_before": before[task]["dream"], "dream_after": success(out, task, f"dream/{args.world}"),
                "rl": summary, "rl_config": asdict(config),
            }
            args.out.write_text(json.dumps(results, indent=2))
            print(key, {k: v for k, v in results["cells"][key].items() if k.startswith(("real", "dream"))})
    seeds = [int(s) for s in args.seeds.split(",")]
    planned = [f"{t}|{s}" for t in tasks for s in seeds]
    results["planned"] = planned
    results["partial"] = any(key not in results["cells"] for key in planned)
    cells = [results["cells"][key] for key in planned if key in results["cells"]]
    done_tasks = [t for t in tasks if any(c["task"] == t for c in cells)]
    results["mean_real_gain"] = float(np.mean([c["real_after"] - c["real_before"] for c in cells]))
    results["per_task"] = {}
    for t in done_tasks:
        mine = [c for c in cells if c["task"] == t]
        results["per_task"][t] = {key: float(np.mean([c[key] for c in mine])) for key in
                                  ("real_before", "real_after", "dream_before", "dream_after")}
        results["per_task"][t]["real_after_per_seed"] = [c["real_after"] for c in mine]
    args.out.write_text(json.dumps(results, indent=2))
    tasks = done_tasks

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Left: reality (bars: mean over seeds, dots: each seed). Right: the dream's verdict on the same
    # policies; a dream gain that reality does not share is the dream being exploited.
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    x = np.arange(len(tasks))
    for ax, where in zip(axes, ("real", "dream")):
        ax.bar(x - 0.2, [results["per_task"][t][f"{where}_before"] for t in tasks], 0.4, label="finetuned WAM")
        ax.bar(x + 0.2, [results["per_task"][t][f"{where}_after"] for t in tasks], 0.4, label="after RL in dreams")
        for i, t in enumerate(tasks):
            after = [c[f"{where}_after"] for c in cells if c["task"] == t]
            ax.scatter(np.full(len(after), i + 0.2), after, color="k", s=8, zorder=3)
        ax.set_xticks(x, [t.removesuffix("-v3") for t in tasks], fontsize=8)
        ax.set_title(f"success in {'Meta-World' if where == 'real' else 'the dream'}", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("success rate")
    axes[0].legend(fontsize=7)
    status = "PARTIAL, " if results["partial"] else ""
    fig.suptitle(f"{status}{len(cells)} RL runs: mean real gain {results['mean_real_gain']:+.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)

if __name__ == "__main__":
    main()
