"""The Physical API from Python: `Client` (sync) and `AsyncClient` (async), one method per route.

    from wam.api import Client
    robots = Client("http://127.0.0.1:8000", key="wam_...")
    robots.lease("reach-v3-0", ttl_s=60)
    obs = robots.reset("reach-v3-0", seed=0)
    result = robots.step("reach-v3-0", [0.0, 0.5, 0.0, 0.0])

Every route is written once in `_Routes`; its methods return `self._request(...)`, which is a
value for `Client` and an awaitable for `AsyncClient`. Errors raise `ApiError` with the
server's status and message. Defaults come from WAM_API_URL and WAM_API_KEY.

The control channel drives many robots through one WebSocket, a message per tick:

    with robots.control(leases={"reach-v3-0": lease["lease_id"]}) as channel:
        outcomes = channel.step({"reach-v3-0": [0.0, 0.5, 0.0, 0.0], "reach-v3-1": chunk})
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

    def _control_url(self) -> str:
        return self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/v1/control"


def server_root(url: str) -> str:
    """The server's address without a trailing slash or `/v1` (`wam serve` prints it with /v1; routes add it)."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class Client(_Routes):
    def __init__(self, url: str | None = None, key: str | None = None, timeout: float = 60.0, transport=None):
        self.url = server_root(url or os.environ.get("WAM_API_URL") or DEFAULT_URL)
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

    def control(self, leases: dict[str, str] | None = None) -> "Control":
        """The control channel (one WebSocket for many robots); `leases`: {robot: lease_id} sent with its commands."""
        return Control(self._control_url(), self.key, leases)

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
        self.url = server_root(url or os.environ.get("WAM_API_URL") or DEFAULT_URL)
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

    def control(self, leases: dict[str, str] | None = None) -> "AsyncControl":
        """The control channel: `async with client.control() as channel: await channel.step({...})`."""
        return AsyncControl(self._control_url(), self.key, leases)

    async def close(self) -> None:
        for http in [self.http, *self._per_robot.values()]:
            await http.aclose()
        self._per_robot.clear()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


# -- the control channel ----------------------------------------------------------------------------
class _Commands:
    """The messages of the control channel (wam.api.control_schemas); `_send` makes them sync or async.

    Each method sends one message and returns {robot: outcome}: the robot's observation after its command
    (`state`, `reward`, `done`, `success`, ...) or `{"robot": ..., "error": {"code", "status", "detail"}}`;
    a robot's error never raises. A message the server refuses whole raises ApiError. Episodes that the
    commands end are committed in the background; `recorded` collects their episode ids as the server
    announces them (or pass wait_recorded=True to have each reply wait for them, with `episode_id` set)."""

    def __init__(self, url: str, key: str | None, leases: dict[str, str] | None):
        self.url, self.key = url, key
        self.leases = dict(leases or {})  # robot -> lease id, sent with its step and reset commands
        self.recorded: dict[str, list[int]] = {}  # robot -> the episodes committed since this channel opened
        self._next_id = 0

    def _send(self, commands: list[dict], wait_recorded: bool, sim_state: bool):
        raise NotImplementedError

    def send(self, commands: list[dict], wait_recorded: bool = False, sim_state: bool = False):
        """Any mix of commands, one per robot: {"op": "step" | "reset" | "observe", "robot": ..., ...}."""
        return self._send(commands, wait_recorded, sim_state)

    def step(self, robot_actions: dict, wait_recorded: bool = False, sim_state: bool = False):
        """{robot: one action (numbers) or a chunk (a list of actions, executed in order)}."""
        return self._send([self.step_command(robot, action) for robot, action in robot_actions.items()],
                          wait_recorded, sim_state)

    def reset(self, robots, task: str | None = None, seed: int | None = None, sim_state: bool = False):
        """Reset robots (a list, or {robot: {"task": ..., "seed": ...}}); the episode each was in is recorded."""
        options = robots if isinstance(robots, dict) else {robot: {"task": task, "seed": seed} for robot in robots}
        return self._send([self.reset_command(robot, **opts) for robot, opts in options.items()], False, sim_state)

    def observe(self, robots, sim_state: bool = False):
        """The latest observation of each robot (read keys too; no lease needed)."""
        return self._send([{"op": "observe", "robot": robot} for robot in robots], False, sim_state)

    def step_command(self, robot: str, action) -> dict:
        rows = action.tolist() if hasattr(action, "tolist") else action
        command = {"op": "step", "robot": robot}
        if rows and isinstance(rows[0], (list, tuple)):
            command["actions"] = [[float(a) for a in row] for row in rows]
        else:
            command["action"] = [float(a) for a in rows]
        if self.leases.get(robot):
            command["lease_id"] = self.leases[robot]
        return command

    def reset_command(self, robot: str, task: str | None = None, seed: int | None = None) -> dict:
        return _clean({"op": "reset", "robot": robot, "task": task, "seed": seed, "lease_id": self.leases.get(robot)})

    def _message(self, commands: list[dict], wait_recorded: bool, sim_state: bool) -> tuple[int, str]:
        self._next_id += 1
        message = {"id": self._next_id, "commands": commands}
        if wait_recorded:
            message["wait_recorded"] = True
        if sim_state:
            message["sim_state"] = True
        return self._next_id, json.dumps(message, separators=(",", ":"))

    def _note(self, recorded: dict) -> None:
        if recorded.get("episode_id") is not None:
            self.recorded.setdefault(recorded["robot"], []).append(recorded["episode_id"])

    @staticmethod
    def _outcomes(reply: dict) -> dict:
        if reply.get("error"):
            raise ApiError(reply["error"]["status"], reply["error"]["detail"], "WS", "/v1/control")
        return {outcome["robot"]: outcome for outcome in reply["results"]}


_SOCKET_OPTIONS = {"compression": None, "max_size": 1 << 24}  # loopback and LAN: compressing costs more CPU than it saves


class Control(_Commands):
    """The control channel, blocking: one message at a time."""

    def __init__(self, url: str, key: str | None, leases: dict[str, str] | None = None):
        from websockets.sync.client import connect

        super().__init__(url, key, leases)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.socket = connect(url, additional_headers=headers, **_SOCKET_OPTIONS)

    def _send(self, commands, wait_recorded, sim_state):
        request_id, text = self._message(commands, wait_recorded, sim_state)
        self.socket.send(text)
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("type") == "recorded":
                self._note(reply)
            elif reply.get("id") in (request_id, None):
                return self._outcomes(reply)

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> "Control":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncControl(_Commands):
    """The control channel, async: messages may be sent concurrently (pipelined); each awaits its own reply."""

    def __init__(self, url: str, key: str | None, leases: dict[str, str] | None = None):
        super().__init__(url, key, leases)
        self.socket = None
        self._waiting: dict[int, Any] = {}  # request id -> the future its reply resolves
        self._reader = None

    async def connect(self) -> "AsyncControl":
        import asyncio

        from websockets.asyncio.client import connect

        if self.socket is None:
            headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
            self.socket = await connect(self.url, additional_headers=headers, **_SOCKET_OPTIONS)
            self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in self.socket:
                reply = json.loads(text)
                if reply.get("type") == "recorded":
                    self._note(reply)
                    continue
                request_id = reply.get("id")
                if request_id is None and self._waiting:  # a refusal without a readable id: the oldest message's
                    request_id = next(iter(self._waiting))
                future = self._waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except ConnectionClosed:
            pass
        finally:
            error = ApiError(self.socket.close_code or 1006, self.socket.close_reason or "control channel closed",
                             "WS", "/v1/control")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(error)
            self._waiting.clear()

    async def _send(self, commands, wait_recorded, sim_state):
        import asyncio

        await self.connect()
        if self._reader.done():
            raise ApiError(1006, "control channel closed", "WS", "/v1/control")
        request_id, text = self._message(commands, wait_recorded, sim_state)
        future = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        await self.socket.send(text)
        return self._outcomes(await future)

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            await self._reader

    async def __aenter__(self) -> "AsyncControl":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()
