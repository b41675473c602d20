"""`wam plan`, `wam rl`, `wam distill`, `wam judge`: the dream dojo's command line (stage three).

Thin calls into wam.dojo and wam.train, registered on the main app by `wam.cli.app`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from wam.cli.common import RAY_HELP, console, fail, train_config, write_json
from wam.cli.checks import at_least, file_out, readable_weights, removed_on_failure, resumable, run_out, worker_count


def register(app: typer.Typer) -> None:
    @app.command()
    def plan(
        world: Path = typer.Option(..., help="finetuned WAM run: its policy proposes, its world model and reward heads judge"),
        tasks: str = typer.Option("mt10", help="mt10, mt50 or a comma list"),
        episodes: int = typer.Option(10, help="episodes per task"),
        samples: int = typer.Option(64, help="action chunks dreamed per CEM round", callback=at_least(1)),
        elites: int = typer.Option(8, help="best chunks the Gaussian is refitted to", callback=at_least(1)),
        iterations: int = typer.Option(3, help="CEM rounds per decision", callback=at_least(1)),
        workers: int = typer.Option(1, help="parallel worker processes", callback=worker_count),
        seed: int = typer.Option(0, callback=at_least(0)),
        max_steps: int = typer.Option(300, help="step limit per episode"),
        out: Optional[Path] = typer.Option(None, help="write the results JSON here", callback=file_out),
        ray: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP),
    ) -> None:
        """Model-predictive control: CEM over action chunks in the dream, run in real Meta-World episodes."""
        from wam.dojo.evaluate import EvalConfig, evaluate_policy
        from wam.envs.tasks import resolve_tasks
        from wam.errors import WamError

        if elites > samples:
            fail(f"--elites {elites} must not exceed --samples {samples}")
        try:
            planner = {"samples": samples, "elites": elites, "iterations": iterations, "seed": seed}
            results = evaluate_policy(EvalConfig(world, tuple(resolve_tasks(tasks)), episodes, workers, seed, max_steps,
                                                    planner=planner, ray=ray))
        except (ValueError, WamError) as err:
            fail(str(err))
        if out is not None:  # the results first: nothing after the evaluation may lose them
            write_json(out, results)
        for task, r in results["tasks"].items():
            console.print(f"{task}: success {r['success_rate']:.2f} [{r['wilson95'][0]:.2f}, {r['wilson95'][1]:.2f}]")
        console.print(f"mean success {results['mean_success']:.3f}; planning {results['policy_steps_per_s']:.1f} control steps/s")


    @app.command("rl")
    def rl_command(
        policy: Path = typer.Option(..., help="finetuned WAM run to improve"),
        world: Path = typer.Option(..., help="finetuned WAM run whose world model is the dream (may be the same run)"),
        task: str = typer.Option(..., help="Meta-World task name or instruction to practise"),
        out: Path = typer.Option(..., help="output run directory (a policy run: wam eval --policy OUT)", callback=run_out("rl")),
        iterations: int = typer.Option(40, help="policy updates"),
        starts: int = typer.Option(8, help="first frames per update"),
        group: int = typer.Option(8, help="rollouts per first frame (the group-relative baseline)"),
        horizon: int = typer.Option(160, help="control steps per dream"),
        bc_weight: float = typer.Option(1.0, help="weight of the behaviour-cloning anchor to the finetuned policy"),
        dream_student: bool = typer.Option(False, "--dream-student", help="practise in dreams of the world's distilled student"),
        start_data: Optional[list[Path]] = typer.Option(None, help="datasets whose first frames of the task start the practice "
                                                        "dreams (default: the world's robot data)"),
        success_hold: int = typer.Option(1, help="a practice dream succeeds when the success head agrees this many model steps in a row"),
        dream_judge: bool = typer.Option(False, "--dream-judge", help="practice dreams judged by the world's success judge "
                                         "(wam judge)"),
        start_anywhere: bool = typer.Option(False, "--start-anywhere", help="practice dreams start at any frame of the start "
                                            "data before its success (short branches from visited states; pair with a "
                                            "short --horizon and the policy's own rollouts as --start-data)"),
        success_timing: bool = typer.Option(False, "--success-timing", help="a success earns more the sooner it comes "
                                            "(tells apart groups whose rollouts all succeed)"),
        advantage: str = typer.Option("center", help="center: return minus the group mean; std: also over the group std "
                                      "(GRPO), which amplifies reward-head noise in groups that all end alike"),
        seed: int = typer.Option(0, callback=at_least(0)),
        resume: bool = typer.Option(False, "--resume"),
        ray: Optional[str] = typer.Option(None, "--ray", help="roll the practice dreams out on Ray actors (the groups "
                                          "split over them, the same rollouts): auto, local or a cluster address"),
    ) -> None:
        """Stage three: improve a policy's action head by a group-relative policy gradient inside dreams."""
        from wam.errors import WamError
        from wam.config import DreamSettings
        from wam.train.rl import RLConfig, rl

        if resume:
            resumable(out / "rl.json", "an RL run")
        readable_weights("--policy", policy)
        try:
            config = RLConfig(task=task, iterations=iterations, starts=starts, group=group, horizon=horizon,
                              bc_weight=bc_weight, seed=seed, start_data=tuple(str(p) for p in start_data or ()),
                              dream=DreamSettings(student=dream_student, success_hold=success_hold, judge=dream_judge),
                              start_anywhere=start_anywhere, advantage=advantage, success_timing=success_timing, ray=ray)
            with removed_on_failure(out):
                summary = rl(policy, world, out, config, resume=resume)
        except (ValueError, WamError) as err:
            fail(str(err))
        console.print_json(json.dumps(summary))


    @app.command()
    def distill(
        world: Path = typer.Option(..., help="finetuned WAM run whose action-conditioned world model is distilled"),
        preset: str = typer.Option("cpu", help="tiny (seconds), cpu or gpu"),
        steps: Optional[int] = typer.Option(None, help="training steps (default: the preset's)"),
        seed: int = typer.Option(0, callback=at_least(0)),
        resume: bool = typer.Option(False, "--resume", help="continue the student in WORLD/student from its last checkpoint"),
    ) -> None:
        """Distil the world model into a fast dream student (WORLD/student): dream with it via --dream-student."""
        from dataclasses import replace

        from wam.config import distill_preset
        from wam.errors import WamError
        from wam.train.distill import STUDENT_DIR, distill as run_distill

        if resume:
            resumable(world / STUDENT_DIR, "a student")
        try:
            config = distill_preset(preset)
            train_cfg = train_config(config.train, seed, steps)
            summary = run_distill(world, replace(config, train=train_cfg, seed=seed), resume=resume)
        except (ValueError, WamError) as err:
            fail(str(err))
        console.print_json(json.dumps(summary))


    @app.command()
    def judge(
        world: Path = typer.Option(..., help="finetuned WAM run the judge serves (its tokenizer, robot and play data)"),
        data: Optional[list[Path]] = typer.Option(None, "--data", help="more episodes with success flags, e.g. policy rollouts "
                                                  "(wam collect --policy): their failures teach what a near miss looks like"),
        exclude_source: Optional[list[str]] = typer.Option(None, "--exclude-source",
                                                           help="leave out episodes whose driver (source) contains this"),
        dreamed: bool = typer.Option(False, "--dreamed", help="also train on the --data episodes replayed in the world's dream, "
                                     "each predicted frame labelled with reality's success flag"),
        balance: bool = typer.Option(False, "--balance", help="draw successes and failures of every source alike "
                                     "(dreamed replays hold few successes)"),
        hold_out_policy: Optional[list[str]] = typer.Option(None, "--hold-out-policy", help="hold out the --data episodes "
                                                            "of this policy (a substring of their source), whole, for the "
                                                            "calibration (default: a quarter of the policies, by seed)"),
        precision: float = typer.Option(0.9, help="calibrate the verdict's threshold on the held-out policies for this "
                                        "precision (stored in WORLD/judge/calibration.json; dreams with the judge use it)"),
        hold: int = typer.Option(1, help="model steps the success probability must stay above the threshold",
                                 callback=at_least(1)),
        relabel: float = typer.Option(0.0, help="hard negatives: this fraction of frames shown with another task's "
                                      "instruction and labelled a failure"),
        kind: str = typer.Option("frame", help="frame: success from one frame; progress: task progress in [0, 1] from a "
                                 "clip of --clip model steps (the verdict thresholds progress)"),
        clip: int = typer.Option(4, help="progress judge: model steps a clip holds", callback=at_least(1)),
        reverse: float = typer.Option(0.0, help="progress judge: hard negatives, this fraction of clips played backwards"),
        failure_ceiling: float = typer.Option(0.5, help="progress judge: the progress a failed episode's last frame gets"),
        preset: str = typer.Option("cpu", help="tiny (seconds) or cpu"),
        steps: Optional[int] = typer.Option(None, help="training steps (default: the preset's)"),
        seed: int = typer.Option(0, callback=at_least(0)),
        resume: bool = typer.Option(False, "--resume", help="continue the judge in WORLD/judge from its last checkpoint"),
    ) -> None:
        """Train the world's success judge on real frames (WORLD/judge): dream with it via --dream-judge."""
        from dataclasses import replace

        from wam.config import judge_preset
        from wam.errors import WamError
        from wam.dojo.judge_replay import dreamed_source
        from wam.train.judge import JUDGE_DIR, train_judge

        if resume:
            resumable(world / JUDGE_DIR, "a judge")
        try:
            config = judge_preset(preset)
            train_cfg = train_config(config.train, seed, steps)
            summary = train_judge(world, list(data or []), replace(config, train=train_cfg, seed=seed, dreamed=dreamed,
                                                                   balance=balance, precision=precision, hold=hold,
                                                                   relabel=relabel, kind=kind, clip=clip, reverse=reverse,
                                                                   failure_ceiling=failure_ceiling),
                                  exclude_sources=tuple(exclude_source or ()), resume=resume,
                                  dream_replay=dreamed_source,  # also the held-out policies' rates in dreams
                                  hold_out=tuple(hold_out_policy or ()))
        except (ValueError, WamError) as err:
            fail(str(err))
        console.print_json(json.dumps(summary))

    @app.command("drift-guard")
    def drift_guard(
        world: Path = typer.Option(..., help="finetuned WAM run the guard serves (its tokenizer and robot data)"),
        window: int = typer.Option(4, help="model steps whose mean error is compared with the tolerance", callback=at_least(1)),
        quantile: float = typer.Option(0.99, help="the tolerance: this quantile of that error on held-out real episodes"),
        preset: str = typer.Option("cpu", help="tiny (seconds) or cpu"),
        steps: Optional[int] = typer.Option(None, help="training steps (default: the preset's)"),
        seed: int = typer.Option(0, callback=at_least(0)),
        resume: bool = typer.Option(False, "--resume", help="continue the guard in WORLD/drift_guard from its checkpoint"),
    ) -> None:
        """Train the world's drift guard (WORLD/drift_guard): an inverse-dynamics model whose disagreement with the
        commanded actions ends a dream undecided (--dream-drift-guard)."""
        from dataclasses import replace

        from wam.config import drift_guard_preset
        from wam.errors import WamError
        from wam.train.drift_guard import GUARD_DIR, train_drift_guard

        if resume:
            resumable(world / GUARD_DIR, "a drift guard")
        try:
            config = drift_guard_preset(preset)
            config = replace(config, train=train_config(config.train, seed, steps), seed=seed, window=window, quantile=quantile)
            summary = train_drift_guard(world, config, resume=resume)
        except (ValueError, WamError) as err:
            fail(str(err))
        console.print_json(json.dumps(summary))
