"""A LeRobot arm behind `wam serve`: a fake SO-100 with LeRobot's `Robot` interface, bridged by `LeRobotRobot`.

What docs/real_robots.md promises for a LeRobot arm, end to end on a live server: the arm's
own feature names reach the dataset, the bridge caps each step at max_delta whatever the server
sends, a task run drives it with a policy, an agent drives it over MCP, and the episodes are
recorded with the joint names and the camera.
"""

from __future__ import annotations

import json
import os
import sys
import time

import anyio
import numpy as np
import pytest

from wam.api.client import Client
from wam.bridge import Bridge, BridgeConfig, LeRobotRobot
from wam.bridge.bridge import run_in_thread, wait_attached

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

JOINTS = ("shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos")
LOW, HIGH, MAX_DELTA = (-100.0,) * 5 + (0.0,), (100.0,) * 6, (10.0,) * 6


class FakeSO100:
    """LeRobot's `Robot` interface as SO100Follower exposes it: joints follow their targets at once."""

    name = "so100_follower"

    def __init__(self):
        self.is_connected = False
        self.position = np.zeros(len(JOINTS))
        self.sent: list[dict] = []

    @property
    def observation_features(self) -> dict:
        return {name: float for name in JOINTS} | {"front": (48, 64, 3)}

    @property
    def action_features(self) -> dict:
        return {name: float for name in JOINTS}

    def connect(self) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    def get_observation(self) -> dict:
        image = np.full((48, 64, 3), int(self.position[0]) % 256, np.uint8)
        return {name: float(v) for name, v in zip(JOINTS, self.position)} | {"front": image}

    def send_action(self, action: dict) -> dict:
        self.sent.append(dict(action))
        self.position = np.asarray([action[name] for name in JOINTS])
        return action


@pytest.fixture(scope="module")
def so100(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("so100"), "remote/so100", max_episode_steps=6)
    arm = FakeSO100()
    bridge = Bridge(LeRobotRobot(arm, LOW, HIGH, fps=500.0, max_delta=MAX_DELTA),
                    BridgeConfig(state.url, state.keys["control"], "so100-0", watchdog_s=5.0))
    running = run_in_thread(bridge)
    wait_attached(bridge)
    yield state, arm, bridge
    bridge.stop.set()
    running.join(10)
    server.should_exit = True
    thread.join(60)


def test_the_arm_is_described_by_its_own_features(so100):
    state, _, _ = so100
    robot = Client(state.url, state.keys["read"]).robot("so100-0")
    assert robot["status"] == "ready" and robot["image_size"] is None
    assert robot["action_space"] == {"shape": [6], "low": list(LOW), "high": list(HIGH)}
    declared = robot["declaration"]
    assert declared["action_names"] == list(JOINTS) and declared["state_names"] == list(JOINTS)
    assert declared["cameras"] == {"front": [48, 64]} and declared["max_delta"] == list(MAX_DELTA)


def test_the_bridge_caps_each_step_whatever_the_server_sends(so100):
    state, arm, _ = so100
    client = Client(state.url, state.keys["control"])
    lease = client.lease("so100-0", ttl_s=60)["lease_id"]
    try:
        client.reset("so100-0", task="put the cube in the bowl", lease_id=lease)
        result = client.step("so100-0", actions=[[90.0, -90.0, 0.0, 0.0, 0.0, 50.0]] * 3, lease_id=lease)
    finally:
        client.release(lease)
    moved = [[round(a[name]) for name in JOINTS] for a in arm.sent[-3:]]
    assert moved == [[10, -10, 0, 0, 0, 10], [20, -20, 0, 0, 0, 20], [30, -30, 0, 0, 0, 30]]
    assert result["observation"]["state"][:2] == pytest.approx([30.0, -30.0])


def test_a_policy_and_an_agent_drive_the_arm_and_every_episode_is_recorded(so100):
    from mcp import ClientSession, StdioServerParameters, stdio_client

    state, arm, _ = so100
    client = Client(state.url, state.keys["control"])
    run = client.run_task("put the cube in the bowl", policy="random", robots=["so100-0"], episodes=2)
    deadline = time.monotonic() + 120
    while (done := client.task(run["id"]))["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done["status"] == "finished" and done["episodes_done"] == 2
    episodes = client.episodes(run_id=run["id"])
    assert [e["length"] for e in episodes] == [7, 7]  # 6 actions, 7 frames and {e["task"] for e in episodes} == {"put the cube in the bowl"}
    info = json.loads((state.data / "meta" / "info.json").read_text())
    assert info["features"]["action"]["names"] == list(JOINTS)
    assert info["features"]["observation.state"]["names"] == list(JOINTS)
    assert info["features"]["observation.images.front"]["shape"] == [48, 64, 3]
    assert info["robot_type"] == "so100_follower" and info["fps"] == 500
    low, high = np.asarray(LOW), np.asarray(HIGH)
    targets = np.asarray([[a[name] for name in JOINTS] for a in arm.sent[-12:]])
    assert ((targets >= low) & (targets <= high)).all()

    env = {**os.environ, "WAM_API_URL": state.url, "WAM_API_KEY": state.keys["control"]}
    server = StdioServerParameters(command=sys.executable, args=["-m", "wam.cli", "mcp"], env=env)

    async def agent():
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                described = (await session.call_tool("describe_robot", {"robot_id": "so100-0"})).structured_content
                reset = (await session.call_tool("reset_robot", {"robot_id": "so100-0", "task": "wave"})).structured_content
                acted = (await session.call_tool("act", {"robot_id": "so100-0", "actions": [[5.0, 0, 0, 0, 0, 5.0]] * 2})).structured_content
                refused = (await session.call_tool("act", {"robot_id": "so100-0", "actions": [[500.0, 0, 0, 0, 0, 0]]})).structured_content
                return described, reset, acted, refused

    described, reset, acted, refused = anyio.run(agent)
    assert described["ok"] and described["result"]["status"] in ("ready", "leased")
    assert reset["ok"] and acted["ok"] and acted["result"]["steps"] == 2
    start, *moved = [a["shoulder_pan.pos"] for a in arm.sent[-3:]]  # where the run left the arm, then the agent's two
    expected = []
    for _ in moved:  # toward 5.0, at most max_delta a step
        start = start + float(np.clip(5.0 - start, -MAX_DELTA[0], MAX_DELTA[0]))
        expected.append(start)
    assert moved == pytest.approx(expected, abs=1e-4)
    assert not refused["ok"] and refused["status"] == 422  # outside the declared bounds: refused before the bridge
