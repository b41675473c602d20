"""`wam serve --ray`: simulated robots' workers placed on a Ray cluster (here a local instance of 2 CPUs), with keys,
leases, the emergency stop and recording on the server. Skips where Ray is not installed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # a Ray instance and a live server with two rendering robots

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    state, server, thread = start_live(tmp_path_factory.mktemp("ray_fleet"), "metaworld/reach-v3*2", max_episode_steps=500,
                                       ray="auto")
    yield state
    server.should_exit = True
    thread.join(60)
    ray.shutdown()


def http(live, key: str = "control"):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"}, timeout=60)


def robot_handle(live, robot: str):
    return live.app.state.fleet.robots[robot]


def test_robots_run_on_ray_and_their_episodes_are_recorded_here(fleet):
    from wam.api.ray_robots import RayProcess
    from wam.data.reader import Dataset

    handle = robot_handle(fleet, "reach-v3-0")
    assert isinstance(handle.process, RayProcess) and handle.process.node and handle.process.is_alive()
    with http(fleet) as client:
        lease = client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 60}).json()["lease_id"]
        assert client.post("/v1/robots/reach-v3-0/reset", json={"seed": 3}).status_code == 200
        answer = client.post("/v1/robots/reach-v3-0/step", json={"lease_id": lease, "actions": [[0.1, 0, 0, 0]] * 12})
        assert answer.status_code == 200 and answer.json()["steps"] == 12
        assert client.post("/v1/robots/reach-v3-0/reset", json={"seed": 4}).status_code == 200  # ends the episode
        deadline = time.monotonic() + 30
        while not client.get("/v1/episodes", params={"robot": "reach-v3-0"}).json() and time.monotonic() < deadline:
            time.sleep(0.1)
        episode = client.get("/v1/episodes", params={"robot": "reach-v3-0"}).json()[-1]
    assert episode["length"] == 13  # the reset's frame, then one per action
    frames = Dataset(fleet.data).frames(episode["id"])
    assert frames.shape[0] == 13 and frames.std() > 0  # the worker's video, shipped back and committed here


def test_an_estop_stops_a_robot_on_ray_and_nothing_runs_after_the_answer(fleet):
    handle = robot_handle(fleet, "reach-v3-1")
    with http(fleet) as client:
        lease = client.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 120}).json()["lease_id"]
        assert client.post("/v1/robots/reach-v3-1/reset", json={"seed": 1}).status_code == 200
        before = handle.actions_executed
        actions = (np.arange(256)[:, None] / 256 * np.array([1, -1, 0.5, 0])).tolist()

        def send(c: int) -> httpx.Response:
            with http(fleet) as sender:
                return sender.post("/v1/robots/reach-v3-1/step", json={"lease_id": lease, "actions": actions[c * 64:(c + 1) * 64]})

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, c) for c in range(4)]
            deadline = time.monotonic() + 60
            while handle.actions_executed <= before and time.monotonic() < deadline:
                time.sleep(0.005)
            stopped = client.post("/v1/robots/reach-v3-1/estop")
            assert stopped.status_code == 200 and stopped.json()["estopped"]
            at_answer = handle.actions_executed
            answers = [f.result(timeout=60) for f in futures]
        time.sleep(0.5)
        assert handle.actions_executed == at_answer, "actions ran after the stop was answered"
        assert 0 < at_answer - before < 256
        assert any(a.status_code == 409 for a in answers)
        assert all(a.status_code == 200 or "emergency-stopped" in a.json()["detail"] for a in answers)
        deadline = time.monotonic() + 30
        episode = None
        while time.monotonic() < deadline:
            found = client.get("/v1/episodes", params={"robot": "reach-v3-1"}).json()
            episode = found[-1] if found else None
            if episode is not None and episode["end_reason"] == "estop":
                break
            time.sleep(0.1)
        assert episode["end_reason"] == "estop" and episode["length"] == at_answer - before + 1
        assert client.post("/v1/robots/reach-v3-1/estop/release").status_code == 200


def test_a_lost_ray_worker_is_restarted_and_keeps_a_held_estop(fleet):
    handle = robot_handle(fleet, "reach-v3-1")
    with http(fleet) as client:
        assert client.post("/v1/robots/reach-v3-1/estop").json()["estopped"]
        ray.kill(handle.process.actor)  # as if its node were lost
        deadline = time.monotonic() + 120
        robot = client.get("/v1/robots/reach-v3-1").json()
        while (robot["status"] != "ready" or robot["restarts"] < 1) and time.monotonic() < deadline:
            time.sleep(0.2)
            robot = client.get("/v1/robots/reach-v3-1").json()
        assert robot["status"] == "ready" and robot["restarts"] == 1
        assert handle.process.is_alive()
        lease = client.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 60}).json()["lease_id"]
        refused = client.post("/v1/robots/reach-v3-1/step", json={"lease_id": lease, "actions": [[0, 0, 0, 0]]})
        assert refused.status_code == 409  # the stop pressed before the loss still holds on the new worker
        assert client.post("/v1/robots/reach-v3-1/estop/release").status_code == 200
        assert client.post("/v1/robots/reach-v3-1/reset", json={"seed": 2}).status_code == 200
        assert client.post("/v1/robots/reach-v3-1/step", json={"lease_id": lease, "actions": [[0, 0, 0, 0]]}).status_code == 200
