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
Experiment `amount` (`--amounts 12,50,200`, human-video episodes a task) is robot success against the amount of
human video at K = 3: for each amount, the first N episodes a task of the same human video (collected with the same
seeds, so the sets are nested), its own pretraining run (the same preset), then the `human` method's cells. The
cells are `amount-human-n{N}-k3-s{seed}`; the largest amount's pretraining is `pre_human` itself when N matches.

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


def human_subset(args, episodes: int) -> tuple[Path, Path]:
    """(human video of `episodes` a task, its pretraining run): collected and pretrained when missing (resumable)."""
    from wam.config import pretrain_preset
    from wam.envs.collect import CollectConfig, collect
    from wam.train.pretrain import pretrain

    data = args.data / f"human_n{episodes}"
    collect(CollectConfig(("touch", "push", "lift", "press-button", "open-drawer"), episodes, data, actions=False,
                          workers=args.workers, seed=100, max_steps=args.max_steps, env="hand", embodiment="human"),
            progress=False)
    run = args.runs / f"pre_human_n{episodes}"
    if not (run / "summary.json").exists():
        pretrain([data], run, pretrain_preset(args.pretrain_preset), resume=(run / "pretrain.json").exists(), progress=False)
    return data, run


def run_cell(args, experiment: str, method: str, k: int, seed: int) -> dict:
    name = f"{experiment}-{method}-k{k}-s{seed}"
    run = args.runs / name
    robot = [args.data / "robot"] + ([args.data / "robot_oneshot"] if experiment == "oneshot" else [])
    tasks = (ONESHOT_TASK,) if experiment == "oneshot" else MAIN_TASKS
    start = time.perf_counter()
    if experiment == "amount":  # method "human-n{N}": the human method on N human episodes a task
        video, pre = human_subset(args, int(method.removeprefix("human-n")))
        resume = (run / "finetune.json").exists()
        summary = (json.loads((run / "summary.json").read_text()) if finished(run) else
                   finetune(pre, robot, run, finetune_config(args, k, seed), video=[video], resume=resume))
    else:
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
                   summary={experiment: aggregate(cells, experiment) for experiment in ("main", "oneshot", "amount")},
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
    parser.add_argument("--amounts", default="12,50,200", help="experiment amount: human-video episodes a task")
    parser.add_argument("--pretrain-preset", default="cpu", help="experiment amount: the pretraining of every amount")
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
    plan += ([("amount", f"human-n{n}", 3, s) for s in seeds for n in map(int, args.amounts.split(","))]
             if "amount" in experiments else [])
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
