"""API keys: who may read, who may drive robots, who may administer, and on which robots.

A key is `wam_<id>_<secret>`; the store keeps the id, the scope, a robot pattern and the
sha256 of the whole key (keys are random 192-bit secrets, so a fast hash is enough; there
is nothing to brute-force). Scopes nest: read < control < admin. Every route declares the
scope it needs as a FastAPI dependency; robot routes also check the key's robot pattern.
Verified keys are cached for a few seconds so that a step costs no database query.

The robot pattern holds everywhere: a robot, run, episode or key outside it answers 404
with the same message as one that does not exist, so a key learns nothing of the rest of
the fleet. A run is within a key's pattern when every robot it runs on is; a key's
pattern lies within another's by `pattern_within`, which also bounds the keys an admin
may create, list and revoke.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import secrets
import time

from fastapi import HTTPException, Request, WebSocket

from wam.api.store import KeyInfo, Store

SCOPES = ("read", "control", "admin")
CACHE_SECONDS = 5.0
CACHE_KEYS = 1024  # verified keys remembered at once (valid ones only)
GLOB = set("*?[")


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
    """Verifies keys (cached briefly) and ends the WebSocket streams of a key when it is revoked."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._streams: dict[str, set[asyncio.Event]] = {}  # key id -> one event per open stream, set on revocation

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
            if key is None:  # a failed key is never cached: distinct bogus keys cost no memory
                self._cache.pop(secret, None)
            else:
                if len(self._cache) >= CACHE_KEYS:
                    self._cache.clear()
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

    def is_revoked(self, key_id: str) -> bool:
        """Whether a key id is revoked in the store now (a revocation by `wam keys revoke` too); no cache."""
        found = self.store.find_key(key_id)
        return found is not None and found[0].revoked

    # -- streams ----------------------------------------------------------------------------
    def open_stream(self, key_id: str) -> asyncio.Event:
        """An event that is set when `key_id` is revoked; the stream ends when it is."""
        event = asyncio.Event()
        self._streams.setdefault(key_id, set()).add(event)
        return event

    async def until_revoked(self, key_id: str, event: asyncio.Event) -> None:
        """Return (with `event` set) once `key_id` is revoked: at once through this server, within CACHE_SECONDS
        when revoked elsewhere (`wam keys revoke`, another server on the same database)."""
        while True:
            try:
                await asyncio.wait_for(event.wait(), CACHE_SECONDS)
                return
            except asyncio.TimeoutError:
                if await asyncio.to_thread(self.is_revoked, key_id):
                    event.set()
                    return

    def close_stream(self, key_id: str, event: asyncio.Event) -> None:
        streams = self._streams.get(key_id)
        if streams is not None:
            streams.discard(event)
            if not streams:
                del self._streams[key_id]

    def revoked(self, key_id: str) -> int:
        """Forget cached keys and end every open stream of `key_id`; returns how many streams were ended."""
        self.forget()
        streams = self._streams.get(key_id, set())
        for event in streams:
            event.set()
        return len(streams)


def key_from_headers(headers, query_params=None) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    if query_params is not None and query_params.get("key"):  # browsers cannot set headers on a WebSocket
        return query_params["key"]
    return None


# -- what a key may touch ---------------------------------------------------------------------
def check_scope(key: KeyInfo, scope: str) -> None:
    if SCOPES.index(key.scope) < SCOPES.index(scope):
        raise HTTPException(403, f"this key has scope {key.scope!r}; the route needs {scope!r}")


def can_use(key: KeyInfo, robot_id: str) -> bool:
    return fnmatch.fnmatchcase(robot_id, key.robots)


def no_robot(robot_id: str) -> str:
    """The one answer for a robot that does not exist and for one outside the key's pattern."""
    return f"no robot {robot_id!r} among the robots this key can use (GET /v1/robots lists them)"


def check_robot(key: KeyInfo, robot_id: str, fleet_robots) -> None:
    """404 unless the robot exists and the key's pattern matches it; the same answer either way."""
    if robot_id not in fleet_robots or not can_use(key, robot_id):
        raise HTTPException(404, no_robot(robot_id))


def run_robots(run) -> list[str]:
    return [r for r in run.robots.split(",") if r]


def can_see_run(key: KeyInfo, run) -> bool:
    """A run is the key's to see when the key's pattern matches every robot it runs on."""
    return all(can_use(key, r) for r in run_robots(run))


def pattern_within(inner: str, outer: str) -> bool:
    """Whether every robot id `inner` can match is matched by `outer`.

    Sound and simple rather than complete: `outer` is "*", or the two are equal, or `inner`
    is a literal robot id (no `*`, `?` or `[`) that `outer` matches. ("reach-v3-*" is thus
    not within "reach-*", though it could be; ask an admin whose pattern is "*".)
    """
    return outer == "*" or inner == outer or (not GLOB & set(inner) and fnmatch.fnmatchcase(inner, outer))


def can_manage(admin: KeyInfo, key: KeyInfo) -> bool:
    """Whether `admin` may see and revoke `key`: its scope is no broader and its pattern lies within."""
    return SCOPES.index(key.scope) <= SCOPES.index(admin.scope) and pattern_within(key.robots, admin.robots)


# -- dependencies -------------------------------------------------------------------------------
def require(scope: str):
    """A dependency: the request's key, checked for `scope` (and for the path's robot, when there is one)."""

    async def dependency(request: Request) -> KeyInfo:  # async: no thread-pool hop on every request
        key = request.app.state.auth.verify(key_from_headers(request.headers))
        check_scope(key, scope)
        robot_id = request.path_params.get("robot_id")
        if robot_id is not None:
            check_robot(key, robot_id, request.app.state.fleet.robots)
        return key

    dependency.__name__ = f"require_{scope}"
    return dependency


def authorize_websocket(websocket: WebSocket, scope: str, robot_id: str) -> KeyInfo:
    key = websocket.app.state.auth.verify(key_from_headers(websocket.headers, websocket.query_params))
    check_scope(key, scope)
    check_robot(key, robot_id, websocket.app.state.fleet.robots)
    return key
