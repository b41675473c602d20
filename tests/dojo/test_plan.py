import numpy as np
import pytest
import torch

from wam.dojo.plan import CEMPlanner, PlanConfig

from tests.dojo.test_dream_env import TASK, dream_run

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)


def _obs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "state": rng.normal(size=4).astype(np.float32)}


def test_the_planner_acts_in_bounds_and_is_deterministic_under_a_seed(tmp_path_factory):
    run = dream_run(tmp_path_factory)
    actions = []
    for _ in range(2):
        planner = CEMPlanner(run, PlanConfig(samples=16, elites=4, iterations=2, seed=3), device="cpu")
        planner.reset(TASK)
        actions.append(np.stack([planner.act(_obs(t)) for t in range(10)]))
    assert np.abs(actions[0]).max() <= 1.0
    np.testing.assert_array_equal(actions[0], actions[1])


def test_planning_picks_chunks_the_reward_head_prefers(tmp_path_factory, monkeypatch):
    run = dream_run(tmp_path_factory)
    planner = CEMPlanner(run, PlanConfig(samples=32, elites=4, iterations=4, init_std=0.5), device="cpu")
    planner.reset(TASK)
    # Replace the learned score by a known one: prefer chunks whose first action is near +0.7.
    monkeypatch.setattr(planner, "score", lambda latents, states, past, chunks: -(chunks[:, :, 0] - 0.7).abs().mean(1))
    latents = torch.stack([planner.tokenizer.encode(torch.from_numpy(_obs()["image"]).permute(2, 0, 1)[None])[0]])[None]
    chunk = planner.plan_chunk(latents, torch.zeros(1, 1, 4))
    assert chunk[:, 0].mean().item() == pytest.approx(0.7, abs=0.15)


def test_elites_cannot_outnumber_samples(tmp_path_factory):
    with pytest.raises(ValueError, match="elites"):
        CEMPlanner(dream_run(tmp_path_factory), PlanConfig(samples=4, elites=8), device="cpu")


def test_the_planner_is_scored_by_a_goal_image_when_given_one(tmp_path_factory):
    run = dream_run(tmp_path_factory)
    planner = CEMPlanner(run, PlanConfig(samples=8, elites=2, iterations=1), device="cpu", goal_image=_obs(5)["image"])
    planner.reset(TASK)
    for t in range(6):
        assert np.abs(planner.act(_obs(t))).max() <= 1.0
