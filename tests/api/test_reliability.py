"""Kill -9 the server while robots are mid-episode and a task runs; restart on the same data and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow  # kills and restarts a server process



def _serve(data, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wam.cli", "serve", "--robots", "metaworld/reach-v3*3", "--data", str(data),
                             "--obs", "state", "--max-episode-steps", "15", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_ready(url: str, process: subprocess.Popen, robots: int = 3) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/v1/health").json()["ready"] == robots:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def test_kill_9_loses_no_finished_episode_and_shows_no_partial_one(tmp_path, free_port):
    from wam.api.auth import create_key
    from wam.api.client import Client
    from wam.api.server import default_db
    from wam.api.store import Store
    from wam.data.check import check_dataset
    from wam.data.reader import Dataset

    data = tmp_path / "fleet"
    store = Store(default_db(data))
    _, key = create_key(store, "control")
    store.close()
    port = free_port
    url = f"http://127.0.0.1:{port}"
    server = _serve(data, port)
    try:
        _wait_ready(url, server)
        client = Client(url, key)
        client.lease("reach-v3-0", 60)
        finished = []
        for seed in range(2):
            client.reset("reach-v3-0", seed=seed)
            finished.append(client.step("reach-v3-0", actions=[[0, 0.5, 0, 0]] * 15)["episode_id"])
        client.lease("reach-v3-1", 60)
        client.reset("reach-v3-1", seed=9)
        client.step("reach-v3-1", actions=[[0, 0, 0.5, 0]] * 5)  # mid-episode at the kill
        run = client.run_task("reach-v3", policy="random", robots=["reach-v3-2"], episodes=10_000)
        while client.task(run["id"])["episodes_done"] < 2:
            time.sleep(0.05)
        os.killpg(server.pid, signal.SIGKILL)  # the server and every robot worker at once
        server.wait(30)
        errors = [p for p in check_dataset(data) if p.severity == "error"]  # a warning: the commit the kill cut short
        assert not errors, errors
        before = Dataset(data).num_episodes
        assert before >= 4 and all(e is not None for e in finished)

        server = _serve(data, port)
        _wait_ready(url, server)
        client = Client(url, key)
        listed = client.episodes(limit=1000)
        assert [e["id"] for e in listed] == list(range(before))  # every committed episode is indexed, in order
        assert set(finished) <= {e["id"] for e in listed}
        assert not [e for e in listed if e["robot"] == "reach-v3-1"]  # the half-run episode never appears
        dataset = Dataset(data)
        for episode in range(dataset.num_episodes):
            assert dataset.low_dim(episode)["action"].shape == (dataset.episodes[episode].length, 4)
        status = client.task(run["id"])
        assert status["status"] == "interrupted" and status["episodes_done"] >= 2
        check = subprocess.run([sys.executable, "-m", "wam.cli", "data", "check", str(data)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
