"""The Physical API from Python: `Client` (sync) and `AsyncClient` (async), one method per route.

    from wam.api import Client
    robots = Client("http://127.0.0.1:8000", key="wam_...")
    robots.lease("reach-v3-0", ttl_s=60)
    obs = robots.reset("reach-v3-0", seed=0)
    result = robots.step("reach-v3-0", [0.0, 0.5, 0.0, 0.0])

Every route is written once in `_Routes`; its methods return `self._request(...)`, which is a
value for `Client` and an awaitable for `AsyncClient`. Errors raise `ApiError` with the
server's status and message. Defaults come from WAM_API_URL and WAM_API_KEY.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, AsyncIterator

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    def __init__(self, status: int, detail: str, method: str = "", path: str = ""):
        super().__init__(f"{status} {method} {path}: {detail}")
        self.status, self.detail = status, detail


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    return detail if isinstance(detail, str) else json.dumps(detail)


def _parse(response: httpx.Response, raw: bool) -> Any:
    if response.status_code >= 400:
        raise ApiError(response.status_code, _detail(response), response.request.method, response.request.url.path)
    if raw:
        return response.content
    return response.json() if response.content else None


def _clean(params: dict) -> dict:
    return {k: v for k, v in params.items() if v is not None}


class _Routes:
    """One method per route; `_request` makes them sync or async."""

    def _request(self, method: str, path: str, *, json: dict | None = None, params: dict | None = None, raw: bool = False):
        raise NotImplementedError

    # -- robots ---------------------------------------------------------------------------
    def health(self):
        return self._request("GET", "/v1/health")

    def robots(self):
        return self._request("GET", "/v1/robots")

    def robot(self, robot_id: str):
        return self._request("GET", f"/v1/robots/{robot_id}")

    def observation(self, robot_id: str):
        return self._request("GET", f"/v1/robots/{robot_id}/observation")

    def image(self, robot_id: str):
        """The latest camera frame as PNG bytes."""
        return self._request("GET", f"/v1/robots/{robot_id}/observation.png", raw=True)

    # -- leases and control ---------------------------------------------------------------
    def lease(self, robot_id: str, ttl_s: float = 60.0):
        return self._request("POST", f"/v1/robots/{robot_id}/lease", json={"ttl_s": ttl_s})

    def renew(self, lease_id: str, ttl_s: float = 60.0):
        return self._request("POST", f"/v1/leases/{lease_id}/renew", json={"ttl_s": ttl_s})

    def release(self, lease_id: str):
        return self._request("DELETE", f"/v1/leases/{lease_id}")

    def break_lease(self, robot_id: str):
        """Admin keys: break the lease another key holds on the robot; returns the robot."""
        return self._request("DELETE", f"/v1/robots/{robot_id}/lease")

    def reset(self, robot_id: str, task: str | None = None, seed: int | None = None, lease_id: str | None = None):
        return self._request("POST", f"/v1/robots/{robot_id}/reset", json=_clean({"task": task, "seed": seed, "lease_id": lease_id}))

    def step(self, robot_id: str, action=None, actions=None, lease_id: str | None = None, wait_recorded: bool = True):
        """One action, or a chunk (`actions`, executed in order until the episode ends)."""
        body = {"action": None if action is None else [float(a) for a in action],
                "actions": None if actions is None else [[float(a) for a in row] for row in actions], "lease_id": lease_id,
                "wait_recorded": None if wait_recorded else False}
        return self._request("POST", f"/v1/robots/{robot_id}/step", json=_clean(body))

    def step_fleet(self, steps: dict[str, list], wait_recorded: bool = True):
        """Step many robots in one request: {robot_id: action chunk (a list of actions)}; one outcome per robot."""
        body = [{"robot": robot, "actions": [[float(a) for a in row] for row in rows], "wait_recorded": wait_recorded}
                for robot, rows in steps.items()]
        return self._request("POST", "/v1/fleet/step", json={"steps": body})

    def estop(self, robot_id: str):
        return self._request("POST", f"/v1/robots/{robot_id}/estop")

    def release_estop(self, robot_id: str):
        return self._request("POST", f"/v1/robots/{robot_id}/estop/release")

    def estop_fleet(self):
        return self._request("POST", "/v1/fleet/estop")

    # -- tasks ----------------------------------------------------------------------------
    def run_task(self, task: str, policy: str = "expert", robots: int | list[str] = 1, episodes: int = 1, seed: int = 0):
        """`policy`: 'expert', 'random', or a finetuned run in the server's runs directory (`wam serve --runs`), by
        its name there ('wam-reach', 'wam-reach@300'); other paths are refused with 422."""
        return self._request("POST", "/v1/tasks", json={"task": task, "policy": policy, "robots": robots, "episodes": episodes, "seed": seed})

    def tasks(self, limit: int = 100):
        return self._request("GET", "/v1/tasks", params={"limit": limit})

    def task(self, run_id: str):
        return self._request("GET", f"/v1/tasks/{run_id}")

    def cancel_task(self, run_id: str):
        """Allowed to the key that started the run and to admin keys over all its robots."""
        return self._request("POST", f"/v1/tasks/{run_id}/cancel")

    # -- episodes -------------------------------------------------------------------------
    def episodes(self, robot: str | None = None, run_id: str | None = None, task: str | None = None, offset: int = 0, limit: int = 100):
        return self._request("GET", "/v1/episodes", params=_clean({"robot": robot, "run_id": run_id, "task": task,
                                                                    "offset": offset, "limit": limit}))

    def episode(self, episode_id: int):
        return self._request("GET", f"/v1/episodes/{episode_id}")

    def download_episode(self, episode_id: int):
        """The episode as .npz bytes (`numpy.load(io.BytesIO(data))`)."""
        return self._request("GET", f"/v1/episodes/{episode_id}/download", raw=True)

    # -- keys -----------------------------------------------------------------------------
    def create_key(self, scope: str, robots: str = "*", name: str = ""):
        """Admin keys: a key no broader than this one (its pattern, one robot id it matches, or any under '*')."""
        return self._request("POST", "/v1/keys", json={"scope": scope, "robots": robots, "name": name})

    def keys(self):
        """The keys whose pattern lies within this admin key's."""
        return self._request("GET", "/v1/keys")

    def revoke_key(self, key_id: str):
        """Revoke a key: its streams close and its leases are freed; the last admin key is refused (409)."""
        return self._request("DELETE", f"/v1/keys/{key_id}")

    def _stream_url(self, robot_id: str) -> str:
        return self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + f"/v1/robots/{robot_id}/stream"


class Client(_Routes):
    def __init__(self, url: str | None = None, key: str | None = None, timeout: float = 60.0, transport=None):
        self.url = (url or os.environ.get("WAM_API_URL") or DEFAULT_URL).rstrip("/")
        self.key = key or os.environ.get("WAM_API_KEY")
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def _request(self, method, path, *, json=None, params=None, raw=False):
        return _parse(self.http.request(method, path, json=json, params=params), raw)

    def watch(self, robot_id: str, count: int | None = None) -> Iterator[dict]:
        """Observations as the robot produces them (WebSocket); stops after `count` if given."""
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        with connect(self._stream_url(robot_id), additional_headers=headers) as socket:
            seen = 0
            while count is None or seen < count:
                yield json.loads(socket.recv())
                seen += 1

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncClient(_Routes):
    """Requests to one robot share a connection of their own: httpx's pool costs grow with the
    requests waiting in it, so one agent driving 64 robots through a single pool spends several
    times more CPU per request than through 64 small ones (benchmarks/api_load.py)."""

    def __init__(self, url: str | None = None, key: str | None = None, timeout: float = 60.0, transport=None):
        self.url = (url or os.environ.get("WAM_API_URL") or DEFAULT_URL).rstrip("/")
        self.key = key or os.environ.get("WAM_API_KEY")
        self._options = {"base_url": self.url, "timeout": timeout, "transport": transport,
                         "headers": {"Authorization": f"Bearer {self.key}"} if self.key else {}}
        self.http = httpx.AsyncClient(**self._options)
        self._per_robot: dict[str, httpx.AsyncClient] = {}

    def _connection(self, path: str) -> httpx.AsyncClient:
        if path.startswith("/v1/robots/"):
            robot = path.split("/")[3]
            if robot not in self._per_robot:
                self._per_robot[robot] = httpx.AsyncClient(**self._options, limits=httpx.Limits(max_connections=4))
            return self._per_robot[robot]
        return self.http

    async def _request(self, method, path, *, json=None, params=None, raw=False):
        return _parse(await self._connection(path).request(method, path, json=json, params=params), raw)

    async def watch(self, robot_id: str, count: int | None = None) -> AsyncIterator[dict]:
        from websockets.asyncio.client import connect

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with connect(self._stream_url(robot_id), additional_headers=headers) as socket:
            seen = 0
            while count is None or seen < count:
                yield json.loads(await socket.recv())
                seen += 1

    async def close(self) -> None:
        for http in [self.http, *self._per_robot.values()]:
            await http.aclose()
        self._per_robot.clear()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
