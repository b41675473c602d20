"""`wam research ...`: studies that run training-recipe experiments unattended (wam.research)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from wam.cli.checks import at_least, directory_out, file_out
from wam.cli.common import console, fail, write_json

research_app = typer.Typer(help="Auto-research: a frozen evaluator, an editable recipe, and a loop that keeps only "
                                "what beats the noise floor.", no_args_is_help=True)


def _errors():
    from wam.errors import WamError
    from wam.research.spec import StudyError

    return (ValueError, WamError, StudyError, FileNotFoundError)


@research_app.command()
def init(
    study: Path = typer.Argument(..., help="the study directory to create", callback=directory_out),
    kind: str = typer.Option("recipe", help="recipe (finetune and evaluate) or toy (a test problem with a known optimum)"),
    robot: Optional[List[Path]] = typer.Option(None, help="recipe: labelled datasets to finetune on (repeatable)"),
    pretrained: Optional[Path] = typer.Option(None, help="recipe: a pretraining run to finetune from (default: scratch)"),
    video: Optional[List[Path]] = typer.Option(None, help="recipe: action-free video to co-train on (repeatable)"),
    preset: str = typer.Option("tiny", help="recipe: the finetune preset the knobs start from"),
    k: Optional[int] = typer.Option(None, "-k", help="recipe: demos a task (the evaluator owns it)"),
    tasks: str = typer.Option("reach-v3,push-v3,drawer-open-v3", help="recipe: tasks the main evaluation runs"),
    holdout_tasks: Optional[str] = typer.Option(None, help="tasks of the holdout (pass/fail only; default: the same "
                                                           "tasks on other hidden seeds)"),
    env: str = typer.Option("metaworld", help="recipe: the env family the evaluation runs in (metaworld, hand, scan/SCENE)"),
    episodes: int = typer.Option(10, help="episodes a task in each evaluation", callback=at_least(1)),
    episode_steps: int = typer.Option(300, help="recipe: step limit of an evaluation episode", callback=at_least(1)),
    trials: int = typer.Option(20, help="the study's budget in trials", callback=at_least(1)),
    seconds: Optional[float] = typer.Option(None, help="and in seconds of trial time"),
    max_steps: Optional[int] = typer.Option(None, help="recipe: the most training steps a trial may ask for"),
    repeats: int = typer.Option(1, help="training seeds each trial runs with", callback=at_least(1)),
    baseline_repeats: int = typer.Option(3, help="runs of the baseline that measure the noise floor", callback=at_least(2)),
    fleet: Optional[str] = typer.Option(None, help="evaluate through this wam serve's task runs (URL); the runs are "
                                                   "trained inside --fleet-runs, the server's runs directory"),
    fleet_key: Optional[str] = typer.Option(None, help="a control key of that server"),
    fleet_runs: Optional[Path] = typer.Option(None, help="the server's runs directory (wam serve --runs)"),
) -> None:
    """Create a study: freeze the evaluator (tasks, hidden seeds, episodes, metric, budgets), write the surface."""
    try:
        from wam.research.runners import recipe_knobs, toy_knobs
        from wam.research.spec import EvaluatorSpec, init_study

        if kind not in ("recipe", "toy"):
            raise ValueError(f"--kind must be recipe or toy, got {kind!r}")
        budget = {"trials": trials, **({"seconds": seconds} if seconds else {})}
        options: dict = {}
        if kind == "recipe":
            if not robot:
                raise ValueError("a recipe study needs --robot DATA (the labelled datasets to finetune on)")
            for path in [*robot, *(video or [])] + ([pretrained] if pretrained else []):
                if not path.exists():
                    raise ValueError(f"{path}: no such dataset or run")
            if fleet and not fleet_runs:
                raise ValueError("--fleet needs --fleet-runs: the server's runs directory, where trials must train")
            options = {"robot": [str(p.resolve()) for p in robot], "video": [str(p.resolve()) for p in video or []],
                       "pretrained": str(pretrained.resolve()) if pretrained else None, "preset": preset,
                       "episodes_per_task": k, "max_steps": episode_steps, **({"fleet": fleet, "fleet_key": fleet_key,
                                                   "fleet_runs": str(fleet_runs.resolve())} if fleet else {})}
        names = tuple(t.strip() for t in tasks.split(",") if t.strip()) if kind == "recipe" else ()
        holdout = tuple(t.strip() for t in holdout_tasks.split(",") if t.strip()) if holdout_tasks else ()
        evaluator = EvaluatorSpec(kind, names, env, episodes, holdout_tasks=holdout,
                                  trial_budget={"steps": max_steps} if max_steps else {}, budget=budget, repeats=repeats,
                                  baseline_repeats=baseline_repeats, options=options)
        knobs = recipe_knobs(preset, max_steps) if kind == "recipe" else toy_knobs()
        init_study(study, evaluator, knobs)
    except _errors() as err:
        fail(str(err))
    console.print(f"study {study}: {len(knobs)} knobs, budget {budget}; edit {study / 'program.md'} for agents, then "
                  f"`wam research run {study}`")


@research_app.command()
def run(
    study: Path = typer.Argument(..., help="a study directory (wam research init)"),
    proposer: str = typer.Option("optuna", help="optuna (TPE), cmaes, or queue (an agent's proposals from the MCP tools)"),
    max_trials: Optional[int] = typer.Option(None, help="stop after this many trials in this session", callback=at_least(1)),
) -> None:
    """Run or resume the study until its budget: baseline repeats first (the noise floor), then trials."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        from wam.research.loop import run_study
        from wam.research.report import write_report
        from wam.research.spec import load_study

        spec = load_study(study)
        total = int(spec.evaluator.budget.get("trials", 0)) or None
        with Progress(TextColumn("[bold]research"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                      TextColumn("{task.fields[best]}"), TimeRemainingColumn()) as bar:
            job = bar.add_task("trials", total=total, best="")

            def shown(state) -> None:
                bar.update(job, completed=state.proposed,
                           best=f"incumbent {state.incumbent.mean:.4f} (trial {state.incumbent.trial})")
                write_report(study)

            state = run_study(study, proposer, max_trials=max_trials, on_trial=shown)
        write_report(study)
    except _errors() as err:
        fail(str(err))
    kept = [t for t in state.trials.values() if t.decision and t.decision.get("kept")]
    console.print(f"{state.proposed} trials proposed, {len(kept)} kept; incumbent: trial {state.incumbent.trial} "
                  f"({state.incumbent.mean:.4f}, baseline {state.baseline.mean:.4f}, noise floor "
                  f"{state.noise_floor():.4f}); report: {study / 'report.html'}")


@research_app.command()
def report(study: Path = typer.Argument(..., help="a study directory")) -> None:
    """Rewrite the study's report.html from its ledger."""
    try:
        from wam.research.report import write_report

        path = write_report(study)
    except _errors() as err:
        fail(str(err))
    console.print(f"wrote {path}")


@research_app.command()
def reproduce(
    study: Path = typer.Argument(..., help="a study directory"),
    trial: int = typer.Option(..., help="the trial whose config to rerun", callback=at_least(0)),
    repeats: int = typer.Option(2, help="new training seeds to rerun it with", callback=at_least(1)),
    out: Optional[Path] = typer.Option(None, help="write the rerun's figures as JSON here", callback=file_out),
) -> None:
    """Rerun a trial's config with new training seeds: does its score hold within the noise bar?"""
    try:
        from wam.research.loop import reproduce as rerun

        result = rerun(study, trial, repeats)
    except _errors() as err:
        fail(str(err))
    if out is not None:
        write_json(out, result)
    console.print(f"trial {trial}: recorded {result['recorded']:.4f}, rerun {result['rerun']}; "
                  f"{'reproduces' if result['reproduces'] else 'does not reproduce'} (bar {result['bar']:.4f})")


@research_app.command()
def mcp(study: Path = typer.Argument(..., help="a study directory")) -> None:
    """Serve the study as MCP tools over stdio (propose_experiment, run_experiment, experiment_status, leaderboard,
    keep, revert) for a language-model agent."""
    try:
        from wam.research.mcp_tools import build_server

        server = build_server(study)
    except _errors() as err:
        fail(str(err))
    server.run(transport="stdio")
