"""`wam pretrain` and `wam eval-world` from the command line: help, a tiny run end to end,
two datasets after one --data, and refusals that exit non-zero saying why.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from wam.cli import app

from tests.support import pretrain_fixtures as fixtures

runner = CliRunner()
STEPS = 4


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def squeezed(text: str) -> str:
    """Output without whitespace: rich wraps long lines at the terminal width."""
    return "".join(text.split())


def assert_fails_saying(result, *needles) -> None:
    assert result.exit_code not in (0, None), result.output
    assert not isinstance(result.exception, (AttributeError, TypeError, KeyError, NameError)), result.exception
    for needle in needles:
        assert squeezed(str(needle)) in squeezed(result.output), f"{needle!r} not in: {result.output}"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_data")
    a = fixtures.write_dataset(root / "a", [31, 32, 33], length=20)
    b = fixtures.write_dataset(root / "b", [34, 35], length=20, labelled=False, state=False, task="watch the square")
    return a, b


@pytest.fixture(scope="module")
def cli_run(datasets, tmp_path_factory):
    """`wam pretrain --data A B --preset tiny --out RUN --steps 4`: (result, run directory)."""
    a, b = datasets
    out = tmp_path_factory.mktemp("cli_run") / "run"
    torch.manual_seed(0)
    result = invoke("pretrain", "--data", a, b, "--preset", "tiny", "--out", out, "--steps", STEPS)
    return result, out


def test_pretrain_help():
    result = invoke("pretrain", "--help")
    assert result.exit_code == 0, result.output
    for option in ("--data", "--out", "--preset", "--steps", "--resume", "--seed", "--init-from", "--bf16", "--fp32"):
        assert option in result.output
    assert "tiny" in result.output


def test_eval_world_help():
    result = invoke("eval-world", "--help")
    assert result.exit_code == 0, result.output
    for option in ("RUN", "--data", "--out", "--samples", "--context", "--videos", "--seed"):
        assert option in result.output


def test_tiny_pretrain_with_two_datasets_after_one_flag(cli_run, datasets):
    result, out = cli_run
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"] == [str(p) for p in datasets]
    assert summary["frames"] == 5 * 20
    assert summary["episodes"]["train"] + summary["episodes"]["val"] == 5
    assert summary["tokenizer"]["step"] == STEPS
    config = json.loads((out / "pretrain.json").read_text())
    assert config["world_train"]["steps"] == STEPS and config["tokenizer"]["image_size"] == 64
    assert config["world_train"]["bf16"] is None  # no flag: the loop decides (bf16 on cuda only)
    for stage in ("tokenizer", "world_model"):
        assert json.loads((out / stage / "checkpoint" / "config.json").read_text())["step"] == STEPS
    # both datasets are in the held-out split: each is represented
    assert {d for d, _ in json.loads((out / "split.json").read_text())["val"]} == {str(p) for p in datasets}


def test_bf16_flag_reaches_both_stages(datasets, tmp_path):
    out = tmp_path / "run"
    result = invoke("pretrain", "--data", datasets[0], "--preset", "tiny", "--out", out, "--steps", 2, "--bf16")
    assert result.exit_code == 0, result.output
    config = json.loads((out / "pretrain.json").read_text())
    assert config["tokenizer_train"]["bf16"] is True and config["world_train"]["bf16"] is True


def test_rerun_without_resume_is_refused(cli_run, datasets):
    _, out = cli_run
    a, b = datasets
    stamp = (out / "summary.json").stat().st_mtime_ns
    result = invoke("pretrain", "--data", a, b, "--preset", "tiny", "--out", out, "--steps", STEPS)
    assert_fails_saying(result, "--resume", out)
    assert (out / "summary.json").stat().st_mtime_ns == stamp


def test_resume_with_other_steps_is_refused(cli_run, datasets):
    _, out = cli_run
    a, b = datasets
    result = invoke("pretrain", "--data", a, b, "--preset", "tiny", "--out", out, "--steps", 2 * STEPS, "--resume")
    assert_fails_saying(result, f"configured for {STEPS} world-model steps", "drop --steps")


def test_unknown_preset_is_named(tmp_path, datasets):
    result = invoke("pretrain", "--data", datasets[0], "--preset", "huge", "--out", tmp_path / "run")
    assert_fails_saying(result, "huge", "tiny")
    assert not (tmp_path / "run").exists()


def test_unknown_option_is_named(tmp_path, datasets):
    result = invoke("pretrain", "--data", datasets[0], "--preset", "tiny", "--out", tmp_path / "run", "--bogus")
    assert_fails_saying(result, "--bogus")


def test_missing_dataset_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    result = invoke("pretrain", "--data", missing, "--preset", "tiny", "--out", tmp_path / "run")
    assert_fails_saying(result, missing)


def test_bad_resolution_fit_and_camera_are_explained(tmp_path):
    small = fixtures.write_dataset(tmp_path / "small", [1], length=6, size=32)
    base = ("pretrain", "--data", small, "--preset", "tiny", "--out", tmp_path / "run")
    assert_fails_saying(invoke(*base, "--size", 100), "image size 100", "multiple of 16")
    assert_fails_saying(invoke(*base, "--fit", "squash"), "squash", "pad, crop, stretch")
    assert_fails_saying(invoke(*base, "--cameras", "wrist"), small, "no camera 'wrist'", "observation.images.main")
    assert_fails_saying(invoke(*base, "--normalize", "zscore"), "zscore", "mean_std")
    assert not (tmp_path / "run" / "tokenizer").exists()


def test_eval_world_on_the_cli_run(cli_run, datasets):
    _, out = cli_run
    result = invoke("eval-world", out, "--data", datasets[0], "--samples", 2, "--context", 2, "--videos", 1)
    assert result.exit_code == 0, result.output
    for method in ("model", "shuffled_actions", "zeroed_actions", "copy_last_frame"):
        assert method in result.output
    results = json.loads((out / "eval_world" / "eval_world.json").read_text())
    assert results["horizons"] == [1, 8, 16] and results["samples"] == 2
    assert (out / "eval_world" / "videos" / "sample0.mp4").stat().st_size > 0


def test_eval_world_without_a_run(tmp_path, datasets):
    result = invoke("eval-world", tmp_path, "--data", datasets[0])
    assert_fails_saying(result, "pretrain.json")


def test_init_from_continues_a_finished_run_in_a_new_one(cli_run, datasets, tmp_path):
    _, first = cli_run
    a, b = datasets
    out = tmp_path / "longer"
    result = invoke("pretrain", "--data", a, b, "--preset", "tiny", "--out", out, "--steps", 2, "--init-from", first)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "pretrain.json").read_text())["init_from"] == str(first)
    assert json.loads((out / "world_model" / "checkpoint" / "config.json").read_text())["step"] == 2
    assert_fails_saying(invoke("pretrain", "--data", a, "--preset", "tiny", "--out", tmp_path / "x", "--init-from", a),
                        "pretrain.json: missing")
