"""The auto-research loop on the test problem: it finds the optimum, keeps no noise, rejects what touches the
evaluator, records crashes, survives kill -9, and stops at its budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from wam.research.loop import Ledger, replay, reproduce, run_study
from wam.research.proposers import ScriptedProposer
from wam.research.report import write_report
from wam.research.runners import ToyRunner, toy_knobs
from wam.research.spec import EvaluatorSpec, StudyError, init_study, load_study


def toy_study(path, trials=30, repeats=1, baseline_repeats=4, **options):
    """Evaluation seeds fixed here (a study draws them from the OS): the noise, and so each test, is the same every run."""
    return init_study(path, EvaluatorSpec("toy", budget={"trials": trials}, repeats=repeats, seeds=(5,), holdout_seeds=(6,),
                                          baseline_repeats=baseline_repeats, options=options), toy_knobs())


def test_optuna_finds_the_known_optimum_within_the_budget(tmp_path):
    state = run_study(toy_study(tmp_path / "s", trials=40, repeats=2), "optuna")
    best = state.incumbent
    assert best.trial > 0, "nothing beat the baseline"
    runner = ToyRunner(load_study(tmp_path / "s").evaluator)
    assert runner.score(best.config) > 0.7  # the optimum scores 0.8; the baseline's default 0.21
    assert abs(best.config["x"] - 0.7) < 0.3
    assert state.proposed == 40  # the budget, no more


def test_no_op_proposals_are_almost_never_kept(tmp_path):
    state = run_study(toy_study(tmp_path / "s", trials=60), ScriptedProposer([{}] * 60))
    kept = [t for t in state.trials.values() if t.decision and t.decision["kept"]]
    assert len([t for t in state.trials.values() if t.trial > 0]) == 60
    assert len(kept) <= 3  # 5% of 60


def test_proposals_that_touch_the_evaluator_are_rejected_and_logged(tmp_path):
    proposals = [{"seed": 7}, {"episodes": 1000}, {"metric": "loss"}, {"x": 9.0}, {"momentum": 0.9}, {"x": 0.5}]
    state = run_study(toy_study(tmp_path / "s", trials=10), ScriptedProposer(proposals))
    reasons = [r["error"] for r in state.rejected]
    assert len(reasons) == 5
    assert "belongs to the evaluator" in reasons[0] and "belongs to the evaluator" in reasons[2]
    assert "outside [-2.0, 2.0]" in reasons[3] and "not a knob" in reasons[4]
    assert [t.config["x"] for t in state.trials.values() if t.trial > 0] == [0.5]  # only the valid one ran


def test_a_changed_evaluator_refuses_to_run(tmp_path):
    study = toy_study(tmp_path / "s")
    payload = json.loads((study / "evaluator.json").read_text())
    payload["seeds"] = [1]
    (study / "evaluator.json").write_text(json.dumps(payload))
    with pytest.raises(StudyError, match="frozen"):
        load_study(study)


class CrashesOnce(ToyRunner):
    def run(self, config, seed, out):
        if config["x"] == 1.5:
            raise RuntimeError("out of memory")
        return super().run(config, seed, out)


def test_a_crashing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    study = toy_study(tmp_path / "s", trials=3)
    runner = CrashesOnce(load_study(study).evaluator)
    state = run_study(study, ScriptedProposer([{"x": 0.2}, {"x": 1.5}, {"x": 0.6}]), runner)
    crashed = state.trials[2]
    assert crashed.mean is None and "out of memory" in crashed.runs[0]["error"]
    assert crashed.decision["reason"] == "crashed" and state.trials[3].mean is not None
    page = write_report(study).read_text()
    assert "out of memory" in page and "data:image/png;base64," in page


def test_a_study_killed_mid_trial_resumes_and_records_the_crash(tmp_path):
    study = toy_study(tmp_path / "s", trials=6, seconds_per_trial=0.4)
    code = f"from wam.research.loop import run_study; run_study({str(study)!r}, 'optuna')"
    process = subprocess.Popen([sys.executable, "-c", code])
    ledger = Ledger(study)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events = ledger.events()
        if sum(e["event"] == "decision" for e in events) >= 1 and events[-1]["event"] == "started":
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted = events[-1]["trial"]
    state = run_study(study, "optuna")
    run = state.trials[interrupted].runs[0]
    assert "interrupted" in run["error"]
    assert state.proposed == 6 and all(t.trial == 0 or t.decision for t in state.trials.values())


def test_a_kept_config_reproduces(tmp_path):
    study = toy_study(tmp_path / "s", trials=2)
    state = run_study(study, ScriptedProposer([{"x": 0.7, "lr": 1e-3}, {"x": 0.0}]))
    assert state.trials[1].decision["kept"] and not state.trials[2].decision["kept"]
    assert (study / "kept" / "trial0001.json").is_file()
    assert reproduce(study, 1, repeats=2)["reproduces"]
    assert replay(Ledger(study).events()).incumbent.trial == 1
