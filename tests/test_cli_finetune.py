"""`wam finetune` and `wam eval` from the command line: a tiny run end to end and clear refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wam.cli import app

from tests.support.pretrain_fixtures import tiny_dataset, tiny_run, write_dataset

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def squeezed(text: str) -> str:
    return "".join(text.split())


def test_finetune_then_eval_end_to_end(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    out = tmp_path / "wam"
    result = invoke("finetune", "--pretrained", pretrained, "--data", tiny_dataset(tmp_path_factory), "--out", out,
                    "--preset", "tiny", "--steps", 6, "-k", 3, "--augment", 1, "--snapshot-every", 3, "--bf16")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["episodes"]["train"] == 3
    saved = json.loads((out / "finetune.json").read_text())["config"]
    assert saved["augment_copies"] == 1 and saved["train"]["bf16"] is True
    results = tmp_path / "eval.json"
    result = invoke("eval", "--policy", out, "--tasks", "reach-v3", "--episodes", 2, "--max-steps", 5, "--out", results)
    assert result.exit_code == 0, result.output
    assert "policy steps/s" in result.output
    assert json.loads(results.read_text())["tasks"]["reach-v3"]["episodes"] == 2
    result = invoke("eval", "--policy", f"{out}@3", "--tasks", "reach-v3", "--episodes", 1, "--max-steps", 5, "--out", results,
                    "--ensemble", 0.1)
    assert result.exit_code == 0, result.output  # the policy as it was at step 3, temporally ensembled
    saved = json.loads(results.read_text())
    assert saved["policy"].endswith("@3") and saved["config"]["ensemble"] == 0.1


def test_eval_refuses_a_pretraining_run(tmp_path_factory):
    pretrained, _ = tiny_run(tmp_path_factory)
    result = invoke("eval", "--policy", pretrained, "--tasks", "reach-v3", "--episodes", 1)
    assert result.exit_code == 2
    assert squeezed("a pretraining run, not a finetuned WAM") in squeezed(result.output)


def test_finetune_refuses_video_only_data_and_unknown_presets(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    video = write_dataset(tmp_path / "video", range(2), labelled=False)
    result = invoke("finetune", "--pretrained", pretrained, "--data", video, "--out", tmp_path / "a", "--preset", "tiny")
    assert result.exit_code == 2 and squeezed("no labelled episode") in squeezed(result.output)
    result = invoke("finetune", "--data", video, "--out", tmp_path / "b", "--preset", "huge")
    assert result.exit_code == 2 and "unknown preset" in result.output
    result = invoke("finetune", "--data", tiny_dataset(tmp_path_factory), "--out", tmp_path / "c", "--preset", "tiny",
                    "--augment", 2, "--augment-pad", 0)
    assert result.exit_code == 2 and "augment_pad" in result.output and not (tmp_path / "c").exists()


def test_plan_runs_cem_in_the_simulator(tmp_path_factory, tmp_path):
    from tests.support.finetune_fixtures import tiny_wam_run

    run, _ = tiny_wam_run(tmp_path_factory)
    out = tmp_path / "plan.json"
    result = invoke("plan", "--world", run, "--tasks", "reach-v3", "--episodes", 1, "--max-steps", 6, "--samples", 8,
                    "--elites", 2, "--iterations", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert "control steps/s" in result.output
    assert json.loads(out.read_text())["config"]["planner"]["samples"] == 8


def test_distill_from_the_command_line_and_its_refusals(tmp_path_factory, tmp_path):
    import shutil

    from tests.support.finetune_fixtures import tiny_dream_run

    world = tmp_path / "world"
    shutil.copytree(tiny_dream_run(tmp_path_factory), world)
    result = invoke("distill", "--world", world, "--preset", "tiny", "--steps", 4)
    assert result.exit_code == 0, result.output
    assert json.loads((world / "student" / "summary.json").read_text())["config"]["train"]["steps"] == 4
    result = invoke("distill", "--world", world, "--preset", "tiny", "--steps", 4)
    assert result.exit_code == 2 and "--resume" in result.output
    pretrained, _ = tiny_run(tmp_path_factory)
    result = invoke("distill", "--world", pretrained, "--preset", "tiny")
    assert result.exit_code == 2 and squeezed("a pretraining run, not a finetuned WAM") in squeezed(result.output)


def test_judge_from_the_command_line_then_eval_in_a_dream_judged_by_it(tmp_path_factory, tmp_path):
    import shutil

    from tests.support.finetune_fixtures import tiny_dream_run

    world = tmp_path / "world"
    shutil.copytree(tiny_dream_run(tmp_path_factory), world)
    result = invoke("eval", "--policy", world, "--env", f"dream/{world}", "--tasks", "move the square", "--episodes", 1,
                    "--max-steps", 4, "--dream-judge")
    assert result.exit_code == 2 and squeezed("no success judge; train one first") in squeezed(result.output)
    result = invoke("judge", "--world", world, "--preset", "tiny", "--steps", 4, "--balance")
    assert result.exit_code == 0, result.output
    saved = json.loads((world / "judge" / "summary.json").read_text())["config"]
    assert saved["train"]["steps"] == 4 and saved["balance"] is True
    result = invoke("judge", "--world", world, "--preset", "tiny", "--steps", 4)
    assert result.exit_code == 2 and "--resume" in result.output
    results = tmp_path / "judged.json"
    result = invoke("eval", "--policy", world, "--env", f"dream/{world}", "--tasks", "move the square", "--episodes", 2,
                    "--max-steps", 6, "--dream-judge", "--out", results)
    assert result.exit_code == 0, result.output
    assert json.loads(results.read_text())["tasks"]["move the square"]["episodes"] == 2
    result = invoke("rl", "--policy", world, "--world", world, "--task", "move the square", "--iterations", 1, "--starts", 1,
                    "--group", 2, "--horizon", 4, "--dream-judge", "--out", tmp_path / "rl")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "rl" / "rl.json").read_text())["config"]["dream"]["judge"] is True
    pretrained, _ = tiny_run(tmp_path_factory)
    result = invoke("judge", "--world", pretrained, "--preset", "tiny")
    assert result.exit_code == 2 and squeezed("a pretraining run, not a finetuned WAM") in squeezed(result.output)


def test_eval_in_a_dream_with_a_success_hold_and_its_refusal(tmp_path_factory, tmp_path):
    from tests.support.finetune_fixtures import tiny_dream_run

    world = tiny_dream_run(tmp_path_factory)
    results = tmp_path / "dream.json"
    result = invoke("eval", "--policy", world, "--env", f"dream/{world}", "--tasks", "move the square", "--episodes", 2,
                    "--max-steps", 6, "--dream-success-hold", 2, "--out", results)
    assert result.exit_code == 0, result.output
    assert json.loads(results.read_text())["tasks"]["move the square"]["episodes"] == 2
    result = invoke("eval", "--policy", world, "--env", f"dream/{world}", "--tasks", "move the square", "--episodes", 1,
                    "--dream-success-hold", 0)
    assert result.exit_code == 2 and "success_hold" in squeezed(result.output)


def test_collect_with_a_policy_then_update_a_world_with_its_rollouts(tmp_path_factory, tmp_path):
    """The Dyna loop from the command line: a policy's rollouts, then a world started from a WAM takes them in."""
    from tests.support.finetune_fixtures import tiny_wam_run

    run, _ = tiny_wam_run(tmp_path_factory)
    pretrained, _ = tiny_run(tmp_path_factory)
    rollouts = tmp_path / "rollouts"
    result = invoke("collect", "--tasks", "reach-v3", "--episodes", 1, "--max-steps", 8, "--policy", run, "--out", rollouts)
    assert result.exit_code == 0, result.output
    assert "added 1 episodes" in result.output
    result = invoke("collect", "--tasks", "reach-v3", "--episodes", 1, "--policy", pretrained, "--out", tmp_path / "bad")
    assert result.exit_code == 2 and squeezed("a pretraining run, not a finetuned WAM") in squeezed(result.output)
    out = tmp_path / "updated"
    result = invoke("finetune", "--pretrained", pretrained, "--data", tiny_dataset(tmp_path_factory), "--play", rollouts,
                    "--init-from", run, "--out", out, "--preset", "tiny", "--steps", 3, "-k", 2)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "finetune.json").read_text())["init_from"] == str(run)


def test_rl_from_the_command_line_with_start_data_and_its_refusal(tmp_path_factory, tmp_path):
    from tests.support.finetune_fixtures import tiny_dream_run

    world = tiny_dream_run(tmp_path_factory)
    starts = write_dataset(tmp_path / "starts", range(80, 83), rewards=True)
    out = tmp_path / "rl"
    common = ("rl", "--policy", world, "--world", world, "--task", "move the square", "--iterations", 1, "--starts", 1,
              "--group", 2, "--horizon", 4)
    result = invoke(*common, "--out", out, "--start-data", starts, "--success-hold", 2)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "rl.json").read_text())["config"]
    assert saved["start_data"] == [str(starts)] and saved["dream"]["success_hold"] == 2
    result = invoke(*common, "--out", tmp_path / "bad", "--success-hold", 0)
    assert result.exit_code == 2 and "success_hold" in squeezed(result.output)
    assert not (tmp_path / "bad").exists()


def test_collect_in_a_dream_from_the_command_line_and_its_refusal(tmp_path_factory, tmp_path):
    from tests.support.finetune_fixtures import tiny_dream_run

    world = tiny_dream_run(tmp_path_factory)
    out = tmp_path / "dreamed"
    result = invoke("collect", "--env", f"dream/{world}", "--policy", world, "--tasks", "move the square", "--episodes", 2,
                    "--max-steps", 5, "--out", out)
    assert result.exit_code == 0, result.output
    assert "added2episodes" in squeezed(result.output)
    summary = json.loads(invoke("data", "info", out, "--json").output)
    assert summary["episodes"] == 2 and summary["episodes_with_actions"] == 2
    result = invoke("collect", "--env", f"dream/{world}", "--tasks", "move the square", "--episodes", 1, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--policy" in squeezed(result.output)
