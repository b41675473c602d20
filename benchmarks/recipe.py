"""The headline claim: a WAM pretrained on action-free video beats a policy trained from
scratch on the same few robot demonstrations.

    python benchmarks/recipe.py --pretrained runs/pretrain_cpu --robot data/mt10_robot \
        --video data/mt10_video data/heldout_video --ks 1,3,10 --seeds 0,1,2 --episodes 50 --workers 2

Cells are (method, K, seed): `scratch` is the same architecture trained on the K labelled
episodes per task alone (its tokenizer too); `wam` finetunes the pretrained world model on
the same episodes, mixing in the action-free video. Both train for the same steps and are
evaluated in real Meta-World episodes (`wam eval`) on scenes no training episode used.
With `--heldout-robot DIR --heldout-tasks A,B` a second experiment finetunes on one demo of
every task (MT10 and the held-out tasks, whose video is in pretraining) and evaluates on
the held-out tasks: does one demonstration teach a new task?

Every finished cell goes into the results JSON at once and is skipped on rerun (a killed
cell's training resumes from its checkpoint); `partial` stays true until every planned cell
is in. Plot: MT10 mean success against K per method, error bars over seeds.

Two drivers must not write one JSON (each would overwrite the other's cells), so cells run side
by side write their own files, and `--merge A.json B.json --out recipe.json` folds them in:
settings must match, a cell already present must have scored the same episodes (timings aside),
and each merged cell keeps the machine and command that ran it.

Tables and the targets' verdict are computed by recipe_report.py, which only reads cells.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from wam.config import finetune_preset
from wam.dojo.evaluate import EvalConfig, evaluate_policy
from wam.envs.tasks import MT10
from wam.train.finetune import finetune

# the report's sibling module: found because Python puts a script's own folder (benchmarks/) on the path
from recipe_report import aggregate, markdown_table, targets, targets_text, task_table

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import subprocess

    commit = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__, "code_commit": commit,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}


def finished(run: Path) -> bool:
    summary = run / "summary.json"
    return summary.exists()


def train_cell(args, method: str, k: int, seed: int, robot: list[Path], run: Path) -> dict:
    config = finetune_preset(args.preset)
    train = replace(config.train, seed=seed, **({"steps": args.steps} if args.steps else {}))
    train = replace(train, eval_every=min(train.eval_every, train.steps), checkpoint_every=min(train.checkpoint_every, train.steps),
                    warmup_steps=min(train.warmup_steps, max(1, train.steps // 10)))
    config = replace(config, train=train, episodes_per_task=k, subset_seed=seed, seed=seed, augment_copies=args.augment,
                     scratch_image_size=args.scratch_size)
    if finished(run):
        return json.loads((run / "summary.json").read_text())
    pretrained = args.pretrained if method == "wam" else None
    video = args.video if method == "wam" else []
    return finetune(pretrained, robot, run, config, video=video, resume=(run / "finetune.json").exists())


def run_cell(args, method: str, k: int, seed: int, robot: list[Path], tasks: tuple[str, ...], name: str) -> dict:
    run = args.runs / name
    t0 = time.perf_counter()
    summary = train_cell(args, method, k, seed, robot, run)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = evaluate_policy(EvalConfig(run, tasks, args.episodes, args.workers, seed=seed, max_steps=args.max_steps,
                                         video_out=args.runs / "videos" / name if args.videos else None))
    return {
        "method": method, "k": k, "seed": seed, "run": str(run), "tasks": results["tasks"],
        "mean_success": results["mean_success"], "policy_steps_per_s": results["policy_steps_per_s"],
        "train_frames": summary["frames"]["train"], "train_seconds": round(train_seconds, 1),
        "train_seconds_recorded": summary.get("seconds", {}), "eval_seconds": round(time.perf_counter() - t0, 1),
        "episodes_per_task": args.episodes, "videos": results["videos"],
    }


def merge_planned(previous: list[str], now: list[str]) -> list[str]:
    """Every cell any invocation planned, in first-planned order: running a few seeds or only the
    held-out cells must not shrink the plan, or `partial` would turn false with cells still missing."""
    return [*previous, *(name for name in now if name not in previous)]


def save(results: dict, planned: list[str], out: Path) -> None:
    """Summaries, plan and plot rewritten after every cell; the JSON replaced atomically."""
    cells = results["cells"]
    results["planned"] = planned
    results["partial"] = any(name not in cells for name in planned)
    results["summary"] = aggregate(cells)
    results["heldout_summary"] = aggregate(cells, "heldout")
    results["targets"] = targets(cells)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    plot(results, out.with_suffix(".png"))


def outcome(cell: dict) -> tuple:
    """What a cell measured: its episodes' successes per task. Timings and paths are left out: a cell
    evaluated again (its training already done) takes other seconds but must score the same."""
    tasks = {task: (row["successes"], row["episodes"]) for task, row in cell.get("tasks", {}).items()}
    return cell.get("experiment", "mt10"), cell["method"], cell["k"], cell["seed"], sorted(tasks.items())


def merge_results(results: dict, others: list[tuple[str, dict]]) -> list[str]:
    """Fold the cells of other results files into `results`; returns the names added. Refuses
    files of other settings (their cells measure something else) and a cell name that both hold
    with different figures (two runs of one cell: which one is the measurement?)."""
    added = []
    cells = results.setdefault("cells", {})
    for source, other in others:
        if results.get("settings") is not None and other.get("settings") != results["settings"]:
            raise ValueError(f"{source}: settings {other.get('settings')} differ from {results['settings']}")
        results.setdefault("settings", other.get("settings"))
        results.setdefault("episodes_per_task", other.get("episodes_per_task"))
        for name, cell in other.get("cells", {}).items():
            incoming = {key: value for key, value in cell.items() if key != "merged_from"}
            if name in cells:
                if outcome(cells[name]) != outcome(incoming):
                    raise ValueError(f"{source}: cell {name} is already in the results with other figures")
                continue
            cells[name] = {**incoming, "merged_from": {"file": source, "machine": other.get("machine"),
                                                       "command": other.get("command")}}
            added.append(name)
        results["planned"] = merge_planned(results.get("planned", []), other.get("planned", []))
    return added


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, label in (("scratch", "from scratch (BC, same architecture)"), ("wam", "WAM (pretrained on video)")):
        rows = results["summary"].get(method)
        if not rows:
            continue
        ks = [int(k) for k in rows]
        means = np.array([rows[str(k)]["mean"] for k in ks])
        if all(rows[str(k)]["seeds"] > 1 for k in ks):
            errors = np.array([[rows[str(k)]["std"] for k in ks]] * 2)
        else:  # one seed: the pooled episodes' Wilson interval
            errors = np.array([[m - rows[str(k)].get("wilson95_pooled", [m, m])[0] for m, k in zip(means, ks)],
                               [rows[str(k)].get("wilson95_pooled", [m, m])[1] - m for m, k in zip(means, ks)]])
        ax.errorbar(ks, means, yerr=errors, marker="o", capsize=4, label=label)
    ax.set_xscale("log")
    ax.set_xticks([1, 3, 10], ["1", "3", "10"])
    ax.set_xlabel("labelled robot episodes per task (K)")
    ax.set_ylabel("MT10 mean success")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    partial = " (partial)" if results["partial"] else ""
    seeds = max((r["seeds"] for rows in results["summary"].values() for r in rows.values()), default=0)
    bars = "std over seeds" if seeds > 1 else "95% Wilson of pooled episodes"
    ax.set_title(f"{seeds} seed(s), {results['episodes_per_task']} eval episodes/task; bars: {bars}{partial}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", type=Path, help="the pretraining run (required unless --table or --plot-only)")
    parser.add_argument("--robot", type=Path, nargs="+", help="labelled robot datasets (required unless --table or --plot-only)")
    parser.add_argument("--video", type=Path, nargs="*", default=[])
    parser.add_argument("--heldout-robot", type=Path, default=None)
    parser.add_argument("--heldout-tasks", default="")
    parser.add_argument("--ks", default="1,3,10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="wam,scratch")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="training steps per cell (default: the preset's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--scratch-size", type=int, default=None,
                        help="the from-scratch baseline's resolution (default: the preset's; give the pretraining's)")
    parser.add_argument("--videos", action="store_true", help="keep a rollout video per task and cell")
    parser.add_argument("--augment", type=int, default=0, help="randomly shifted copies of the robot frames, both methods (0: off)")
    parser.add_argument("--out", type=Path, default=RESULTS / "recipe.json")
    parser.add_argument("--plot-only", action="store_true", help="redraw the summary and plot from --out and stop")
    parser.add_argument("--table", action="store_true", help="print the summary of --out as a markdown table and stop")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                        help="fold the cells of these results files (same settings) into --out and stop")
    args = parser.parse_args()
    if args.merge:
        missing = [str(path) for path in args.merge if not path.is_file()]
        if missing:
            parser.error(f"nothing to merge: {', '.join(missing)} not found")
        results = json.loads(args.out.read_text()) if args.out.is_file() else {}
        try:
            added = merge_results(results, [(str(path), json.loads(path.read_text())) for path in args.merge])
        except ValueError as error:
            parser.error(str(error))
        save(results, results.get("planned", []), args.out)
        print(f"{args.out}: {len(added)} cell(s) merged ({', '.join(added) or 'none new'}); "
              f"partial: {results['partial']}")
        return
    if (args.table or args.plot_only) and not args.out.is_file():
        parser.error(f"no results to report: {args.out} does not exist (run cells first, or pass --out)")
    if args.table:
        results = json.loads(args.out.read_text())
        print(markdown_table(results))
        print("\nper task, over the paired seeds:\n")
        print(task_table(results))
        heldout = sorted({t for c in results.get("cells", {}).values() if c.get("experiment") == "heldout" for t in c["tasks"]})
        if heldout:
            print(f"\nheld-out tasks ({', '.join(heldout)}), one demo each:\n")
            print(markdown_table(results, "heldout"))
        verdict = targets(results.get("cells", {}))
        if verdict:
            print("\ntargets (95% intervals: pooled episodes of the seeds run, difference by Newcombe's method):\n")
            print(targets_text(verdict))
        return
    if args.plot_only:
        results = json.loads(args.out.read_text())
        save(results, results.get("planned", []), args.out)
        return
    if args.pretrained is None or not args.robot:
        parser.error("--pretrained and --robot are required to run cells")

    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    heldout = tuple(t for t in args.heldout_tasks.split(",") if t)
    plan = [("mt10", m, k, s) for s in seeds for k in ks for m in methods]
    if heldout and args.heldout_robot is not None:
        plan += [("heldout", m, 1, s) for s in seeds for m in methods]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    settings = {"pretrained": str(args.pretrained), "robot": [str(p) for p in args.robot], "video": [str(p) for p in args.video],
                "preset": args.preset, "steps": args.steps, "max_steps": args.max_steps, "episodes_per_task": args.episodes}
    if args.augment:  # absent when off, so results written before the option existed still match
        settings["augment"] = args.augment
    if results and results.get("settings") != settings:
        raise SystemExit(f"{args.out} holds results of other settings ({results.get('settings')}); choose another --out")
    results.update(settings=settings, episodes_per_task=args.episodes, machine=machine(),
                   command="python benchmarks/recipe.py " + " ".join(os.sys.argv[1:]))
    cells = results.setdefault("cells", {})
    suffix = f"-aug{args.augment}" if args.augment else ""  # its own run directories: never a plain cell's
    planned = merge_planned(results.get("planned", []), [f"{e}-{m}-k{k}-s{s}{suffix}" for e, m, k, s in plan])
    for experiment, method, k, seed in plan:
        name = f"{experiment}-{method}-k{k}-s{seed}{suffix}"
        if name in cells:
            print(f"{name}: done, skipped")
            continue
        if experiment == "mt10":
            cell = run_cell(args, method, k, seed, args.robot, MT10, name)
        else:
            cell = run_cell(args, method, 1, seed, [*args.robot, args.heldout_robot], heldout, name)
        cell["experiment"] = experiment
        cells[name] = cell
        save(results, planned, args.out)
        print(f"{name}: mean success {cell['mean_success']:.3f} "
              + " ".join(f"{t.removesuffix('-v3')}={r['success_rate']:.2f}" for t, r in cell["tasks"].items()))
    save(results, planned, args.out)
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
