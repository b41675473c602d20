"""Checks of command-line values, shared by every `wam` command.

Each check refuses a bad value before any work starts, with one line that names the option
and the value (`Invalid value for '--episodes': 0 ...`, a usage error: exit status 2). Checks
of one value are typer callbacks, `typer.Option(1, callback=at_least(1))`; checks that need
the directory's contents or two options at once (`--out` with `--resume`) are plain calls at
the top of a command, raising the same error.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer

WHAT = {"dataset": "a dataset", "pretrain": "a pretraining run", "finetune": "a finetuned WAM", "rl": "an RL run"}


def bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{option}'")


# -- numbers --------------------------------------------------------------------------------------
def at_least(low: float):
    """A count or size of at least `low` (None, an option left out, passes)."""

    def check(value):
        if value is not None and value < low:
            raise typer.BadParameter(f"{value} (must be at least {low})")
        return value

    return check


def in_range(low: float, high: float):
    def check(value):
        if value is not None and not low <= value <= high:
            raise typer.BadParameter(f"{value} (must be in {low}..{high})")
        return value

    return check


def worker_count(value: int) -> int:
    """Worker processes: at least one, at most four per core (each holds a simulator or a model)."""
    return in_range(1, 4 * (os.cpu_count() or 1))(value)


def positive(value):
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} (must be more than 0)")
    return value


# -- paths ----------------------------------------------------------------------------------------
def what_is(path: Path) -> str | None:
    """What a directory holds as far as wam knows: 'dataset', 'pretrain', 'finetune', 'rl' or None."""
    from wam.runs import run_kind

    if (path / "rl.json").is_file():
        return "rl"
    return run_kind(path) or ("dataset" if (path / "meta" / "info.json").is_file() else None)


def _no_file_above(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{path}: {parent} is a file, not a directory")
            return


def directory_out(path: Path | None) -> Path | None:
    """A directory to write into (created if missing): not a file."""
    if path is not None:
        if path.exists() and not path.is_dir():
            raise typer.BadParameter(f"{path} is a file, not a directory")
        _no_file_above(path)
    return path


def file_out(path: Path | None) -> Path | None:
    """A file to write (replaced if there): not a directory, and no file where a parent directory goes."""
    if path is not None:
        if path.is_dir():
            raise typer.BadParameter(f"{path} is a directory; give a file name")
        _no_file_above(path)
    return path


def dataset_out(path: Path) -> Path:
    """A dataset to create or add to: not a file, not a run directory."""
    directory_out(path)
    found = what_is(path) if path.is_dir() else None
    if found not in (None, "dataset"):
        raise typer.BadParameter(f"{path} is {WHAT[found]}, not a dataset; give a dataset directory")
    return path


def run_out(kind: str):
    """A run directory of `kind` ('pretrain', 'finetune' or 'rl'): not a file, a dataset or another kind of run."""

    def check(path: Path) -> Path:
        directory_out(path)
        found = what_is(path) if path.is_dir() else None
        if found not in (None, kind):
            raise typer.BadParameter(f"{path} is {WHAT[found]}, not {WHAT[kind]}; choose another directory")
        return path

    return check


def resumable(marker: Path, what: str) -> None:
    """--resume needs something to resume: `marker` is the file or directory a started run leaves."""
    if not marker.exists():
        raise bad("--resume", f"nothing to resume: {marker} does not exist; drop --resume to start {what}")


def readable_weights(option: str, run: Path | None) -> None:
    """Every checkpoint of a run another run starts from reads, so damage is named under the source before the
    new run copies it."""
    from wam.train.checkpoint import resolve

    if run is None:
        return
    for part in ("tokenizer", "world_model", "wam"):
        found = resolve(Path(run) / part / "checkpoint")
        if found is None or not (found / "model.safetensors").is_file():
            continue  # the run's own loader names what is missing
        try:
            from safetensors import safe_open

            with safe_open(str(found / "model.safetensors"), "pt") as weights:
                weights.keys()
        except Exception as err:  # SafetensorError, OSError, ... for a damaged file
            raise bad(option, f"{found / 'model.safetensors'}: unreadable ({type(err).__name__}: {err})") from None


@contextmanager
def removed_on_failure(out: Path):
    """A run directory this command creates is removed again if the command fails before its training wrote a
    checkpoint (a stage's `checkpoint` beside its `metrics.jsonl`; weights copied from another run do not count),
    so that the retry is not refused as 'a run already exists here'."""
    existed = out.exists()
    try:
        yield
    except Exception:
        trained = any((log.parent / "checkpoint").exists() for log in out.rglob("metrics.jsonl"))
        if not existed and out.is_dir() and not trained:
            shutil.rmtree(out, ignore_errors=True)
        raise


# -- addresses ------------------------------------------------------------------------------------
def api_url(value: str | None) -> str | None:
    """A server address: http(s)://host[:port]; a trailing /v1 (as `wam serve` prints it) is dropped."""
    if value is None:
        return None
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as err:
        raise typer.BadParameter(f"{value!r} ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(f"{value!r} is not an http(s) address, e.g. http://127.0.0.1:8000")
    path = parts.path.rstrip("/").removesuffix("/v1")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def db_url(value: str | None) -> str | None:
    """A SQLAlchemy database URL whose dialect is known (whether it opens is learnt by opening it)."""
    if value is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(value).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise typer.BadParameter(f"{value!r} is not a database URL ({err}); e.g. sqlite:////path/api.db or "
                                 "postgresql+psycopg://user@host/db") from None
    return value


def shown_db(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparseable: nothing to hide
        return url
