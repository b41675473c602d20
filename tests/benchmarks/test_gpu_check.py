"""The GPU check script runs end to end (on the CPU, at tiny sizes), so the first lent GPU is not spent debugging it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["complete"] and result["dry_run"]
    assert set(result["parts"]) == {"ceilings", "throughput", "loop", "torchrun", "summary"}
    world = result["parts"]["throughput"][0]["world_model"]
    assert world["step_gflop"] > 0 and world["frames_per_s"] > 0
    assert result["parts"]["loop"][0]["steps_per_s"] > 0
    torchrun = result["parts"]["torchrun"]
    assert torchrun["returncode"] == 0 and torchrun["processes"] == 2 and torchrun["backend"] == "gloo"
