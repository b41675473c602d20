"""examples/factory.py still runs: one agent, a queue of tasks, a fleet (small here; 16 robots by default)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the factory example against a live server

EXAMPLE = Path(__file__).parents[2] / "examples" / "factory.py"


def test_factory_runs_its_queue_across_the_fleet(tmp_path):
    out = tmp_path / "factory.json"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--robots", "4", "--episodes", "2", "--data", str(tmp_path / "fleet"),
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["robots"] == 4 and summary["episodes"] == 8 and summary["actions"] > 0
    assert set(summary["tasks"]) == {"reach-v3", "drawer-open-v3", "button-press-topdown-v3", "window-close-v3"}
    assert summary["success_rate"] >= 0.75  # scripted experts, noise-free

    from wam.data.reader import Dataset

    assert Dataset(tmp_path / "fleet").num_episodes == 8
