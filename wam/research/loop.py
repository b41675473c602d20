"""The unattended loop: measure the noise floor, then propose, check, run, keep or not, until the budget is spent.

1. The baseline (every knob at its default) runs `baseline_repeats` times with different training seeds; the spread
   of its scores is the noise floor sigma (and of its holdout scores, the holdout's).
2. Each trial runs its config `repeats` times with training seeds no other trial used, and is kept only if
   - its mean beats the incumbent's (the last kept config, first the baseline) by more than
     2 sigma sqrt(1/n + 1/n_incumbent), the 2-sigma bar on a difference of two means; and
   - its holdout score is not worse than the incumbent's by more than the same bar on the holdout (the holdout is
     only ever reported as pass or fail); and
   - the proposal named only knobs of the surface, inside their ranges (else it never ran: rejected and logged).
3. Everything is an append to `ledger.jsonl`, flushed and synced line by line. A killed study resumes from it: a
   trial that was running when the study (or the trial, or a server it used) died is recorded as crashed, and the
   loop goes on. A crashing trial is recorded with its error and does not stop the study. Kept configs are written
   to `kept/<trial>.json` with the command that reproduces them.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wam.research.proposers import OptunaProposer, Proposer, QueueProposer
from wam.research.runners import Runner, make_runner
from wam.research.spec import ProposalRejected, Study, StudyError, load_study

LEDGER = "ledger.jsonl"


class Ledger:
    """Append-only JSON lines; a line cut short by a kill is skipped on reading."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LEDGER

    def append(self, event: dict) -> None:
        with open(self.path, "a") as stream:
            stream.write(json.dumps({"time": time.time(), **event}) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        events = []
        for line in self.path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events


@dataclass
class Trial:
    trial: int
    config: dict
    source: str
    runs: dict = field(default_factory=dict)  # repeat -> {"metric", "holdout", ...} or {"crashed": error}
    decision: dict | None = None

    def scores(self, key: str = "metric") -> list[float]:
        return [r[key] for r in self.runs.values() if key in r]

    @property
    def mean(self) -> float | None:
        scores = self.scores()
        return float(np.mean(scores)) if scores else None


@dataclass
class State:
    """What the ledger says has happened."""

    trials: dict[int, Trial]
    rejected: list[dict]
    running: list[tuple[int, int]]  # (trial, repeat) started and never ended
    seconds: float

    @property
    def baseline(self) -> Trial | None:
        return self.trials.get(0)

    def noise_floor(self, key: str = "metric") -> float | None:
        scores = self.baseline.scores(key) if self.baseline else []
        return float(np.std(scores, ddof=1)) if len(scores) >= 2 else None

    @property
    def incumbent(self) -> Trial | None:
        kept = [t for t in self.trials.values() if t.decision and t.decision.get("kept")]
        return kept[-1] if kept else self.baseline

    @property
    def proposed(self) -> int:
        return len([t for t in self.trials if t > 0]) + len(self.rejected)


def replay(events: list[dict]) -> State:
    trials: dict[int, Trial] = {}
    rejected, started = [], {}
    seconds = 0.0
    for event in events:
        kind = event["event"]
        if kind == "trial":
            trials[event["trial"]] = Trial(event["trial"], event["config"], event.get("source", ""))
        elif kind == "started":
            started[(event["trial"], event["repeat"])] = event
        elif kind in ("finished", "crashed"):
            started.pop((event["trial"], event["repeat"]), None)
            result = {k: v for k, v in event.items() if k not in ("event", "trial", "repeat", "time")}
            trials[event["trial"]].runs[event["repeat"]] = result
            seconds += float(event.get("seconds", 0.0))
        elif kind == "decision":
            trials[event["trial"]].decision = event
        elif kind == "reverted":
            trials[event["trial"]].decision = {**(trials[event["trial"]].decision or {}), "kept": False,
                                               "reason": f"reverted ({event.get('why', '')})"}
        elif kind == "rejected":
            rejected.append(event)
    return State(trials, rejected, sorted(started), seconds)


def training_seed(study: Study, trial: int, repeat: int) -> int:
    """Fresh training seeds for every run: the baseline's first, then each trial's own."""
    if trial == 0:
        return repeat
    return study.evaluator.baseline_repeats + (trial - 1) * study.evaluator.repeats + repeat


def least_noise(study: Study) -> float:
    """The smallest noise floor a success rate can have: half a binomial standard error at p = 0.5 over the episodes
    one evaluation runs. Three baseline runs that all score 0 (or all 1) measure no spread, not no noise."""
    evaluator = study.evaluator
    if evaluator.kind != "recipe" or evaluator.metric != "success_rate":
        return 0.0
    episodes = evaluator.episodes * max(len(evaluator.tasks), 1) * max(len(evaluator.seeds), 1)
    return 0.5 / np.sqrt(episodes)


def decide(state: State, trial: Trial, least: float = 0.0) -> dict:
    """Keep or not, with the figures behind the decision (`least`: the smallest noise floor believed)."""
    incumbent = state.incumbent
    sigma, sigma_holdout = state.noise_floor("metric"), state.noise_floor("holdout")
    if sigma is None:
        raise StudyError("no noise floor: the baseline needs at least two finished runs")
    sigma = max(sigma, least)
    sigma_holdout = max(sigma_holdout if sigma_holdout is not None else sigma, least)
    n, n_inc = len(trial.scores()), len(incumbent.scores())
    if n == 0:
        return {"kept": False, "reason": "crashed"}
    bar = 2 * sigma * np.sqrt(1 / n + 1 / n_inc)
    gain = trial.mean - incumbent.mean
    holdout_gap = float(np.mean(trial.scores("holdout")) - np.mean(incumbent.scores("holdout")))
    holdout_bar = 2 * sigma_holdout * np.sqrt(1 / n + 1 / n_inc)
    holdout_pass = holdout_gap >= -holdout_bar
    kept = bool(gain > bar and holdout_pass)
    reason = "kept" if kept else ("below the noise floor" if gain <= bar else "holdout failed")
    return {"kept": kept, "reason": reason, "gain": float(gain), "bar": float(bar), "noise_floor": sigma,
            "incumbent": incumbent.trial, "holdout": "pass" if holdout_pass else "fail"}


def budget_left(study: Study, state: State) -> bool:
    budget = study.evaluator.budget
    if "trials" in budget and state.proposed >= int(budget["trials"]):
        return False
    if "seconds" in budget and state.seconds >= float(budget["seconds"]):
        return False
    return True


def _run(study: Study, runner: Runner, ledger: Ledger, trial: Trial, repeat: int) -> None:
    seed = training_seed(study, trial.trial, repeat)
    ledger.append({"event": "started", "trial": trial.trial, "repeat": repeat, "seed": seed, "pid": os.getpid()})
    start = time.perf_counter()
    out = study.directory / "trials" / f"trial{trial.trial:04d}-r{repeat}"
    try:
        result = runner.run(trial.config, seed, out)
    except Exception as error:  # a trial that crashes is a result, not the end of the study
        ledger.append({"event": "crashed", "trial": trial.trial, "repeat": repeat, "seconds": time.perf_counter() - start,
                       "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=5)})
        return
    ledger.append({"event": "finished", "trial": trial.trial, "repeat": repeat, "seconds": time.perf_counter() - start,
                   **result})


def make_proposer(study: Study, kind: str, storage: str | None = None) -> Proposer:
    if kind in ("tpe", "cmaes", "optuna"):
        return OptunaProposer(study, "tpe" if kind == "optuna" else kind, storage)
    if kind == "queue":
        taken = len([t for t in replay(Ledger(study.directory).events()).trials.values() if t.source == "queue"])
        return QueueProposer(study, taken)
    raise StudyError(f"proposer must be optuna, tpe, cmaes or queue, got {kind!r}")


def run_study(directory: str | Path, proposer: Proposer | str = "optuna", runner: Runner | None = None,
              max_trials: int | None = None, on_trial=None) -> State:
    """Run (or resume) the study until its budget, `max_trials` more trials, or the proposer's end."""
    study = load_study(directory)
    ledger = Ledger(study.directory)
    runner = runner or make_runner(study.evaluator)
    proposer = make_proposer(study, proposer) if isinstance(proposer, str) else proposer
    source = getattr(proposer, "name", type(proposer).__name__)
    state = replay(ledger.events())
    for trial, repeat in state.running:
        ledger.append({"event": "crashed", "trial": trial, "repeat": repeat, "seconds": 0.0,
                       "error": "interrupted: the study, the trial or a server it used stopped while it ran"})
    state = replay(ledger.events())
    for trial in [t for t in state.trials.values() if t.trial > 0 and t.decision is None]:
        for repeat in range(study.evaluator.repeats):  # repeats the kill never let start
            if repeat not in trial.runs:
                ledger.append({"event": "crashed", "trial": trial.trial, "repeat": repeat, "seconds": 0.0,
                               "error": "interrupted before it started"})
        state = replay(ledger.events())
        if state.noise_floor() is not None:
            ledger.append({"event": "decision", "trial": trial.trial,
                           **decide(state, state.trials[trial.trial], least_noise(study))})
    state = replay(ledger.events())
    if state.baseline is None:
        ledger.append({"event": "trial", "trial": 0, "config": study.baseline, "source": "baseline"})
    baseline = replay(ledger.events()).baseline
    for repeat in range(study.evaluator.baseline_repeats):
        if repeat not in baseline.runs:
            _run(study, runner, ledger, baseline, repeat)
    state = replay(ledger.events())
    if state.noise_floor() is None:
        raise StudyError(f"{study.directory}: the baseline did not finish twice; see {ledger.path} for its errors")
    ran = 0
    while budget_left(study, state) and (max_trials is None or ran < max_trials):
        proposal = proposer.ask()
        if proposal is None:
            break
        try:
            config = study.check_proposal(proposal)
        except ProposalRejected as error:
            ledger.append({"event": "rejected", "proposal": proposal, "error": str(error), "source": source})
            proposer.tell(proposal, None)
            state = replay(ledger.events())
            continue
        number = max(state.trials) + 1
        ledger.append({"event": "trial", "trial": number, "config": config, "changes": proposal, "source": source})
        trial = replay(ledger.events()).trials[number]
        for repeat in range(study.evaluator.repeats):
            _run(study, runner, ledger, trial, repeat)
        state = replay(ledger.events())
        trial = state.trials[number]
        decision = decide(state, trial, least_noise(study))
        ledger.append({"event": "decision", "trial": number, **decision})
        if decision["kept"]:
            write_kept(study, trial, decision)
        proposer.tell(proposal, trial.mean)
        state = replay(ledger.events())
        ran += 1
        if on_trial is not None:
            on_trial(state)
    return state


def write_kept(study: Study, trial: Trial, decision: dict) -> Path:
    """The kept config, with what it beat and how to rerun it."""
    kept = study.directory / "kept"
    kept.mkdir(exist_ok=True)
    path = kept / f"trial{trial.trial:04d}.json"
    payload = {"trial": trial.trial, "config": trial.config, "scores": trial.scores(), **decision,
               "reproduce": f"wam research reproduce {study.directory} --trial {trial.trial}"}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)
    return path


def reproduce(directory: str | Path, trial_number: int, repeats: int = 2, runner: Runner | None = None) -> dict:
    """Rerun a trial's config with new training seeds; it reproduces if its mean stays within the noise bar."""
    study = load_study(directory)
    state = replay(Ledger(study.directory).events())
    if trial_number not in state.trials:
        raise StudyError(f"{directory}: no trial {trial_number}")
    trial = state.trials[trial_number]
    runner = runner or make_runner(study.evaluator)
    scores = []
    for repeat in range(repeats):
        seed = 10**6 + 1000 * trial_number + repeat
        scores.append(runner.run(trial.config, seed, study.directory / "reproduce" / f"trial{trial_number:04d}-r{repeat}")["metric"])
    sigma = max(state.noise_floor() or 0.0, least_noise(study))
    bar = 2 * sigma * np.sqrt(1 / repeats + 1 / max(len(trial.scores()), 1))
    difference = float(np.mean(scores) - trial.mean)
    return {"trial": trial_number, "recorded": trial.mean, "rerun": scores, "difference": difference, "bar": float(bar),
            "reproduces": abs(difference) <= bar}
