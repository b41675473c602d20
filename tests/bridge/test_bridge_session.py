"""The bridge's side of a session (wam/bridge/bridge.py), offline: requests answered by `handle`, the watchdog's holds,
and the connection loop's retries and refusals, with a fake robot, a fake websocket and a fake `connect`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Close

from wam.bridge.bridge import Bridge, BridgeConfig, BridgeRefused, run_in_thread, wait_attached
from wam.bridge.robot import RobotObservation
from wam.bridge.spec import RobotDeclaration
from wam.bridge.wire import WireError, pack, unpack

JOINTS = ("a.pos", "b.pos", "c.pos")
WELCOME = json.dumps({"type": "welcome"})


class Arm:
    """A position-controlled arm with a camera, counting what the bridge asks of it."""

    def __init__(self, action_names=JOINTS):
        self.action_names, self.pose = action_names, np.array([0.2, -0.2, 0.0], np.float32)
        self.resets, self.actions, self.holds = [], [], 0
        self.fail_act: Exception | None = None
        self.fail_hold, self.reward = False, 0.5

    def declare(self) -> RobotDeclaration:
        return RobotDeclaration(JOINTS, self.action_names, (-1.0,) * 3, (1.0,) * 3, {"front": (4, 6)}, 1000.0, "fake",
                                max_delta=(0.5,) * 3)

    def _obs(self, **result) -> RobotObservation:
        return RobotObservation(self.pose.copy(), {"front": np.full((4, 6, 3), 9, np.uint8)}, **result)

    def reset(self, seed, task) -> RobotObservation:
        self.resets.append((seed, task))
        return self._obs()

    def act(self, action) -> RobotObservation:
        if self.fail_act is not None:
            raise self.fail_act
        self.actions.append(np.asarray(action).copy())
        self.pose = np.asarray(action, np.float32)
        return self._obs(reward=self.reward, success=True, terminated=False)

    def hold(self) -> None:
        self.holds += 1
        if self.fail_hold:
            raise RuntimeError("the servo bus is down")

    def close(self) -> None:
        pass


def _bridge(arm=None, **config) -> Bridge:
    bridge = Bridge(arm or Arm(), BridgeConfig("http://127.0.0.1:9", "wam_key", "arm-0", **config))
    bridge.guard.sleep = lambda seconds: None  # pacing has its own tests; here it would only slow them down
    return bridge


def _step(action, request_id=2) -> bytes:
    return pack({"type": "step", "id": request_id}, {"action": np.asarray(action, np.float32)})


def _answer(reply: bytes) -> tuple[dict, dict]:
    assert reply is not None
    return unpack(reply)


# -- one request ------------------------------------------------------------------------------
def test_a_reset_answers_the_observation_and_caps_the_first_action_from_the_pose():
    arm = Arm()
    bridge = _bridge(arm)
    header, arrays = _answer(bridge.handle(pack({"type": "reset", "id": 1, "seed": 4, "task": "reach"})))
    assert arm.resets == [(4, "reach")]
    assert header == {"type": "observation", "id": 1, "reward": 0.0, "success": False, "terminated": False, "clipped": False}
    assert arrays["state"].tolist() == pytest.approx([0.2, -0.2, 0.0]) and arrays["state"].dtype == np.float32
    assert arrays["image.front"].shape == (4, 6, 3) and int(arrays["image.front"].max()) == 9
    assert bridge.guard.previous.tolist() == pytest.approx([0.2, -0.2, 0.0])

    header, arrays = _answer(bridge.handle(_step([1.0, -1.0, 0.1])))
    assert arm.actions[0].tolist() == pytest.approx([0.7, -0.7, 0.1])  # within max_delta 0.5 of the pose
    assert header["type"] == "observation" and header["id"] == 2 and header["clipped"] and header["success"]
    assert header["reward"] == 0.5 and arrays["state"].tolist() == pytest.approx([0.7, -0.7, 0.1])
    assert (bridge.counters.actions, bridge.counters.clipped) == (1, 1)
    _answer(bridge.handle(_step([0.5, -0.5, 0.1], 3)))
    assert (bridge.counters.actions, bridge.counters.clipped) == (2, 1)


def test_actions_that_are_not_poses_start_free_after_a_reset():
    arm = Arm(action_names=("x.vel", "y.vel", "z.vel"))  # not among the state's names: no pose to count from
    bridge = _bridge(arm)
    bridge.handle(pack({"type": "reset", "id": 1}))
    assert arm.resets == [(None, None)] and bridge.guard.previous is None
    header, _ = _answer(bridge.handle(_step([0.9, -0.9, 0.9])))
    assert not header["clipped"] and arm.actions[0].tolist() == pytest.approx([0.9, -0.9, 0.9])


def test_heartbeats_need_no_answer_and_holds_hold_once_after_moving():
    arm = Arm()
    bridge = _bridge(arm)
    assert bridge.handle(pack({"type": "heartbeat"})) is None
    assert bridge.handle(pack({"type": "hold"})) is None
    assert arm.holds == 0  # at rest: nothing to hold
    bridge.handle(_step([0.3, 0.0, 0.0]))
    bridge.handle(pack({"type": "hold"}))
    bridge.handle(pack({"type": "hold"}))
    assert arm.holds == 1 and bridge.counters.holds == 1
    assert "emergency stop" in bridge.counters.last_hold_reason
    bridge.handle(_step([0.3, 0.0, 0.0]))
    bridge.handle(pack({"type": "hold"}))
    assert arm.holds == 2


@pytest.mark.parametrize("frame, message", [
    (pack({"type": "step", "id": 9}), "ValueError: a step needs an 'action' array"),
    (pack({"type": "dance", "id": 9}), "ValueError: unknown request 'dance'"),
    (pack({"id": 9}), "ValueError: unknown request None"),
    (_step([0.1, 0.1], 9), "ValueError: action has 2 values; this robot takes 3"),
    (_step([0.1, float("nan"), 0.1], 9), "ValueError: action .* is not finite"),
])
def test_requests_it_cannot_do_are_answered_with_an_error(frame, message):
    arm = Arm()
    bridge = _bridge(arm)
    header, arrays = _answer(bridge.handle(frame))
    assert header["type"] == "error" and header["id"] == 9 and arrays == {}
    assert re.search(message, header["message"]), header["message"]
    assert arm.actions == [] and bridge.counters.actions == 0


def test_a_driver_that_fails_is_reported_and_the_bridge_stays_up():
    arm = Arm()
    bridge = _bridge(arm)
    arm.fail_act = RuntimeError("motor 3 overheated")
    header, _ = _answer(bridge.handle(_step([0.1, 0.1, 0.1], 5)))
    assert header == {"type": "error", "id": 5, "message": "RuntimeError: motor 3 overheated"}
    assert bridge.counters.actions == 0
    arm.fail_act, arm.reward = None, float("nan")  # moved, but its reward cannot be sent as JSON
    header, _ = _answer(bridge.handle(_step([0.1, 0.1, 0.1], 6)))
    assert header["type"] == "error" and header["id"] == 6 and bridge.counters.actions == 1
    arm.reward = 0.0
    assert _answer(bridge.handle(_step([0.1, 0.1, 0.1], 7)))[0]["type"] == "observation"


def test_a_frame_that_is_not_a_bridge_message_is_a_wire_error():
    bridge = _bridge()
    with pytest.raises(WireError):
        bridge.handle(b"\x01\x00")
    with pytest.raises(WireError, match="bytes after its arrays"):
        bridge.handle(_step([0.0, 0.0, 0.0]) + b"!")


def test_a_hold_that_fails_is_logged_not_raised(caplog):
    arm = Arm()
    bridge = _bridge(arm)
    bridge.handle(_step([0.1, 0.1, 0.1]))
    arm.fail_hold = True
    bridge.handle(pack({"type": "hold"}))
    assert arm.holds == 1 and bridge.counters.holds == 1 and "servo bus is down" in caplog.text


# -- the session and its watchdog --------------------------------------------------------------
class FakeSocket:
    """Plays a script of what the server sends (an exception is raised, as recv raises TimeoutError on silence);
    when the script ends it stops the bridge."""

    def __init__(self, bridge: Bridge, script=(), idle: bool = False):
        self.bridge, self.script, self.idle = bridge, list(script), idle
        self.sent, self.timeouts = [], []

    def send(self, message) -> None:
        self.sent.append(message)

    def recv(self, timeout=None):
        self.timeouts.append(timeout)
        if not self.script:
            if self.idle:  # a server that says nothing, until the test stops the bridge
                self.bridge.stop.wait(0.01)
                raise TimeoutError
            self.bridge.stop.set()
            return pack({"type": "heartbeat"})
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def test_the_watchdog_holds_once_per_silence():
    arm = Arm()
    bridge = _bridge(arm, watchdog_s=0.25, open_timeout_s=3.0)
    silence = TimeoutError()
    socket = FakeSocket(bridge, [WELCOME, silence, _step([0.1, 0, 0]), silence, silence, pack({"type": "heartbeat"}),
                                 silence, _step([0.2, 0, 0]), silence])
    bridge._serve(socket)
    hello = json.loads(socket.sent[0])
    assert hello == {"type": "hello", "robot": "arm-0", "declaration": arm.declare().to_json()}
    assert [unpack(reply)[0]["type"] for reply in socket.sent[1:]] == ["observation", "observation"]
    assert socket.timeouts[0] == 3.0 and set(socket.timeouts[1:]) == {0.25}
    assert arm.holds == 2 and bridge.counters.holds == 2  # not at rest, not again while still silent
    assert bridge.counters.last_hold_reason == "the server was silent for 0.25 s"
    assert bridge.attached.is_set()


@pytest.mark.parametrize("answer, error", [
    (json.dumps({"type": "nope"}), "expected a welcome"),
    (b"\x00\x00\x00\x00", "expected a welcome"),
    ("<html>502 Bad Gateway</html>", "expected a welcome"),  # not JSON: another server
    ("[1, 2]", "expected a welcome"),
])
def test_a_server_that_does_not_welcome_is_a_wire_error(answer, error):
    bridge = _bridge()
    with pytest.raises(WireError, match=error):
        bridge._serve(FakeSocket(bridge, [answer]))
    assert not bridge.attached.is_set()


def test_text_after_the_welcome_is_a_wire_error():
    bridge = _bridge()
    with pytest.raises(WireError, match="text after the welcome"):
        bridge._serve(FakeSocket(bridge, [WELCOME, "hello?"]))


# -- the connection loop ------------------------------------------------------------------------
class FakeStop:
    """`bridge.stop` that records each reconnect delay instead of waiting it, and stops after `waits` of them."""

    def __init__(self, waits: int):
        self.flag, self.waits, self.limit = False, [], waits

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.flag = self.flag or len(self.waits) >= self.limit
        return self.flag


@pytest.fixture
def connect(monkeypatch):
    """Replace websockets' connect: each call takes the next outcome (an exception to raise or a FakeSocket)."""
    import websockets.sync.client

    calls, outcomes = [], []

    def fake(uri, additional_headers=None, max_size=None, open_timeout=None):
        calls.append({"uri": uri, "headers": additional_headers, "open_timeout": open_timeout})
        outcome = outcomes.pop(0) if outcomes else OSError("connection refused")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(websockets.sync.client, "connect", fake)
    return calls, outcomes


def _refusal(code: int, reason: str) -> ConnectionClosed:
    return ConnectionClosed(Close(code, reason), None)


def test_an_unreachable_server_is_retried_with_a_growing_delay(connect):
    calls, _ = connect
    bridge = _bridge(reconnect_s=0.5, reconnect_max_s=2.0, open_timeout_s=4.0)
    bridge.stop = FakeStop(waits=5)
    bridge.run()
    assert bridge.stop.waits == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert len(calls) == 5 and bridge.counters.connections == 0 and bridge.refused is None
    assert calls[0] == {"uri": "ws://127.0.0.1:9/v1/bridge/arm-0", "headers": {"Authorization": "Bearer wam_key"},
                        "open_timeout": 4.0}


def test_a_dropped_session_holds_the_robot_and_reconnects_soon(connect):
    _, outcomes = connect
    arm = Arm()
    bridge = _bridge(arm, reconnect_s=0.5)
    bridge.stop = FakeStop(waits=2)
    outcomes += [FakeSocket(bridge, [WELCOME, _step([0.1, 0, 0]), _refusal(1006, "")]), _refusal(1011, "restarting")]
    bridge.run()
    assert bridge.counters.connections == 1 and bridge.counters.actions == 1 and not bridge.attached.is_set()
    assert arm.holds == 1 and bridge.counters.last_hold_reason == "the connection to the server is gone"
    assert bridge.stop.waits == [0.25, 0.5]  # it had worked: the first retry comes at half the first delay


@pytest.mark.parametrize("code", [4401, 4403, 4404, 4422])
def test_a_refusal_by_close_code_stops_the_bridge_with_the_reason(connect, code):
    _, outcomes = connect
    bridge = _bridge()
    bridge.stop = FakeStop(waits=3)
    outcomes.append(_refusal(code, "no robot 'arm-0' for this key"))
    with pytest.raises(BridgeRefused, match="no robot 'arm-0' for this key"):
        bridge.run()
    assert isinstance(bridge.refused, BridgeRefused) and bridge.stop.waits == []


def test_a_refusal_in_answer_to_hello_stops_the_bridge_unless_it_may_pass(connect):
    _, outcomes = connect
    bridge = _bridge()
    bridge.stop = FakeStop(waits=3)
    busy = json.dumps({"type": "refused", "code": 4409, "detail": "arm-0 already has a bridge"})
    unfit = json.dumps({"type": "refused", "code": 4422, "detail": "a dataset holds one kind of robot"})
    outcomes += [FakeSocket(bridge, [busy]), FakeSocket(bridge, [unfit])]
    with pytest.raises(BridgeRefused, match="refused robot arm-0: a dataset holds one kind of robot"):
        bridge.run()
    assert bridge.counters.connections == 2 and len(bridge.stop.waits) == 1 and bridge.refused is not None


def test_a_bad_url_is_a_refusal(connect):
    _, outcomes = connect
    bridge = _bridge()
    outcomes.append(InvalidURI("ws://127.0.0.1:9/v1/bridge/arm-0", "nope"))
    with pytest.raises(BridgeRefused, match="bad server url"):
        bridge.run()


def test_run_in_thread_keeps_a_refusal_for_wait_attached(connect):
    _, outcomes = connect
    bridge = _bridge()
    outcomes.append(_refusal(4401, "key revoked"))
    thread = run_in_thread(bridge)
    with pytest.raises(BridgeRefused, match="key revoked"):
        wait_attached(bridge, timeout_s=5)
    thread.join(5)
    assert not thread.is_alive()


def test_wait_attached_returns_once_attached_and_the_thread_stops_when_told(connect):
    _, outcomes = connect
    bridge = _bridge()
    outcomes.append(FakeSocket(bridge, [WELCOME], idle=True))
    thread = run_in_thread(bridge)
    try:
        wait_attached(bridge, timeout_s=5)
        assert bridge.attached.is_set() and bridge.counters.connections == 1
    finally:
        bridge.stop.set()
        thread.join(5)
    assert not thread.is_alive() and not bridge.attached.is_set()


def test_wait_attached_times_out_naming_the_robot():
    bridge = _bridge()
    with pytest.raises(TimeoutError, match="arm-0 did not attach"):
        wait_attached(bridge, timeout_s=0.1)
