"""The bridge: a small process next to the robot that connects out to `wam serve` and does what it is told, safely.

It dials the server (robots sit behind NATs; the server never dials them), says `hello` with
the robot's declaration, and then answers each request: a reset, an action (clipped, capped
and paced by `ActionGuard` before the driver sees it), a hold. Safety does not depend on the
server: when the server is silent for `watchdog_s` (it sends a heartbeat every half second,
so silence means it or the network is gone) or the connection drops, the robot holds
position once; the bridge then reconnects with a growing delay and attaches again. A server
that refuses the robot (bad key, no such robot, a declaration that does not fit) stops the
bridge with the server's reason rather than retrying forever.

Dependencies: numpy and websockets (plus the robot's own driver); nothing of wam's training stack.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from wam.bridge.robot import BridgeRobot, RobotObservation
from wam.bridge.safety import ActionGuard
from wam.bridge.wire import WireError, pack, unpack

log = logging.getLogger("wam.bridge")
REFUSED_CODES = (4401, 4403, 4404, 4422)  # the server will say the same again: stop, do not retry


class BridgeRefused(RuntimeError):
    """The server refused this robot for a reason retrying cannot fix; the message is the server's."""


@dataclass(frozen=True)
class BridgeConfig:
    url: str  # the server, e.g. http://192.168.1.10:8000 (the address `wam serve` prints, with or without /v1)
    key: str  # a control key whose robot pattern covers robot_id
    robot_id: str  # the remote robot's id on the server, e.g. so100-0 for --robots remote/so100
    watchdog_s: float = 1.0  # hold position when the server has been silent this long
    max_rate_hz: float | None = None  # at most this many actions a second (default: the robot's fps)
    reconnect_s: float = 0.5  # first delay before reconnecting; doubles up to reconnect_max_s
    reconnect_max_s: float = 10.0
    open_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"bridge url {self.url!r} must start with http://, https://, ws:// or wss://")
        try:  # a mistyped host or port would otherwise escape the connection loop later, as a traceback
            parts = urlsplit(self.url)
            host, _ = parts.hostname, parts.port
        except ValueError as error:
            raise ValueError(f"bridge url {self.url!r} is not a URL: {error}") from None
        if not host:
            raise ValueError(f"bridge url {self.url!r} names no host")
        for name in ("watchdog_s", "reconnect_s", "reconnect_max_s", "open_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"bridge {name} must be positive, got {getattr(self, name)}")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        base = base[: -len("/v1")] if base.endswith("/v1") else base
        return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + f"/v1/bridge/{self.robot_id}"


@dataclass
class BridgeCounters:
    """What the bridge did, for its log line and for tests."""

    connections: int = 0
    actions: int = 0
    clipped: int = 0
    holds: int = 0
    last_hold_reason: str = ""


class Bridge:
    def __init__(self, robot: BridgeRobot, config: BridgeConfig):
        self.robot, self.config = robot, config
        self.declaration = robot.declare()
        self.guard = ActionGuard(self.declaration, config.max_rate_hz)
        self.counters = BridgeCounters()
        self.stop = threading.Event()
        self.attached = threading.Event()  # set while the server has the robot
        self.held = True  # a robot at rest needs no hold; set again after each hold
        self.refused: BridgeRefused | None = None  # why the server refused the robot, once it has

    # -- the connection loop ----------------------------------------------------------------
    def run(self) -> None:
        """Serve until `stop` is set (or a refusal, raised as BridgeRefused). Never raises on a lost server."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        delay = self.config.reconnect_s
        while not self.stop.is_set():
            try:
                with connect(self.config.endpoint, additional_headers={"Authorization": f"Bearer {self.config.key}"},
                             max_size=None, open_timeout=self.config.open_timeout_s) as websocket:
                    self.counters.connections += 1
                    self._serve(websocket)
            except BridgeRefused as error:
                self.refused = error
                raise
            except InvalidURI as error:
                self.refused = BridgeRefused(f"bad server url: {error}")
                raise self.refused from None
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code in REFUSED_CODES:
                    self.refused = BridgeRefused(closed.rcvd.reason or f"closed with code {code}")
                    raise self.refused from None
                log.warning("bridge: connection closed (%s); reconnecting", closed)
            except (OSError, TimeoutError, InvalidHandshake, WireError) as error:
                log.warning("bridge: %s: %s; reconnecting in %.1f s", type(error).__name__, error, delay)
            finally:
                if self.attached.is_set():  # it worked for a while: the next try comes soon again
                    delay = self.config.reconnect_s / 2
                self.attached.clear()
            self._hold("the connection to the server is gone")
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, self.config.reconnect_max_s)

    def _serve(self, websocket) -> None:
        websocket.send(json.dumps({"type": "hello", "robot": self.config.robot_id, "declaration": self.declaration.to_json()}))
        answer = websocket.recv(timeout=self.config.open_timeout_s)
        try:
            message = json.loads(answer) if isinstance(answer, str) else {}
        except ValueError:  # not JSON: not a wam server (the check below says so and the loop retries)
            message = {}
        message = message if isinstance(message, dict) else {}
        if message.get("type") == "refused":
            if message.get("code") in REFUSED_CODES:
                raise BridgeRefused(f"the server refused robot {self.config.robot_id}: {message.get('detail')}")
            log.warning("bridge: the server cannot take the robot now (%s); retrying", message.get("detail"))
            return
        if message.get("type") != "welcome":
            raise WireError(f"expected a welcome from the server, got {str(answer)[:200]!r}")
        log.warning("bridge: robot %s attached to %s", self.config.robot_id, self.config.url)
        self.attached.set()
        while not self.stop.is_set():
            try:
                frame = websocket.recv(timeout=self.config.watchdog_s)
            except TimeoutError:
                self._hold(f"the server was silent for {self.config.watchdog_s:g} s")
                continue
            if isinstance(frame, str):
                raise WireError(f"the server sent text after the welcome: {frame[:200]!r}")
            reply = self.handle(frame)
            if reply is not None:
                websocket.send(reply)

    # -- one request -----------------------------------------------------------------------
    def handle(self, frame: bytes) -> bytes | None:
        """The answer to one server frame (None for heartbeats and holds, which need none)."""
        header, arrays = unpack(frame)
        kind, request_id = header.get("type"), header.get("id")
        if kind == "heartbeat":
            return None
        if kind == "hold":
            self._hold("the server asked (emergency stop)")
            return None
        try:
            if kind == "reset":
                obs = self.robot.reset(header.get("seed"), header.get("task"))
                self.guard.reset(self._pose(obs))
                return self._reply(request_id, obs, clipped=False)
            if kind == "step":
                if "action" not in arrays:
                    raise ValueError("a step needs an 'action' array")
                guarded = self.guard(arrays["action"])
                obs = self.robot.act(guarded.action)
                self.held = False
                self.counters.actions += 1
                self.counters.clipped += guarded.clipped
                return self._reply(request_id, obs, guarded.clipped)
            raise ValueError(f"unknown request {kind!r}")
        except Exception as error:  # noqa: BLE001 - the driver's refusal goes to the server, the bridge stays up
            log.warning("bridge: %s failed: %s", kind, error)
            return pack({"type": "error", "id": request_id, "message": f"{type(error).__name__}: {error}"[:500]})

    def _reply(self, request_id, obs: RobotObservation, clipped: bool) -> bytes:
        arrays = {"state": np.asarray(obs.state, np.float32)}
        arrays |= {f"image.{camera}": np.asarray(image, np.uint8) for camera, image in obs.images.items()}
        return pack({"type": "observation", "id": request_id, "reward": float(obs.reward), "success": bool(obs.success),
                     "terminated": bool(obs.terminated), "clipped": bool(clipped)}, arrays)

    def _pose(self, obs: RobotObservation) -> np.ndarray | None:
        """Where the actions start from, when actions are joint targets the state also reports (LeRobot arms)."""
        d = self.declaration
        if not set(d.action_names) <= set(d.state_names):
            return None
        index = {name: i for i, name in enumerate(d.state_names)}
        return np.asarray([obs.state[index[name]] for name in d.action_names], np.float64)

    def _hold(self, reason: str) -> None:
        if self.held:
            return
        self.held = True
        self.counters.holds += 1
        self.counters.last_hold_reason = reason
        log.warning("bridge: holding position: %s", reason)
        try:
            self.robot.hold()
        except Exception as error:  # noqa: BLE001 - a failed hold is logged loudly; nothing else can be done here
            log.error("bridge: the robot failed to hold: %s", error)


def run_in_thread(bridge: Bridge) -> threading.Thread:
    """Run `bridge` in a daemon thread (tests, notebooks); stop it with `bridge.stop.set()`. A refusal ends the
    thread and is kept in `bridge.refused`."""
    def run() -> None:
        try:
            bridge.run()
        except BridgeRefused:
            pass  # kept in bridge.refused, which wait_attached raises

    thread = threading.Thread(target=run, name="wam-bridge", daemon=True)
    thread.start()
    return thread


def wait_attached(bridge: Bridge, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not bridge.attached.wait(0.05):
        if bridge.refused is not None:
            raise bridge.refused
        if time.monotonic() > deadline:
            raise TimeoutError(f"bridge for {bridge.config.robot_id} did not attach within {timeout_s:.0f} s")
