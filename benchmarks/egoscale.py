"""Human video teaches robot hands (issue 31): the EgoScale claims at small scale, on the hand scenes.

    bash benchmarks/egoscale_inputs.sh            # the data and the two pretraining runs (resumable)
    python benchmarks/egoscale.py --ks 1,3,10 --seeds 0,1,2 --episodes 50 [--methods ...] [--out ...]

Cells are (experiment, method, K, seed), every one finetuned with the same preset and steps and evaluated on the
Shadow hand in the simulator on scenes no training episode used (`wam eval`'s seeds):

    scratch            the same architecture on the K robot demos a task alone
    human              pretrained on human-hand video (action-free, latent actions); the video mixed into finetuning
    human_retargeted   the same, after a mid-training stage on all the human video labelled by retargeting
                       (`wam retarget`, EgoScale's recipe); one mid-training run, shared by the cells
    robot_video        pretrained on Shadow-hand video without actions: the same-embodiment reference

Experiment `main` trains on K demos of the four tasks touch, push, lift and press-button and evaluates them.
Experiment `oneshot` trains on one demo of every task, open-drawer included (whose human video is in pretraining),
and evaluates open-drawer: does one demonstration teach a task that human video showed?

Every finished cell goes into the JSON at once and is skipped on rerun; a killed cell's training resumes from its
checkpoint; `partial` stays true until every planned cell is in. `--table` prints the summary and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from recipe import finished, machine, merge_planned
from recipe_report import aggregate, pooled

from wam.config import finetune_preset
from wam.dojo.evaluate import EvalConfig, difference_interval, evaluate_policy
from wam.train.finetune import finetune

RESULTS = Path(__file__).parent / "results"
MAIN_TASKS = ("touch", "push", "lift", "press-button")
ONESHOT_TASK = "open-drawer"
METHODS = ("scratch", "human", "human_retargeted", "robot_video")
TARGETS = {"human_vs_scratch_k3": 0.15, "retargeted_vs_human_k3": 0.05, "oneshot_vs_scratch": 0.20}


def finetune_config(args, k: int, seed: int):
    config = finetune_preset(args.preset)
    train = replace(config.train, seed=seed, **({"steps": args.steps} if args.steps else {}))
    train = replace(train, eval_every=min(train.eval_every, train.steps), checkpoint_every=min(train.checkpoint_every, train.steps),
                    warmup_steps=min(train.warmup_steps, max(1, train.steps // 10)))
    return replace(config, train=train, episodes_per_task=k, subset_seed=seed, seed=seed)


def mid_training(args) -> Path:
    """Finetune the human-video world model on every retargeted human episode: the shared start of human_retargeted."""
    run = args.runs / "mid_retargeted"
    if not finished(run):
        config = replace(finetune_config(args, 1, 0), episodes_per_task=None)  # every retargeted episode
        finetune(args.pre_human, [args.data / "human_retargeted"], run, config, video=[args.data / "human"],
                 resume=(run / "finetune.json").exists())
    return run


def train_cell(args, method: str, k: int, seed: int, robot: list[Path], run: Path) -> dict:
    if finished(run):
        return json.loads((run / "summary.json").read_text())
    config = finetune_config(args, k, seed)
    resume = (run / "finetune.json").exists()
    if method == "scratch":
        return finetune(None, robot, run, config, resume=resume)
    if method == "human":
        return finetune(args.pre_human, robot, run, config, video=[args.data / "human"], resume=resume)
    if method == "human_retargeted":
        return finetune(args.pre_human, robot, run, config, video=[args.data / "human"], resume=resume,
                        init_from=mid_training(args))
    if method == "robot_video":
        return finetune(args.pre_robot_video, robot, run, config, video=[args.data / "robot_video"], resume=resume)
    raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")


def run_cell(args, experiment: str, method: str, k: int, seed: int) -> dict:
    name = f"{experiment}-{method}-k{k}-s{seed}"
    run = args.runs / name
    robot = [args.data / "robot"] + ([args.data / "robot_oneshot"] if experiment == "oneshot" else [])
    tasks = MAIN_TASKS if experiment == "main" else (ONESHOT_TASK,)
    start = time.perf_counter()
    summary = train_cell(args, method, k, seed, robot, run)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    results = evaluate_policy(EvalConfig(run, tasks, args.episodes, args.workers, seed=seed, max_steps=args.max_steps, env="hand"))
    return {"experiment": experiment, "method": method, "k": k, "seed": seed, "run": str(run), "tasks": results["tasks"],
            "mean_success": results["mean_success"], "train_frames": summary["frames"]["train"],
            "train_seconds": round(train_seconds, 1), "eval_seconds": round(time.perf_counter() - start, 1),
            "episodes_per_task": args.episodes}


def verdict(cells: dict) -> dict:
    """The issue's targets where their cells exist: pooled difference with a 95% interval (Newcombe)."""
    out = {}
    for key, (a, b, k, experiment) in {"human_vs_scratch_k3": ("human", "scratch", "3", "main"),
                                       "retargeted_vs_human_k3": ("human_retargeted", "human", "3", "main"),
                                       "oneshot_vs_scratch": ("human", "scratch", "1", "oneshot")}.items():
        wins_a, n_a = pooled(cells, a, k, experiment=experiment)
        wins_b, n_b = pooled(cells, b, k, experiment=experiment)
        if n_a and n_b:
            difference = wins_a / n_a - wins_b / n_b
            low, high = difference_interval(wins_a, n_a, wins_b, n_b)
            out[key] = {"difference": difference, "difference_95": [low, high], "target": TARGETS[key],
                        "met": bool(difference >= TARGETS[key]), "episodes": [n_a, n_b]}
    return out


def save(results: dict, planned: list[str], out: Path) -> None:
    cells = results.get("cells", {})
    results.update(planned=planned, partial=any(name not in cells for name in planned),
                   summary={experiment: aggregate(cells, experiment) for experiment in ("main", "oneshot")},
                   targets=verdict(cells))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/egoscale"))
    parser.add_argument("--pre-human", type=Path, default=Path("runs/egoscale/pre_human"))
    parser.add_argument("--pre-robot-video", type=Path, default=Path("runs/egoscale/pre_robot_video"))
    parser.add_argument("--runs", type=Path, default=Path("runs/egoscale"))
    parser.add_argument("--ks", default="1,3,10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--experiments", default="main,oneshot")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "egoscale.json")
    parser.add_argument("--table", action="store_true", help="print the summary and targets of --out and stop")
    args = parser.parse_args()
    if args.table:
        results = json.loads(args.out.read_text())
        print(json.dumps({"summary": results["summary"], "targets": results["targets"], "partial": results["partial"]}, indent=2))
        return
    ks, seeds = [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")]
    methods, experiments = args.methods.split(","), args.experiments.split(",")
    plan = [("main", m, k, s) for s in seeds for k in ks for m in methods] if "main" in experiments else []
    plan += [("oneshot", m, 1, s) for s in seeds for m in ("scratch", "human")] if "oneshot" in experiments else []
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    settings = {"data": str(args.data), "pre_human": str(args.pre_human), "pre_robot_video": str(args.pre_robot_video),
                "preset": args.preset, "steps": args.steps, "max_steps": args.max_steps, "episodes_per_task": args.episodes}
    if results and results.get("settings") != settings:
        raise SystemExit(f"{args.out} holds results of other settings ({results.get('settings')}); choose another --out")
    results.update(settings=settings, machine=machine(), command="python benchmarks/egoscale.py " + " ".join(os.sys.argv[1:]))
    cells = results.setdefault("cells", {})
    planned = merge_planned(results.get("planned", []), [f"{e}-{m}-k{k}-s{s}" for e, m, k, s in plan])
    for experiment, method, k, seed in plan:
        name = f"{experiment}-{method}-k{k}-s{seed}"
        if name in cells:
            print(f"{name}: done, skipped")
            continue
        cells[name] = run_cell(args, experiment, method, k, seed)
        save(results, planned, args.out)
        print(f"{name}: mean success {cells[name]['mean_success']:.3f}")
    save(results, planned, args.out)
    print(json.dumps(results["targets"], indent=2))


if __name__ == "__main__":
    main()
