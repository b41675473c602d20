"""`wam scan` end to end, as a user runs it: arrange, scan into a real app's format, import, build, cousins, collect."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wam.cli import app


def wam(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


@pytest.mark.slow
def test_a_phone_scan_becomes_scenes_that_collection_runs_in(tmp_path):
    for line in (("scan", "arrange", "--out", tmp_path / "real", "--kinds", "hexagon,stone,box", "--seed", 4),
                 ("scan", "synth", tmp_path / "real", "--out", tmp_path / "scan.r3d", "--frames", 16),
                 ("scan", "import", tmp_path / "scan.r3d", "--out", tmp_path / "scan"),
                 ("scan", "build", tmp_path / "scan", "--out", tmp_path / "twin", "--report", tmp_path / "build.json"),
                 ("scan", "cousins", tmp_path / "twin", "--k", 2, "--out", tmp_path / "cousins"),
                 ("collect", "--env", f"scan/{tmp_path / 'cousins' / 'cousin1'}", "--tasks", "push", "--episodes", 1,
                  "--out", tmp_path / "data", "--size", 32)):
        result = wam(*line)
        assert result.exit_code == 0, f"{line}: {result.output}"
    report = json.loads((tmp_path / "build.json").read_text())
    assert report["objects"] == 3 and report["unstable"] == {}
    assert (tmp_path / "cousins" / "cousin0" / "scene.json").is_file()
    assert "1/1 successful" in " ".join(result.output.split())


def test_poses_written_the_other_way_round_are_refused_until_named(tmp_path):
    from wam.real2sim.arrange import arranged_scene
    from wam.real2sim.formats import write_r3d
    from wam.real2sim.scanner import ScannerConfig, scan_scene

    arranged_scene(tmp_path / "real", ("box", "cylinder"), seed=2)
    scan, _ = scan_scene(tmp_path / "real", ScannerConfig(frames=8))
    write_r3d(scan, tmp_path / "inverted.r3d", poses="world-to-camera")
    refused = wam("scan", "import", tmp_path / "inverted.r3d", "--out", tmp_path / "scan")
    assert refused.exit_code == 2 and "world-to-camera" in refused.output
    assert not (tmp_path / "scan" / "scan.json").exists()
    accepted = wam("scan", "import", tmp_path / "inverted.r3d", "--out", tmp_path / "scan", "--poses", "world-to-camera")
    assert accepted.exit_code == 0, accepted.output
