"""`wam keys|robots|tasks|serve` on top of the SDK, against a live server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wam.cli import app

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

runner = CliRunner()


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_keys_create_list_and_revoke(tmp_path):
    data = tmp_path / "fleet"
    created = _json(runner.invoke(app, ["keys", "create", "--scope", "control", "--robots", "reach-*", "--data", str(data)]))
    assert created["key"].startswith("wam_") and created["robots"] == "reach-*"
    listed = _json(runner.invoke(app, ["keys", "list", "--data", str(data)]))
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert runner.invoke(app, ["keys", "revoke", created["id"], "--data", str(data)]).exit_code == 0
    assert _json(runner.invoke(app, ["keys", "list", "--data", str(data)]))[0]["revoked"]
    bad = runner.invoke(app, ["keys", "create", "--scope", "root", "--data", str(data)])
    said = " ".join(bad.output.replace("│", " ").split())  # click boxes and wraps a usage error
    assert bad.exit_code == 2 and "'root' (must be one of read, control, admin)" in said and "--scope" in said
    assert "say which server's database" in runner.invoke(app, ["keys", "create", "--scope", "read"]).output


def test_robot_and_task_commands(live):
    auth = ["--url", live.url, "--key", live.keys["control"]]
    robots = _json(runner.invoke(app, ["robots", "list", *auth]))
    assert "reach-v3-0" in [r["id"] for r in robots]
    shown = _json(runner.invoke(app, ["robots", "show", "reach-v3-0", *auth]))
    assert shown["robot"]["action_space"]["shape"] == [4]
    reset = _json(runner.invoke(app, ["robots", "reset", "reach-v3-0", "--seed", "4", *auth]))
    assert reset["episode_step"] == 0
    stepped = _json(runner.invoke(app, ["robots", "step", "reach-v3-0", "0,0.5,0,0", "--repeat", "3", *auth]))
    assert stepped["steps"] == 3
    refused = runner.invoke(app, ["robots", "step", "reach-v3-0", "0,5,0,0", *auth])
    assert refused.exit_code == 2 and "outside the action space" in refused.output
    assert "comma-separated" in runner.invoke(app, ["robots", "step", "reach-v3-0", "left", *auth]).output
    assert _json(runner.invoke(app, ["robots", "estop", "reach-v3-0", *auth]))["estopped"]
    assert not _json(runner.invoke(app, ["robots", "estop", "reach-v3-0", "--release", *auth]))["estopped"]
    watched = runner.invoke(app, ["robots", "watch", "reach-v3-0", "--count", "1", *auth])
    assert watched.exit_code == 0 and json.loads(watched.output.strip().splitlines()[0])["robot"] == "reach-v3-0"
    run = _json(runner.invoke(app, ["tasks", "run", "reach-v3", "--robots", "1", "--episodes", "1", "--wait", *auth]))
    assert run["status"] == "finished" and run["episodes_done"] == 1
    assert _json(runner.invoke(app, ["tasks", "status", run["id"], *auth]))["id"] == run["id"]
    assert any(r["id"] == run["id"] for r in _json(runner.invoke(app, ["tasks", "status", *auth])))
    cancel = runner.invoke(app, ["tasks", "cancel", run["id"], *auth])
    assert cancel.exit_code == 2 and "not running" in cancel.output


def test_clear_errors_for_a_missing_server_and_a_bad_fleet(tmp_path, free_port):
    down = runner.invoke(app, ["robots", "list", "--url", f"http://127.0.0.1:{free_port}", "--key", "wam_x_y"])
    assert down.exit_code == 2 and "ConnectError" in down.output
    bad = runner.invoke(app, ["serve", "--robots", "metaworld/fly-v3", "--data", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "unknown Meta-World task" in bad.output
    public = runner.invoke(app, ["serve", "--robots", "metaworld/reach-v3", "--data", str(tmp_path / "d"), "--host", "0.0.0.0"])
    assert public.exit_code == 2 and "--public" in public.output
