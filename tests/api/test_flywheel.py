"""The data flywheel: episodes recorded through the API load with wam.data.Dataset and feed `wam finetune`."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from wam.api.client import ApiError, Client

pytestmark = pytest.mark.slow  # live Physical API servers (a fleet of simulated robots each)


def test_recorded_episodes_train_a_policy(tmp_path, start_server):
    from wam.config import finetune_preset
    from wam.data.reader import Dataset
    from wam.train.finetune import finetune

    live = start_server(tmp_path, "metaworld/reach-v3*2", max_episode_steps=24)
    with Client(live.url, live.keys["control"]) as client:
        run = client.run_task("reach-v3", policy="expert", robots=2, episodes=6)
        while client.task(run["id"])["status"] == "running":
            time.sleep(0.2)
        assert client.task(run["id"])["episodes_done"] == 6
    dataset = Dataset(live.data)
    assert dataset.num_episodes == 6 and dataset.has_actions and dataset.camera_keys == ["observation.images.main"]
    window = dataset.window(0, 0, 4)
    assert window["action"].shape == (4, 4) and window["observation.images.main"].shape[0] == 4
    assert {dataset.episodes[i].info["source"] for i in range(6)} == {"api"}
    config = finetune_preset("tiny")
    config = replace(config, episodes_per_task=4, train=replace(config.train, steps=10, eval_every=0, checkpoint_every=10))
    run_dir = tmp_path / "runs" / "from_fleet"  # in the server's runs directory (by default `runs` beside its data)
    summary = finetune(None, [live.data], run_dir, config, progress=False)
    assert summary["episodes"]["train"] == 4 and (run_dir / "wam" / "checkpoint").exists()

    # The policy trained on the fleet's data runs on the fleet, as an autonomous task, named as it is in the runs dir
    with Client(live.url, live.keys["control"]) as client:
        run = client.run_task("reach-v3", policy="from_fleet", robots=1, episodes=1)
        while client.task(run["id"])["status"] == "running":
            time.sleep(0.2)
        status = client.task(run["id"])
        assert status["status"] == "finished" and status["episodes_done"] == 1, status
        episode = client.episodes(run_id=run["id"])[0]
        assert (episode["length"], episode["end_reason"]) == (25, "time_limit") or episode["end_reason"] == "success"

    # ... and the finetuned run is itself a robot: a dream behind the same API, recording the same way
    dream = start_server(tmp_path / "dream", f"dream/{run_dir}", max_episode_steps=6)
    with Client(dream.url, dream.keys["control"]) as client:
        robot = client.robots()[0]["id"]
        assert robot == "dream-from_fleet-0"
        client.lease(robot, 60)
        with pytest.raises(ApiError) as error:
            client.step(robot, [0, 0, 0, 0])
        assert error.value.status == 409
        obs = client.reset(robot, task="reach-v3", seed=0)
        assert len(obs["state"]) == 4 and obs["has_image"] and obs["sim_state"] is None
        space = client.robot(robot)["action_space"]
        assert space["shape"] == [4]
        # the dream accepts what its training actions spanned (the data's units): beyond that it has no evidence
        low, high = np.array(space["low"]), np.array(space["high"])
        assert np.all(low >= -1.0) and np.all(high <= 1.0) and np.all(low <= high)  # reach never uses the gripper: 0
        with pytest.raises(ApiError) as error:
            client.step(robot, (high + 1.0).tolist())
        assert error.value.status == 422
        result = client.step(robot, actions=[((low + high) / 2).tolist()] * 8)
        assert result["episode_id"] == 0 and result["steps"] <= 6
        assert client.image(robot)[:4] == b"\x89PNG"
    recorded = Dataset(dream.data)
    assert recorded.num_episodes == 1 and recorded.episodes[0].info["env"].startswith("dream/")
