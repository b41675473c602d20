"""The server's end of a bridge: relays between a remote robot's worker and the bridge's WebSocket.

A remote robot's worker owns a second pipe (`handle.link`) on which its `RemoteEnv` sends
each reset and action as a wire frame. A reader thread per remote robot hands those frames to
the event loop, which queues them for the attached bridge (or answers "lost" at once when no
bridge is attached, so the worker never waits on a robot that is not there). The bridge's
answers go back down the same pipe. Frames are routed by their header alone; the server never
decodes a camera frame it only relays.
"""

from __future__ import annotations

import asyncio
import threading

from wam.bridge.wire import WireError, pack, peek

HEARTBEAT_S = 0.5  # the server speaks at least this often, so a bridge can tell a silent server from an idle one


class BridgeLink:
    """One attached bridge: `outbox` holds the frames to send it; `closed` is set when the server drops it."""

    def __init__(self, robot_id: str, declaration: dict):
        self.robot_id, self.declaration = robot_id, declaration
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.pending: int | None = None  # the worker's request the bridge has yet to answer
        self.closed = asyncio.Event()
        self.close_code, self.close_reason = 1000, ""

    def to_bridge(self, frame: bytes) -> None:
        self.pending = peek(frame).get("id")
        self.outbox.put_nowait(frame)

    def hold(self) -> None:
        """Tell the robot to stop where it is (an emergency stop): ahead of nothing, it is sent next."""
        self.outbox.put_nowait(pack({"type": "hold"}))

    def drop(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self.closed.set()


def start_relay(handle, link, loop: asyncio.AbstractEventLoop) -> None:
    """Read `handle`'s worker requests off `link` in a thread, for as long as that worker lives."""

    def read() -> None:
        while True:
            try:
                frame = link.recv_bytes()
            except Exception:  # noqa: BLE001 - the worker is gone; its successor gets a new link
                return
            loop.call_soon_threadsafe(_from_worker, handle, link, frame)

    threading.Thread(target=read, name=f"relay-{handle.robot_id}", daemon=True).start()


def _from_worker(handle, link, frame: bytes) -> None:
    if handle.link is not link:  # a request of a worker already replaced
        return
    if handle.bridge is None:
        answer_lost(link, _request_id(frame), "no bridge is connected")
    else:
        handle.bridge.to_bridge(frame)


def to_worker(handle, frame: bytes) -> None:
    """A bridge's answer, to the worker waiting for it."""
    request_id = peek(frame).get("id")  # WireError for a frame that is not one: the route closes the bridge
    if handle.bridge is not None and request_id == handle.bridge.pending:
        handle.bridge.pending = None
    if handle.link is not None:
        handle.link.send_bytes(frame)


def answer_lost(link, request_id: int | None, reason: str) -> None:
    if link is not None and request_id is not None:
        try:
            link.send_bytes(pack({"type": "lost", "id": request_id, "reason": reason}))
        except OSError:
            pass


def _request_id(frame: bytes) -> int | None:
    try:
        return peek(frame).get("id")
    except WireError:
        return None
