"""`wam finetune` and `wam eval` from the command line: a tiny run end to end and clear refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "train"))
from pretrain_fixtures import tiny_dataset, tiny_run, write_dataset  # noqa: E402

from wam.cli import app  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def squeezed(text: str) -> str:
    return "".join(text.split())


def test_finetune_then_eval_end_to_end(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    out = tmp_path / "wam"
    result = invoke("finetune", "--pretrained", pretrained, "--data", tiny_dataset(tmp_path_factory), "--out", out,
                    "--preset", "tiny", "--steps", 6, "-k", 3, "--augment", 1)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["episodes"]["train"] == 3
    assert json.loads((out / "finetune.json").read_text())["config"]["augment_copies"] == 1
    results = tmp_path / "eval.json"
    result = invoke("eval", "--policy", out, "--tasks", "reach-v3", "--episodes", 2, "--max-steps", 5, "--out", results)
    assert result.exit_code == 0, result.output
    assert "policy steps/s" in result.output
    assert json.loads(results.read_text())["tasks"]["reach-v3"]["episodes"] == 2


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
    from finetune_fixtures import tiny_wam_run

    run, _ = tiny_wam_run(tmp_path_factory)
    out = tmp_path / "plan.json"
    result = invoke("plan", "--world", run, "--tasks", "reach-v3", "--episodes", 1, "--max-steps", 6, "--samples", 8,
                    "--elites", 2, "--iterations", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert "control steps/s" in result.output
    assert json.loads(out.read_text())["config"]["planner"]["samples"] == 8
