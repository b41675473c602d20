"""Who proposes the next trial: Optuna for numeric knobs (the default), a script, or an agent's queue.

Every proposer speaks the same two calls: `ask()` gives a proposal (a mapping of knob names to values, or None
when it has nothing more to propose) and `tell(proposal, metric)` reports how it did (metric None: crashed or
rejected). The loop checks every proposal against the surface before running it, whoever made it.

Optuna keeps its study in the study directory's SQLite database (or any SQLAlchemy URL, e.g. the fleet's
PostgreSQL), so a killed study resumes with everything its sampler learned; a trial Optuna handed out that never
came back is failed on resume. The agent queue is `STUDY/proposals.jsonl`, filled by the MCP tool
`propose_experiment`; the loop runs what is queued and waits for more only if told to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from wam.research.spec import Study


class Proposer(Protocol):
    def ask(self) -> dict | None: ...

    def tell(self, proposal: dict, metric: float | None) -> None: ...


class ScriptedProposer:
    """Proposals from a list, in order (tests, and replaying a study's kept changes)."""

    name = "scripted"

    def __init__(self, proposals: list[dict], done: int = 0):
        self.proposals, self.next = list(proposals), done

    def ask(self) -> dict | None:
        if self.next >= len(self.proposals):
            return None
        self.next += 1
        return dict(self.proposals[self.next - 1])

    def tell(self, proposal: dict, metric: float | None) -> None:
        pass


class OptunaProposer:
    """TPE (default) or CMA-ES over the surface's knobs; the study maximises the metric."""

    name = "optuna"

    def __init__(self, study: Study, sampler: str = "tpe", storage: str | None = None, seed: int = 0):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = storage or f"sqlite:///{(Path(study.directory) / 'optuna.db').resolve()}"
        samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
                    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed)}
        if sampler not in samplers:
            raise ValueError(f"sampler must be one of {sorted(samplers)}, got {sampler!r}")
        self.optuna, self.knobs = optuna, study.knobs
        self.study = optuna.create_study(study_name=study.directory.name, storage=storage, direction="maximize",
                                         sampler=samplers[sampler](), load_if_exists=True)
        for trial in self.study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # handed out before a kill, never told
        self.pending: dict[str, int] = {}

    def ask(self) -> dict | None:
        trial = self.study.ask()
        proposal = {}
        for name, knob in self.knobs.items():
            if knob.kind == "choice":
                proposal[name] = trial.suggest_categorical(name, list(knob.choices))
            elif knob.kind == "int":
                proposal[name] = trial.suggest_int(name, int(knob.low), int(knob.high), log=knob.log)
            else:
                proposal[name] = trial.suggest_float(name, float(knob.low), float(knob.high), log=knob.log)
        self.pending[json.dumps(proposal, sort_keys=True)] = trial.number
        return proposal

    def tell(self, proposal: dict, metric: float | None) -> None:
        number = self.pending.pop(json.dumps(proposal, sort_keys=True), None)
        if number is None:
            return
        if metric is None:
            self.study.tell(number, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(number, metric)


class QueueProposer:
    """The agent's proposals, in the order `propose_experiment` queued them (STUDY/proposals.jsonl)."""

    name = "queue"

    def __init__(self, study: Study, taken: int = 0):
        self.path, self.taken = Path(study.directory) / "proposals.jsonl", taken

    def queued(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def ask(self) -> dict | None:
        queue = self.queued()
        if self.taken >= len(queue):
            return None
        self.taken += 1
        return dict(queue[self.taken - 1]["changes"])

    def tell(self, proposal: dict, metric: float | None) -> None:
        pass
