"""A live Physical API server on a free loopback port, shared by the tests of a module."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


from live_server import Live, free_port, start_live  # noqa: F401  (re-exported for the test modules)


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
