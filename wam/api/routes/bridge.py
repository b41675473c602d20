"""/v1/bridge/{robot_id}: where a real robot's bridge connects (see `wam.bridge`).

The bridge opens the connection (robots sit behind NATs and firewalls; the server never dials
out), authenticates with a control key whose robot pattern covers the robot, and says `hello`
with its declaration. The server checks the declaration and that its episodes fit the
dataset, attaches the robot (it turns from "offline" to "ready" and is driven like any other:
leases, estop, tasks, recording, MCP), and from then relays the worker's requests to the
bridge and its answers back, with a heartbeat every HEARTBEAT_S so the bridge's watchdog can
tell a silent server. A refused bridge gets a `refused` message saying why, then a close code:
4401 bad or revoked key, 4404 no such robot for this key, 4409 the robot is busy (another
bridge, restarting), 4422 a declaration that does not fit; 1012 means reconnect (the robot's
worker restarted), 1001 the server is shutting down. When the bridge goes, the episode it
was in is recorded as "interrupted" and the robot is offline until a bridge connects again.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, HTTPException, WebSocket

from wam.api.auth import authorize_websocket
from wam.api.bridge_link import HEARTBEAT_S, BridgeLink, to_worker
from wam.api.race import until_first
from wam.api.remote_env import remote_features
from wam.api.robot_handle import FleetError
from wam.bridge.spec import RobotDeclaration
from wam.bridge.wire import WireError, pack

HELLO_TIMEOUT_S = 10.0
router = APIRouter(prefix="/v1", tags=["bridge"])
log = logging.getLogger("wam.api.bridge")


async def _refuse(websocket: WebSocket, code: int, detail: str) -> None:
    try:
        await websocket.send_json({"type": "refused", "code": code, "detail": detail[:2000]})
        await websocket.close(code=code, reason=detail.encode()[:120].decode("utf-8", "ignore"))
    except RuntimeError:  # the bridge already went
        pass


async def _hello(websocket: WebSocket) -> RobotDeclaration:
    try:
        message = json.loads(await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_S))
    except asyncio.TimeoutError:
        raise ValueError(f"no hello within {HELLO_TIMEOUT_S:.0f} s") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"the hello must be a JSON text message ({type(error).__name__})") from None
    if not isinstance(message, dict) or message.get("type") != "hello":
        raise ValueError('the first message must be {"type": "hello", "declaration": {...}}')
    return RobotDeclaration.from_json(message.get("declaration"))


@router.websocket("/bridge/{robot_id}")
async def bridge(websocket: WebSocket, robot_id: str):
    app = websocket.app
    fleet, auth = app.state.fleet, app.state.auth
    await websocket.accept()
    try:
        key = authorize_websocket(websocket, "control", robot_id)
    except HTTPException as error:
        await _refuse(websocket, 4000 + error.status_code, str(error.detail))
        return
    try:
        declaration = await _hello(websocket)
        features = remote_features(declaration, images=app.state.config.obs == "pixels")
        await asyncio.to_thread(app.state.recorder.ensure, features, round(declaration.fps), declaration.robot_type)
    except ValueError as error:
        await _refuse(websocket, 4422, str(error).replace(str(app.state.recorder.root), "the server's dataset"))
        return
    link = BridgeLink(robot_id, declaration.to_json())
    try:
        await fleet.attach(robot_id, link)
    except FleetError as error:
        await _refuse(websocket, 4409 if error.status in (409, 503) else 4000 + error.status, str(error))
        return
    log.warning("robot %s: bridge attached (%s, key %s)", robot_id, declaration.robot_type, key.id)
    await websocket.send_json({"type": "welcome", "robot": robot_id, "heartbeat_s": HEARTBEAT_S})
    handle = fleet.robots[robot_id]
    revoked = auth.open_stream(key.id)

    async def send() -> None:
        while True:
            try:
                frame = await asyncio.wait_for(link.outbox.get(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                frame = pack({"type": "heartbeat"})
            await websocket.send_bytes(frame)

    async def receive() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is None:
                link.drop(1003, "after the hello, a bridge sends binary frames only")
                return
            try:
                to_worker(handle, message["bytes"])
            except WireError as error:
                link.drop(1003, str(error))
                return

    async def until_revoked() -> None:
        await auth.until_revoked(key.id, revoked)
        link.drop(4401, "API key revoked")

    try:
        await until_first(send(), receive(), link.closed.wait(), until_revoked())
    finally:
        auth.close_stream(key.id, revoked)
        reason = link.close_reason or "the bridge disconnected"
        log.warning("robot %s: bridge detached (%s)", robot_id, reason)
        await fleet.detach(robot_id, link, reason)
        try:
            await websocket.close(code=link.close_code, reason=reason[:120])
        except RuntimeError:
            pass
