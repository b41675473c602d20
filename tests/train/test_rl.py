"""The group-relative advantage of RL in dreams: what a group of rollouts from one first frame
teaches the policy, and what it must not (noise amplified into a push)."""

import numpy as np
import pytest

from wam.train.rl import RLConfig, group_advantages, rl, rollout_returns


def test_a_group_that_ends_alike_teaches_almost_nothing_when_centred():
    # Two groups of four: the first all succeed with the reward head's shaping differing in the third decimal,
    # the second splits two successes and two failures.
    returns = np.array([1.501, 1.502, 1.500, 1.503, 1.5, 1.5, 0.5, 0.5])
    centred = group_advantages(returns, group=4)
    assert np.abs(centred[:4]).max() < 0.002
    np.testing.assert_allclose(centred[4:], [0.5, 0.5, -0.5, -0.5], atol=1e-6)
    scaled = group_advantages(returns, group=4, mode="std")
    assert np.abs(scaled[:4]).max() > 1.0, "over the std, shaping noise becomes as large as a real difference"
    np.testing.assert_allclose(scaled[4:], [1, 1, -1, -1], atol=1e-4)
    assert centred.dtype == np.float32 and centred.shape == (8,)


def test_each_group_is_its_own_baseline():
    advantage = group_advantages(np.array([0.0, 1.0, 10.0, 11.0]), group=2)
    np.testing.assert_allclose(advantage, [-0.5, 0.5, -0.5, 0.5])


def test_an_unknown_advantage_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="'center' or 'std'"):
        group_advantages(np.zeros(4), group=2, mode="rank")
    with pytest.raises(ValueError, match="'center' or 'std'"):
        rl(tmp_path / "policy", tmp_path / "world", tmp_path / "out", RLConfig(task="reach-v3", advantage="rank"))
    assert not (tmp_path / "out").exists()


def test_success_timing_ranks_successes_by_how_soon_they_came():
    config = RLConfig(task="reach-v3", horizon=40, success_bonus=1.0)
    reward = np.full(4, 5.0)  # mean predicted reward 5 on the heads' 0-10 scale
    first = np.array([0, 20, 39, 40])  # at once, halfway, at the last step, never
    np.testing.assert_allclose(rollout_returns(reward, first, config), [1.5, 1.5, 1.5, 0.5])
    timed = rollout_returns(reward, first, RLConfig(task="reach-v3", horizon=40, success_timing=True))
    np.testing.assert_allclose(timed, [1.5, 1.25, 1.0 + 0.5 * (1 - 39 / 40), 0.5])
    assert timed[2] > timed[3], "a success at the last step still beats a failure"


@pytest.mark.slow
def test_groups_roll_out_the_same_alone_or_together(tmp_path_factory):
    """What lets Ray split the groups over actors: a group's first frame and noise depend on its index alone."""
    import torch

    from tests.support.finetune_fixtures import tiny_dream_run
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.train.finetune import load_wam
    from wam.train.rl_rollouts import merge_parts, rollout_groups

    run = tiny_dream_run(tmp_path_factory)
    policy = load_wam(run).eval()
    config = RLConfig(task="move the square", starts=3, group=2, horizon=6, sigma=0.2, seed=5)

    def chunk(latents, text_ids, state):
        return policy.imagine_and_act(latents, text_ids, state)[2][:, -1]

    def dreams(groups: int):
        return DreamVectorEnv(DreamConfig(run, config.task, num_envs=groups * config.group, device="cpu", decode_images=False,
                                          terminate_on_success=False))

    together = rollout_groups(chunk, dreams(3), [0, 1, 2], step=4, stride=1, execute=2, context=3, config=config)
    apart = merge_parts([rollout_groups(chunk, dreams(1), [0], 4, 1, 2, 3, config),
                         rollout_groups(chunk, dreams(2), [1, 2], 4, 1, 2, 3, config)])
    assert len(together["decisions"]) == len(apart["decisions"]) == 3
    for a, b in zip(together["decisions"], apart["decisions"]):
        for key in ("latents", "state", "chunk"):
            torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(together["rewards"], apart["rewards"], atol=1e-5)
    np.testing.assert_array_equal(together["first_success"], apart["first_success"])
    other = rollout_groups(chunk, dreams(3), [0, 1, 2], step=5, stride=1, execute=2, context=3, config=config)
    assert not torch.equal(other["decisions"][0]["chunk"], together["decisions"][0]["chunk"])  # the step seeds them
