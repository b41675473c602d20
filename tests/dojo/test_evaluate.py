import json
from pathlib import Path

import numpy as np
import pytest

from wam.config import DreamSettings
from wam.dojo.evaluate import EvalConfig, difference_interval, evaluate_policy, wilson_interval
from wam.errors import CheckpointError

from tests.support.finetune_fixtures import tiny_wam_run
from tests.support.pretrain_fixtures import tiny_run

pytestmark = pytest.mark.slow  # evaluates a finetuned policy in MetaWorld, with worker processes

TASKS = ("reach-v3", "drawer-close-v3")


def test_wilson_interval_matches_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 50)
    assert high == 1.0 and low == pytest.approx(0.9287, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)



def test_difference_interval_brackets_the_difference_and_narrows_with_episodes():
    low, high = difference_interval(30, 50, 20, 50)
    assert low < 0.2 < high and -1 <= low and high <= 1
    wide, narrow = difference_interval(6, 10, 4, 10), difference_interval(600, 1000, 400, 1000)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5
    assert difference_interval(50, 50, 0, 50)[1] <= 1.0  # stays inside [-1, 1] at the edges


def test_evaluation_is_reproducible_under_a_seed_and_for_any_number_of_workers(tmp_path_factory, tmp_path):
    run, _ = tiny_wam_run(tmp_path_factory)
    config = EvalConfig(run, TASKS, episodes=2, max_steps=12, seed=3)
    first = evaluate_policy(config, progress=False)
    again = evaluate_policy(config, progress=False)
    parallel = evaluate_policy(EvalConfig(run, TASKS, episodes=2, max_steps=12, seed=3, workers=2), progress=False)
    other_seed = evaluate_policy(EvalConfig(run, TASKS, episodes=2, max_steps=12, seed=4), progress=False)
    assert first["episode_results"] == again["episode_results"] == parallel["episode_results"]
    assert [e["seed"] for e in first["episode_results"]] != [e["seed"] for e in other_seed["episode_results"]]
    for task in TASKS:
        r = first["tasks"][task]
        assert r["episodes"] == 2 and 0 <= r["success_rate"] <= 1 and r["wilson95"][0] <= r["success_rate"] <= r["wilson95"][1]
        assert 1 <= r["mean_length"] <= 12 and r["policy_steps_per_s"] > 0
    json.dumps(first)  # the results are JSON as they are


def test_evaluation_scenes_are_not_the_collectors(tmp_path_factory):
    from wam.envs.collect import episode_seed

    run, _ = tiny_wam_run(tmp_path_factory)
    result = evaluate_policy(EvalConfig(run, ("reach-v3",), episodes=2, max_steps=3), progress=False)
    training = {episode_seed(s, "reach-v3", n) for s in range(200) for n in range(100)}
    assert not training & {e["seed"] for e in result["episode_results"]}


def test_videos_are_written_for_the_first_episode_of_each_task(tmp_path_factory, tmp_path):
    run, _ = tiny_wam_run(tmp_path_factory)
    result = evaluate_policy(EvalConfig(run, TASKS, episodes=2, max_steps=6, video_out=tmp_path / "videos"), progress=False)
    assert len(result["videos"]) == 2 * len(TASKS)
    assert all(Path(v).stat().st_size > 0 for v in result["videos"])


def test_a_pretraining_run_is_refused_before_any_episode(tmp_path_factory):
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="not a finetuned WAM"):
        evaluate_policy(EvalConfig(pretrained, TASKS, episodes=1), progress=False)


def test_a_dream_of_an_evaluation_scene_starts_from_the_simulators_first_frame_of_that_scene():
    from wam.dojo.evaluate import scene_start, evaluation_seed
    from wam.envs.registry import make as make_env

    seed = evaluation_seed(0, "drawer-open-v3", 3)
    start = scene_start("drawer-open-v3", seed, 64, "corner2")
    real = make_env("metaworld/drawer-open-v3", obs="pixels", size=64, camera="corner2")
    obs, _ = real.reset(seed=seed)
    np.testing.assert_array_equal(start["image"], obs["image"])
    np.testing.assert_allclose(start["state"], obs["state"])
    other = scene_start("drawer-open-v3", evaluation_seed(0, "drawer-open-v3", 4), 64, "corner2")
    assert not np.array_equal(other["image"], start["image"])
    real.close()


def test_unknown_dream_settings_are_refused_before_any_episode():
    with pytest.raises(ValueError, match="dream_start must be 'scene' or 'data'"):
        evaluate_policy(EvalConfig(Path("runs/none"), ("reach-v3",), 1, env="dream/runs/none", dream_start="middle"))
    with pytest.raises(ValueError, match="verdict must be one of any, final"):  # the settings refuse it when made
        EvalConfig(Path("runs/none"), ("reach-v3",), 1, env="dream/runs/none", dream=DreamSettings(verdict="last"))
