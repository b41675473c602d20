"""The `wam` command line's stage commands (collect, data, pretrain, finetune, eval, ...), each a thin call into the
library; the dojo's, the API's and the bridge's commands register beside them (wam.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from wam.cli.api import register as register_api_commands
from wam.cli.checks import (at_least, dataset_out, directory_out, file_out, in_range, readable_weights, removed_on_failure,
                        resumable, run_out, worker_count)
from wam.cli.common import BF16_HELP, RAY_HELP, console, distributed_rank, fail, train_config, write_json
from wam.cli.data import data_app
from wam.cli.dojo import register as register_dojo_commands
from wam.cli.hands import register as register_hand_commands
from wam.cli.research import research_app
from wam.cli.scan import scan_app

app = typer.Typer(help="World Action Models for robot learning.", no_args_is_help=True, add_completion=False)
app.add_typer(data_app, name="data")
app.add_typer(scan_app, name="scan")
app.add_typer(research_app, name="research")


@app.command()
def view(
    path: Path = typer.Argument(..., help="a dataset (any `wam data check` accepts, lerobot's own included), a run directory, "
                                          "an auto-research study, or a folder of benchmark results (benchmarks/results/headline)"),
    port: int = typer.Option(8770, help="loopback port to serve on", callback=in_range(1, 65535)),
) -> None:
    """Browse a dataset's episodes (videos beside state, action and reward plots), a run's training curves, a study's
    live report or the benchmarks' results in the web console, locally, without a server or a key."""
    from wam.errors import WamError

    try:
        from wam.console.view import view_app

        viewer = view_app(path)
    except (ValueError, WamError) as err:
        fail(str(err))
    import uvicorn

    console.print(f"wam view: http://127.0.0.1:{port}/ ({path}); Ctrl-C to stop")
    uvicorn.run(viewer, host="127.0.0.1", port=port, log_level="warning")
register_api_commands(app)
@app.command()
def collect(
    tasks: Optional[str] = typer.Option(None, help="mt10, mt50 or a comma list such as reach-v3,drawer-open-v3; in hand scenes "
                                                 "all or touch,push,lift,press-button,open-drawer (or give --env hand/TASKS)"),
    episodes: int = typer.Option(..., help="episodes per task", callback=at_least(1)),
    out: Path = typer.Option(..., help="dataset directory (created or appended to)", callback=dataset_out),
    no_actions: bool = typer.Option(False, "--no-actions", help="write action-free video: actions are dropped"),
    workers: int = typer.Option(1, help="parallel worker processes (one per core is best)", callback=worker_count),
    size: int = typer.Option(64, help="image height and width in pixels"),
    cameras: Optional[str] = typer.Option(None, "--cameras", "--camera",
                                          help="camera names, comma-separated, one video each: Meta-World's e.g. corner2,gripperPOV "
                                               "(gripperPOV: the wrist camera; default corner2), the hand scenes' ego,wrist "
                                               "(default ego), scanned scenes' front,wrist (default front); the first is what a --policy sees as `image`"),
    noise: float = typer.Option(0.0, help="std of Gaussian noise added to the expert's actions"),
    seed: int = typer.Option(0, help="seed: same seed, same episodes; a rerun skips episodes already recorded for this task, "
                                     "seed and number", callback=at_least(0)),
    max_steps: Optional[int] = typer.Option(None, help="step limit per episode (default: Meta-World's 500, 100 in hand scenes, "
                                                        "150 in scanned scenes)"),
    explore: float = typer.Option(0.0, help="play data: probability that each 16-step segment is one held random action"),
    after_success: int = typer.Option(0, help="keep recording this many steps after the first success"),
    policy: Optional[Path] = typer.Option(None, help="a finetuning run that drives instead of the scripted expert: "
                                                      "its own rollouts, failures included (world-model data)"),
    env: str = typer.Option("metaworld", help="metaworld; hand (or hand/TASKS): the dexterous hand scenes; scan/SCENE: a "
                                              "tabletop scene directory (wam scan build, wam scan cousins); or dream/RUN: the "
                                              "policy acts in that finetuned world's dreams and the dreamed episodes are "
                                              "recorded (needs --policy)"),
    embodiment: str = typer.Option("robot", help="in hand scenes: robot (Shadow-hand demos) or human (egocentric human "
                                                 "video with its hand track, EgoDex's layout read back; needs --no-actions)"),
    egodex: Optional[Path] = typer.Option(None, help="human video: also keep the EgoDex-layout files (<i>.mp4 + <i>.hdf5) here"),
    ray: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP),
) -> None:
    """Run scripted experts (or a finetuned policy) on Meta-World or hand tasks, a scripted human in the hand scenes, or a
    policy in dreams, and record the episodes (resumable)."""
    from wam.envs.collect import CollectConfig
    from wam.envs.collect import collect as run_collect
    from wam.errors import WamError
    from wam.policy import PolicyActors

    try:
        if env.startswith("hand/"):
            env, tasks = "hand", tasks or env.removeprefix("hand/")
        if not tasks:
            raise ValueError("give the tasks to collect with --tasks (or --env hand/TASKS)")
        names = tuple(t.strip() for t in tasks.split(",") if t.strip()) if env != "metaworld" else (tasks,)
        views = tuple(c.strip() for c in cameras.split(",") if c.strip()) if cameras else None
        steps = max_steps if max_steps is not None else (100 if env == "hand" else 150 if env.startswith("scan/") else 500)
        config = CollectConfig(names, episodes, out, not no_actions, workers, size, views, noise, seed, steps,
                               explore=explore, after_success=after_success,
                               policy=None if policy is None else PolicyActors(policy), env=env, embodiment=embodiment,
                               egodex=egodex, ray=ray)
        result = run_collect(config)
    except (ValueError, WamError) as err:
        fail(str(err))
    console.print(
        f"added {result.added} episodes ({result.skipped} already there), {result.frames} frames in "
        f"{result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s), {result.successes}/{result.added} successful"
    )


CAMERAS_HELP = ("camera views, in slot order, by key or short name (top,wrist); 'a|b' where datasets name one view "
                "differently (default: the data's own cameras)")
FIT_HELP = "how frames of another size or aspect reach the model's square resolution: pad, crop or stretch"
NORMALIZE_HELP = "how the data's statistics (meta/stats.json) scale state and action: mean_std, min_max or none"


@app.command(context_settings={"allow_extra_args": True})
def pretrain(
    ctx: typer.Context,
    data: list[Path] = typer.Option(..., help="dataset directories (video, robot or both): --data A B or --data A --data B"),
    out: Path = typer.Option(..., help="run directory", callback=run_out("pretrain")),
    preset: str = typer.Option("cpu", help="tiny (seconds), cpu (~30 min on 2 cores) or gpu"),
    steps: Optional[int] = typer.Option(None, help="world-model steps (the tokenizer's scale with them)", callback=at_least(1)),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    seed: Optional[int] = typer.Option(None, help="seed for data order, held-out split and initialisation",
                                       callback=at_least(0)),
    init_from: Optional[Path] = typer.Option(None, help="continue this finished pretraining run: its tokenizer as it is, "
                                             "its world model for --steps more steps on a fresh schedule (longer or "
                                             "continued pretraining, e.g. on new video)"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--fp32", help=BF16_HELP),
    size: Optional[int] = typer.Option(None, help="the model's square resolution in pixels (64, 96, 128; default: the preset's)",
                                       callback=in_range(16, 1024)),
    cameras: Optional[str] = typer.Option(None, help=CAMERAS_HELP),
    fit: str = typer.Option("pad", help=FIT_HELP),
    frame_seconds: Optional[float] = typer.Option(None, help="seconds between model frames, so datasets at different fps "
                                                  "share one time base (default: the preset's stride in steps, one fps)"),
    normalize: str = typer.Option("mean_std", help=NORMALIZE_HELP),
) -> None:
    """Stage one: train the frame tokenizer, then the world model with latent actions, on video."""
    from dataclasses import replace

    from wam.config import pretrain_preset
    from wam.errors import WamError
    from wam.runs import load_run, run_kind
    from wam.train.pretrain import pretrain as run_pretrain

    extra = [Path(a) for a in ctx.args if not a.startswith("-")]
    unknown = [a for a in ctx.args if a.startswith("-")]
    if unknown:
        fail(f"unknown option(s): {' '.join(unknown)}")
    if resume:
        resumable(out / "pretrain.json", "a pretraining run")
    readable_weights("--init-from", init_from)
    try:
        from wam.data.spec import parse_cameras

        config = pretrain_preset(preset).with_steps(steps).with_bf16(bf16).with_image_size(size)
        config = replace(config, cameras=parse_cameras(cameras), fit=fit, frame_seconds=frame_seconds, normalize=normalize)
        if seed is not None:
            config = replace(config, seed=seed, tokenizer_train=replace(config.tokenizer_train, seed=seed),
                             world_train=replace(config.world_train, seed=seed))
        if resume and steps is not None and run_kind(out) == "pretrain":
            saved = load_run(out, "pretrain").config.world_train.steps
            if saved != steps:
                fail(f"{out} was configured for {saved} world-model steps; --resume continues it exactly as configured "
                      "(its learning-rate schedule depends on the total), so drop --steps or start a new --out")
        with removed_on_failure(out):
            summary = run_pretrain(list(data) + extra, out, config, resume=resume, init_from=init_from)
    except (ValueError, WamError) as err:
        fail(str(err))
    if distributed_rank() == 0:
        console.print_json(json.dumps(summary))


@app.command("eval-world")
def eval_world(
    run: Path = typer.Argument(..., help="pretraining run directory"),
    data: list[Path] = typer.Option(..., help="dataset directories to evaluate on (held-out episodes when it is the run's own data)"),
    out: Optional[Path] = typer.Option(None, help="where results and videos go (default RUN/eval_world)", callback=directory_out),
    samples: int = typer.Option(48, help="rollout windows to evaluate", callback=at_least(1)),
    context: int = typer.Option(4, help="real frames given before dreaming", callback=at_least(1)),
    videos: int = typer.Option(4, help="side-by-side videos to write", callback=at_least(0)),
    seed: int = typer.Option(0, callback=at_least(0)),
) -> None:
    """Next-frame and 8/16-step rollout quality beside copy-last-frame and zeroed/shuffled actions."""
    from wam.errors import WamError
    from wam.train.eval_world import EvalWorldConfig, evaluate_world

    try:
        results = evaluate_world(run, list(data), out or run / "eval_world", EvalWorldConfig(context, (1, 8, 16), samples, videos, seed))
    except (ValueError, WamError) as err:
        fail(str(err))
    table = Table(title=f"world model {run}: PSNR dB at step h (SSIM)")
    table.add_column("method")
    for h in results["horizons"]:
        table.add_column(f"h={h}")
    for method, scores in results["methods"].items():
        table.add_row(method, *[f"{scores[f'h{h}']['psnr_at']:.2f} ({scores[f'h{h}']['ssim_at']:.3f})" for h in results["horizons"]])
    console.print(table)
    console.print(f"tokenizer ceiling {results['tokenizer_ceiling_psnr']:.2f} dB; {results['summary']}")


@app.command()
def finetune(
    data: list[Path] = typer.Option(..., help="labelled robot dataset directories"),
    out: Path = typer.Option(..., help="run directory", callback=run_out("finetune")),
    pretrained: Optional[Path] = typer.Option(None, help="pretraining run (wam pretrain --out); omit for the from-scratch baseline"),
    video: Optional[list[Path]] = typer.Option(None, help="action-free video datasets to keep mixing in"),
    play: Optional[list[Path]] = typer.Option(None, help="labelled play datasets (exploration, failures): they train the "
                                             "action-conditioned dynamics, reward and success heads, not the policy"),
    preset: str = typer.Option("cpu", help="tiny (seconds), cpu or gpu"),
    steps: Optional[int] = typer.Option(None, help="training steps (default: the preset's)"),
    episodes_per_task: Optional[int] = typer.Option(None, "--episodes-per-task", "-k", help="use K labelled episodes per task"),
    subset_seed: int = typer.Option(0, help="which K episodes", callback=at_least(0)),
    seed: int = typer.Option(0, help="seed for data order and initialisation", callback=at_least(0)),
    task_free_dynamics: bool = typer.Option(False, "--task-free-dynamics", help="the action-conditioned pass (the dream) "
                                            "without the task text, so motion there is explained by the actions"),
    init_from: Optional[Path] = typer.Option(None, help="start from this finetuned WAM's weights (same pretraining): "
                                              "update a world on new data, e.g. rollouts from `wam collect --policy`"),
    augment: int = typer.Option(0, help="train also on this many randomly shifted copies of the robot frames (0: off)"),
    augment_pad: int = typer.Option(4, help="the largest shift of --augment, in pixels"),
    snapshot_every: int = typer.Option(0, help="also keep the weights every N steps: `wam eval --policy RUN@STEP` then "
                                       "evaluates the policy as it was at STEP (0: off)"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--fp32", help=BF16_HELP),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    cameras: Optional[str] = typer.Option(None, help=CAMERAS_HELP),
    fit: str = typer.Option("pad", help=FIT_HELP),
    normalize: str = typer.Option("mean_std", help=NORMALIZE_HELP),
    scratch_size: Optional[int] = typer.Option(None, help="without --pretrained: the model's resolution (default: the preset's)",
                                               callback=in_range(16, 1024)),
) -> None:
    """Stage two: finetune a pretrained world model into a World Action Model on labelled robot episodes."""
    from dataclasses import replace

    from wam.config import finetune_preset
    from wam.errors import WamError
    from wam.train.finetune import finetune as run_finetune

    if resume:
        resumable(out / "finetune.json", "a finetuning run")
    readable_weights("--pretrained", pretrained)
    readable_weights("--init-from", init_from)
    try:
        config = finetune_preset(preset)
        train_cfg = replace(train_config(config.train, seed, steps), snapshot_every=snapshot_every,
                            **({} if bf16 is None else {"bf16": bf16}))
        from wam.data.spec import parse_cameras

        config = replace(config, train=train_cfg, episodes_per_task=episodes_per_task, subset_seed=subset_seed, seed=seed,
                         task_free_dynamics=task_free_dynamics, augment_copies=augment, augment_pad=augment_pad,
                         cameras=parse_cameras(cameras), fit=fit, normalize=normalize, scratch_image_size=scratch_size)
        with removed_on_failure(out):
            summary = run_finetune(pretrained, list(data), out, config, video=list(video or []), resume=resume,
                                   play=list(play or []), init_from=init_from)
    except (ValueError, WamError) as err:
        fail(str(err))
    if distributed_rank() == 0:
        console.print_json(json.dumps(summary))


@app.command("eval")
def eval_policy(
    policy: Path = typer.Option(..., help="finetuning run directory (wam finetune --out)"),
    tasks: str = typer.Option("mt10", help="mt10, mt50 or a comma list"),
    episodes: int = typer.Option(50, help="episodes per task"),
    workers: int = typer.Option(1, help="parallel worker processes (one per core is best)", callback=worker_count),
    seed: int = typer.Option(0, help="evaluation seed: same seed, same scenes, same result", callback=at_least(0)),
    max_steps: int = typer.Option(300, help="step limit per episode"),
    video_out: Optional[Path] = typer.Option(None, help="write the first episode of each task as mp4 and GIF here",
                                             callback=directory_out),
    out: Optional[Path] = typer.Option(None, help="write the results JSON here", callback=file_out),
    env: str = typer.Option("metaworld", help="metaworld (the simulator), hand (the hand scenes, Shadow hand) or dream/RUN "
                                              "(inside a finetuned WAM's world model)"),
    dream_start: str = typer.Option("scene", help="dreams start from the simulator's first frame of each evaluation scene "
                                    "(scene) or from first frames of the world's robot data (data)"),
    dream_student: bool = typer.Option(False, "--dream-student", help="dream with the world run's distilled student "
                                       "(wam distill): many times faster a step"),
    dream_success_hold: int = typer.Option(1, help="a dream's task is done when its success head agrees this many model "
                                           "steps in a row"),
    dream_judge: bool = typer.Option(False, "--dream-judge", help="the dream's verdict from the world's success judge "
                                     "(wam judge) reading each predicted frame"),
    dream_verdict: str = typer.Option("any", help="any: a dream succeeds as soon as its verdict says so; final: it runs "
                                      "to --max-steps and is judged on its last model steps"),
    dream_drift_guard: bool = typer.Option(False, "--dream-drift-guard", help="end a dream undecided (never a success, "
                                           "counted apart) once its frames stop following the actions (wam drift-guard)"),
    execute: Optional[int] = typer.Option(None, help="actions run from each predicted chunk before predicting again "
                                          "(default: the run's)"),
    ensemble: Optional[float] = typer.Option(None, help="temporal ensembling instead: a prediction every frame, "
                                             "overlapping chunks averaged with weights exp(-m * age), m = this"),
    ray: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP),
) -> None:
    """Run a policy in Meta-World, hand-scene (or dream) episodes: success per task (95% Wilson), length, control rate."""
    from wam.config import DreamSettings
    from wam.dojo.evaluate import EvalConfig, evaluate_policy
    from wam.envs.tasks import resolve_tasks
    from wam.errors import WamError

    try:
        try:
            names = tuple(resolve_tasks(tasks))
        except ValueError:
            if env == "metaworld":
                raise
            names = tuple(t.strip() for t in tasks.split(",") if t.strip())  # hand tasks, or a dream's instructions
        config = EvalConfig(policy, names, episodes, workers, seed, max_steps, video_out=video_out, env=env,
                            dream_start=dream_start, execute=execute, ensemble=ensemble, ray=ray,
                            dream=DreamSettings(student=dream_student, success_hold=dream_success_hold, judge=dream_judge,
                                                verdict=dream_verdict, drift_guard=dream_drift_guard))
        results = evaluate_policy(config)
    except (ValueError, WamError) as err:
        fail(str(err))
    if out is not None:  # the results first: nothing after the evaluation may lose them
        write_json(out, results)
    table = Table(title=f"policy {policy}: {episodes} episodes per task")
    for column in ("task", "success", "95% Wilson", "mean length"):
        table.add_column(column)
    for task, r in results["tasks"].items():
        table.add_row(task, f"{r['success_rate']:.2f}", f"[{r['wilson95'][0]:.2f}, {r['wilson95'][1]:.2f}]", f"{r['mean_length']:.0f}")
    console.print(table)
    console.print(f"mean success {results['mean_success']:.3f}; control {results['policy_steps_per_s']:.0f} policy steps/s; "
                  f"{results['env_steps_per_s']:.0f} env steps/s overall")


register_dojo_commands(app)
register_hand_commands(app)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), help="where the demo writes its data, runs and report", callback=directory_out),
    episodes: int = typer.Option(5, help="labelled robot episodes per task"),
    video_episodes: int = typer.Option(40, help="action-free video episodes per task"),
    eval_episodes: int = typer.Option(10, help="evaluation episodes per task and method"),
    workers: int = typer.Option(2, help="worker processes for collection and evaluation", callback=worker_count),
    preset: str = typer.Option("demo", help="pretraining and finetuning preset (tiny: seconds, for tests)"),
    max_steps: int = typer.Option(200, help="step limit per evaluation episode"),
) -> None:
    """The main job on a small built-in default: collect, pretrain, dream, finetune, evaluate, report."""
    from wam.demo import DemoConfig, run_demo
    from wam.errors import WamError

    try:
        report = run_demo(DemoConfig(out=out, episodes=episodes, video_episodes=video_episodes, eval_episodes=eval_episodes,
                                     workers=workers, pretrain_preset=preset, finetune_preset=preset,
                                     max_steps=max_steps))
    except (ValueError, WamError) as err:
        fail(str(err))
    console.print(f"report: {report}")
