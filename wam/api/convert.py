"""Between the fleet's plain arrays and the API's JSON and PNG."""

from __future__ import annotations

import io

import numpy as np

from wam.api import schemas
from wam.api.robot_handle import RobotHandle


def _floats(value) -> list[float] | None:
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(-1).tolist()


def observation(robot_id: str, obs: dict | None) -> schemas.Observation:
    if obs is None:
        return schemas.Observation(robot=robot_id)
    return schemas.Observation(
        robot=robot_id, task=obs.get("task"), episode_step=int(obs.get("episode_step", 0)), done=bool(obs.get("done", True)),
        reward=float(obs.get("reward", 0.0)), success=bool(obs.get("success", False)),
        terminated=bool(obs.get("terminated", False)), truncated=bool(obs.get("truncated", False)),
        state=_floats(obs.get("state")), sim_state=_floats(obs.get("sim_state")), has_image=obs.get("image") is not None)


def robot(handle: RobotHandle) -> schemas.Robot:
    lease = handle.lease if handle.lease is not None and not handle.lease.expired else None
    return schemas.Robot(
        id=handle.robot_id, env=handle.spec.env_id, task=handle.description.get("task", handle.spec.task), status=handle.status,
        estopped=handle.estopped, leased=lease is not None, lease_expires_at=lease.expires_at if lease else None,
        run_id=handle.run_id, restarts=handle.restarts, last_error=handle.last_error, steps=handle.steps)


def robot_detail(handle: RobotHandle) -> schemas.RobotDetail:
    d = handle.description
    capabilities = ["reset", "step", "action_chunk", "estop", "stream", "run_task"]
    if d.get("obs") == "pixels":
        capabilities.append("image")
    return schemas.RobotDetail(
        **robot(handle).model_dump(), task_text=d.get("task_text"), action_space=d.get("action_space"),
        observation_space=d.get("observation_space"), obs=d.get("obs", "pixels"), image_size=d.get("image_size"),
        max_episode_steps=d.get("max_episode_steps", 0), capabilities=capabilities, declaration=d.get("declaration"))


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def task_run(run) -> schemas.TaskRun:
    return schemas.TaskRun(id=run.id, task=run.task, policy=run.policy, robots=[r for r in run.robots.split(",") if r],
                           episodes=run.episodes, episodes_done=run.episodes_done, successes=run.successes, status=run.status,
                           error=run.error, owner=run.owner or "", created_at=run.created_at, updated_at=run.updated_at)


def episode(record) -> schemas.Episode:
    return schemas.Episode(id=record.id, robot=record.robot, task=record.task, success=record.success, length=record.length,
                           run_id=record.run_id, end_reason=record.end_reason, created_at=record.created_at)
