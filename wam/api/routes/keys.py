"""/v1/keys: create, list and revoke API keys (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from wam.api import schemas
from wam.api.auth import create_key, require
from wam.api.store import KeyInfo

router = APIRouter(prefix="/v1", tags=["keys"])


@router.post("/keys", response_model=schemas.Key, status_code=201)
def new_key(body: schemas.KeyRequest, request: Request, key: KeyInfo = Depends(require("admin"))):
    info, secret = create_key(request.app.state.store, body.scope, body.robots, body.name)
    return schemas.Key(id=info.id, scope=info.scope, robots=info.robots, name=info.name, secret=secret)


@router.get("/keys", response_model=list[schemas.Key])
def list_keys(request: Request, key: KeyInfo = Depends(require("admin"))):
    return [schemas.Key(id=k.id, scope=k.scope, robots=k.robots, name=k.name, revoked=k.revoked)
            for k in request.app.state.store.list_keys()]


@router.delete("/keys/{key_id}", status_code=204, responses={404: {"model": schemas.Problem}})
def revoke_key(key_id: str, request: Request, key: KeyInfo = Depends(require("admin"))):
    if not request.app.state.store.revoke_key(key_id):
        raise HTTPException(404, f"no key {key_id!r}")
    request.app.state.auth.forget()
    return Response(status_code=204)
