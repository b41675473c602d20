"""/v1/robots: list, describe, observe (JSON, PNG, WebSocket), lease, reset, step, emergency stop.

Every robot route answers 404 for a robot outside the key's pattern, with the message a
missing robot gets (the `require` dependency checks the path's robot). A stream ends when
its key is revoked; an admin may break a key's lease on any robot it can use.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket

from wam.api import convert, schemas
from wam.api.auth import authorize_websocket, can_use, check_robot, require
from wam.api.race import until_first
from wam.api.robot_handle import FleetError
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["robots"])
log = logging.getLogger("wam.api.robots")


def _fleet(request: Request):
    return request.app.state.fleet


@router.get("/robots", response_model=list[schemas.Robot])
async def list_robots(request: Request, key: KeyInfo = Depends(require("read"))):
    return [convert.robot(h) for h in _fleet(request).robots.values() if can_use(key, h.robot_id)]


async def _call(fleet, robot_id: str, command: str, payload: dict, **options):
    """`fleet.call`, with a worker's internal error (its message has a traceback and server paths) logged here and
    answered as a plain 500; the fleet's own errors (409, 422, 503, ...) pass through as they are."""
    try:
        return await fleet.call(robot_id, command, payload, **options)
    except FleetError as error:
        if type(error) is not FleetError:
            raise
        log.error("robot %s failed on %r: %s", robot_id, command, error)
        raise HTTPException(500, f"robot {robot_id} failed on {command!r}; the server log has the details") from None


@router.get("/robots/{robot_id}", response_model=schemas.RobotDetail, responses={404: {"model": schemas.Problem}})
async def describe_robot(robot_id: str, request: Request, key: KeyInfo = Depends(require("read"))):
    return convert.robot_detail(_fleet(request).get(robot_id))


@router.get("/robots/{robot_id}/observation", response_model=schemas.Observation, responses={404: {"model": schemas.Problem}})
async def latest_observation(robot_id: str, request: Request, key: KeyInfo = Depends(require("read"))):
    return convert.observation(robot_id, _fleet(request).get(robot_id).latest)


@router.get("/robots/{robot_id}/observation.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"model": schemas.Problem}})
async def latest_image(robot_id: str, request: Request, key: KeyInfo = Depends(require("read"))):
    latest = _fleet(request).get(robot_id).latest
    if latest is None or latest.get("image") is None:
        raise HTTPException(404, f"robot {robot_id} has no image yet (reset it; state-only robots never have one)")
    return Response(convert.png(latest["image"]), media_type="image/png")


@router.websocket("/robots/{robot_id}/stream")
async def stream_observations(websocket: WebSocket, robot_id: str):
    """Every new observation as JSON, newest first when the watcher falls behind. Key: header or ?key=.

    Closed with code 4401 when the key is revoked: at once through DELETE /v1/keys, within a few seconds when
    revoked in the database (`wam keys revoke`)."""
    fleet, auth = websocket.app.state.fleet, websocket.app.state.auth
    try:
        key = authorize_websocket(websocket, "read", robot_id)
    except HTTPException as error:
        await websocket.close(code=4000 + error.status_code, reason=str(error.detail)[:120])
        return
    handle = fleet.robots[robot_id]
    await websocket.accept()
    queue: asyncio.Queue = asyncio.Queue(maxsize=16)
    handle.subscribers.add(queue)
    revoked = auth.open_stream(key.id)

    async def send_observations() -> None:
        if handle.latest is not None:
            await websocket.send_json(convert.observation(robot_id, handle.latest).model_dump())
        while (obs := await queue.get()) is not None:  # None: the server is shutting down
            await websocket.send_json(convert.observation(robot_id, obs).model_dump())

    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    try:
        await until_first(send_observations(), until_disconnect(), auth.until_revoked(key.id, revoked))
    finally:
        handle.subscribers.discard(queue)
        auth.close_stream(key.id, revoked)
        try:
            if revoked.is_set():
                await websocket.close(code=4401, reason="API key revoked")
            else:
                await websocket.close()
        except RuntimeError:
            pass


@router.post("/robots/{robot_id}/lease", response_model=schemas.Lease, status_code=201, responses={409: {"model": schemas.Problem}})
async def acquire_lease(robot_id: str, body: schemas.LeaseRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    """Lease a robot; a lease still held by a key revoked in the database (not through the API) is dropped first."""
    handle = _fleet(request).robots[robot_id]
    held = handle.lease
    if (held is not None and not held.expired and held.holder != key.id and not held.holder.startswith("run:")
            and request.app.state.auth.is_revoked(held.holder)):
        handle.lease = None
    lease = _fleet(request).acquire(robot_id, key.id, body.ttl_s)
    return schemas.Lease(lease_id=lease.lease_id, robot=robot_id, expires_at=lease.expires_at)


@router.post("/leases/{lease_id}/renew", response_model=schemas.Lease, responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def renew_lease(lease_id: str, body: schemas.LeaseRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    lease = _fleet(request).renew(lease_id, key.id, body.ttl_s)
    return schemas.Lease(lease_id=lease.lease_id, robot=lease.robot_id, expires_at=lease.expires_at)


@router.delete("/leases/{lease_id}", status_code=204, responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def release_lease(lease_id: str, request: Request, key: KeyInfo = Depends(require("control"))):
    _fleet(request).release(lease_id, key.id)
    return Response(status_code=204)


@router.delete("/robots/{robot_id}/lease", response_model=schemas.Robot,
               responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def break_lease(robot_id: str, request: Request, key: KeyInfo = Depends(require("admin"))):
    """Break whatever lease a key holds on the robot (an admin's remedy for a lost or stuck agent); a task run's
    lease is refused with 409: cancel the run instead."""
    handle = _fleet(request).robots[robot_id]
    lease = handle.lease
    if lease is not None and not lease.expired and lease.holder.startswith("run:"):
        run_id = lease.holder.removeprefix("run:")
        raise HTTPException(409, f"robot {robot_id} is held by task run {run_id}; cancel it (POST /v1/tasks/{run_id}/cancel)")
    handle.lease = None
    return convert.robot(handle)


@router.post("/robots/{robot_id}/reset", response_model=schemas.Observation,
             responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}, 503: {"model": schemas.Problem}})
async def reset_robot(robot_id: str, body: schemas.ResetRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    fleet = _fleet(request)
    fleet.check_control(robot_id, body.lease_id, key.id)
    if error := fleet.get(robot_id).spec.task_error(body.task):
        raise HTTPException(422, error)
    result = await _call(fleet, robot_id, "reset", {"task": body.task, "seed": body.seed})
    return convert.observation(robot_id, result["observation"])


def _actions(robot_id: str, body: schemas.StepRequest, description: dict) -> np.ndarray:
    """The actions as an (N, A) array, or 422 naming the value at fault; nothing invalid reaches the simulator."""
    if (body.action is None) == (body.actions is None):
        raise HTTPException(422, "give exactly one of 'action' (one action) or 'actions' (a chunk)")
    rows = [body.action] if body.action is not None else body.actions
    if not rows:
        raise HTTPException(422, "'actions' is empty")
    space = description.get("action_space")
    if not space:
        raise HTTPException(409, f"robot {robot_id} has no scene yet; reset it with a task first")
    dim = space["shape"][0]
    low, high = np.asarray(space["low"]), np.asarray(space["high"])
    for i, row in enumerate(rows):
        where = "action" if body.action is not None else f"actions[{i}]"
        if len(row) != dim:
            raise HTTPException(422, f"{where} has {len(row)} values; robot {robot_id} takes {dim}")
        values = np.asarray(row, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise HTTPException(422, f"{where} contains NaN or inf: {row}")
        outside = np.nonzero((values < low) | (values > high))[0]
        if outside.size:
            j = int(outside[0])
            raise HTTPException(422, f"{where}[{j}] = {values[j]} is outside the action space [{low[j]}, {high[j]}]")
    return np.asarray(rows, dtype=np.float32)


async def _step(fleet, key: KeyInfo, robot_id: str, body: schemas.StepRequest) -> schemas.StepResult:
    handle = fleet.check_control(robot_id, body.lease_id, key.id)
    actions = _actions(robot_id, body, handle.description)
    result = await _call(fleet, robot_id, "step", {"actions": actions}, wait_recorded=body.wait_recorded)
    return schemas.StepResult(observation=convert.observation(robot_id, result["observation"]), rewards=result["rewards"],
                              steps=len(result["rewards"]), episode_id=result.get("episode_id"),
                              recording=result.get("recording", False))


@router.post("/robots/{robot_id}/step", response_model=schemas.StepResult,
             responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}, 503: {"model": schemas.Problem}})
async def step_robot(robot_id: str, body: schemas.StepRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    return await _step(_fleet(request), key, robot_id, body)


@router.post("/fleet/step", response_model=list[schemas.FleetStepOutcome])
async def step_fleet(body: schemas.FleetStepRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    """Step many robots in one request, all at once; each robot's outcome (and error) is its own."""
    fleet = _fleet(request)

    async def one(item: schemas.FleetStep, seen: set) -> schemas.FleetStepOutcome:
        try:
            if item.robot in seen:
                raise HTTPException(422, f"robot {item.robot} appears twice in one fleet step")
            seen.add(item.robot)
            check_robot(key, item.robot, fleet.robots)
            return schemas.FleetStepOutcome(robot=item.robot, status=200, result=await _step(fleet, key, item.robot, item))
        except HTTPException as error:
            return schemas.FleetStepOutcome(robot=item.robot, status=error.status_code, detail=str(error.detail))
        except FleetError as error:
            return schemas.FleetStepOutcome(robot=item.robot, status=error.status, detail=str(error))

    seen: set = set()
    return await asyncio.gather(*(one(item, seen) for item in body.steps))


@router.post("/robots/{robot_id}/estop", response_model=schemas.Robot, responses={404: {"model": schemas.Problem}})
async def estop_robot(robot_id: str, request: Request, key: KeyInfo = Depends(require("control"))):
    """Any control key may stop any robot it can see, lease or not: stopping is always allowed. The robot stops before
    its next action; chunks queued for it and a task running on it are cut; the answer comes once it has stopped and
    its episode is recorded (end reason "estop")."""
    await _fleet(request).estop(robot_id, key.id)
    return convert.robot(_fleet(request).get(robot_id))


@router.post("/robots/{robot_id}/estop/release", response_model=schemas.Robot,
             responses={403: {"model": schemas.Problem}, 404: {"model": schemas.Problem}})
async def release_estop(robot_id: str, request: Request, key: KeyInfo = Depends(require("control"))):
    """Release this key's stop: 403 for a stop another key pressed (only it, or an admin, may release that). The robot
    stays stopped (`estopped`) while another key's stop still holds it; an admin releases every stop at once."""
    _fleet(request).release_estop(robot_id, None if key.scope == "admin" else key.id)
    return convert.robot(_fleet(request).get(robot_id))


@router.post("/fleet/estop", response_model=list[schemas.Robot])
async def estop_fleet(request: Request, key: KeyInfo = Depends(require("control"))):
    """Stop every robot this key can see, all at once, as POST /v1/robots/{id}/estop does one."""
    fleet = _fleet(request)
    robots = [r for r in fleet.robots if can_use(key, r)]
    await fleet.estop_fleet(robots, key.id)
    return [convert.robot(fleet.get(r)) for r in robots]
