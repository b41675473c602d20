"""A scanned scene is a robot like any other behind the Physical API: leased, reset with a tabletop task, stepped,
its episode recorded for training."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.live_server import start_live


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    from wam.real2sim.arrange import arranged_scene

    scene = tmp_path_factory.mktemp("scan_scene") / "table"
    arranged_scene(scene, ("box", "cylinder"), seed=5)
    state, server, thread = start_live(tmp_path_factory.mktemp("scan_fleet"), f"scan/{scene}", max_episode_steps=50)
    yield state
    server.should_exit = True
    thread.join(60)


@pytest.mark.slow
def test_a_scanned_scene_is_driven_and_recorded_through_the_api(fleet):
    from wam.data.reader import Dataset

    with httpx.Client(base_url=fleet.url, headers={"Authorization": f"Bearer {fleet.keys['control']}"}, timeout=60) as client:
        robots = client.get("/v1/robots").json()
        robot = next(r["id"] for r in robots if r["id"].startswith("scan-table"))
        lease = client.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 60}).json()["lease_id"]
        refused = client.post(f"/v1/robots/{robot}/reset", json={"seed": 1, "task": "juggle"})
        assert refused.status_code >= 400 and "tabletop task" in refused.text
        assert client.post(f"/v1/robots/{robot}/reset", json={"seed": 1, "task": "push"}).status_code == 200
        answer = client.post(f"/v1/robots/{robot}/step", json={"lease_id": lease, "actions": [[0.2, 0.0, -0.3, 1.0]] * 8})
        assert answer.status_code == 200 and answer.json()["steps"] == 8
        assert client.post(f"/v1/robots/{robot}/reset", json={"seed": 2, "task": "push"}).status_code == 200
        deadline = time.monotonic() + 30
        while not client.get("/v1/episodes", params={"robot": robot}).json() and time.monotonic() < deadline:
            time.sleep(0.1)
        episode = client.get("/v1/episodes", params={"robot": robot}).json()[-1]
    assert episode["length"] == 9 and episode["task"] == "push the object to the goal"
    dataset = Dataset(fleet.data)
    assert dataset.frames(episode["id"]).shape[0] == 9
