"""What a trial does: train with a config under the trial budget, then let the evaluator score it.

`ToyRunner` is the test problem: a smooth objective of two knobs with a known optimum and seeded noise, so the loop's
search and its keep rule can be checked in seconds. `RecipeRunner` is the real one: `wam finetune` with the knobs
set (learning rate, steps, batch, augmentation, chunk execution), then success on the evaluator's tasks and hidden
seeds, either here (`wam eval`'s runner) or through the Physical API (a task run on leased robots of a `wam serve`
fleet, every episode recorded there under the run's id, which the ledger keeps).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from wam.research.spec import EvaluatorSpec, StudyError


class Runner(Protocol):
    def run(self, config: dict, seed: int, out: Path) -> dict:
        """{"metric": main score, "holdout": holdout score, "secondary": {...}, "links": {...}} of one training run."""
        ...


def toy_knobs():
    from wam.research.spec import Knob

    return [Knob("x", "float", 0.0, -2.0, 2.0), Knob("lr", "float", 1e-2, 1e-5, 1e-1, log=True)]


class ToyRunner:
    """score = 0.8 - (x - 0.7)^2 - 0.1 (log10 lr + 3)^2 + noise: the optimum is x = 0.7, lr = 1e-3 (score 0.8).

    The noise is a function of (seed, evaluation seed): re-running a config with the same seeds gives the same score,
    with other training seeds another, as training does."""

    def __init__(self, evaluator: EvaluatorSpec, noise: float = 0.02):
        self.evaluator, self.noise = evaluator, float(evaluator.options.get("noise", noise))

    def score(self, config: dict) -> float:
        return 0.8 - (config["x"] - 0.7) ** 2 - 0.1 * (np.log10(config["lr"]) + 3) ** 2

    def run(self, config: dict, seed: int, out: Path) -> dict:
        def noisy(eval_seed: int) -> float:
            return float(self.score(config) + np.random.default_rng([seed, eval_seed]).normal(0, self.noise))

        delay = float(self.evaluator.options.get("seconds_per_trial", 0.0))
        if delay:
            time.sleep(delay)
        return {"metric": float(np.mean([noisy(s) for s in self.evaluator.seeds])),
                "holdout": float(np.mean([noisy(s) for s in self.evaluator.holdout_seeds])), "secondary": {}, "links": {}}


def recipe_knobs(preset: str = "tiny", max_steps: int | None = None):
    """The default surface for the recipe: the finetune preset's own values as defaults, around them the ranges
    (training steps never past the trial budget's `max_steps`)."""
    from wam.config import finetune_preset
    from wam.research.spec import Knob

    config = finetune_preset(preset)
    train = config.train
    return [Knob("lr", "float", train.lr, train.lr / 10, train.lr * 10, log=True),
            Knob("steps", "int", min(train.steps, max_steps or train.steps), min(max(10, train.steps // 4), max_steps or 10**9),
                 min(train.steps * 4, max_steps or 10**9)),
            Knob("batch_size", "choice", train.batch_size, choices=tuple(sorted({8, 16, 32, train.batch_size}))),
            Knob("weight_decay", "float", float(train.weight_decay), 0.0, 0.2),
            Knob("augment_copies", "int", int(config.augment_copies), 0, 4),
            Knob("execute", "int", int(config.execute), 1, int(config.chunk))]


class RecipeRunner:
    """Finetune on the evaluator's robot data with the trial's knobs (from scratch or from `options["pretrained"]`),
    then evaluate on its tasks and hidden seeds."""

    def __init__(self, evaluator: EvaluatorSpec):
        self.evaluator = evaluator
        options = evaluator.options
        if not options.get("robot"):
            raise StudyError("a recipe study needs options.robot: the labelled datasets to finetune on")

    def train(self, config: dict, seed: int, out: Path) -> Path:
        from wam.config import finetune_preset
        from wam.train.finetune import finetune

        options = self.evaluator.options
        base = finetune_preset(options.get("preset", "tiny"))
        steps = int(config.get("steps", base.train.steps))
        budget_steps = self.evaluator.trial_budget.get("steps")
        if budget_steps is not None and steps > budget_steps:
            raise StudyError(f"steps {steps} is over the trial budget of {budget_steps}")
        train = replace(base.train, lr=float(config.get("lr", base.train.lr)), steps=steps, seed=seed,
                        batch_size=int(config.get("batch_size", base.train.batch_size)),
                        eval_every=min(base.train.eval_every, steps), checkpoint_every=min(base.train.checkpoint_every, steps),
                        warmup_steps=min(base.train.warmup_steps, max(1, steps // 10)),
                        weight_decay=float(config.get("weight_decay", base.train.weight_decay)))
        finetune_config = replace(base, train=train, seed=seed, subset_seed=seed, execute=int(config.get("execute", base.execute)),
                                  augment_copies=int(config.get("augment_copies", base.augment_copies)),
                                  episodes_per_task=options.get("episodes_per_task"))
        if not (out / "summary.json").exists():
            finetune(options.get("pretrained"), [Path(p) for p in options["robot"]], out, finetune_config,
                     video=[Path(p) for p in options.get("video", [])], resume=(out / "finetune.json").exists(),
                     progress=False)
        return out

    def run(self, config: dict, seed: int, out: Path) -> dict:
        options = self.evaluator.options
        if options.get("fleet"):  # the server loads policies from its own runs directory only
            out = Path(options["fleet_runs"]) / f"{Path(out).parent.parent.name}-{Path(out).name}"
        run = self.train(config, seed, out)
        main = self.evaluate(run, self.evaluator.tasks, self.evaluator.seeds)
        holdout = self.evaluate(run, self.evaluator.holdout_tasks or self.evaluator.tasks, self.evaluator.holdout_seeds)
        return {"metric": main["success_rate"], "holdout": holdout["success_rate"],
                "secondary": {"per_task": main["per_task"]},
                "links": {"run": str(run), "task_runs": main["links"].get("task_runs", []) + holdout["links"].get("task_runs", [])}}

    def evaluate(self, run: Path, tasks, seeds) -> dict:
        if self.evaluator.options.get("fleet"):
            return self._on_fleet(run, tasks, seeds)
        from wam.dojo.evaluate import EvalConfig, evaluate_policy

        wins = episodes = 0
        per_task = {}
        for seed in seeds:
            results = evaluate_policy(EvalConfig(run, tuple(tasks), self.evaluator.episodes, seed=seed, env=self.evaluator.env,
                                                 max_steps=int(self.evaluator.options.get("max_steps", 300))), progress=False)
            for task, row in results["tasks"].items():
                wins += row["successes"]
                episodes += row["episodes"]
                per_task[task] = per_task.get(task, 0) + row["successes"]
        return {"success_rate": wins / max(episodes, 1), "per_task": per_task, "links": {}}

    def _on_fleet(self, run: Path, tasks, seeds) -> dict:
        """A task run per (task, seed) on the fleet's leased robots; the episodes are recorded there under its id."""
        from wam.api.client import Client

        options = self.evaluator.options
        runs_root = Path(options["fleet_runs"])
        policy = str(run.resolve().relative_to(runs_root.resolve()))
        wins = episodes = 0
        per_task, task_runs = {}, []
        with Client(options["fleet"], options.get("fleet_key")) as client:
            for seed in seeds:
                for task in tasks:
                    started = client.run_task(task, policy=policy, robots=int(options.get("robots", 1)),
                                              episodes=self.evaluator.episodes, seed=int(seed))
                    deadline = time.monotonic() + float(self.evaluator.trial_budget.get("seconds", 3600))
                    while True:
                        state = client.task(started["id"])
                        if state["status"] != "running":
                            break
                        if time.monotonic() > deadline:
                            client.cancel_task(started["id"])
                            raise StudyError(f"task run {started['id']} ({task}) went past the trial budget")
                        time.sleep(0.5)
                    if state["status"] != "finished":
                        raise StudyError(f"task run {started['id']} ({task}) ended {state['status']}: {state.get('error')}")
                    wins += state["successes"]
                    episodes += state["episodes_done"]
                    per_task[task] = per_task.get(task, 0) + state["successes"]
                    task_runs.append(started["id"])
        return {"success_rate": wins / max(episodes, 1), "per_task": per_task, "links": {"task_runs": task_runs}}


def make_runner(evaluator: EvaluatorSpec) -> Runner:
    if evaluator.kind == "toy":
        return ToyRunner(evaluator)
    if evaluator.kind == "recipe":
        return RecipeRunner(evaluator)
    raise StudyError(f"evaluator kind must be 'toy' or 'recipe', got {evaluator.kind!r}")
