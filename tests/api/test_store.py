"""The store on SQLite and on PostgreSQL (started on loopback by .ci/postgres.sh): the same behaviour."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wam.api.store import Base, EpisodeRecord, Store

SCRIPT = Path(__file__).parents[2] / ".ci" / "postgres.sh"


def postgres_url() -> str:
    """WAM_TEST_POSTGRES_URL, or a server .ci/postgres.sh starts; CI sets WAM_REQUIRE_POSTGRES so it never skips."""
    url = os.environ.get("WAM_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=True, timeout=120).stdout.strip().splitlines()[-1]
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, IndexError) as error:
        if os.environ.get("WAM_REQUIRE_POSTGRES"):
            raise RuntimeError(f"PostgreSQL is required here and could not be started: {error}") from error
        pytest.skip("PostgreSQL is not installed on this machine (CI installs it and runs these tests)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else postgres_url()
    store = Store(url)
    Base.metadata.drop_all(store.engine)
    Base.metadata.create_all(store.engine)
    yield store
    store.close()


def test_keys_are_kept_hashed_and_revocable(store):
    from wam.api.auth import Authenticator, create_key

    info, secret = create_key(store, "control", robots="reach-*", name="agent")
    found, digest = store.find_key(info.id)
    assert found.scope == "control" and found.robots == "reach-*" and secret not in digest and len(digest) == 64
    auth = Authenticator(store)
    assert auth.verify(secret).id == info.id
    assert auth._lookup(secret[:-1] + ("x" if secret[-1] != "x" else "y")) is None  # a wrong secret for a real id
    assert store.revoke_key(info.id) and not store.revoke_key("missing")
    auth.forget()
    with pytest.raises(Exception, match="unknown or revoked"):
        auth.verify(secret)
    with pytest.raises(ValueError, match="scope"):
        create_key(store, "root")


def test_runs_count_episodes_and_are_interrupted_by_a_restart(store):
    store.add_run("run-a", "reach-v3", "expert", ["reach-v3-0", "reach-v3-1"], 4, owner="k1")
    store.add_run("run-b", "reach-v3", "expert", ["reach-v3-2"], 1, owner="k1")
    store.count_run_episode("run-a", True)
    store.count_run_episode("run-a", False)
    store.update_run("run-b", status="finished")
    run = store.get_run("run-a")
    assert (run.episodes_done, run.successes, run.robots) == (2, 1, "reach-v3-0,reach-v3-1")
    assert store.interrupt_running() == 1
    assert store.get_run("run-a").status == "interrupted" and store.get_run("run-b").status == "finished"
    assert {r.id for r in store.list_runs()} == {"run-a", "run-b"} and len(store.list_runs(limit=1)) == 1


def test_episodes_are_listed_with_filters(store):
    for i in range(5):
        store.add_episode(EpisodeRecord(id=i, robot=f"reach-v3-{i % 2}", task="reach the goal", success=i % 2 == 0,
                                        length=10 + i, run_id="run-a" if i < 2 else "", end_reason="time_limit"))
    store.add_episode(EpisodeRecord(id=4, robot="reach-v3-0", task="reach the goal", success=True, length=99, run_id=""))
    assert store.episode_ids() == {0, 1, 2, 3, 4} and store.get_episode(4).length == 99
    assert [e.id for e in store.list_episodes(robot="reach-v3-1")] == [1, 3]
    assert [e.id for e in store.list_episodes(run_id="run-a")] == [0, 1]
    assert [e.id for e in store.list_episodes(offset=1, limit=2)] == [1, 2]


@pytest.mark.slow  # a live server
def test_a_server_runs_on_postgres(tmp_path, start_server):
    """The whole server with its store on PostgreSQL: a driven episode and a task run are recorded and listed."""
    import time

    from wam.api.client import Client

    url = postgres_url()
    probe = Store(url)
    Base.metadata.drop_all(probe.engine)
    probe.close()
    live = start_server(tmp_path, "metaworld/reach-v3*2", obs="state", max_episode_steps=10, db=url)
    with Client(live.url, live.keys["control"]) as client:
        client.lease("reach-v3-0", 60)
        client.reset("reach-v3-0", seed=0)
        result = client.step("reach-v3-0", actions=[[0, 0, 0, 0]] * 10)
        assert result["episode_id"] == 0
        run = client.run_task("reach-v3", robots=["reach-v3-1"], episodes=2)
        while client.task(run["id"])["status"] == "running":
            time.sleep(0.1)
        assert client.task(run["id"])["episodes_done"] == 2
        assert [e["id"] for e in client.episodes()] == [0, 1, 2]
    store = Store(url)
    assert store.episode_ids() == {0, 1, 2} and store.get_run(run["id"]).status == "finished"
    store.close()
