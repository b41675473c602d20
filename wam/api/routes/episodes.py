"""/v1/episodes: every episode the API recorded, listed from the store and served from the dataset.

A key sees the episodes of the robots its pattern matches; another robot's episode answers
404 exactly as a missing one does.
"""

from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from wam.api import convert, schemas
from wam.api.auth import can_use, require
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["episodes"])


@router.get("/episodes", response_model=list[schemas.Episode])
def list_episodes(request: Request, robot: str | None = None, run_id: str | None = None, task: str | None = None,
                  offset: int = Query(0, ge=0, le=2**31 - 1), limit: int = Query(100, ge=1, le=1000),
                  key: KeyInfo = Depends(require("read"))):
    store = request.app.state.store
    robots = None if key.robots == "*" else [r for r in store.episode_robots() if can_use(key, r)]
    records = store.list_episodes(robot, run_id, task, offset, limit, robots=robots)
    return [convert.episode(r) for r in records]


def _record(request: Request, episode_id: int, key: KeyInfo):
    record = request.app.state.store.get_episode(episode_id) if 0 <= episode_id < 2**31 else None
    if record is None or not can_use(key, record.robot):
        raise HTTPException(404, f"no recorded episode {episode_id}")
    return record


@router.get("/episodes/{episode_id}", response_model=schemas.Episode, responses={404: {"model": schemas.Problem}})
def get_episode(episode_id: schemas.EpisodeId, request: Request, key: KeyInfo = Depends(require("read"))):
    return convert.episode(_record(request, episode_id, key))


@router.get("/episodes/{episode_id}/download", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}, 404: {"model": schemas.Problem}})
def download_episode(episode_id: schemas.EpisodeId, request: Request, key: KeyInfo = Depends(require("read"))):
    """The episode as an .npz: every low-dimensional feature and, for pixel robots, the frames (T, H, W, 3)."""
    from wam.data.reader import Dataset

    _record(request, episode_id, key)
    dataset = Dataset(request.app.state.config.data)
    arrays = {k.replace("/", "_"): np.asarray(v) for k, v in dataset.low_dim(episode_id).items()}
    for camera in dataset.camera_keys:
        arrays[camera] = dataset.frames(episode_id, camera)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return Response(buffer.getvalue(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="episode_{episode_id:06d}.npz"'})
