"""Episodes run in this process, in local workers or as Ray tasks: the same results in the same order, and a lost
Ray worker loses no episode. The Ray tests start a local Ray instance (2 CPUs) and skip where Ray is not installed."""

from __future__ import annotations

import pytest

from tests.support import worker_jobs
from wam.workers import Backend, ordered_map

JOBS = list(range(8))


def test_local_backends_give_the_results_in_job_order():
    expected = [(j, j * j + 5) for j in JOBS]
    assert list(ordered_map(worker_jobs.setup, worker_jobs.square, {"offset": 5}, JOBS, Backend())) == expected
    assert list(ordered_map(worker_jobs.setup, worker_jobs.square, {"offset": 5}, JOBS, Backend(workers=2))) == expected
    assert list(ordered_map(worker_jobs.setup, worker_jobs.square, {}, [], Backend())) == []


def test_a_bad_worker_count_is_refused():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        Backend(workers=0)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_same_results_in_job_order(ray_cluster):
    results = list(ordered_map(worker_jobs.setup, worker_jobs.square, {"offset": 5}, JOBS, Backend(ray="auto")))
    assert results == [(j, j * j + 5) for j in JOBS]
    # a new config sets the workers up again (they cache what the last config built)
    results = list(ordered_map(worker_jobs.setup, worker_jobs.square, {"offset": 7}, JOBS, Backend(ray="auto")))
    assert results == [(j, j * j + 7) for j in JOBS]


@pytest.mark.slow
def test_a_lost_ray_worker_has_its_episode_rerun(ray_cluster, tmp_path):
    results = list(ordered_map(worker_jobs.setup, worker_jobs.dies_once, {"marker_dir": str(tmp_path)}, JOBS,
                               Backend(ray="auto")))
    assert (tmp_path / "died-3").exists()  # the worker did die on job 3
    assert results == [(j, j * j) for j in JOBS]  # and nothing was lost


@pytest.mark.slow
def test_an_episode_that_raises_is_an_error_not_a_retry(ray_cluster):
    with pytest.raises(ValueError, match="episode 2 is broken"):
        list(ordered_map(worker_jobs.setup, worker_jobs.fails, {}, JOBS, Backend(ray="auto")))


@pytest.mark.slow
def test_collect_over_ray_writes_the_dataset_local_workers_write(ray_cluster, tmp_path):
    import numpy as np

    from wam.data import Dataset
    from wam.envs.collect import CollectConfig, collect

    common = dict(tasks=("reach-v3",), episodes=3, size=32, max_steps=10, seed=4)
    collect(CollectConfig(out=tmp_path / "local", workers=2, **common), progress=False)
    collect(CollectConfig(out=tmp_path / "ray", ray="auto", **common), progress=False)
    local, over_ray = Dataset(tmp_path / "local"), Dataset(tmp_path / "ray")
    assert [(e.task, e.length) for e in local.episodes] == [(e.task, e.length) for e in over_ray.episodes]
    assert len(local.episodes) == 3
    camera = local.camera_keys[0]
    for a, b in zip(local.episodes, over_ray.episodes):
        for key, values in local.low_dim(a.index).items():
            np.testing.assert_array_equal(values, over_ray.low_dim(b.index)[key], err_msg=key)
        np.testing.assert_array_equal(local.frames(a.index, camera), over_ray.frames(b.index, camera))
    assert not list((tmp_path / "ray" / ".staging").glob("*.mp4"))  # every shipped video was committed


@pytest.mark.slow
def test_evaluation_over_ray_reports_the_local_episodes(ray_cluster, tmp_path_factory):
    from tests.support.finetune_fixtures import tiny_wam_run
    from wam.dojo.evaluate import EvalConfig, evaluate_policy

    run, _ = tiny_wam_run(tmp_path_factory)
    local = evaluate_policy(EvalConfig(run, ("reach-v3",), episodes=3, max_steps=8, seed=2), progress=False)
    over_ray = evaluate_policy(EvalConfig(run, ("reach-v3",), episodes=3, max_steps=8, seed=2, ray="auto"), progress=False)
    assert local["episode_results"] == over_ray["episode_results"]


@pytest.mark.slow
def test_rl_rollouts_on_ray_actors_train_as_one_local_dream(ray_cluster, tmp_path_factory, tmp_path):
    import json

    from tests.support.finetune_fixtures import tiny_dream_run
    from wam.train.finetune import load_wam
    from wam.train.rl import RLConfig, rl

    run = tiny_dream_run(tmp_path_factory)
    config = RLConfig(task="move the square", iterations=2, starts=2, group=2, horizon=6, lr=1e-2, device="cpu")
    rl(run, run, tmp_path / "local", config, progress=False)
    from dataclasses import replace

    rl(run, run, tmp_path / "ray", replace(config, ray="auto"), progress=False)

    def logged(name):
        return [json.loads(line) for line in (tmp_path / name / "rl" / "metrics.jsonl").read_text().splitlines()]

    for here, there in zip(logged("local"), logged("ray")):
        assert there["return"] == pytest.approx(here["return"], abs=1e-4)
        assert there["loss"] == pytest.approx(here["loss"], rel=1e-3, abs=1e-5)
    # Ray workers run torch on one thread, so sums are taken in another order; Adam turns a gradient
    # near zero whose sign flipped into a full-size step. A handful of weights may move by up to lr a
    # step; the rest must agree.
    difference = (load_wam(tmp_path / "ray").action_chunk[0].weight
                  - load_wam(tmp_path / "local").action_chunk[0].weight).abs()
    assert (difference > 1e-4).float().mean() < 1e-3
    assert difference.max() <= 2 * config.lr * config.iterations
