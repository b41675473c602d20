"""The SDK against a live server on a free loopback port: sync and async, every route family."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

from wam.api.client import ApiError, AsyncClient, Client

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)


def test_sync_client_drives_a_robot_and_reads_its_episode(live):
    with Client(live.url + "/v1/", live.keys["control"]) as client:  # the address as `wam serve` prints it works too
        assert client.url == live.url and client.health()["status"] == "ok"
        assert {r["id"] for r in client.robots()} >= {"reach-v3-0", "drawer-open-v3-0"}
        assert client.robot("reach-v3-0")["action_space"]["shape"] == [4]
        lease = client.lease("reach-v3-0", ttl_s=60)
        assert client.renew(lease["lease_id"], 60)["lease_id"] == lease["lease_id"]
        obs = client.reset("reach-v3-0", task="reach-v3", seed=11)
        assert obs["episode_step"] == 0 and len(obs["sim_state"]) == 39
        assert client.step("reach-v3-0", [0.0, 0.3, 0.0, 0.0])["steps"] == 1
        result = client.step("reach-v3-0", actions=[[0.0, 0.3, 0.0, 0.0]] * 64)  # past the 30-step limit: episode ends
        assert result["steps"] == 29 and result["episode_id"] is not None
        assert client.episode(result["episode_id"])["length"] == 31
        arrays = np.load(io.BytesIO(client.download_episode(result["episode_id"])))
        assert arrays["observation.state"].shape == (31, 4)
        assert client.image("reach-v3-0")[:8] == b"\x89PNG\r\n\x1a\n"
        assert client.observation("reach-v3-0")["done"]
        client.release(lease["lease_id"])
        with pytest.raises(ApiError) as error:
            client.step("reach-v3-0", [0, 0, 0, 0])
        assert error.value.status == 409 and "not leased" in error.value.detail
        with pytest.raises(ApiError) as error:
            client.keys()
        assert error.value.status == 403


def test_sync_client_runs_a_task_and_watches(live):
    with Client(live.url, live.keys["control"]) as client:
        run = client.run_task("reach-v3", policy="expert", robots=1, episodes=1, seed=3)
        assert client.task(run["id"])["id"] == run["id"] and any(t["id"] == run["id"] for t in client.tasks())
        watched = list(client.watch(run["robots"][0], count=3))
        assert len(watched) == 3 and all(w["robot"] == run["robots"][0] for w in watched)
        while client.task(run["id"])["status"] == "running":
            pass
        assert client.task(run["id"])["episodes_done"] == 1
        assert len(client.episodes(run_id=run["id"])) == 1
    with Client(live.url, live.keys["admin"]) as admin:
        key = admin.create_key("read", robots="reach-*", name="sdk")
        assert key["id"] in [k["id"] for k in admin.keys()]
        admin.revoke_key(key["id"])


def test_async_client_steps_many_robots_concurrently(live):
    robots = ["reach-v3-0", "reach-v3-2"]

    async def main():
        async with AsyncClient(live.url, live.keys["control"]) as client:
            for robot in robots:
                await client.lease(robot, 60)
            await asyncio.gather(*(client.reset(r, seed=i) for i, r in enumerate(robots)))
            results = await asyncio.gather(*(client.step(r, [0.1, 0, 0, 0]) for r in robots for _ in range(3)))
            assert all(r["steps"] == 1 for r in results)
            steps = [(await client.observation(r))["episode_step"] for r in robots]
            watched = []
            async for obs in client.watch("reach-v3-0", count=1):
                watched.append(obs)
            assert (await client.estop("reach-v3-0"))["estopped"]
            await client.release_estop("reach-v3-0")
            with pytest.raises(ApiError):
                await client.task("run-missing")
            return steps, watched

    steps, watched = asyncio.run(main())
    assert steps == [3, 3] and watched[0]["episode_step"] == 3
