"""`wam research mcp STUDY`: the study as MCP tools, so a language-model agent can run it.

The agent proposes changes to the surface's knobs, runs them, reads the leaderboard, and asks to keep or revert. It
never sees the evaluator's seeds or the holdout's scores (only pass or fail), and every proposal goes through the
same check as Optuna's: one that names what the evaluator owns is rejected and logged in the ledger. The scripted
proposer of the tests drives the study through these same functions (`ResearchTools`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wam.research.loop import Ledger, State, decide, least_noise, replay, run_study, write_kept
from wam.research.proposers import QueueProposer
from wam.research.spec import ProposalRejected, StudyError, load_study


def _public(trial, noise_floor: float | None) -> dict:
    runs = [{k: v for k, v in run.items() if k in ("metric", "seconds", "error")} for run in trial.runs.values()]
    decision = {k: v for k, v in (trial.decision or {}).items() if k in ("kept", "reason", "gain", "bar", "holdout")}
    return {"trial": trial.trial, "config": trial.config, "source": trial.source, "score": trial.mean, "runs": runs,
            "decision": decision, "noise_floor": noise_floor}


class ResearchTools:
    """The agent's verbs over one study directory."""

    def __init__(self, directory: str | Path, runner=None):
        self.study = load_study(directory)
        self.ledger, self.runner = Ledger(self.study.directory), runner

    def state(self) -> State:
        return replay(self.ledger.events())

    def propose_experiment(self, changes: dict) -> dict[str, Any]:
        try:
            self.study.check_proposal(changes)
        except ProposalRejected as error:
            self.ledger.append({"event": "rejected", "proposal": changes, "error": str(error), "source": "agent"})
            return {"ok": False, "error": str(error)}
        queue = Path(self.study.directory) / "proposals.jsonl"
        with open(queue, "a") as stream:
            stream.write(json.dumps({"changes": changes}) + "\n")
        return {"ok": True, "queued": len(queue.read_text().splitlines())}

    def run_experiment(self) -> dict[str, Any]:
        """Run the next queued proposal now (the baseline first, if it has not run)."""
        before = self.state()
        taken = len([t for t in before.trials.values() if t.source == "queue"])
        try:
            state = run_study(self.study.directory, QueueProposer(self.study, taken), self.runner, max_trials=1)
        except StudyError as error:
            return {"ok": False, "error": str(error)}
        new = [t for t in state.trials if t not in before.trials and t > 0]
        if not new:
            return {"ok": False, "error": "nothing queued: propose_experiment first"}
        return {"ok": True, **_public(state.trials[new[-1]], state.noise_floor())}

    def experiment_status(self, trial: int) -> dict[str, Any]:
        state = self.state()
        if trial not in state.trials:
            return {"ok": False, "error": f"no trial {trial}"}
        return {"ok": True, **_public(state.trials[trial], state.noise_floor())}

    def leaderboard(self, limit: int = 10) -> dict[str, Any]:
        state = self.state()
        finished = sorted((t for t in state.trials.values() if t.mean is not None), key=lambda t: -t.mean)
        incumbent = state.incumbent
        return {"ok": True, "noise_floor": state.noise_floor(), "incumbent": incumbent.trial if incumbent else None,
                "rejected": len(state.rejected), "trials": [_public(t, None) for t in finished[:limit]]}

    def keep(self, trial: int) -> dict[str, Any]:
        """Make a finished trial the incumbent, if it beats the present one by more than the noise floor."""
        state = self.state()
        if trial not in state.trials or state.trials[trial].mean is None:
            return {"ok": False, "error": f"no finished trial {trial}"}
        if state.trials[trial].decision and state.trials[trial].decision.get("kept"):
            return {"ok": True, "kept": True, "reason": "already kept"}
        decision = decide(state, state.trials[trial], least_noise(self.study))
        self.ledger.append({"event": "decision", "trial": trial, **decision, "asked_by": "agent"})
        if decision["kept"]:
            write_kept(self.study, state.trials[trial], decision)
        return {"ok": True, **{k: decision[k] for k in ("kept", "reason") if k in decision}}

    def revert(self, trial: int, why: str = "") -> dict[str, Any]:
        state = self.state()
        if trial not in state.trials or not (state.trials[trial].decision or {}).get("kept"):
            return {"ok": False, "error": f"trial {trial} is not kept"}
        self.ledger.append({"event": "reverted", "trial": trial, "why": why or "asked by the agent"})
        return {"ok": True, "incumbent": self.state().incumbent.trial}


def build_server(directory: str | Path):
    from mcp.server.mcpserver import MCPServer

    tools = ResearchTools(directory)
    server = MCPServer("wam-research", instructions=(
        "Run experiments on a wam training recipe. Read the study's program.md, propose changes to its knobs, run them, "
        "and keep what beats the noise floor. Seeds, tasks, episodes and the metric belong to the evaluator."))
    server.tool()(tools.propose_experiment)
    server.tool()(tools.run_experiment)
    server.tool()(tools.experiment_status)
    server.tool()(tools.leaderboard)
    server.tool()(tools.keep)
    server.tool()(tools.revert)
    return server
