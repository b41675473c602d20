"""`wam bridge` (wam/bridge/cli.py): what it refuses before it dials a server, each on one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ARMS = '''
from pathlib import Path


class Arm:
    """Three joints and a camera, described as LeRobot describes an arm."""

    name = "so100_follower"
    is_connected = False
    observation_features = {"a.pos": float, "b.pos": float, "c.pos": float, "front": (48, 64, 3)}
    action_features = {"a.pos": float, "b.pos": float, "c.pos": float}

    def connect(self):
        Path("connected").write_text("yes")


def lerobot():
    return Arm()
'''
BASE = ["--url", "http://127.0.0.1:9", "--key", "wam_key", "--robot", "arm-0"]
BOUNDS = ["--action-low", "-100,-100,0", "--action-high", "100,100,100"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Where `wam bridge` runs: the factory's module sits in its working directory, as a user's would."""
    path = tmp_path_factory.mktemp("bridge_cli")
    (path / "arms.py").write_text(ARMS)
    return path


def _bridge(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wam.cli", "bridge", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, message", [
    (BASE, "give one of --factory module:function or --sim <env id>"),
    ([*BASE, "--factory", "arms:lerobot", "--sim", "metaworld/reach-v3"], "give one of --factory"),
    ([*BASE, "--factory", "arms"], "--factory must look like module:function, got 'arms'"),
    ([*BASE, "--factory", ":lerobot"], "--factory must look like module:function"),
    ([*BASE, "--factory", "no_such_module_here:make"], "No module named 'no_such_module_here'"),
    ([*BASE, "--factory", "arms:missing"], "module 'arms' has no attribute 'missing'"),
    ([*BASE, "--factory", "arms:lerobot"], "a LeRobot robot needs --action-low and --action-high"),
    ([*BASE, "--factory", "arms:lerobot", "--action-low", "-1,x,0", "--action-high", "1,1,1"],
     "--action-low must be comma-separated numbers, got '-1,x,0'"),
    ([*BASE, "--factory", "arms:lerobot", "--action-low", "-1,5,0", "--action-high", "1,1,1"],
     "action 'b.pos' has low 5.0 not below high 1.0"),
    ([*BASE, "--factory", "arms:lerobot", "--action-low", "-1,-1", "--action-high", "1,1"],
     "action_low has 2 values for 3 action names"),
    ([*BASE, "--factory", "arms:lerobot", *BOUNDS, "--max-delta", "1,0,1"], "max_delta must be positive"),
    ([*BASE, "--factory", "arms:lerobot", *BOUNDS, "--safe-action", "0,0"], "safe_action has 2 values"),
    ([*BASE, "--factory", "arms:lerobot", *BOUNDS, "--fps", "0"], "fps must be in"),
    (["--url", "ftp://host", *BASE[2:], "--factory", "arms:lerobot", *BOUNDS], "must start with http://"),
    (["--url", "http://host:80OO", *BASE[2:], "--factory", "arms:lerobot", *BOUNDS], "is not a URL"),
    ([*BASE, "--factory", "arms:lerobot", *BOUNDS, "--watchdog-s", "0"], "watchdog_s must be positive, got 0.0"),
])
def test_refusals_are_one_line_and_exit_2(workdir, args, message):
    result = _bridge(workdir, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_an_arm_whose_bounds_are_refused_is_not_connected(workdir):
    result = _bridge(workdir, *BASE, "--factory", "arms:lerobot", "--action-low", "1,1,1", "--action-high", "0,0,0")
    assert result.returncode == 2 and "not below high" in result.stderr
    assert not (workdir / "connected").exists()
