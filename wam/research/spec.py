"""A study on disk: what the evaluator owns, what a proposer may change, and what the person asked for.

    STUDY/evaluator.json   frozen at `wam research init`: tasks, env, episodes, the metric, the budget per trial
                           and for the study, and the hidden seeds of the main and holdout evaluations. Its hash
                           is kept in study.json; a study whose evaluator changed refuses to run.
    STUDY/surface.json     the editable surface: each knob of the training recipe a proposer may set, with its
                           range and default (the baseline is every default).
    STUDY/program.md       the person's instructions, for agents (never read by the loop).
    STUDY/ledger.jsonl     every event, appended: trials started, finished, crashed; proposals rejected; keeps.

The guard that matters most lives here: a proposal may only name knobs of the surface, inside their ranges. A
proposal that names what the evaluator owns (seeds, tasks, episodes, the metric, the holdout) is rejected and
logged, whatever its value: autoresearch's users caught an agent "winning" by changing the seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

EVALUATOR_FILE, SURFACE_FILE, STUDY_FILE, PROGRAM_FILE = "evaluator.json", "surface.json", "study.json", "program.md"
EVALUATOR_OWNED = ("seed", "seeds", "holdout_seeds", "tasks", "holdout_tasks", "episodes", "metric", "env", "holdout",
                   "budget", "trial_budget", "repeats", "baseline_repeats")


class StudyError(ValueError):
    """A study directory, a proposal or a trial that cannot go on, naming what is at fault."""


class ProposalRejected(StudyError):
    """A proposal that touched what the evaluator owns, named a knob the surface has not, or left its range."""


@dataclass(frozen=True)
class Knob:
    """One setting a proposer may change: float or int in [low, high] (log scale if `log`), or one of `choices`."""

    name: str
    kind: str  # "float", "int" or "choice"
    default: float | int | str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def check(self, value) -> None:
        if self.kind == "choice":
            if value not in self.choices:
                raise ProposalRejected(f"knob {self.name!r}: {value!r} is not one of {list(self.choices)}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProposalRejected(f"knob {self.name!r} takes a number, got {value!r}")
        if self.kind == "int" and int(value) != value:
            raise ProposalRejected(f"knob {self.name!r} takes an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ProposalRejected(f"knob {self.name!r}: {value!r} is outside [{self.low}, {self.high}]")


@dataclass(frozen=True)
class EvaluatorSpec:
    """What the evaluator owns; proposers never see `seeds` or `holdout_seeds`."""

    kind: str  # "recipe" (finetune + evaluate), "toy" (a test problem with a known optimum)
    tasks: tuple[str, ...] = ()
    env: str = "metaworld"
    episodes: int = 10  # per task, per evaluation
    metric: str = "success_rate"
    seeds: tuple[int, ...] = ()  # the main evaluation's, drawn at init
    holdout_tasks: tuple[str, ...] = ()  # reported only as pass/fail (default: the main tasks on other seeds)
    holdout_seeds: tuple[int, ...] = ()
    trial_budget: dict = field(default_factory=dict)  # e.g. {"steps": 300, "seconds": 600}
    budget: dict = field(default_factory=dict)  # the study's: {"trials": 20} and/or {"seconds": 7200}
    repeats: int = 1  # training seeds a trial is run with
    baseline_repeats: int = 3  # the default config's runs that measure the noise floor
    options: dict = field(default_factory=dict)  # the kind's own settings (data paths, preset, robots, fleet URL)


def _atomic_write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def init_study(directory: str | Path, evaluator: EvaluatorSpec, knobs: list[Knob], program: str = "") -> Path:
    """Write a new study; hidden seeds are drawn here (from the OS, not from anything a proposer can see)."""
    directory = Path(directory)
    if (directory / STUDY_FILE).exists():
        raise StudyError(f"{directory}: a study is already there; resume it with `wam research run {directory}`")
    directory.mkdir(parents=True, exist_ok=True)
    rng = secrets.SystemRandom()
    if not evaluator.seeds:
        evaluator = EvaluatorSpec(**{**asdict(evaluator), "seeds": (rng.randrange(10**6, 2**30),)})
    if not evaluator.holdout_seeds:
        evaluator = EvaluatorSpec(**{**asdict(evaluator), "holdout_seeds": (rng.randrange(10**6, 2**30),)})
    names = [k.name for k in knobs]
    if len(set(names)) != len(names):
        raise StudyError(f"surface: knob names repeat: {names}")
    for knob in knobs:
        if knob.name in EVALUATOR_OWNED:
            raise StudyError(f"surface: {knob.name!r} belongs to the evaluator and cannot be a knob")
        knob.check(knob.default)
    evaluator_payload = asdict(evaluator)
    _atomic_write(directory / EVALUATOR_FILE, json.dumps(evaluator_payload, indent=1))
    _atomic_write(directory / SURFACE_FILE, json.dumps([asdict(k) for k in knobs], indent=1))
    if not (directory / PROGRAM_FILE).exists():
        _atomic_write(directory / PROGRAM_FILE, program or "# Instructions\n\nImprove the metric; keep what beats the "
                                                           "noise floor.\n")
    _atomic_write(directory / STUDY_FILE, json.dumps({"format": "wam-study", "version": 1, "name": directory.name,
                                                      "evaluator_hash": digest(evaluator_payload)}, indent=1))
    return directory


@dataclass
class Study:
    directory: Path
    evaluator: EvaluatorSpec
    knobs: dict[str, Knob]

    @property
    def baseline(self) -> dict:
        return {name: knob.default for name, knob in self.knobs.items()}

    def check_proposal(self, changes: dict) -> dict:
        """The full config a proposal makes (defaults for what it leaves out), or ProposalRejected naming the key."""
        if not isinstance(changes, dict):
            raise ProposalRejected(f"a proposal is a mapping of knob names to values, got {type(changes).__name__}")
        for key in changes:
            if key in EVALUATOR_OWNED or key.split(".")[0] in EVALUATOR_OWNED:
                raise ProposalRejected(f"{key!r} belongs to the evaluator (seeds, tasks, episodes, the metric, the "
                                       "holdout and the budgets are fixed when the study is made)")
            if key not in self.knobs:
                raise ProposalRejected(f"{key!r} is not a knob of this study; knobs: {sorted(self.knobs)}")
            self.knobs[key].check(changes[key])
        return {**self.baseline, **changes}


def load_study(directory: str | Path) -> Study:
    directory = Path(directory)
    if not (directory / STUDY_FILE).is_file():
        raise StudyError(f"{directory}: no {STUDY_FILE} (make one with `wam research init`)")
    meta = json.loads((directory / STUDY_FILE).read_text())
    try:
        payload = json.loads((directory / EVALUATOR_FILE).read_text())
        knobs = [Knob(**{**k, "choices": tuple(k.get("choices", ()))}) for k in json.loads((directory / SURFACE_FILE).read_text())]
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise StudyError(f"{directory}: cannot read the evaluator or the surface ({error})") from None
    if digest(payload) != meta.get("evaluator_hash"):
        raise StudyError(f"{directory / EVALUATOR_FILE} changed after the study was made: the evaluator is frozen "
                         "(start a new study to change it)")
    evaluator = EvaluatorSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()})
    return Study(directory, evaluator, {k.name: k for k in knobs})
