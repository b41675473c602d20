"""One results format and one writer for every benchmark: what was measured, and where, when and how.

A result file is JSON with a fixed envelope (`SCHEMA`): the benchmark's name and title, the
command that produced it, the git commit and whether the tree was dirty, the date, the
machine (CPU model, cores, memory, GPU), the library versions, what was planned and what
finished (so a partial run says so), the claims it supports, a table, a plot, and the
benchmark's own `data`. `benchmarks/pages.py` turns each into a page under docs/results/,
the README's claims table and the result blocks of the docs pages, so no figure is typed by
hand. `raw` and `recorded` read a benchmark's raw file and the provenance it recorded, for the
builders in benchmarks/headline.py that turn raw files into this format.

Writes are atomic (a temporary file renamed over the old one): a killed benchmark leaves
the previous complete file, never half of a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

SCHEMA = "wam.result/1"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # the raw files, each in its benchmark's own shape; headline/ in this format
VERSIONED = ("torch", "numpy", "mujoco", "metaworld", "gymnasium", "wam")


@dataclass(frozen=True)
class Claim:
    """One thing a benchmark says about wam, with the number that says it and the bar it is held to."""

    claim: str  # in words, e.g. "pretraining beats training from scratch (MT10, 3 demos a task)"
    value: float
    unit: str  # "points", "x", "actions/s", ... ("" for a plain number)
    target: str  # in words, e.g. ">= +15 points"
    met: bool | None  # None: not decided (a partial run)
    interval: tuple[float, float] | None = None  # 95%, in the value's unit
    note: str = ""  # what the interval is, the sample size, a caveat


@dataclass
class Result:
    benchmark: str  # the file's name: benchmarks/results/headline/<benchmark>.json, docs/results/<benchmark>.md
    title: str
    command: str
    claims: list[Claim] = field(default_factory=list)
    table: dict | None = None  # {"columns": [...], "rows": [[...], ...]}: the page's main table
    plot: str | None = None  # a path relative to the repository root
    planned: int | None = None  # cells (or runs) planned, and finished: a page says "partial" while they differ
    finished: int | None = None
    sources: list[str] = field(default_factory=list)  # raw result files this one is built from
    summary: str = ""  # what is measured and how, in a paragraph
    data: dict = field(default_factory=dict)  # anything else the benchmark keeps
    rank: int = 100  # where its claims come in the README's table (lower first)


def machine() -> dict:
    """The machine this process runs on: what a reader needs to compare a figure."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    if "torch" in sys.modules:  # never import torch just to ask: a page build must stay light
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "gpu": gpu, "host": platform.node(),
            "python": platform.python_version()}


def versions() -> dict:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit(root: Path = ROOT) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def this_command() -> str:
    """The command line that is running, as someone would retype it from the repository root."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def provenance() -> dict:
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **git_commit(),
            "machine": machine(), "versions": versions()}


def envelope(result: Result, recorded: dict | None = None) -> dict:
    """The file's content. `recorded`: provenance as recorded when the figures were measured (for a result built
    from older raw files); default: this process's."""
    status = "complete" if result.planned is None or result.finished == result.planned else "partial"
    body = asdict(result)
    body["claims"] = [asdict(c) | {"interval": list(c.interval) if c.interval else None} for c in result.claims]
    return {"schema": SCHEMA, "status": status, **body, "provenance": recorded or provenance()}


def write_result(path: str | Path, result: Result, recorded: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(envelope(result, recorded), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def raw(name: str) -> dict:
    """A raw result file under benchmarks/results/, as its benchmark wrote it (what benchmarks/headline.py builds from)."""
    return json.loads((RESULTS / name).read_text())


def recorded(name: str, data: dict) -> dict:
    """The provenance of a raw file as it was recorded; what it did not record is None, never guessed."""
    log = subprocess.run(["git", "log", "-1", "--format=%cI %H", "--", f"benchmarks/results/{name}"], cwd=ROOT,
                         capture_output=True, text=True).stdout.split()
    machine = data["machine"] if isinstance(data.get("machine"), dict) else {}
    return {"date": log[0] if log else None, "commit": machine.get("code_commit"), "committed_in": log[1] if log else None,
            "dirty": None, "machine": {"cpu": None, "cores": machine.get("cpus"), "memory_gib": None,
                                       "gpu": None if machine.get("device", "cpu") == "cpu" else machine.get("device"),
                                       "host": machine.get("host"), "python": machine.get("python")},
            "versions": {"torch": machine.get("torch")}}


def points(x: float) -> float:
    """A success rate (or a difference of two) in percentage points, as the claims state them."""
    return round(100 * x, 1)


def read_result(path: str | Path) -> dict:
    """A result file, checked: ValueError naming the file and the field at fault."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON result ({error})") from None
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema is {result.get('schema') if isinstance(result, dict) else None!r}, not {SCHEMA!r}")
    for name in ("benchmark", "title", "command", "claims", "status", "provenance"):
        if name not in result:
            raise ValueError(f"{path}: missing field {name!r}")
    for i, claim in enumerate(result["claims"]):
        missing = {"claim", "value", "unit", "target", "met"} - set(claim)
        if missing:
            raise ValueError(f"{path}: claims[{i}] lacks {sorted(missing)}")
    return result
