import numpy as np
import pytest

import wam.policy
from wam.envs import MT10, make
from wam.errors import CheckpointError

from tests.support.finetune_fixtures import tiny_wam_run
from tests.support.pretrain_fixtures import tiny_run

pytestmark = pytest.mark.slow  # rolls a finetuned policy out on every MT10 task


def test_act_returns_actions_inside_the_action_space_for_every_task(tmp_path_factory):
    run, _ = tiny_wam_run(tmp_path_factory)
    policy = wam.policy.load(run, device="cpu")
    for task in MT10:
        env = make(f"metaworld/{task}", size=64, max_episode_steps=20)
        obs, _ = env.reset(seed=0)
        policy.reset(task)
        for _ in range(5):
            action = policy.act(obs)
            assert action.shape == env.action_space.shape and action.dtype == np.float32
            assert env.action_space.contains(action), (task, action)
            obs, *_ = env.step(action)
        env.close()


def test_receding_horizon_calls_the_model_every_execute_steps(tmp_path_factory, monkeypatch):
    run, _ = tiny_wam_run(tmp_path_factory)
    policy = wam.policy.load(run, device="cpu")
    calls = []
    original = policy.model.act
    monkeypatch.setattr(policy.model, "act", lambda *a: calls.append(1) or original(*a))
    policy.reset("move the square")
    obs = {"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(4, np.float32)}
    for _ in range(3 * policy.execute):
        policy.act(obs)
    assert len(calls) == 3
    assert len(policy.latents) == min(policy.context, 3 * policy.execute // policy.stride)


def test_temporal_ensembling_averages_the_chunks_that_cover_each_step(tmp_path_factory, monkeypatch):
    run, _ = tiny_wam_run(tmp_path_factory)
    policy = wam.policy.load(run, device="cpu", ensemble=0.5)
    h, a = policy.chunk, 4
    made = []

    def fake_chunk(latents, states):  # chunk k predicts the constant action k everywhere
        made.append(np.full((h, a), float(len(made))))
        return made[-1]

    monkeypatch.setattr(policy, "_next_chunk", fake_chunk)
    policy.reset("move the square")
    obs = {"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(4, np.float32)}
    actions = [policy.act(obs) for _ in range(3 * h)]
    assert len(made) == 3 * h // policy.stride  # a prediction every frame
    for t, action in enumerate(actions):
        covering = [k for k in range(len(made)) if k * policy.stride <= t < k * policy.stride + h]
        weights = np.exp(-0.5 * np.arange(len(covering)))
        np.testing.assert_allclose(action, np.full(a, (weights * covering).sum() / weights.sum()), rtol=1e-6)
    with pytest.raises(ValueError, match="ensemble"):
        wam.policy.load(run, device="cpu", ensemble=-1.0)


def test_act_needs_a_task_the_right_state_and_a_camera(tmp_path_factory):
    run, _ = tiny_wam_run(tmp_path_factory)
    policy = wam.policy.load(run, device="cpu")
    with pytest.raises(ValueError, match="reset"):
        policy.act({"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(4)})
    policy.reset("move the square")
    with pytest.raises(ValueError, match="state has 6 values, the policy was trained on 4"):
        policy.act({"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(6)})
    with pytest.raises(ValueError, match="no image for camera slot 0"):
        policy.act({"wrist": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(4)})
    # Another size is fitted to the model's resolution, and a dataset row's keys work as well as an env's.
    assert policy.act({"image": np.zeros((32, 48, 3), np.uint8), "state": np.zeros(4)}).shape == (4,)
    policy.reset("move the square")
    row = {"observation.images.main": np.zeros((3, 64, 64), np.float32), "observation.state": np.zeros(4, np.float32)}
    assert policy.act(row).shape == (4,)
    with pytest.raises(ValueError, match="execute must be in"):
        wam.policy.load(run, device="cpu", execute=99)


def test_loading_a_pretraining_run_as_a_policy_is_a_clear_error(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="pretraining run, not a finetuned WAM"):
        wam.policy.load(pretrained)
    with pytest.raises(CheckpointError, match="no such run"):
        wam.policy.load(tmp_path / "nothing")
