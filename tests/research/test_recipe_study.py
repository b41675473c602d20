"""A recipe study for real: finetune with the trial's knobs, evaluate in Meta-World on hidden seeds, from the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wam.cli import app


def wam(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_a_recipe_study_trains_evaluates_and_reports(tmp_path):
    assert wam("collect", "--tasks", "reach-v3", "--episodes", 2, "--out", tmp_path / "data", "--max-steps", 40).exit_code == 0
    made = wam("research", "init", tmp_path / "study", "--robot", tmp_path / "data", "--tasks", "reach-v3", "--episodes", 2,
               "--episode-steps", 20, "--trials", 1, "--baseline-repeats", 2, "--max-steps", 60)
    assert made.exit_code == 0, made.output
    surface = {k["name"]: k for k in json.loads((tmp_path / "study" / "surface.json").read_text())}
    assert {"lr", "steps", "batch_size", "augment_copies", "execute"} <= set(surface)
    evaluator = json.loads((tmp_path / "study" / "evaluator.json").read_text())
    assert evaluator["seeds"] and evaluator["holdout_seeds"] and evaluator["seeds"] != evaluator["holdout_seeds"]
    ran = wam("research", "run", tmp_path / "study", "--max-trials", 1)
    assert ran.exit_code == 0, ran.output
    events = [json.loads(line) for line in (tmp_path / "study" / "ledger.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "finished"]
    assert len(finished) == 3 and all(0.0 <= e["metric"] <= 1.0 for e in finished)  # 2 baseline runs + 1 trial
    assert all((tmp_path / "study" / "trials" / name / "summary.json").is_file()
               for name in ("trial0000-r0", "trial0000-r1", "trial0001-r0"))
    assert [e for e in events if e["event"] == "decision"][0]["bar"] > 0  # a floor even when every run scores 0
    assert (tmp_path / "study" / "report.html").is_file()


@pytest.mark.slow
def test_trials_are_evaluated_by_task_runs_on_the_fleet_and_their_episodes_linked(tmp_path):
    import httpx

    from tests.support.live_server import start_live

    live, server, thread = start_live(tmp_path / "server", "metaworld/reach-v3*2", max_episode_steps=20)
    try:
        assert wam("collect", "--tasks", "reach-v3", "--episodes", 2, "--out", tmp_path / "data", "--max-steps", 40).exit_code == 0
        made = wam("research", "init", tmp_path / "study", "--robot", tmp_path / "data", "--tasks", "reach-v3",
                   "--episodes", 2, "--trials", 1, "--baseline-repeats", 2, "--max-steps", 40, "--fleet", live.url,
                   "--fleet-key", live.keys["control"], "--fleet-runs", tmp_path / "server" / "runs")
        assert made.exit_code == 0, made.output
        ran = wam("research", "run", tmp_path / "study", "--proposer", "queue")  # nothing queued: the baseline alone
        assert ran.exit_code == 0, ran.output
        events = [json.loads(line) for line in (tmp_path / "study" / "ledger.jsonl").read_text().splitlines()]
        finished = [e for e in events if e["event"] == "finished"]
        assert len(finished) == 2
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys['read']}"}) as client:
            for event in finished:
                runs = event["links"]["task_runs"]
                assert len(runs) == 2  # the main evaluation and the holdout, one task run each
                for run_id in runs:
                    episodes = client.get("/v1/episodes", params={"run_id": run_id}).json()
                    assert len(episodes) == 2 and all(e["run_id"] == run_id for e in episodes)
    finally:
        server.should_exit = True
        thread.join(60)
