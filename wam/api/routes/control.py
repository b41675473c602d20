"""/v1/control: one WebSocket that carries steps, chunks, resets and observations for many robots.

An agent driving a fleet sends one message per tick with a command for each robot
(`wam.api.control_schemas`); the server checks every command at once, sends each robot its
command through the fleet (all robots at once, as POST /v1/fleet/step does) and answers
with one reply holding every robot's outcome. Messages may be pipelined: up to
MAX_IN_FLIGHT run at once, and a robot's commands run in the order they arrived.

The rules are HTTP's: the key's scope (observe needs read; step and reset need control)
and robot pattern (another key's robots are "not found", with a missing robot's message),
the key's lease on each robot it drives, emergency stops, and every episode recorded. An
episode that a command ends is committed in the background, so no robot's reply waits on
another's commit; a `recorded` message with its episode id follows once it is durable
(`wait_recorded: true` makes the reply wait instead, as HTTP's default does).

Errors: a command the server refuses gets an error outcome (`code`, `status`, `detail`)
and the other commands run; a message that is not JSON or does not match the schema gets
one error reply and nothing runs. The connection stays open after either. It is closed
with 1003 for a binary frame (send JSON text), 1009 for a message over the body limit
(uvicorn), and 4401 when the key is revoked (at once through DELETE /v1/keys, within a few
seconds in the database); a missing or unknown key is refused at the handshake (403).
Commands already sent to robots when a connection ends still finish, and are recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import partial

import numpy as np
from fastapi import APIRouter, HTTPException, WebSocket
from pydantic import ValidationError

from wam.api.auth import can_use, check_robot, check_scope, key_from_headers
from wam.api.control_schemas import ERROR_CODES, ControlMessage
from wam.api.robot_handle import FleetError
from wam.api.routes.robots import _actions as check_actions
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["control"])
log = logging.getLogger("wam.api.control")

MAX_IN_FLIGHT = 8  # messages of one connection run at once; past it the server reads no more (TCP pushes back)
COMPACT = (",", ":")


@router.websocket("/control")
async def control(websocket: WebSocket):
    """The control channel; the key goes in the Authorization (or X-API-Key) header, or ?key= for browsers."""
    auth = websocket.app.state.auth
    try:
        key = auth.verify(key_from_headers(websocket.headers, websocket.query_params))
    except HTTPException as error:
        await websocket.close(code=4000 + error.status_code, reason=str(error.detail)[:120])
        return
    await websocket.accept()
    channel = Channel(websocket, websocket.app.state.fleet, key)
    revoked = auth.open_stream(key.id)
    reader, writer = asyncio.create_task(channel.read()), asyncio.create_task(channel.write())
    watcher = asyncio.create_task(auth.until_revoked(key.id, revoked))
    try:
        await asyncio.wait([reader, writer, watcher], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, watcher):
            task.cancel()
        await asyncio.gather(reader, watcher, return_exceptions=True)
        await asyncio.gather(*list(channel.running), return_exceptions=True)  # commands sent to robots finish
        channel.outbox.put_nowait(None)
        await asyncio.gather(writer, return_exceptions=True)
        auth.close_stream(key.id, revoked)
        code, reason = (4401, "API key revoked") if revoked.is_set() else channel.close_with
        try:
            await websocket.close(code=code, reason=reason)
        except RuntimeError:  # closed already
            pass


class Channel:
    """One connection: reads messages, starts their commands, and writes each reply when its message is done
    (pipelined messages may be answered out of order: the id says which) and a `recorded` message per commit."""

    def __init__(self, websocket: WebSocket, fleet, key: KeyInfo):
        self.websocket, self.fleet, self.key = websocket, fleet, key
        self.outbox: asyncio.Queue = asyncio.Queue()  # JSON text to send; None ends the writer
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.running: set[asyncio.Task] = set()  # messages whose commands are running
        self.watched: set[asyncio.Task] = set()  # episode commits whose `recorded` message is due
        self.close_with = (1000, "")

    # -- the socket -----------------------------------------------------------------------
    async def read(self) -> None:
        while True:
            await self.slots.acquire()
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                self.close_with = (1003, "binary frames are not accepted; send each message as JSON text")
                return
            self.start(message["text"])

    async def write(self) -> None:
        while (text := await self.outbox.get()) is not None:
            try:
                await self.websocket.send_text(text)
            except (RuntimeError, OSError):  # the client is gone: what is left is dropped
                return
            except Exception as error:  # noqa: BLE001 - starlette's WebSocketDisconnect and the like
                log.debug("control channel closed while sending: %s", error)
                return

    def send(self, payload: dict) -> None:
        self.outbox.put_nowait(json.dumps(payload, separators=COMPACT))

    # -- a message ------------------------------------------------------------------------
    def start(self, text: str) -> None:
        """Check the message and every command now, send the robots theirs, and reply once all have answered.

        Synchronous up to the robots' tasks, which are created in the order the commands arrived: a robot's
        commands of pipelined messages queue on its lock in that order."""
        try:
            message = ControlMessage.model_validate_json(text)
        except ValidationError as error:
            self.slots.release()
            self.send({"type": "reply", "id": _request_id(text), "error": _refusal(error)})
            return
        seen: set[str] = set()
        jobs = [self.job(command, seen, message) for command in message.commands]
        task = asyncio.create_task(self.finish(message.id, jobs))
        self.running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.running.discard(task)
        self.slots.release()

    async def finish(self, request_id, jobs: list) -> None:
        results = [job if isinstance(job, dict) else await job for job in jobs]
        self.send({"type": "reply", "id": request_id, "results": results})

    def job(self, command, seen: set, message: ControlMessage):
        """A robot's outcome now (an error, an observation), or the task that runs its command."""
        robot = command.robot
        try:
            if robot in seen:
                raise HTTPException(422, f"robot {robot} appears twice in one message; send it one command per message")
            seen.add(robot)
            if command.op == "observe":
                check_robot(self.key, robot, self.fleet.robots)
                return observed(robot, self.fleet.robots[robot].latest, message.sim_state)
            check_scope(self.key, "control")
            check_robot(self.key, robot, self.fleet.robots)
            handle = self.fleet.check_control(robot, command.lease_id, self.key.id)
            if command.op == "step":
                payload = {"actions": actions(robot, command, handle.description)}
            else:
                check_task(handle, command.task)
                payload = {"task": command.task, "seed": command.seed}
        except (HTTPException, FleetError) as error:
            return self.failure(robot, error)
        return asyncio.create_task(self.run(handle, command.op, payload, message))

    async def run(self, handle, op: str, payload: dict, message: ControlMessage) -> dict:
        robot = handle.robot_id
        before = set(handle.recording)  # the background commits already under way for this robot
        try:
            result = await self.fleet.call(robot, op, payload, wait_recorded=message.wait_recorded)
        except FleetError as error:
            return self.failure(robot, error, op)
        outcome = observed(robot, result["observation"], message.sim_state)
        if op == "step":
            outcome["steps"] = len(result["rewards"])
            if len(result["rewards"]) > 1:
                outcome["rewards"] = result["rewards"]
        if result.get("episode_id") is not None:
            outcome["episode_id"] = result["episode_id"]
        if result.get("recording"):
            outcome["recording"] = True
            for commit in handle.recording - before - self.watched:  # this command's commit (announced once)
                self.watched.add(commit)
                commit.add_done_callback(self.watched.discard)
                commit.add_done_callback(partial(self.recorded, message.id, robot))
        return outcome

    def recorded(self, request_id, robot: str, commit: asyncio.Task) -> None:
        if not commit.cancelled() and commit.exception() is None:
            self.send({"type": "recorded", "id": request_id, "robot": robot, "episode_id": commit.result()})
            return
        if not commit.cancelled():
            log.error("robot %s: committing its episode failed: %s", robot, commit.exception())
        self.send({"type": "recorded", "id": request_id, "robot": robot, "episode_id": None,
                   "error": {"code": "internal", "status": 500, "detail": "the episode could not be committed; the "
                             "server log has the details"}})

    def failure(self, robot: str, error: Exception, op: str = "") -> dict:
        if isinstance(error, HTTPException):
            status, detail = error.status_code, str(error.detail)
        elif type(error) is FleetError:  # a worker's internal error: its message has a traceback and server paths
            log.error("robot %s failed on %r: %s", robot, op, error)
            status, detail = 500, f"robot {robot} failed on {op!r}; the server log has the details"
        else:
            status, detail = error.status, str(error)
        code = ERROR_CODES.get(status, "error")
        handle = self.fleet.robots.get(robot)
        if status == 409 and handle is not None and handle.estopped and can_use(self.key, robot):
            code = "estopped"
        return {"robot": robot, "error": {"code": code, "status": status, "detail": detail}}


# -- checks and outcomes ------------------------------------------------------------------------
def actions(robot: str, command, description: dict):
    """The actions as N rows of A numbers (a list: the cheapest thing to pickle to the robot, which makes its float32
    array of them as it does of HTTP's). Plain comparisons pass the usual valid chunk (a NaN fails them, and `v - v`
    is NaN for an infinity); anything else goes to the HTTP route's check, which names the value at fault."""
    one, chunk = command.action, command.actions
    space = description.get("action_space")
    rows = [one] if chunk is None else chunk
    if space and (one is None) != (chunk is None) and rows:
        low, high = space["low"], space["high"]
        if all(len(row) == len(low) and all(lo <= v <= hi and v - v == 0 for v, lo, hi in zip(row, low, high))
               for row in rows):
            return rows
    return check_actions(robot, command, description)


def check_task(handle, task: str | None) -> None:
    if error := handle.spec.task_error(task):
        raise HTTPException(422, error)


def observed(robot: str, obs: dict | None, sim_state: bool) -> dict:
    if obs is None:
        return {"robot": robot, "task": None, "episode_step": 0, "state": None, "reward": 0.0, "done": True,
                "success": False, "terminated": False, "truncated": False}
    outcome = {"robot": robot, "task": obs.get("task"), "episode_step": int(obs.get("episode_step", 0)),
               "state": _floats(obs.get("state")), "reward": float(obs.get("reward", 0.0)),
               "done": bool(obs.get("done", True)),
               "success": bool(obs.get("success", False)), "terminated": bool(obs.get("terminated", False)),
               "truncated": bool(obs.get("truncated", False))}
    if sim_state:
        outcome["sim_state"] = _floats(obs.get("sim_state"))
    return outcome


def _floats(value) -> list[float] | None:
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()  # float32 or float64: Python floats either way
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(-1).tolist()


def _request_id(text: str):
    """The id of a message refused whole, when one can be read from it (for the client to match the reply)."""
    try:
        request_id = json.loads(text).get("id")
    except Exception:  # noqa: BLE001 - not JSON, not an object, nested too deep: no id to echo
        return None
    if isinstance(request_id, str) and len(request_id) <= 64:
        return request_id
    if isinstance(request_id, int) and not isinstance(request_id, bool) and 0 <= request_id <= 2**53:
        return request_id
    return None


def _refusal(error: ValidationError) -> dict:
    problems = error.errors(include_url=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return {"code": "bad_message", "status": 400, "detail": f"not JSON: {problems[0]['msg']}"[:500]}
    where = "; ".join(f"{'.'.join(str(part) for part in p['loc']) or 'message'}: {p['msg']}" for p in problems[:4])
    more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
    return {"code": "invalid", "status": 422, "detail": (where + more)[:1000]}
