"""/v1/tasks: run a language task with a policy on N robots for M episodes; status, progress, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from wam.api import convert, schemas
from wam.api.auth import check_robot, require
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["tasks"])


@router.post("/tasks", response_model=schemas.TaskRun, status_code=201,
             responses={409: {"model": schemas.Problem}, 422: {"model": schemas.Problem}})
async def submit_task(body: schemas.TaskRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    runner = request.app.state.tasks
    run_id = runner.submit(body, key.id, lambda robot_id: check_robot(key, robot_id))
    return convert.task_run(runner.store.get_run(run_id))


@router.get("/tasks", response_model=list[schemas.TaskRun])
async def list_tasks(request: Request, limit: int = 100, key: KeyInfo = Depends(require("read"))):
    return [convert.task_run(r) for r in request.app.state.store.list_runs(max(1, min(limit, 1000)))]


@router.get("/tasks/{run_id}", response_model=schemas.TaskRun, responses={404: {"model": schemas.Problem}})
async def task_status(run_id: str, request: Request, key: KeyInfo = Depends(require("read"))):
    run = request.app.state.store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no task run {run_id!r}")
    return convert.task_run(run)


@router.post("/tasks/{run_id}/cancel", response_model=schemas.TaskRun,
             responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def cancel_task(run_id: str, request: Request, key: KeyInfo = Depends(require("control"))):
    store = request.app.state.store
    run = store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no task run {run_id!r}")
    request.app.state.tasks.cancel(run_id)
    return convert.task_run(store.get_run(run_id))
