"""`wam data`: inspect, check, export and convert datasets; each command a thin call into wam.data (and wam.ego)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from wam.cli.checks import at_least, dataset_out, file_out, in_range
from wam.cli.common import console, errors, fail

data_app = typer.Typer(help="Inspect, check and export datasets (LeRobot v3 layout).", no_args_is_help=True)


def _open(path: Path):
    from wam.data import Dataset, DatasetError

    try:
        return Dataset(path)
    except DatasetError as err:
        fail(str(err))


@data_app.command("info")
def data_info(path: Path, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Episodes, frames, fps, features, tasks, labelled episodes and size on disk, from the metadata, plus a quick look
    at every file's structure (parquet footers, mp4 boxes): exit 1 naming each damaged file. Quick on any size;
    `wam data check` decodes every frame."""
    from wam.data.check import quick_check
    from wam.data.summary import dataset_summary

    summary = dataset_summary(_open(path))
    damaged = quick_check(path)
    summary["damaged_files"] = [{"path": str(p.path), "reason": p.reason} for p in damaged]
    if as_json:
        print(json.dumps(summary, indent=2))
        if damaged:
            raise typer.Exit(1)
        return
    table = Table(title=f"dataset {path}", show_header=False)
    for key in ("episodes", "frames", "fps", "duration_s", "episodes_with_actions", "episodes_without_actions", "success_rate", "size_mb"):
        table.add_row(key, str(summary[key]))
    for key, spec in summary["features"].items():
        table.add_row(f"feature {key}", f"{spec['dtype']} {tuple(spec['shape'])}")
    for key, camera in summary["cameras"].items():
        table.add_row(f"camera {key}", camera)
    table.add_row("reward fields", ", ".join(summary["reward_fields"]) or "none")
    for task in summary["tasks"]:
        table.add_row("task", f"{task['task']} ({task['episodes']} episodes)")
    console.print(table)
    _exit_if_damaged(damaged)


def _exit_if_damaged(damaged: list) -> None:
    for problem in damaged:
        console.print(str(problem), highlight=False, soft_wrap=True)
    if damaged:
        console.print(f"{len(damaged)} damaged file(s): `wam data check` reports what each breaks", highlight=False)
        raise typer.Exit(1)


@data_app.command("check")
def data_check(path: Path) -> None:
    """Read every file; exit 1 listing each bad file with its reason, 0 when all is well."""
    from wam.data.check import check_dataset

    problems = check_dataset(path)
    for problem in problems:
        console.print(str(problem), highlight=False, soft_wrap=True)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        console.print(f"[red]{len(errors)} bad file(s)[/red]")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green] {path}" + (f" ({len(problems)} warning(s))" if problems else ""))


@data_app.command("export")
def data_export(
    path: Path,
    episode: int = typer.Option(..., help="episode index"),
    out: Path = typer.Option(..., help="FILE.mp4 or FILE.gif", callback=file_out),
    camera: Optional[str] = typer.Option(None, help="camera key (default: the first)"),
    scale: int = typer.Option(4, help="upscale factor for viewing", callback=in_range(1, 16)),
) -> None:
    """Write one episode's video to an mp4 or GIF for looking at."""
    from wam.data.export import export_episode
    from wam.errors import DatasetError

    try:
        export_episode(_open(path), episode, out, camera, scale)
    except DatasetError as err:
        fail(str(err))
    console.print(f"wrote {out}")


@data_app.command("filter")
def data_filter(
    path: Path,
    out: Path = typer.Option(..., help="the new dataset to write", callback=dataset_out),
    success: bool = typer.Option(False, "--success", help="keep only the episodes that reached their task"),
    task: Optional[str] = typer.Option(None, help="keep only the episodes of this task (its text)"),
) -> None:
    """Copy some episodes into a new dataset in the same format: the successful ones, or one task's."""
    from wam.data.subset import copy_episodes
    from wam.errors import DatasetError

    try:
        dataset = _open(path)
        kept = [e.index for e in dataset.episodes if (not success or e.success) and (task is None or e.task == task)]
        if not kept:
            raise DatasetError(f"{path}: no episode matches (success={success}, task={task!r}); nothing written")
        copy_episodes(dataset, kept, out)
    except DatasetError as err:
        fail(str(err))
    console.print(f"kept {len(kept)} of {dataset.num_episodes} episodes in {out}")


EGO_SIZE_HELP = "egodex, dexycb, arctic, hot3d: frame height in pixels (width keeps the aspect ratio; default 128)"
MANO_DIR_HELP = ("arctic, hot3d: the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl (licence-gated, from "
                 "mano.is.tue.mpg.de; default: $WAM_MANO_DIR)")


@data_app.command("convert")
def data_convert(
    src: Path = typer.Argument(..., help="a LeRobot v2.x dataset directory, a robomimic .hdf5/.h5 file, or an EgoDex, "
                                         "DexYCB, ARCTIC or HOT3D-Clips directory"),
    out: Path = typer.Option(..., help="the new wam dataset directory (must not exist yet)"),
    source_format: str = typer.Option("auto", "--format", help="auto, lerobot-v2.1, robomimic, egodex, dexycb, arctic "
                                                                    "or hot3d"),
    task: Optional[str] = typer.Option(None, help="task text for every episode (default: the source's; robomimic: env_name)"),
    fps: Optional[int] = typer.Option(None, help="frame rate (default: the source's; robomimic: control_freq, else 20)",
                                      callback=at_least(1)),
    state_keys: Optional[str] = typer.Option(None, help="robomimic: low-dim obs keys concatenated into observation.state, "
                                             "comma-separated (default: every robot0_* key, sorted)"),
    flip: bool = typer.Option(False, "--flip", help="robomimic: turn images upside down (robosuite renders them "
                                                    "with the origin at the bottom)"),
    demos_succeed: bool = typer.Option(True, "--demos-succeed/--no-demos-succeed",
                                       help="robomimic: every demo ends in success (next.success on its last frame)"),
    size: Optional[int] = typer.Option(None, help=EGO_SIZE_HELP, callback=in_range(2, 4096)),
    mano_dir: Optional[Path] = typer.Option(None, help=MANO_DIR_HELP),
) -> None:
    """Convert a dataset in another format (LeRobot v2.1, robomimic HDF5, EgoDex, DexYCB, ARCTIC, HOT3D) into a new
    wam dataset."""
    keys = [k.strip() for k in state_keys.split(",") if k.strip()] if state_keys is not None else None
    _convert(src, out, source_format, task=task, fps=fps, state_keys=keys, flip=flip, demos_succeed=demos_succeed,
             mano_dir=mano_dir, **({} if size is None else {"size": size}))


@data_app.command("import-ego")
def data_import_ego(
    source_format: str = typer.Argument(..., help="egodex, dexycb, arctic or hot3d"),
    src: Path = typer.Argument(..., help="the dataset's directory (EgoDex: <task>/<i>.mp4 + <i>.hdf5)"),
    out: Path = typer.Option(..., help="the new wam dataset directory (must not exist yet)"),
    size: int = typer.Option(128, help=EGO_SIZE_HELP, callback=in_range(2, 4096)),
    task: Optional[str] = typer.Option(None, help="task text for every episode (default: the source's description)"),
    fps: Optional[int] = typer.Option(None, help="frame rate (default: the video's; dexycb, arctic, hot3d: 30)",
                                      callback=at_least(1)),
    mano_dir: Optional[Path] = typer.Option(None, help=MANO_DIR_HELP),
) -> None:
    """Import human egocentric video with hand tracks: action-free video, the canonical hand track as state."""
    from wam.data.importers import EGO_FORMATS

    if source_format not in EGO_FORMATS:
        fail(f"unknown egocentric format {source_format!r}; expected one of {', '.join(EGO_FORMATS)}")
    _convert(src, out, source_format, task=task, fps=fps, size=size, mano_dir=mano_dir)


def _convert(src: Path, out: Path, source_format: str, **options) -> None:
    from rich.progress import Progress

    from wam.data.importers import convert_dataset
    from wam.errors import WamError

    try:
        with Progress(console=errors, transient=True, disable=not errors.is_terminal) as bar:
            job = bar.add_task("converting episodes", total=None)
            result = convert_dataset(src, out, source_format, **options,
                                     progress=lambda done, total: bar.update(job, completed=done, total=total))
    except (ValueError, WamError) as err:
        fail(str(err))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    cameras = ", ".join(f"{k} {h}x{w}" for k, (h, w) in result.cameras.items()) or "none"
    console.print(f"wrote {out} from {result.format}: {result.episodes} episodes, {result.frames} frames at "
                  f"{result.fps} fps, {len(result.tasks)} task(s), cameras {cameras}", highlight=False, soft_wrap=True)
