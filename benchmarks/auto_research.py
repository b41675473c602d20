"""Auto-research, measured: does the loop find a known optimum, does it keep noise, does it improve the real recipe?

    python benchmarks/auto_research.py toy [--studies 5 --trials 40]      # the test problem (seconds)
    python benchmarks/auto_research.py noop [--studies 5 --trials 100]    # every proposal a no-op (seconds)
    python benchmarks/auto_research.py recipe [--trials 20]               # the real recipe, unattended (hours, resumable)

`toy`: the test problem of wam.research.runners.ToyRunner (two knobs, optimum score 0.8 at x = 0.7, lr = 1e-3; the
baseline's defaults score 0.21; evaluation noise 0.02), Optuna TPE, 2 training seeds a trial, 4 baseline runs.
Found = the incumbent's noise-free score within 0.05 of the optimum when the budget is spent.

`noop`: the same studies with a proposer whose every proposal is the baseline itself: every keep is a false keep.

`recipe`: `wam finetune` of the cpu preset from the pretrained MT10 world (runs/resolution/s64/pretrain, made by
benchmarks/resolution_grid.sh), K = 3 demos a task of reach, push and drawer-open, at most 400 steps a trial, 10
episodes a task on hidden seeds (and 10 on the holdout's), 20 Optuna trials after 3 baseline runs; then the incumbent
is rerun on 2 new training seeds (`wam research reproduce`).

Raw results: benchmarks/results/auto_research.json; the page: benchmarks/results/headline/auto_research.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Claim, Result, provenance, this_command, write_result  # noqa: E402

from wam.dojo.evaluate import wilson_interval  # noqa: E402
from wam.research.loop import reproduce, run_study  # noqa: E402
from wam.research.proposers import ScriptedProposer  # noqa: E402
from wam.research.runners import ToyRunner, recipe_knobs, toy_knobs  # noqa: E402
from wam.research.spec import EvaluatorSpec, init_study, load_study  # noqa: E402

RAW = ROOT / "benchmarks" / "results" / "auto_research.json"
WORK = ROOT / "runs" / "auto_research"


def load() -> dict:
    return json.loads(RAW.read_text()) if RAW.exists() else {"toy": {}, "noop": {}, "recipe": {}}


def save(results: dict) -> None:
    results["provenance"] = provenance()
    temporary = RAW.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=1))
    os.replace(temporary, RAW)


def fresh_toy(name: str, trials: int, study_seed: int) -> Path:
    """A new toy study whose evaluation seeds come from `study_seed`: each study an independent draw of the noise."""
    directory = WORK / name
    shutil.rmtree(directory, ignore_errors=True)
    return init_study(directory, EvaluatorSpec("toy", budget={"trials": trials}, repeats=2, baseline_repeats=4,
                                               seeds=(1000 + 2 * study_seed,), holdout_seeds=(1001 + 2 * study_seed,)),
                      toy_knobs())


def run_toy(args, results: dict) -> None:
    for study_seed in range(args.studies):
        name = f"toy{study_seed}"
        if name in results["toy"]:
            continue
        directory = fresh_toy(name, args.trials, study_seed)
        from wam.research.proposers import OptunaProposer

        state = run_study(directory, OptunaProposer(load_study(directory), seed=study_seed))
        runner = ToyRunner(load_study(directory).evaluator)
        best = state.incumbent
        true_scores = [float(runner.score(state.trials[t].config)) for t in sorted(state.trials)]
        within = [t for t in sorted(state.trials) if t > 0 and runner.score(state.trials[t].config) >= 0.75]
        true_score = float(runner.score(best.config))
        results["toy"][name] = {"incumbent": best.trial, "incumbent_true_score": true_score,
                                "incumbent_config": best.config, "found": bool(true_score >= 0.75),
                                "first_trial_within_0.05": within[0] if within else None, "true_scores": true_scores,
                                "kept": [t for t, trial in state.trials.items() if trial.decision and trial.decision["kept"]],
                                "noise_floor": state.noise_floor()}
        save(results)
        if study_seed == 0:
            from wam.research.report import progress_plot

            media = ROOT / "benchmarks" / "results" / "media" / "research_progress.png"
            media.write_bytes(progress_plot(state))
        print(f"{name}: incumbent trial {best.trial}, true score {runner.score(best.config):.3f}")


def run_noop(args, results: dict) -> None:
    for study_seed in range(args.studies):
        name = f"noop{study_seed}"
        if name in results["noop"]:
            continue
        directory = fresh_toy(name, args.trials, 100 + study_seed)
        evaluator = load_study(directory).evaluator
        state = run_study(directory, ScriptedProposer([{}] * args.trials), ToyRunner(evaluator))
        kept = [t for t, trial in state.trials.items() if trial.decision and trial.decision["kept"]]
        results["noop"][name] = {"trials": args.trials, "kept": kept, "noise_floor": state.noise_floor()}
        save(results)
        print(f"{name}: {len(kept)} of {args.trials} no-op trials kept")


def run_recipe(args, results: dict) -> None:
    directory = WORK / "recipe"
    data = ROOT / "data" / "resolution" / "s64" / "mt10_robot"  # benchmarks/resolution_grid.sh's s64 inputs
    pretrained = ROOT / "runs" / "resolution" / "s64" / "pretrain"
    if not (directory / "study.json").exists():
        evaluator = EvaluatorSpec("recipe", ("reach-v3", "push-v3", "drawer-open-v3"), "metaworld", 10,
                                  trial_budget={"steps": 400}, budget={"trials": args.trials}, repeats=1, baseline_repeats=3,
                                  options={"robot": [str(data)], "pretrained": str(pretrained), "video": [], "preset": "cpu",
                                           "episodes_per_task": 3, "max_steps": 300})
        init_study(directory, evaluator, recipe_knobs("cpu", 400))
    state = run_study(directory, "optuna")
    best = state.incumbent
    results["recipe"] = {"trials": state.proposed, "baseline": state.baseline.scores(), "noise_floor": state.noise_floor(),
                         "incumbent": best.trial, "incumbent_scores": best.scores(), "incumbent_config": best.config,
                         "kept": [t for t, trial in state.trials.items() if trial.decision and trial.decision["kept"]],
                         "holdout": (best.decision or {}).get("holdout")}
    if best.trial > 0 and "reproduce" not in results["recipe"]:
        results["recipe"]["reproduce"] = reproduce(directory, best.trial, repeats=2)
    save(results)


def headline(results: dict) -> None:
    claims, rows = [], []
    toy = list(results["toy"].values())
    if toy:
        found = sum(r["found"] for r in toy)
        claims.append(Claim("on a test problem with a known optimum, the loop's incumbent ends within 0.05 of it",
                            found / len(toy), "", ">= 0.8 of studies", found / len(toy) >= 0.8,
                            note=f"{found} of {len(toy)} studies, {len(toy[0]['true_scores']) - 1} trials each"))
        for name, r in results["toy"].items():
            rows.append([name, "toy (TPE)", f"{r['incumbent_true_score']:.3f}", r["first_trial_within_0.05"], len(r["kept"])])
    noop = list(results["noop"].values())
    if noop:
        kept = sum(len(r["kept"]) for r in noop)
        total = sum(r["trials"] for r in noop)
        low, high = wilson_interval(kept, total)
        claims.append(Claim("no-op proposals kept (false keeps)", round(kept / total, 4), "", "<= 0.05", kept / total <= 0.05,
                            (round(low, 4), round(high, 4)), f"{kept} of {total} trials over {len(noop)} studies"))
        for name, r in results["noop"].items():
            rows.append([name, "no-op", "", "", len(r["kept"])])
    recipe = results.get("recipe") or {}
    if recipe.get("reproduce"):
        gain = float(np.mean(recipe["incumbent_scores"]) - np.mean(recipe["baseline"]))
        claims.append(Claim("an unattended study of the real recipe beats the default by more than the noise floor",
                            round(gain, 3), "", "> 2 sigma, holdout pass, reproduces",
                            recipe["holdout"] == "pass" and recipe["reproduce"]["reproduces"] and recipe["incumbent"] > 0,
                            note=f"{recipe['trials']} trials, sigma {recipe['noise_floor']:.3f}"))
    planned = 2 + (1 if recipe else 0)
    finished = (1 if toy else 0) + (1 if noop else 0) + (1 if recipe.get("reproduce") else 0)
    result = Result("auto_research", "Auto-research: a known optimum, no-op proposals, the real recipe", this_command(),
                    claims, {"columns": ["study", "proposer", "incumbent's true score", "first trial within 0.05", "kept"],
                             "rows": rows}, planned=planned, finished=finished,
                    sources=["benchmarks/results/auto_research.json"],
                    summary=("Studies of wam.research on the test problem (optimum 0.8, baseline 0.21, noise 0.02; 2 "
                             "training seeds a trial, 4 baseline runs) with Optuna's TPE, and with every proposal a no-op; "
                             "the keep rule: a gain over the incumbent above 2 sigma sqrt(1/n + 1/n_incumbent) and a holdout "
                             "no worse by the same bar."), rank=45)
    write_result(ROOT / "benchmarks" / "results" / "headline" / "auto_research.json", result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("toy", "noop", "recipe"))
    parser.add_argument("--studies", type=int, default=5)
    parser.add_argument("--trials", type=int, default=None)
    args = parser.parse_args()
    args.trials = args.trials or {"toy": 40, "noop": 100, "recipe": 20}[args.part]
    results = load()
    {"toy": run_toy, "noop": run_noop, "recipe": run_recipe}[args.part](args, results)
    headline(results)


if __name__ == "__main__":
    main()
