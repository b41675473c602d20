"""/v1/keys: create, list and revoke API keys (admin scope).

An admin key works within its robot pattern: it creates keys no broader than itself (scope
and pattern, by `auth.pattern_within`), lists only the keys whose pattern lies within its
own, and revokes only those (any other key id answers 404, as a missing one does).

Revocation takes effect at once on this server: the key's cached verification is dropped,
its open WebSocket streams are closed (code 4401) and the leases it holds are freed. The
last active admin key, and the last active admin key whose pattern is "*", cannot be
revoked (409): create another first. Revoking one's own key is allowed under that rule (so
only while another admin key remains); the request succeeds and the key stops working.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from wam.api import schemas
from wam.api.auth import SCOPES, can_manage, create_key, pattern_within, require
from wam.api.store import KeyInfo, LastAdminKey

router = APIRouter(prefix="/v1", tags=["keys"])


def _shown(k: KeyInfo, secret: str | None = None) -> schemas.Key:
    return schemas.Key(id=k.id, scope=k.scope, robots=k.robots, name=k.name, revoked=k.revoked, secret=secret)


@router.post("/keys", response_model=schemas.Key, status_code=201, responses={403: {"model": schemas.Problem}})
def new_key(body: schemas.KeyRequest, request: Request, key: KeyInfo = Depends(require("admin"))):
    """A new key, never broader than the one creating it: its pattern is the creator's, a robot id the creator's
    pattern matches, or anything when the creator's pattern is "*"."""
    if SCOPES.index(body.scope) > SCOPES.index(key.scope):
        raise HTTPException(403, f"this key has scope {key.scope!r} and cannot create a {body.scope!r} key")
    if not pattern_within(body.robots, key.robots):
        raise HTTPException(403, f"this key may only create keys for robots {key.robots!r} (that pattern, or one robot "
                                 f"id it matches), not {body.robots!r}")
    info, secret = create_key(request.app.state.store, body.scope, body.robots, body.name)
    return _shown(info, secret)


@router.get("/keys", response_model=list[schemas.Key])
def list_keys(request: Request, key: KeyInfo = Depends(require("admin"))):
    """The keys whose robot pattern lies within this key's (every key, for a "*" admin)."""
    return [_shown(k) for k in request.app.state.store.list_keys() if can_manage(key, k)]


@router.delete("/keys/{key_id}", status_code=204, responses={404: {"model": schemas.Problem}, 409: {"model": schemas.Problem}})
async def revoke_key(key_id: str, request: Request, key: KeyInfo = Depends(require("admin"))):
    """Revoke a key: its streams close and its leases are freed now; the last admin key is kept (409).
    Async: it runs on the event loop, where the fleet's leases and the streams live."""
    store = request.app.state.store
    found = store.find_key(key_id)
    if found is None or not can_manage(key, found[0]):
        raise HTTPException(404, f"no key {key_id!r}")
    try:
        store.revoke_key(key_id)
    except LastAdminKey as error:
        raise HTTPException(409, str(error)) from None
    request.app.state.auth.revoked(key_id)
    free_leases(request.app.state.fleet, key_id)
    return Response(status_code=204)


def free_leases(fleet, holder: str) -> list[str]:
    """Drop every lease `holder` holds; returns the robots freed."""
    freed = []
    for handle in fleet.robots.values():
        if handle.lease is not None and handle.lease.holder == holder:
            handle.lease = None
            freed.append(handle.robot_id)
    return freed
