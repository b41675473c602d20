"""A live Physical API server on a free loopback port: `start_live` for tests that start their own, and the
fixtures `live`, `live_state_fleet`, `start_server` and `free_port` (a pytest plugin, registered in tests/conftest.py,
so any test module may ask for them)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Live:
    url: str
    data: Path
    db: str
    keys: dict[str, str]
    app: object


def start_live(tmp: Path, robots: str, obs: str = "pixels", max_episode_steps: int = 30, db: str | None = None,
               timeout_s: float = 30.0, ray: str | None = None, extend=None):
    import uvicorn

    from wam.api.auth import create_key
    from wam.api.server import ServerConfig, create_app
    from wam.api.store import Store

    config = ServerConfig(robots, tmp / "data", db=db, obs=obs, max_episode_steps=max_episode_steps, timeout_s=timeout_s,
                          ray=ray)
    store = Store(config.db_url)
    keys = {scope: create_key(store, scope)[1] for scope in ("read", "control", "admin")}
    keys["control_drawer"] = create_key(store, "control", robots="drawer-*")[1]
    keys["control_other"] = create_key(store, "control")[1]
    store.close()
    app = create_app(config)
    if extend is not None:  # what `wam serve` adds beside the API (the console)
        extend(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return Live(f"http://127.0.0.1:{port}", config.data, config.db_url, keys, app), server, thread


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    state, server, thread = start_live(tmp_path_factory.mktemp("api"), "metaworld/reach-v3*3,metaworld/drawer-open-v3")
    yield state
    server.should_exit = True
    thread.join(60)


@pytest.fixture(scope="module")
def live_state_fleet(tmp_path_factory):
    """Two state-only robots (no rendering): the fuzz and load tests' fleet."""
    state, server, thread = start_live(tmp_path_factory.mktemp("api_state"), "metaworld/reach-v3*2", obs="state", max_episode_steps=20)
    yield state
    server.should_exit = True
    thread.join(60)


@pytest.fixture
def start_server():
    """Start servers of one's own (a database, a fleet); each is stopped after the test."""
    started = []

    def start(tmp: Path, robots: str, **kwargs) -> Live:
        state, server, thread = start_live(tmp, robots, **kwargs)
        started.append((server, thread))
        return state

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()
