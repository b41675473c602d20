"""Every route of the Physical API against a live server: auth, leases, validation, recording, tasks, crashes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

ROUTES = [  # (method, path, body, scope needed)
    ("GET", "/v1/robots", None, "read"),
    ("GET", "/v1/robots/reach-v3-0", None, "read"),
    ("GET", "/v1/robots/reach-v3-0/observation", None, "read"),
    ("GET", "/v1/robots/reach-v3-0/observation.png", None, "read"),
    ("POST", "/v1/robots/reach-v3-0/lease", {"ttl_s": 5}, "control"),
    ("POST", "/v1/leases/nope/renew", {"ttl_s": 5}, "control"),
    ("DELETE", "/v1/leases/nope", None, "control"),
    ("DELETE", "/v1/robots/reach-v3-0/lease", None, "admin"),
    ("POST", "/v1/robots/reach-v3-0/reset", {}, "control"),
    ("POST", "/v1/robots/reach-v3-0/step", {"action": [0, 0, 0, 0]}, "control"),
    ("POST", "/v1/robots/reach-v3-0/estop", None, "control"),
    ("POST", "/v1/robots/reach-v3-0/estop/release", None, "control"),
    ("POST", "/v1/fleet/estop", None, "control"),
    ("POST", "/v1/fleet/step", {"steps": [{"robot": "reach-v3-0", "action": [0, 0, 0, 0]}]}, "control"),
    ("POST", "/v1/tasks", {"task": "reach-v3"}, "control"),
    ("GET", "/v1/tasks", None, "read"),
    ("GET", "/v1/tasks/nope", None, "read"),
    ("POST", "/v1/tasks/nope/cancel", None, "control"),
    ("GET", "/v1/episodes", None, "read"),
    ("GET", "/v1/episodes/0", None, "read"),
    ("GET", "/v1/episodes/0/download", None, "read"),
    ("POST", "/v1/keys", {"scope": "read"}, "admin"),
    ("GET", "/v1/keys", None, "admin"),
    ("DELETE", "/v1/keys/nope", None, "admin"),
]


def http(live, key: str | None):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"} if key else {}, timeout=60)


def test_health_needs_no_key(live):
    body = httpx.get(f"{live.url}/v1/health").json()
    assert body["status"] == "ok" and body["robots"] == 4 and body["ready"] == 4


@pytest.mark.parametrize("method, path, body, scope", ROUTES)
def test_every_route_refuses_a_missing_or_wrong_key(live, method, path, body, scope):
    for headers in ({}, {"Authorization": "Bearer wam_0000_not-a-key"}, {"X-API-Key": "garbage"}):
        response = httpx.request(method, live.url + path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    weaker = {"read": None, "control": "read", "admin": "control"}[scope]
    if weaker is not None:
        with http(live, weaker) as client:
            response = client.request(method, path, json=body)
        assert response.status_code == 403 and scope in response.json()["detail"]


def test_openapi_is_served_and_versioned(live):
    spec = httpx.get(f"{live.url}/openapi.json").json()
    assert all(path.startswith("/v1/") for path in spec["paths"])
    assert {"/v1/robots/{robot_id}/step", "/v1/tasks", "/v1/episodes/{episode_id}/download"} <= set(spec["paths"])


def test_robot_pattern_limits_what_a_key_sees_and_drives(live):
    with http(live, "control_drawer") as client:
        assert [r["id"] for r in client.get("/v1/robots").json()] == ["drawer-open-v3-0"]
        response = client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 5})  # as if it did not exist
        assert response.status_code == 404 and "reach-v3-0" in response.json()["detail"]
        assert response.json()["detail"] == client.post("/v1/robots/nope/lease", json={"ttl_s": 5}).json()["detail"].replace(
            "nope", "reach-v3-0")


def test_describe_gives_spaces_and_capabilities(live):
    with http(live, "read") as client:
        robot = client.get("/v1/robots/reach-v3-0").json()
        assert robot["action_space"] == {"shape": [4], "low": [-1.0] * 4, "high": [1.0] * 4}
        assert robot["observation_space"]["image"]["shape"] == [64, 64, 3] and "image" in robot["capabilities"]
        assert client.get("/v1/robots/nope").status_code == 404


def test_leases_are_exclusive_renewable_and_expire(live):
    with http(live, "control") as owner, http(live, "control_other") as other:
        lease = owner.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 30}).json()
        assert other.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 5}).status_code == 409
        assert other.post("/v1/robots/reach-v3-1/reset", json={}).status_code == 409
        assert other.post(f"/v1/leases/{lease['lease_id']}/renew", json={"ttl_s": 5}).status_code == 409
        renewed = owner.post(f"/v1/leases/{lease['lease_id']}/renew", json={"ttl_s": 0.3}).json()
        assert renewed["lease_id"] == lease["lease_id"]
        time.sleep(0.5)  # expired: the robot is free again
        assert owner.post("/v1/robots/reach-v3-1/step", json={"action": [0, 0, 0, 0]}).status_code == 409
        taken = other.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 30})
        assert taken.status_code == 201
        assert other.delete(f"/v1/leases/{taken.json()['lease_id']}").status_code == 204
        assert owner.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 30}).status_code == 201


def test_bad_actions_are_refused_and_never_reach_the_simulator(live):
    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 60})
        assert client.post("/v1/robots/reach-v3-0/reset", json={"seed": 3}).status_code == 200
        before = client.get("/v1/robots/reach-v3-0/observation").json()
        raw = {"content-type": "application/json"}
        bad = [
            (b'{"action": [0.1, 0, 0, NaN]}', "NaN or inf"),
            (b'{"action": [0.1, 0, 0, Infinity]}', "NaN or inf"),
            (b'{"action": [0.1, 0, 0, 1e999]}', "NaN or inf"),
            (b'{"action": [0.1, 0, 0, 1.5]}', "outside the action space"),
            (b'{"actions": [[0, 0, 0, 0], [0, -3, 0, 0]]}', "actions[1][1]"),
            (b'{"action": [0.1, 0, 0]}', "takes 4"),
            (b'{"action": [0, 0, 0, 0], "actions": [[0, 0, 0, 0]]}', "exactly one"),
            (b'{"actions": []}', "empty"),
            (b'{"action": "left"}', ""),
        ]
        for body, message in bad:
            response = client.post("/v1/robots/reach-v3-0/step", content=body, headers=raw)
            assert response.status_code == 422, body
            assert message in json.dumps(response.json()), (body, response.text)
        after = client.get("/v1/robots/reach-v3-0/observation").json()
        assert after["episode_step"] == before["episode_step"] == 0 and after["state"] == before["state"]


def test_step_chunks_images_and_recorded_episodes(live):
    from wam.data.reader import Dataset

    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-2/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-2/reset", json={"seed": 7})
        one = client.post("/v1/robots/reach-v3-2/step", json={"action": [0.2, 0, 0, 0]}).json()
        chunk = client.post("/v1/robots/reach-v3-2/step", json={"actions": [[0.2, 0, 0, 0]] * 5}).json()
        assert one["steps"] == 1 and chunk["steps"] == 5
        assert chunk["observation"]["episode_step"] == one["observation"]["episode_step"] + 5
        png = client.get("/v1/robots/reach-v3-2/observation.png")
        assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (64, 64)
        result = chunk
        while result.get("episode_id") is None:  # the 30-step limit ends the episode; that step records it
            assert "observation" in result, result
            result = client.post("/v1/robots/reach-v3-2/step", json={"actions": [[0, 0.1, 0, 0]] * 8}).json()
        assert result["observation"]["truncated"] and result["observation"]["done"]
        assert client.post("/v1/robots/reach-v3-2/step", json={"action": [0, 0, 0, 0]}).status_code == 409
        episode = client.get(f"/v1/episodes/{result['episode_id']}").json()
        assert episode["robot"] == "reach-v3-2" and episode["length"] == 31 and episode["end_reason"] == "time_limit"
        listed = client.get("/v1/episodes", params={"robot": "reach-v3-2"}).json()
        assert result["episode_id"] in [e["id"] for e in listed]
        arrays = np.load(io.BytesIO(client.get(f"/v1/episodes/{result['episode_id']}/download").content))
        assert arrays["action"].shape == (31, 4) and arrays["observation.images.main"].shape == (31, 64, 64, 3)
        np.testing.assert_allclose(arrays["action"][1], [0.2, 0, 0, 0])
        assert client.get("/v1/episodes/999999").status_code == 404
    dataset = Dataset(live.data)
    assert dataset.episodes[result["episode_id"]].length == 31


def test_a_reset_mid_episode_records_the_episode_so_far(live):
    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-2/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-2/reset", json={"seed": 1})
        client.post("/v1/robots/reach-v3-2/step", json={"actions": [[0, 0, 0.1, 0]] * 3})
        before = len(client.get("/v1/episodes", params={"robot": "reach-v3-2"}).json())
        client.post("/v1/robots/reach-v3-2/reset", json={"seed": 2})
        episodes = client.get("/v1/episodes", params={"robot": "reach-v3-2"}).json()
        assert len(episodes) == before + 1 and episodes[-1]["end_reason"] == "reset" and episodes[-1]["length"] == 4


def test_websocket_streams_observations(live):
    from websockets.sync.client import connect

    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-2/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-2/reset", json={"seed": 5})
        url = live.url.replace("http", "ws") + "/v1/robots/reach-v3-2/stream"
        with connect(url, additional_headers={"Authorization": f"Bearer {live.keys['read']}"}) as socket:
            first = json.loads(socket.recv(timeout=10))
            assert first["robot"] == "reach-v3-2" and first["episode_step"] == 0
            client.post("/v1/robots/reach-v3-2/step", json={"actions": [[0, 0, 0, 0]] * 2})
            streamed = json.loads(socket.recv(timeout=10))
            assert streamed["episode_step"] == 2 and len(streamed["state"]) == 4
        with connect(url + f"?key={live.keys['read']}") as socket:  # browsers pass the key in the query
            assert json.loads(socket.recv(timeout=10))["robot"] == "reach-v3-2"
        with pytest.raises(Exception):
            with connect(url) as socket:
                socket.recv(timeout=10)


def test_emergency_stop_refuses_control_until_released(live):
    with http(live, "control") as client, http(live, "control_other") as other:
        client.post("/v1/robots/reach-v3-2/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-2/reset", json={"seed": 4})
        client.post("/v1/robots/reach-v3-2/step", json={"action": [0, 0, 0, 0]})
        stopped = other.post("/v1/robots/reach-v3-2/estop").json()  # anyone with control may stop it, lease or not
        assert stopped["estopped"]
        response = client.post("/v1/robots/reach-v3-2/step", json={"action": [0, 0, 0, 0]})
        assert response.status_code == 409 and "emergency-stopped" in response.json()["detail"]
        last = client.get("/v1/episodes", params={"robot": "reach-v3-2"}).json()[-1]
        assert last["end_reason"] == "estop"
        assert client.post("/v1/robots/reach-v3-2/estop/release").status_code == 403  # only the key that pressed it
        assert other.post("/v1/robots/reach-v3-2/estop/release").status_code == 200
        assert client.post("/v1/robots/reach-v3-2/reset", json={}).status_code == 200
        fleet = client.post("/v1/fleet/estop").json()
        assert len(fleet) == 4 and all(r["estopped"] for r in fleet)
        for robot in fleet:
            client.post(f"/v1/robots/{robot['id']}/estop/release")
        assert not any(r["estopped"] for r in client.get("/v1/robots").json())


def test_tasks_run_policies_record_episodes_and_cancel(live):
    with http(live, "control") as client:
        run = client.post("/v1/tasks", json={"task": "drawer-open-v3", "policy": "expert", "robots": ["drawer-open-v3-0"],
                                             "episodes": 2}).json()
        assert run["status"] == "running" and run["robots"] == ["drawer-open-v3-0"]
        assert client.post("/v1/robots/drawer-open-v3-0/lease", json={"ttl_s": 5}).status_code == 409
        deadline = time.monotonic() + 120
        while run["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            run = client.get(f"/v1/tasks/{run['id']}").json()
        assert run["status"] == "finished" and run["episodes_done"] == 2
        episodes = client.get("/v1/episodes", params={"run_id": run["id"]}).json()
        assert len(episodes) == 2 and all(e["robot"] == "drawer-open-v3-0" for e in episodes)
        assert run["successes"] == sum(e["success"] for e in episodes)
        long = client.post("/v1/tasks", json={"task": "drawer-open-v3", "policy": "random", "robots": 1, "episodes": 1000}).json()
        time.sleep(0.5)
        cancelled = client.post(f"/v1/tasks/{long['id']}/cancel")
        assert cancelled.status_code == 200
        while long["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            long = client.get(f"/v1/tasks/{long['id']}").json()
        assert long["status"] == "cancelled" and long["episodes_done"] < 1000
        assert client.post(f"/v1/tasks/{long['id']}/cancel").status_code == 409
        assert client.post("/v1/tasks", json={"task": "fly-v3"}).status_code == 422
        assert client.post("/v1/tasks", json={"task": "reach-v3", "robots": 99}).status_code == 422
        assert any(t["id"] == run["id"] for t in client.get("/v1/tasks").json())


def test_keys_are_created_listed_and_revoked_by_admins(live):
    with http(live, "admin") as admin:
        created = admin.post("/v1/keys", json={"scope": "read", "robots": "reach-*", "name": "viewer"}).json()
        assert created["secret"].startswith("wam_")
        listed = admin.get("/v1/keys").json()
        assert created["id"] in [k["id"] for k in listed] and all(k["secret"] is None for k in listed)
        viewer = {"Authorization": f"Bearer {created['secret']}"}
        assert httpx.get(f"{live.url}/v1/robots", headers=viewer).status_code == 200
        assert admin.delete(f"/v1/keys/{created['id']}").status_code == 204
        assert httpx.get(f"{live.url}/v1/robots", headers=viewer).status_code == 401
        assert admin.post("/v1/keys", json={"scope": "root"}).status_code == 422


def test_request_bodies_are_size_limited(live):
    with http(live, "control") as client:
        response = client.post("/v1/robots/reach-v3-0/step", content=b"[" + b"0," * 600_000 + b"0]",
                               headers={"content-type": "application/json"})
        assert response.status_code == 413


def _on_server_loop(live, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, live.app.state.loop)


def test_a_slow_robot_does_not_block_the_others(live):
    fleet = live.app.state.fleet
    slow = _on_server_loop(live, fleet.call("reach-v3-1", "sleep", {"seconds": 3.0}))
    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-0/reset", json={"seed": 0})
        started = time.monotonic()
        for _ in range(5):
            assert client.post("/v1/robots/reach-v3-0/step", json={"action": [0, 0, 0, 0]}).status_code == 200
        assert time.monotonic() - started < 2.0 and not slow.done()
    slow.result(timeout=10)


def test_a_crashed_or_hung_robot_is_restarted_and_marked(live):
    from wam.api.robot_handle import RobotTimeout

    fleet = live.app.state.fleet
    with http(live, "control") as client:
        os.kill(fleet.robots["reach-v3-1"].process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        robot = client.get("/v1/robots/reach-v3-1").json()
        while (robot["status"] != "ready" or robot["restarts"] < 1) and time.monotonic() < deadline:
            time.sleep(0.2)
            robot = client.get("/v1/robots/reach-v3-1").json()
        assert robot["status"] == "ready" and robot["restarts"] == 1 and "crash" in robot["last_error"]
        client.post("/v1/robots/reach-v3-1/lease", json={"ttl_s": 60})
        assert client.post("/v1/robots/reach-v3-1/reset", json={"seed": 0}).status_code == 200
        hung = _on_server_loop(live, fleet.call("reach-v3-1", "sleep", {"seconds": 30.0}, timeout=0.5))
        with pytest.raises(RobotTimeout):
            hung.result(timeout=10)
        while (robot["status"] != "ready" or robot["restarts"] < 2) and time.monotonic() < deadline:
            time.sleep(0.2)
            robot = client.get("/v1/robots/reach-v3-1").json()
        assert robot["restarts"] == 2 and client.post("/v1/robots/reach-v3-1/reset", json={}).status_code == 200


def test_one_request_steps_many_robots_each_with_its_own_outcome(live):
    with http(live, "control") as client, http(live, "control_drawer") as drawer_only:
        for robot in ("reach-v3-0", "reach-v3-2"):
            client.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 60})
            client.post(f"/v1/robots/{robot}/reset", json={"seed": 1})
        steps = [{"robot": "reach-v3-0", "actions": [[0, 0.1, 0, 0]] * 2}, {"robot": "reach-v3-2", "action": [0, 0, 0.1, 0]},
                 {"robot": "reach-v3-0", "action": [0, 0, 0, 0]}, {"robot": "reach-v3-2x", "action": [0, 0, 0, 0]}]
        outcomes = client.post("/v1/fleet/step", json={"steps": steps}).json()
        assert [o["status"] for o in outcomes] == [200, 200, 422, 404]
        assert outcomes[0]["result"]["steps"] == 2 and outcomes[1]["result"]["observation"]["episode_step"] == 1
        bad = client.post("/v1/fleet/step", json={"steps": [{"robot": "reach-v3-2", "action": [0, 0, 0, 7]}]})
        assert bad.json()[0]["status"] == 422 and "outside the action space" in bad.json()[0]["detail"]
        refused = drawer_only.post("/v1/fleet/step", json={"steps": [{"robot": "reach-v3-0", "action": [0, 0, 0, 0]}]}).json()
        assert refused[0]["status"] == 404  # outside its pattern: as if the robot did not exist
        assert client.post("/v1/fleet/step", json={"steps": []}).status_code == 422


def test_a_step_need_not_wait_for_its_episode_commit(live):
    with http(live, "control") as client:
        client.post("/v1/robots/reach-v3-0/lease", json={"ttl_s": 60})
        client.post("/v1/robots/reach-v3-0/reset", json={"seed": 8})
        before = len(client.get("/v1/episodes", params={"robot": "reach-v3-0", "limit": 1000}).json())
        result = client.post("/v1/robots/reach-v3-0/step", json={"actions": [[0, 0, 0, 0]] * 40, "wait_recorded": False}).json()
        assert result["recording"] and result["episode_id"] is None and result["observation"]["done"]
        deadline = time.monotonic() + 30
        while len(client.get("/v1/episodes", params={"robot": "reach-v3-0", "limit": 1000}).json()) == before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/v1/robots/reach-v3-0/reset", json={}).status_code == 200
