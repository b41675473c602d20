"""API keys: who may read, who may drive robots, who may administer, and on which robots.

A key is `wam_<id>_<secret>`; the store keeps the id, the scope, a robot pattern and the
sha256 of the whole key (keys are random 192-bit secrets, so a fast hash is enough; there
is nothing to brute-force). Scopes nest: read < control < admin. Every route declares the
scope it needs as a FastAPI dependency; robot routes also check the key's robot pattern.
Verified keys are cached for a few seconds so that a step costs no database query.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import time

from fastapi import HTTPException, Request, WebSocket

from wam.api.store import KeyInfo, Store

SCOPES = ("read", "control", "admin")
CACHE_SECONDS = 5.0


def create_key(store: Store, scope: str, robots: str = "*", name: str = "") -> tuple[KeyInfo, str]:
    """Store a new key and return it with its secret, which is shown once and never stored."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if not robots or len(robots) > 256:
        raise ValueError(f"robot pattern must be 1..256 characters, got {robots!r}")
    key_id = secrets.token_hex(6)
    secret = f"wam_{key_id}_{secrets.token_urlsafe(24)}"
    return store.add_key(key_id, _digest(secret), scope, robots, name), secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Authenticator:
    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}

    def forget(self) -> None:
        self._cache.clear()

    def verify(self, secret: str | None) -> KeyInfo:
        if not secret:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' (create one with `wam keys create`)")
        cached = self._cache.get(secret)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            key = cached[1]
        else:
            key = self._lookup(secret)
            self._cache[secret] = (time.monotonic(), key)
        if key is None:
            raise HTTPException(401, "unknown or revoked API key")
        return key

    def _lookup(self, secret: str) -> KeyInfo | None:
        parts = secret.split("_")
        if len(parts) < 3 or parts[0] != "wam":
            return None
        found = self.store.find_key(parts[1])
        if found is None:
            return None
        key, digest = found
        if key.revoked or not hmac.compare_digest(digest, _digest(secret)):
            return None
        return key


def key_from_headers(headers, query_params=None) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    if query_params is not None and query_params.get("key"):  # browsers cannot set headers on a WebSocket
        return query_params["key"]
    return None


def check_scope(key: KeyInfo, scope: str) -> None:
    if SCOPES.index(key.scope) < SCOPES.index(scope):
        raise HTTPException(403, f"this key has scope {key.scope!r}; the route needs {scope!r}")


def check_robot(key: KeyInfo, robot_id: str) -> None:
    if not fnmatch.fnmatchcase(robot_id, key.robots):
        raise HTTPException(403, f"this key may only use robots matching {key.robots!r}, not {robot_id!r}")


def require(scope: str):
    """A dependency: the request's key, checked for `scope` (and for the path's robot, when there is one)."""

    async def dependency(request: Request) -> KeyInfo:  # async: no thread-pool hop on every request
        key = request.app.state.auth.verify(key_from_headers(request.headers))
        check_scope(key, scope)
        robot_id = request.path_params.get("robot_id")
        if robot_id is not None:
            check_robot(key, robot_id)
        return key

    dependency.__name__ = f"require_{scope}"
    return dependency


def authorize_websocket(websocket: WebSocket, scope: str, robot_id: str) -> KeyInfo:
    key = websocket.app.state.auth.verify(key_from_headers(websocket.headers, websocket.query_params))
    check_scope(key, scope)
    check_robot(key, robot_id)
    return key
