"""Does the dream rank policies like reality? Success in the simulator vs success in dreams.

    python benchmarks/dream_eval.py --world runs/recipe/mt10-wam-k10-s0 \
        --policies runs/recipe/*-s0 --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3 --episodes 20

Each policy is evaluated twice on the same tasks and the same scene seeds: in real
Meta-World episodes and in dreams of `--world` (a finetuned WAM: its action-conditioned
world model steps, its reward/success heads end the episodes; images are decoded so any
policy, pretrained or not, sees frames). Each dream starts from the simulator's first
frame of the same scene, so both judge the same episodes. Reports Pearson and Spearman
correlation of dream vs real mean success over the policies and the policies where the
dream is most optimistic (exploited), and draws the scatter. Cells (policy x env) are
written to the JSON as they finish and skipped on rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from wam.config import DreamSettings
from wam.dojo.evaluate import EvalConfig, evaluate_policy
from wam.envs.tasks import resolve_tasks
from wam.train.finetune import split_snapshot

from dream_eval_report import compact_episodes, summarise

RESULTS = Path(__file__).parent / "results"


def absolute_keys(cells: dict) -> dict:
    """Cells keyed by the policy's absolute path, so runs named relative or absolute find each other."""
    return {f"{Path(k.rsplit('|', 1)[0]).resolve()}|{k.rsplit('|', 1)[1]}": v for k, v in cells.items()}


def real_cells(path: Path, tasks: tuple[str, ...], episodes: int, max_steps: int) -> dict:
    """The "|real" cells of another run, refused unless they judged the same episodes."""
    other = json.loads(Path(path).read_text())
    settings = {"tasks": list(tasks), "episodes_per_task": episodes, "max_steps": max_steps}
    differ = {k: (other.get(k), v) for k, v in settings.items() if other.get(k) != v}
    if differ:
        raise SystemExit(f"{path}: its real cells were run with other settings, {differ} (theirs, ours)")
    return {k: v for k, v in absolute_keys(other["cells"]).items() if k.endswith("|real")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--policies", type=Path, nargs="+", required=True)
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dream-start", choices=("scene", "data"), default="scene",
                        help="dreams start from the same scenes' first frames as the real episodes, or from data")
    parser.add_argument("--out", type=Path, default=RESULTS / "dream_eval.json")
    parser.add_argument("--student", action="store_true", help="dream with the world's distilled student (wam distill)")
    parser.add_argument("--success-hold", type=int, default=1,
                        help="a dream's task is done when its success head agrees this many model steps in a row")
    parser.add_argument("--judge", action="store_true", help="the dream's verdict from the world's success judge (wam judge)")
    parser.add_argument("--drift-guard", action="store_true", help="dreams whose frames stop following their actions end "
                        "undecided (wam drift-guard); reported apart, never a success")
    parser.add_argument("--verdict", choices=("any", "final"), default="any",
                        help="final: dreams run to --max-steps and are judged on their last model steps (DreamConfig.verdict)")
    parser.add_argument("--real-from", type=Path, default=None,
                        help="reuse the real-simulator cells of another results file run on the same tasks, episodes and "
                             "step limit (reality does not depend on --world)")
    args = parser.parse_args()
    tasks = tuple(resolve_tasks(args.tasks))
    results = json.loads(args.out.read_text()) if args.out.exists() else {"cells": {}}
    results["cells"] = absolute_keys(results["cells"])
    args.policies = [p.resolve() for p in args.policies]
    if args.real_from is not None:
        results["cells"].update(real_cells(args.real_from, tasks, args.episodes, args.max_steps))
        results["real_from"] = str(args.real_from)
    results.update(world=str(args.world), tasks=list(tasks), episodes_per_task=args.episodes, max_steps=args.max_steps,
                   dream_start=args.dream_start, student=args.student, success_hold=args.success_hold,
                   judge=args.judge, verdict=args.verdict, drift_guard=args.drift_guard,
                   machine={"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
                   command="python benchmarks/dream_eval.py " + " ".join(os.sys.argv[1:]))
    # A finetuning run writes summary.json when its training is over; before that its checkpoint is a moving target.
    missing = [p for p in args.policies if not (split_snapshot(p)[0] / "summary.json").exists()]
    for policy in missing:
        print(f"{policy}: not a finished policy run, left out")
    for policy in [p for p in args.policies if p not in missing]:
        for env in ("metaworld", f"dream/{args.world}"):
            key = f"{policy}|{'real' if env == 'metaworld' else 'dream'}"
            if key in results["cells"]:
                continue
            r = evaluate_policy(EvalConfig(policy, tasks, args.episodes, args.workers, seed=0, max_steps=args.max_steps, env=env,
                                           dream_start=args.dream_start,
                                           dream=DreamSettings(student=args.student, success_hold=args.success_hold,
                                                               judge=args.judge, verdict=args.verdict,
                                                               drift_guard=args.drift_guard)))
            results["cells"][key] = {"mean_success": r["mean_success"], "seconds": r["seconds"],
                                     "undecided": sum(v["undecided"] for v in r["tasks"].values()) / r["episodes"],
                                     "tasks": {t: v["success_rate"] for t, v in r["tasks"].items()},
                                     "episodes": compact_episodes(r["episode_results"])}
            args.out.write_text(json.dumps(results, indent=2))
            print(f"{key}: {r['mean_success']:.3f}")
    names = [str(p) for p in args.policies if f"{p}|real" in results["cells"] and f"{p}|dream" in results["cells"]]
    results["policies"] = names
    results["left_out"] = [str(p) for p in missing]
    results["partial"] = bool(missing)
    results.update(summarise(results["cells"], names, tasks, args.max_steps))
    undecided = [results["cells"][f"{n}|dream"].get("undecided", 0.0) for n in names]
    results["undecided"] = {"mean": float(np.mean(undecided)) if undecided else None, "per_policy": undecided}
    real = np.array([results["cells"][f"{n}|real"]["mean_success"] for n in names])
    dream = np.array([results["cells"][f"{n}|dream"]["mean_success"] for n in names])
    args.out.write_text(json.dumps(results, indent=2))
    print(f"Pearson {results['pearson']}, Spearman {results['spearman']} over {len(names)} policies")
    if "paired_pooled" in results:
        print(f"same scenes: dream success on {results['paired_pooled']['false_positive_rate']} of real failures, "
              f"on {results['paired_pooled']['true_positive_rate']} of real successes")
    if "speed_score" in results:
        print(f"speed score: Pearson {results['speed_score']['pearson']}, Spearman {results['speed_score']['spearman']}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for task in tasks:  # small marks: each task's success, per policy
        ax.scatter(results["per_task"][task]["real"], results["per_task"][task]["dream"], s=10, alpha=0.5,
                   label=task.removesuffix("-v3"))
    ax.scatter(real, dream, color="k", s=30, label="mean over tasks")
    for n, x, y in zip(names, real, dream):
        ax.annotate(Path(n).name, (x, y), fontsize=6)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("real success (Meta-World)")
    ax.set_ylabel("dream success (learned world model)")
    ax.legend(fontsize=6, loc="lower right")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    ax.set_title(("PARTIAL: " if results["partial"] else "") + f"{len(names)} policies: Pearson {fmt(results['pearson'])}, Spearman {fmt(results['spearman'])}", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
