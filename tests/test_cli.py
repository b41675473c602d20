"""Guards the `wam` command line: help everywhere, collect -> data info/check/export, errors
that exit non-zero naming the bad value, the real executable end to end, and the demo report.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wam.cli import app
from wam.data import Dataset

WAM = Path(sys.executable).with_name("wam")
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def squeezed(text: str) -> str:
    """Output without whitespace: rich wraps (and folds long paths) at the terminal width."""
    return "".join(text.split())


def assert_fails_naming(result, name) -> None:
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, (AttributeError, TypeError, KeyError)), result.exception
    assert squeezed(str(name)) in squeezed(result.output), f"{name!r} not in: {result.output}"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two labelled reach-v3 episodes collected through the CLI."""
    out = tmp_path_factory.mktemp("cli") / "reach"
    result = invoke("collect", "--tasks", "reach", "--episodes", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert "added 2 episodes" in result.output
    return out


# -- help ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", [[], ["collect"], ["demo"], ["data"], ["data", "info"], ["data", "check"], ["data", "export"]], ids=" ".join
)
def test_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_no_arguments_shows_the_commands():
    result = invoke()
    for name in ("collect", "data", "demo"):
        assert name in result.output


# -- collect and data info -----------------------------------------------------------------------
def test_data_info_json(dataset):
    result = invoke("data", "info", dataset, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["episodes"] == 2
    assert summary["frames"] == Dataset(dataset).num_frames > 2
    assert summary["fps"] == 80
    assert summary["episodes_with_actions"] == 2 and summary["episodes_without_actions"] == 0
    assert summary["tasks"] == [{"task": "reach the goal position", "episodes": 2}]
    assert summary["size_bytes"] > 0
    assert summary["success_rate"] == 1.0
    assert set(summary["features"]) >= {"observation.images.main", "observation.state", "action"}


def test_data_info_table(dataset):
    result = invoke("data", "info", dataset)
    assert result.exit_code == 0, result.output
    assert "episodes" in result.output and "reach the goal position" in result.output


def test_collect_again_skips_what_is_there(dataset, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    result = invoke("collect", "--tasks", "reach-v3", "--episodes", 2, "--out", out, "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "added0episodes(2alreadythere)" in squeezed(result.output)


def test_collect_no_actions_into_a_labelled_dataset(dataset, tmp_path):
    out = tmp_path / "mixed"
    shutil.copytree(dataset, out)
    args = ["--tasks", "reach-v3", "--episodes", 1, "--out", out, "--no-actions", "--seed", 1, "--noise", 0.1]
    result = invoke("collect", *args)
    assert result.exit_code == 0, result.output
    summary = json.loads(invoke("data", "info", out, "--json").output)
    assert (summary["episodes_with_actions"], summary["episodes_without_actions"]) == (2, 1)


@pytest.mark.parametrize(
    "args, named",
    [
        (["--tasks", "reach-v3,teleport-v3"], "teleport-v3"),
        (["--tasks", "mt11"], "mt11"),
        (["--tasks", "reach-v3", "--camera", "nowhere"], "nowhere"),
        (["--tasks", "reach-v3", "--workers", "0"], "workers"),
        (["--tasks", "reach-v3", "--max-steps", "0"], "max_steps"),
    ],
)
def test_collect_bad_arguments(tmp_path, args, named):
    result = invoke("collect", *args, "--episodes", 1, "--out", tmp_path / "bad")
    assert_fails_naming(result, named)


def test_collect_odd_size_fails_up_front_without_leaving_a_broken_dataset(tmp_path):
    out = tmp_path / "odd"
    result = invoke("collect", "--tasks", "reach-v3", "--episodes", 1, "--out", out, "--size", 63)
    assert_fails_naming(result, "63")
    # The failed run must not pin the directory to an unencodable 63x63 layout.
    retry = invoke("collect", "--tasks", "reach-v3", "--episodes", 1, "--out", out, "--max-steps", 5)
    assert retry.exit_code == 0, retry.output
    assert invoke("data", "check", out).exit_code == 0


def test_labelled_collect_into_action_free_dataset_fails(tmp_path):
    out = tmp_path / "video"
    args = ["--tasks", "reach-v3", "--episodes", 1, "--out", out, "--max-steps", 5]
    assert invoke("collect", *args, "--no-actions").exit_code == 0
    result = invoke("collect", *args, "--seed", 1)
    assert_fails_naming(result, "action")


# -- data check ----------------------------------------------------------------------------------
def test_data_check_ok(dataset):
    result = invoke("data", "check", dataset)
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_data_check_names_a_truncated_video(dataset, tmp_path):
    out = tmp_path / "damaged"
    shutil.copytree(dataset, out)
    video = Dataset(out).video_file(1, "observation.images.main")
    payload = video.read_bytes()
    video.write_bytes(payload[: len(payload) // 2])
    result = invoke("data", "check", out)
    assert result.exit_code == 1, result.output
    assert squeezed(str(video)) in squeezed(result.output)
    other = Dataset(out).video_file(0, "observation.images.main")
    assert squeezed(str(other)) not in squeezed(result.output), "an intact file was reported"


@pytest.mark.parametrize("command", [["info"], ["check"], ["export", "--episode", "0", "--out", "x.gif"]])
def test_data_commands_on_a_missing_dataset(tmp_path, command):
    missing = tmp_path / "no-such-dataset"
    result = invoke("data", command[0], missing, *command[1:])
    assert result.exit_code != 0
    if command[0] != "check":
        assert_fails_naming(result, missing)


# -- data export ---------------------------------------------------------------------------------
def test_export_gif(dataset, tmp_path):
    out = tmp_path / "sub" / "episode.gif"
    result = invoke("data", "export", dataset, "--episode", 1, "--out", out, "--scale", 2)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    with Image.open(out) as gif:
        assert gif.size == (128, 128)
        assert gif.n_frames > 1


def test_export_mp4(dataset, tmp_path):
    out = tmp_path / "episode.mp4"
    result = invoke("data", "export", dataset, "--episode", 0, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == Dataset(dataset).episodes[0].length
    assert frames[0].shape == (256, 256, 3)
    assert np.asarray(frames).std() > 10


@pytest.mark.parametrize(
    "args, named",
    [
        (["--episode", "2", "--out", "e.gif"], "episode 2"),
        (["--episode", "-1", "--out", "e.gif"], "episode -1"),
        (["--episode", "0", "--out", "e.avi"], ".avi"),
        (["--episode", "0", "--out", "e"], "no extension"),
        (["--episode", "0", "--out", "e.gif", "--camera", "wrist"], "wrist"),
    ],
)
def test_export_bad_arguments(dataset, tmp_path, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    result = invoke("data", "export", dataset, *args)
    assert_fails_naming(result, named)
    assert list(tmp_path.iterdir()) == [], "a failed export left a file behind"


# -- the real executable: the acceptance command -------------------------------------------------
@pytest.mark.slow  # a subprocess of the installed `wam`
def test_wam_executable_end_to_end(tmp_path):
    assert WAM.exists(), WAM
    out = tmp_path / "D"
    run = lambda *args: subprocess.run([str(WAM), *map(str, args)], capture_output=True, text=True, timeout=120)  # noqa: E731
    collected = run("collect", "--tasks", "reach-v3", "--episodes", 3, "--out", out, "--workers", 2)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "added3episodes" in squeezed(collected.stdout)
    info = run("data", "info", out, "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["episodes"] == 3 and summary["episodes_with_actions"] == 3
    assert summary["frames"] > 3 and summary["size_bytes"] > 0
    checked = run("data", "check", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok" in checked.stdout


# -- demo ----------------------------------------------------------------------------------------
@pytest.mark.slow  # the whole recipe, end to end
def test_demo_runs_the_whole_recipe_and_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out, "--episodes", 1, "--video-episodes", 2, "--eval-episodes", 1, "--workers", 1,
                    "--preset", "tiny", "--max-steps", 15)
    assert result.exit_code == 0, result.output
    report = out / "report.html"
    text = report.read_text()
    assert "World Action Model recipe" in text and "Success in the simulator" in text
    images = re.findall(r"<img [^>]*src='([^']+)'", text)
    assert len([i for i in images if i.startswith("gifs/")]) == 6  # three tasks, robot episodes and action-free video
    assert any(i.startswith("rollouts/wam/") for i in images) and any(i.startswith("rollouts/scratch/") for i in images)
    assert any(i.startswith("dream/") for i in images) and "success.png" in images
    for image in images:
        path = out / image
        assert path.is_file() and path.stat().st_size > 0, path
    summary = json.loads((out / "summary.json").read_text())
    robot, video = summary["datasets"]
    assert (robot["episodes_with_actions"], robot["episodes_without_actions"]) == (3, 0)
    assert (video["episodes_with_actions"], video["episodes_without_actions"]) == (0, 6)
    for method in ("wam", "scratch"):
        assert set(summary["success"][method]["tasks"]) == {"reach-v3", "drawer-close-v3", "button-press-topdown-v3"}
    assert "check</th><td>ok" in text
