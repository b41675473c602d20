"""Real robots behind the Physical API: a bridge connects a robot (here a simulated arm) to `wam serve`.

The server treats a bridged robot like any other (leases, estop, tasks, recording); a bridge
killed mid-episode leaves that episode recorded as "interrupted" and the robot offline until
a bridge connects again; a refused bridge is told why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wam.api.client import ApiError, Client
from wam.bridge import Bridge, BridgeConfig, BridgeRefused, RobotDeclaration, RobotObservation, SimulatedRobot
from wam.bridge.bridge import run_in_thread, wait_attached

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # live servers and bridges, one killed and restarted

CAMERAS = ("corner2", "gripperPOV")
WAM = str(Path(sys.executable).with_name("wam"))


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class SixJointArm:
    """A robot whose state is 6-d: it does not fit a dataset of 4-d arms."""

    def declare(self) -> RobotDeclaration:
        names = tuple(f"joint{i}.pos" for i in range(6))
        return RobotDeclaration(names, names, (-1.0,) * 6, (1.0,) * 6, {}, 30.0, "six")

    def reset(self, seed, task):
        return RobotObservation(np.zeros(6, np.float32))

    act = hold = close = lambda self, *args: None


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("remote"), "remote/arm*2", max_episode_steps=30)
    yield state
    server.should_exit = True
    thread.join(60)


@pytest.fixture
def attach(remote):
    """Attach a simulated two-camera arm's bridge to a robot; every bridge is stopped after the test."""
    started = []

    def start(robot_id: str, robot=None, key: str | None = None) -> Bridge:
        bridge = Bridge(robot or SimulatedRobot("metaworld/reach-v3", size=64, cameras=CAMERAS),
                        BridgeConfig(remote.url, key or remote.keys["control"], robot_id, watchdog_s=2.0))
        started.append((bridge, run_in_thread(bridge)))
        return bridge

    yield start
    for bridge, thread in started:
        bridge.stop.set()
        thread.join(10)
    client = Client(remote.url, remote.keys["admin"])
    for robot_id in ("arm-0", "arm-1"):
        wait_for(lambda: client.robot(robot_id)["status"] == "offline", 30, f"{robot_id} offline")
        client.release_estop(robot_id)
        client.break_lease(robot_id)


def test_a_remote_robot_is_offline_until_its_bridge_attaches_then_driven_and_recorded(remote, attach):
    client = Client(remote.url, remote.keys["control"])
    assert client.robot("arm-0")["status"] == "offline"
    client.lease("arm-0")
    with pytest.raises(ApiError) as offline:
        client.reset("arm-0", task="reach")
    assert offline.value.status == 503 and "no bridge" in offline.value.detail

    bridge = attach("arm-0")
    wait_attached(bridge)
    detail = client.robot("arm-0")
    assert detail["status"] == "ready" and detail["action_space"]["shape"] == [4]
    assert set(detail["observation_space"]) >= {"images.corner2", "images.gripperPOV", "state"}

    client.reset("arm-0", task="reach the red target", seed=3)
    with pytest.raises(ApiError) as outside:  # beyond the declared bounds: refused before the robot sees it
        client.step("arm-0", actions=np.full((3, 4), 5.0).tolist())
    assert outside.value.status == 422 and bridge.counters.actions == 0
    client.step("arm-0", actions=np.zeros((3, 4)).tolist())
    assert client.observation("arm-0")["episode_step"] == 3
    assert client.image("arm-0")[:4] == b"\x89PNG"
    result = client.step("arm-0", actions=np.zeros((30, 4)).tolist())
    assert result.get("episode_id") is not None  # the time limit ended it; recorded before the answer
    episode = client.episode(result["episode_id"])
    assert (episode["robot"], episode["length"], episode["end_reason"]) == ("arm-0", 31, "time_limit")
    assert bridge.counters.actions == 30

    info = json.loads((remote.data / "meta" / "info.json").read_text())
    features = info["features"]
    assert {"observation.images.corner2", "observation.images.gripperPOV"} <= set(features)
    assert features["observation.state"]["names"] == [f"state_{i}" for i in range(4)]
    assert info["fps"] == 80 and info["robot_type"] == "metaworld"
    from wam.data.reader import Dataset

    dataset = Dataset(remote.data)
    assert dataset.frames(episode["id"], "observation.images.gripperPOV").shape == (31, 64, 64, 3)
    assert dataset.low_dim(episode["id"])["action"].shape == (31, 4)


def test_a_bridge_killed_mid_episode_leaves_it_recorded_as_interrupted(remote, attach):
    client = Client(remote.url, remote.keys["control"])
    process = subprocess.Popen([WAM, "bridge", "--url", remote.url, "--key", remote.keys["control"], "--robot", "arm-1",
                                "--sim", "metaworld/reach-v3", "--cameras", ",".join(CAMERAS)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: client.robot("arm-1")["status"] == "ready", 120, "the bridge process to attach")
        before = {e["id"] for e in client.episodes(robot="arm-1")}
        client.lease("arm-1")
        client.reset("arm-1", task="reach", seed=1)
        client.step("arm-1", actions=np.zeros((3, 4)).tolist())
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
    wait_for(lambda: client.robot("arm-1")["status"] == "offline", 30, "the robot to go offline")
    new = wait_for(lambda: [e for e in client.episodes(robot="arm-1") if e["id"] not in before], 30, "the interrupted episode")
    assert [(e["end_reason"], e["length"]) for e in new] == [("interrupted", 4)]
    with pytest.raises(ApiError) as offline:
        client.step("arm-1", actions=[[0.0] * 4])
    assert offline.value.status == 503

    bridge = attach("arm-1")  # a new bridge attaches the robot again, and it drives
    wait_attached(bridge)
    client.reset("arm-1", task="reach", seed=2)
    assert client.step("arm-1", actions=[[0.0] * 4])["observation"]["episode_step"] == 1


def test_an_emergency_stop_holds_the_robot_through_its_bridge(remote, attach):
    robot = SimulatedRobot("metaworld/reach-v3", size=64, cameras=CAMERAS)
    bridge = attach("arm-0", robot)
    wait_attached(bridge)
    client = Client(remote.url, remote.keys["control"])
    client.lease("arm-0")
    client.reset("arm-0", task="reach", seed=4)
    client.step("arm-0", actions=np.zeros((2, 4)).tolist())
    client.estop("arm-0")
    wait_for(lambda: robot.holds >= 1, 10, "the bridge to hold")
    assert "emergency stop" in bridge.counters.last_hold_reason
    with pytest.raises(ApiError) as stopped:
        client.step("arm-0", actions=[[0.0] * 4])
    assert stopped.value.status == 409
    assert max(client.episodes(robot="arm-0"), key=lambda e: e["id"])["end_reason"] == "estop"


def test_a_task_runs_a_policy_on_a_remote_robot(remote, attach):
    bridge = attach("arm-0")
    wait_attached(bridge)
    client = Client(remote.url, remote.keys["control"])
    finished = _run_to_end(client, client.run_task("wave", policy="random", robots=["arm-0"], episodes=1))
    assert finished["status"] == "finished" and finished["episodes_done"] == 1
    assert client.episodes(run_id=finished["id"])[0]["length"] == 31
    with pytest.raises(ApiError) as no_expert:  # the scripted expert knows Meta-World's tasks only
        client.run_task("wave", policy="expert", robots=["arm-0"], episodes=1)
    assert no_expert.value.status == 422 and "Meta-World tasks only" in no_expert.value.detail


def _run_to_end(client: Client, run: dict) -> dict:
    return wait_for(lambda: (lambda r: r if r["status"] != "running" else None)(client.task(run["id"])), 120, "the task")


def test_bridges_that_do_not_fit_are_refused_with_the_reason(remote, attach):
    from wam.api.auth import create_key
    from wam.api.store import Store

    first = attach("arm-0")
    wait_attached(first)
    with pytest.raises(BridgeRefused, match="a dataset holds one kind of robot"):  # another kind of robot than the dataset holds
        wait_attached(attach("arm-1", SixJointArm()))
    store = Store(remote.db)
    other = create_key(store, "control", robots="other-*")[1]
    store.close()
    with pytest.raises(BridgeRefused, match="no robot"):  # a key that cannot see the robot: as if it did not exist
        wait_attached(attach("arm-1", key=other))

    from websockets.sync.client import connect

    endpoint = BridgeConfig(remote.url, remote.keys["control"], "arm-0").endpoint
    with connect(endpoint, additional_headers={"Authorization": f"Bearer {remote.keys['control']}"}) as websocket:
        websocket.send(json.dumps({"type": "hello", "declaration": first.declaration.to_json()}))
        answer = json.loads(websocket.recv(timeout=10))
    assert answer["type"] == "refused" and answer["code"] == 4409 and "already has a bridge" in answer["detail"]


def test_a_server_cannot_mix_remote_and_simulated_robots(tmp_path):
    from wam.api.server import ServerConfig, create_app

    with pytest.raises(ValueError, match="server of their own"):
        create_app(ServerConfig("metaworld/reach-v3,remote/arm", tmp_path / "data"))


class CountingArm:
    """A state-only arm that counts what the bridge asks of it."""

    def __init__(self):
        self.holds, self.actions, self.pose = 0, 0, np.zeros(3, np.float32)

    def declare(self) -> RobotDeclaration:
        names = ("a.pos", "b.pos", "c.pos")
        return RobotDeclaration(names, names, (-1.0,) * 3, (1.0,) * 3, {}, 50.0, "counting")

    def reset(self, seed, task):
        return RobotObservation(self.pose.copy())

    def act(self, action):
        self.actions += 1
        self.pose = np.asarray(action, np.float32)
        return RobotObservation(self.pose.copy())

    def hold(self):
        self.holds += 1

    def close(self):
        pass


def _serve(data: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([WAM, "serve", "--robots", "remote/arm", "--data", str(data), "--port", str(port),
                             "--max-episode-steps", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_killed_server_leaves_the_robot_holding_and_the_bridge_reconnects(tmp_path):
    from tests.support.live_server import free_port
    from wam.api.auth import create_key
    from wam.api.server import default_db
    from wam.api.store import Store

    data, port = tmp_path / "data", free_port()
    store = Store(default_db(data))
    key = create_key(store, "control")[1]
    store.close()
    url = f"http://127.0.0.1:{port}"
    server = _serve(data, port)
    robot = CountingArm()
    bridge = Bridge(robot, BridgeConfig(url, key, "arm-0", watchdog_s=1.0, reconnect_max_s=1.0))
    thread = run_in_thread(bridge)
    try:
        wait_attached(bridge, 180)
        client = Client(url, key)
        client.lease("arm-0")
        client.reset("arm-0", task="reach", seed=0)
        assert client.step("arm-0", actions=np.full((5, 3), 0.5).tolist()).get("episode_id") == 0  # a whole episode
        client.reset("arm-0", task="reach", seed=1)
        client.step("arm-0", actions=[[0.1] * 3])  # one in the middle when the server dies
        holds = robot.holds
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        wait_for(lambda: robot.holds > holds, 10, "the bridge to hold when the server died")
        wait_for(lambda: not bridge.attached.is_set(), 10, "the bridge to notice")

        server = _serve(data, port)
        wait_for(lambda: bridge.counters.connections >= 2 and bridge.attached.is_set(), 180, "the bridge to reconnect")
        client = Client(url, key)
        assert client.robot("arm-0")["status"] == "ready"
        episodes = client.episodes(robot="arm-0")
        assert [(e["id"], e["length"], e["end_reason"]) for e in episodes] == [(0, 6, "time_limit")]  # nothing half-written
        client.lease("arm-0")
        client.reset("arm-0", task="reach", seed=2)
        assert client.step("arm-0", actions=[[0.0] * 3])["observation"]["episode_step"] == 1
    finally:
        bridge.stop.set()
        thread.join(10)
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
