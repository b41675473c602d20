"""/v1/tasks: run a language task with a policy on N robots for M episodes; status, progress, cancel.

A key sees a run only when its robot pattern matches every robot the run uses; any other
run answers 404 exactly as a missing one does.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from wam.api import convert, schemas
from wam.api.auth import can_see_run, can_use, require
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["tasks"])


def _visible_run(request: Request, run_id: str, key: KeyInfo):
    run = request.app.state.store.get_run(run_id)
    if run is None or not can_see_run(key, run):
        raise HTTPException(404, f"no task run {run_id!r}")
    return run


@router.post("/tasks", response_model=schemas.TaskRun, status_code=201,
             responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}, 422: {"model": schemas.Problem}})
async def submit_task(body: schemas.TaskRequest, request: Request, key: KeyInfo = Depends(require("control"))):
    """Start a run on robots this key can use. The policy is 'expert', 'random' or a finetuned run in the server's
    runs directory (`wam serve --runs`), named as it is there; anything else is 422 with one message."""
    runner = request.app.state.tasks
    run_id = runner.submit(body, key.id, lambda robot_id: can_use(key, robot_id))
    return convert.task_run(runner.store.get_run(run_id))


@router.get("/tasks", response_model=list[schemas.TaskRun])
async def list_tasks(request: Request, limit: int = 100, key: KeyInfo = Depends(require("read"))):
    """The newest runs whose robots all match this key's pattern."""
    runs = request.app.state.store.list_runs(max(1, min(limit, 1000)), visible=None if key.robots == "*" else lambda run: can_see_run(key, run))
    return [convert.task_run(r) for r in runs]


@router.get("/tasks/{run_id}", response_model=schemas.TaskRun, responses={404: {"model": schemas.Problem}})
async def task_status(run_id: str, request: Request, key: KeyInfo = Depends(require("read"))):
    return convert.task_run(_visible_run(request, run_id, key))


@router.post("/tasks/{run_id}/cancel", response_model=schemas.TaskRun,
             responses={403: {"model": schemas.Problem}, 404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def cancel_task(run_id: str, request: Request, key: KeyInfo = Depends(require("control"))):
    """Cancel a run: allowed to the key that started it, and to an admin key whose pattern matches all its robots.

    Another control key, even one over all its robots, gets 403 (it may still emergency-stop a robot it can use);
    a key whose pattern misses any of the run's robots gets 404, as for a run that does not exist.
    """
    run = _visible_run(request, run_id, key)
    if key.id != run.owner and key.scope != "admin":
        raise HTTPException(403, f"task run {run_id} was started by another key; only that key or an admin may cancel it")
    request.app.state.tasks.cancel(run_id)
    return convert.task_run(request.app.state.store.get_run(run_id))
