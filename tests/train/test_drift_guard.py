"""The dream's drift guard: an inverse-dynamics model trained on the world's real transitions, a tolerance
calibrated on its held-out real episodes, and dreams that end undecided (never a success) when it trips."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from wam.config import DreamSettings, drift_guard_preset
from wam.errors import CheckpointError
from wam.train.drift_guard import load_drift_guard, train_drift_guard, window_means

from tests.support.finetune_fixtures import private_dream_world

TASK = "move the square"


def test_window_means_average_every_run_of_consecutive_errors():
    np.testing.assert_allclose(window_means(np.array([1.0, 3.0, 5.0, 7.0]), 2), [2.0, 4.0, 6.0])
    assert window_means(np.array([1.0, 2.0, 3.0]), 3).tolist() == [2.0]


def _config(steps: int = 40):
    config = drift_guard_preset("tiny")
    return replace(config, train=replace(config.train, device="cpu", steps=steps, checkpoint_every=steps), window=2)


@pytest.mark.slow
def test_the_guard_learns_actions_and_calibrates_a_tolerance_on_real_episodes(tmp_path_factory, tmp_path):
    world = private_dream_world(tmp_path_factory, tmp_path)
    summary = train_drift_guard(world, _config(steps=60), progress=False)
    guard, tolerance = load_drift_guard(world)
    assert tolerance == summary["calibration"] and tolerance["window"] == 2 and tolerance["windows"] > 0
    assert 0 < tolerance["median_window_error"] <= tolerance["tolerance"]
    metrics = [json.loads(line) for line in (world / "drift_guard" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < metrics[0]["loss"], "it learns the actions from real transitions"
    with pytest.raises(CheckpointError, match="already exists"):
        train_drift_guard(world, _config(steps=5), progress=False)


@pytest.mark.slow
def test_a_drifting_dream_ends_undecided_and_never_succeeds(tmp_path_factory, tmp_path, monkeypatch):
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.models.inverse_dynamics import InverseDynamics

    world = private_dream_world(tmp_path_factory, tmp_path)
    train_drift_guard(world, _config(steps=10), progress=False)
    settings = DreamSettings(drift_guard=True, success_threshold=1e-9)  # the head calls success at once, unguarded
    env = DreamVectorEnv(DreamConfig(world, TASK, num_envs=2, device="cpu", decode_images=False, settings=settings,
                                     terminate_on_success=False, max_episode_steps=40))
    tolerance = env.tolerance["tolerance"]
    # the guard reads actions far from those commanded: the dream has drifted
    monkeypatch.setattr(InverseDynamics, "error", lambda self, predicted, commanded: torch.full((len(predicted),), 10 * tolerance + 1))
    env.reset(seed=0)
    undecided_at = None
    for t in range(40):
        _, _, terminated, truncated, info = env.step(np.zeros((2, 4), np.float32))
        assert not (info["success"] & info["undecided"]).any(), "an undecided dream is never a success"
        if info["undecided"].all():
            undecided_at = t
            assert truncated.all() and not terminated.any()
            break
    assert undecided_at is not None and undecided_at + 1 == 2 * env.stride  # after the guard's window of 2 model steps
    # the same dream with errors within tolerance goes on, and its success head decides
    monkeypatch.setattr(InverseDynamics, "error", lambda self, predicted, commanded: torch.zeros(len(predicted)))
    env.reset(seed=0)
    for _ in range(2 * env.stride + 1):
        _, _, _, _, info = env.step(np.zeros((2, 4), np.float32))
    assert not info["undecided"].any() and info["success"].all()


@pytest.mark.slow
def test_evaluation_reports_undecided_dreams_apart(tmp_path_factory, tmp_path, monkeypatch):
    from wam.dojo.evaluate import EvalConfig, evaluate_policy
    from wam.models.inverse_dynamics import InverseDynamics

    world = private_dream_world(tmp_path_factory, tmp_path)
    train_drift_guard(world, _config(steps=10), progress=False)
    monkeypatch.setattr(InverseDynamics, "error", lambda self, predicted, commanded: torch.full((len(predicted),), 1e6))
    result = evaluate_policy(EvalConfig(world, (TASK,), episodes=2, max_steps=30, env=f"dream/{world}",
                                        dream=DreamSettings(drift_guard=True, success_threshold=0.999999)), progress=False)
    task = result["tasks"][TASK]
    assert task["undecided"] == 2 and task["successes"] == 0 and task["success_rate_decided"] is None
    assert all(e["undecided"] for e in result["episode_results"])
