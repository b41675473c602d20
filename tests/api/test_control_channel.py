"""The control channel (WebSocket /v1/control) against a live server: HTTP's rules, one message for many robots.

Three reach robots and a drawer robot, state-only, episodes of 6 steps; keys for every
scope and one limited to `reach-*`.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time

import httpx
import numpy as np
import pytest

from wam.api.client import ApiError, AsyncClient, Client
from wam.api.control_schemas import ControlReply, Recorded

from tests.support.live_server import start_live

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)

REACH, OTHER, THIRD, DRAWER, MISSING = "reach-v3-0", "reach-v3-1", "reach-v3-2", "drawer-open-v3-0", "no-such-robot-7"
STEPS = 6  # each episode's step limit


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    from wam.api.auth import create_key
    from wam.api.store import Store

    state, server, thread = start_live(tmp_path_factory.mktemp("control"), "metaworld/reach-v3*3,metaworld/drawer-open-v3",
                                       obs="state", max_episode_steps=STEPS)
    store = Store(state.db)
    state.keys["reach_control"] = create_key(store, "control", robots="reach-*")[1]
    store.close()
    yield state
    server.should_exit = True
    thread.join(60)


def http(live, key: str):
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.keys[key]}"}, timeout=60)


def leased(live, key: str, *robots: str) -> dict[str, str]:
    with http(live, key) as client:
        return {robot: client.post(f"/v1/robots/{robot}/lease", json={"ttl_s": 300}).json()["lease_id"] for robot in robots}


def release(live, key: str, leases: dict[str, str]) -> None:
    with http(live, key) as client:
        for lease in leases.values():
            client.delete(f"/v1/leases/{lease}")


def raw(live, key: str | None = "control"):
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {live.keys[key]}"} if key else {}
    return connect(live.url.replace("http", "ws") + "/v1/control", additional_headers=headers, compression=None)


def ask(socket, message) -> dict:
    """Send a message (a dict, or text as it is) and return its reply, skipping `recorded` messages."""
    socket.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
    while True:
        reply = json.loads(socket.recv(timeout=30))
        if reply["type"] == "reply":
            ControlReply.model_validate(reply)
            return reply


def download(client, episode_id: int) -> dict:
    return dict(np.load(io.BytesIO(client.get(f"/v1/episodes/{episode_id}/download").content)))


# -- stepping and recording -----------------------------------------------------------------------
def test_steps_on_several_robots_in_one_message_are_recorded_like_http_steps(fleet):
    """Two robots driven through the channel and a third through HTTP, the same seed and actions: the same episodes."""
    leases = leased(fleet, "control", REACH, OTHER, THIRD)
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, 4)).round(3)
    with Client(fleet.url, fleet.keys["control"]) as client, client.control(leases) as channel:
        reset = channel.reset([REACH, OTHER], seed=5)
        assert [reset[r]["episode_step"] for r in (REACH, OTHER)] == [0, 0] and not reset[REACH]["done"]
        one = channel.step({REACH: actions[0], OTHER: actions[0].tolist()})
        assert one[REACH]["steps"] == one[OTHER]["steps"] == 1 and one[REACH]["state"] == one[OTHER]["state"]
        rest = channel.step({REACH: actions[1:], OTHER: actions[1:].tolist()}, sim_state=True)  # a chunk ends the episode
        for robot in (REACH, OTHER):
            outcome = rest[robot]
            assert outcome["steps"] == STEPS - 1 and len(outcome["rewards"]) == STEPS - 1 and len(outcome["sim_state"]) == 39
            assert outcome["done"] and outcome["truncated"] and outcome["recording"] and outcome["episode_step"] == STEPS
        deadline = time.monotonic() + 30
        while len(channel.recorded) < 2 and time.monotonic() < deadline:  # the commits are announced as they land
            channel.observe([REACH])
        assert sorted(channel.recorded) == [REACH, OTHER]

        client.reset(THIRD, seed=5)
        client.step(THIRD, actions[0].tolist())
        by_http = client.step(THIRD, actions=actions[1:].tolist())
        assert by_http["observation"]["state"] == rest[REACH]["state"] and by_http["rewards"] == rest[REACH]["rewards"]
        reference = download(client.http, by_http["episode_id"])
        for robot in (REACH, OTHER):
            (episode_id,) = channel.recorded[robot]
            episode = client.episode(episode_id)
            assert episode["robot"] == robot and episode["length"] == STEPS + 1 and episode["end_reason"] == "time_limit"
            arrays = download(client.http, episode_id)
            assert arrays.keys() == reference.keys()
            for name in ("action", "observation.state", "reward"):
                np.testing.assert_array_equal(arrays[name], reference[name], err_msg=name)

        channel.reset([REACH])  # wait_recorded: the reply waits for the commit and names the episode
        ended = channel.step({REACH: actions}, wait_recorded=True)[REACH]
        assert ended["done"] and client.episode(ended["episode_id"])["robot"] == REACH
        assert channel.step({REACH: actions[0]})[REACH]["error"]["code"] == "conflict"  # no episode running: reset first
    release(fleet, "control", leases)


def test_pipelined_messages_run_each_robots_commands_in_order(fleet):
    leases = leased(fleet, "control", REACH, OTHER)

    async def drive() -> list[dict]:
        async with AsyncClient(fleet.url, fleet.keys["control"]).control(leases) as channel:
            await channel.reset([REACH, OTHER], seed=1)
            return await asyncio.gather(*(channel.step({REACH: [0.0, 0.1, 0.0, 0.0], OTHER: [0.1, 0.0, 0.0, 0.0]})
                                          for _ in range(4)))

    replies = asyncio.run(drive())
    assert [r[REACH]["episode_step"] for r in replies] == [1, 2, 3, 4]
    assert [r[OTHER]["episode_step"] for r in replies] == [1, 2, 3, 4]
    release(fleet, "control", leases)


# -- the rules of HTTP ----------------------------------------------------------------------------
def test_a_robot_outside_the_keys_pattern_is_not_found(fleet):
    leases = leased(fleet, "reach_control", REACH)
    with raw(fleet, "reach_control") as socket:
        ask(socket, {"id": 1, "commands": [{"op": "reset", "robot": REACH, "seed": 0}]})
        reply = ask(socket, {"id": 2, "commands": [{"op": "step", "robot": robot, "action": [0, 0, 0, 0]}
                                                   for robot in (DRAWER, MISSING, REACH)]})
        drawer, missing, mine = reply["results"]
        assert drawer["error"]["code"] == missing["error"]["code"] == "not_found"
        assert drawer["error"]["detail"].replace(DRAWER, "?") == missing["error"]["detail"].replace(MISSING, "?")
        assert drawer["error"]["status"] == 404 and mine["steps"] == 1  # the robot it may drive still ran
        observed = ask(socket, {"id": 3, "commands": [{"op": "observe", "robot": DRAWER}]})["results"][0]
        assert observed["error"]["detail"] == drawer["error"]["detail"]
    release(fleet, "reach_control", leases)


def test_without_a_lease_a_step_is_refused(fleet):
    with raw(fleet, "control_other") as socket:
        free = ask(socket, {"id": 1, "commands": [{"op": "step", "robot": REACH, "action": [0, 0, 0, 0]}]})["results"][0]
        assert free["error"]["code"] == "conflict" and "not leased" in free["error"]["detail"]
        leases = leased(fleet, "control", REACH)  # another key's lease
        for command in ({"op": "step", "robot": REACH, "action": [0, 0, 0, 0]}, {"op": "reset", "robot": REACH},
                        {"op": "step", "robot": REACH, "action": [0, 0, 0, 0], "lease_id": leases[REACH]}):
            taken = ask(socket, {"id": 2, "commands": [command]})["results"][0]
            assert taken["error"]["status"] == 409 and "another agent" in taken["error"]["detail"]
    release(fleet, "control", leases)
    with raw(fleet, "control") as socket:  # its own lease, released since: stale
        stale = ask(socket, {"id": 3, "commands": [{"op": "step", "robot": REACH, "action": [0, 0, 0, 0],
                                                    "lease_id": leases[REACH]}]})["results"][0]
        assert stale["error"]["code"] == "conflict" and "stale" in stale["error"]["detail"]


def test_after_an_estop_steps_are_refused(fleet):
    leases = leased(fleet, "control", OTHER)
    with raw(fleet, "control") as socket, http(fleet, "control_other") as other:
        ask(socket, {"id": 1, "commands": [{"op": "reset", "robot": OTHER, "seed": 2}]})
        step = {"op": "step", "robot": OTHER, "action": [0, 0, 0, 0]}
        assert ask(socket, {"id": 2, "commands": [step]})["results"][0]["steps"] == 1
        assert other.post(f"/v1/robots/{OTHER}/estop").json()["estopped"]
        for command in (step, {"op": "reset", "robot": OTHER}):
            refused = ask(socket, {"id": 3, "commands": [command]})["results"][0]
            assert refused["error"]["code"] == "estopped" and "emergency-stopped" in refused["error"]["detail"]
        other.post(f"/v1/robots/{OTHER}/estop/release")
        ask(socket, {"id": 4, "commands": [{"op": "reset", "robot": OTHER}]})
        assert ask(socket, {"id": 5, "commands": [step]})["results"][0]["steps"] == 1
    release(fleet, "control", leases)


def test_a_read_key_cannot_step_but_observes(fleet):
    with raw(fleet, "read") as socket:
        reply = ask(socket, {"id": "r1", "commands": [{"op": "step", "robot": THIRD, "action": [0, 0, 0, 0]},
                                                      {"op": "reset", "robot": REACH},
                                                      {"op": "observe", "robot": OTHER}]})
        step, reset, observe = reply["results"]
        assert reply["id"] == "r1" and step["error"]["code"] == reset["error"]["code"] == "forbidden"
        assert step["error"]["status"] == 403 and "control" in step["error"]["detail"]
        assert "error" not in observe and len(observe["state"]) == 4


def test_a_missing_or_unknown_key_is_refused_at_the_handshake(fleet):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = fleet.url.replace("http", "ws") + "/v1/control"
    for headers in ({}, {"Authorization": "Bearer wam_0000_not-a-key"}):
        with pytest.raises(InvalidStatus) as error:
            with connect(url, additional_headers=headers) as socket:
                socket.recv(timeout=10)
        assert error.value.response.status_code == 403
    with connect(url + f"?key={fleet.keys['read']}") as socket:  # browsers pass the key in the query
        assert ask(socket, {"id": 1, "commands": [{"op": "observe", "robot": REACH}]})["results"][0]["robot"] == REACH


# -- bad messages -----------------------------------------------------------------------------------
def test_bad_messages_get_an_error_reply_and_the_connection_stays_usable(fleet):
    leases = leased(fleet, "control", THIRD)
    step = {"op": "step", "robot": THIRD, "lease_id": leases[THIRD]}
    with raw(fleet) as socket:
        ask(socket, {"id": 0, "commands": [{"op": "reset", "robot": THIRD, "seed": 9}]})
        before = ask(socket, {"id": 1, "commands": [{"op": "observe", "robot": THIRD}]})["results"][0]
        refused_whole = [  # (message, code, words in the detail): nothing runs
            ("not json {", "bad_message", "not JSON"),
            ('{"id": 4, "commands": [{"op": "step", "robot": "reach-v3-2", "action": ["left", 0, 0, 0]}]}', "invalid",
             "commands.0.step.action.0"),
            ({"id": 5, "commands": [{"op": "jump", "robot": THIRD}]}, "invalid", "commands.0"),
            ({"id": 6, "commands": [{**step, "lease": leases[THIRD], "action": [0, 0, 0, 0]}]}, "invalid", "lease"),
            ({"id": 7, "commands": []}, "invalid", "commands"),
            ({"id": 8, "commands": [{**step, "action": [0, 0, 0, 0], "lease_id": "nope"}]}, "invalid", "lease_id"),
            ("[1, 2]", "invalid", "message"),
        ]
        for message, code, words in refused_whole:
            reply = ask(socket, message)
            assert reply["error"]["code"] == code and words in reply["error"]["detail"], (message, reply)
            assert reply["id"] == (None if isinstance(message, str) and not message.startswith("{") else
                                   json.loads(message)["id"] if isinstance(message, str) else message["id"])
        per_robot = [  # (command, words in its error): the other robots of the message still run
            ({"op": "step", "robot": MISSING, "action": [0, 0, 0, 0]}, "no robot"),
            ({**step, "action": [0.1, 0, 0, math.nan]}, "NaN or inf"),
            ({**step, "action": [0.1, 0, 0, math.inf]}, "NaN or inf"),
            ({**step, "action": [0.1, 0, 0]}, "takes 4"),
            ({**step, "action": [0.1, 0, 0, 1.5]}, "outside the action space"),
            ({**step, "actions": [[0, 0, 0, 0], [0, -3, 0, 0]]}, "actions[1][1]"),
            ({**step, "action": [0, 0, 0, 0], "actions": [[0, 0, 0, 0]]}, "exactly one"),
            ({**step, "actions": []}, "empty"),
            ({"op": "reset", "robot": THIRD, "task": "fly-v9"}, "not a Meta-World task"),
        ]
        for number, (command, words) in enumerate(per_robot, start=10):
            reply = ask(socket, json.dumps({"id": number, "commands": [command, {"op": "observe", "robot": REACH}]}))
            refused, observed = reply["results"]
            assert refused["error"]["code"] in ("invalid", "not_found"), (command, reply)
            assert words in refused["error"]["detail"], (command, reply)
            assert "error" not in observed
        twice = ask(socket, {"id": 30, "commands": [{**step, "action": [0, 0, 0, 0]}, {**step, "action": [0, 0, 0, 0]}]})
        assert twice["results"][0]["steps"] == 1 and "appears twice" in twice["results"][1]["error"]["detail"]
        after = ask(socket, {"id": 31, "commands": [{**step, "action": [0.0, 0.2, 0.0, 0.0]}]})["results"][0]
        assert after["episode_step"] == before["episode_step"] + 2  # only the two valid steps ran
        socket.send(b"\x00binary")  # a protocol violation: closed with 1003
        from websockets.exceptions import ConnectionClosed

        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
        assert closed.value.rcvd.code == 1003
    release(fleet, "control", leases)


def test_a_client_refused_whole_raises_and_a_robots_error_does_not(fleet):
    with Client(fleet.url, fleet.keys["control"]) as client, client.control() as channel:
        with pytest.raises(ApiError) as error:
            channel.send([{"op": "step", "robot": REACH, "action": "left"}])
        assert error.value.status == 422
        assert channel.step({MISSING: [0, 0, 0, 0]})[MISSING]["error"]["code"] == "not_found"


# -- revocation -------------------------------------------------------------------------------------
def test_revoking_the_key_closes_the_channel_with_4401(fleet):
    from websockets.exceptions import ConnectionClosed

    with http(fleet, "admin") as admin:
        doomed = admin.post("/v1/keys", json={"scope": "control", "name": "doomed"}).json()
    fleet.keys["doomed"] = doomed["secret"]
    leases = leased(fleet, "doomed", THIRD)
    with raw(fleet, "doomed") as socket:
        ask(socket, {"id": 1, "commands": [{"op": "reset", "robot": THIRD}]})
        with http(fleet, "admin") as admin:
            assert admin.delete(f"/v1/keys/{doomed['id']}").status_code == 204
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=10)
        assert closed.value.rcvd.code == 4401 and time.monotonic() - started < 3
    assert not fleet.app.state.fleet.robots[THIRD].lease and leases


def test_recorded_messages_match_their_schema(fleet):
    leases = leased(fleet, "control", OTHER)
    with raw(fleet) as socket:
        ask(socket, {"id": 1, "commands": [{"op": "reset", "robot": OTHER, "seed": 3}]})  # may record the episode before
        socket.send(json.dumps({"id": 2, "commands": [{"op": "step", "robot": OTHER, "actions": [[0, 0, 0, 0]] * STEPS}]}))
        while (message := json.loads(socket.recv(timeout=30)))["type"] != "recorded" or message["id"] != 2:
            pass
        recorded = Recorded.model_validate(message)
        assert recorded.robot == OTHER and recorded.episode_id is not None and recorded.error is None
    release(fleet, "control", leases)
