"""The three-stage recipe on the hand scenes through the command line, with the same model code as Meta-World's:
human video pretrains, robot-hand demos (or retargeted human video) finetune, the policy is evaluated on the Shadow
hand."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wam.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_human_video_pretrains_a_wam_that_drives_the_shadow_hand(tmp_path):
    robot, human, retargeted = tmp_path / "robot", tmp_path / "human", tmp_path / "retargeted"
    invoke("collect", "--env", "hand/touch,lift", "--episodes", 2, "--out", robot, "--max-steps", 30)
    invoke("collect", "--env", "hand/touch,lift", "--episodes", 2, "--out", human, "--embodiment", "human", "--no-actions",
           "--max-steps", 30)
    invoke("retarget", "--data", human, "--out", retargeted)
    invoke("pretrain", "--data", human, "--preset", "tiny", "--steps", 4, "--out", tmp_path / "pre")
    # Robot demos and retargeted human video together: the same 26-d actions, 33-d state and `ego` camera.
    invoke("finetune", "--pretrained", tmp_path / "pre", "--data", robot, "--data", retargeted, "--preset", "tiny", "--steps", 4,
           "--out", tmp_path / "wam")
    results = tmp_path / "eval.json"
    invoke("eval", "--policy", tmp_path / "wam", "--env", "hand", "--tasks", "touch", "--episodes", 1, "--max-steps", 5,
           "--out", results)
    scores = json.loads(results.read_text())["tasks"]["touch"]
    assert scores["episodes"] == 1 and scores["mean_length"] == 5
