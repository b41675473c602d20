"""Guards `wam collect --policy`: a finetuned policy's own rollouts become a labelled dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wam.data import Dataset
from wam.data.check import check_dataset
from wam.envs import make
from wam.envs.collect import CollectConfig, collect, episode_seed
from wam.errors import CheckpointError
from wam.policy import PolicyActor, PolicyActors

from tests.support.finetune_fixtures import tiny_wam_run
from tests.support.pretrain_fixtures import tiny_run

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)


def _collect(out: Path, policy: Path, **kwargs):
    config = CollectConfig(**{"tasks": ("reach-v3",), "episodes": 2, "out": out, "max_steps": 12, "policy": PolicyActors(policy),
                              **kwargs})
    return collect(config, progress=False)


def test_the_policys_rollouts_are_recorded_with_its_actions(tmp_path_factory, tmp_path):
    run, _ = tiny_wam_run(tmp_path_factory)
    result = _collect(tmp_path / "rollouts", run)
    assert (result.added, result.frames) == (2, 26)  # a tiny policy fails: both episodes run to the step limit
    dataset = Dataset(tmp_path / "rollouts")
    assert check_dataset(tmp_path / "rollouts") == []
    assert {e.info["source"] for e in dataset.episodes} == {f"policy:{run}"}
    # The recorded actions are the policy's: the same policy in the same scene acts them again.
    env = make("metaworld/reach-v3", obs="pixels", size=64, max_episode_steps=12)
    actor = PolicyActor(run, "reach-v3")
    seed = episode_seed(0, "reach-v3", 0)
    obs, _ = env.reset(seed=seed)
    actor.reset(seed=seed)
    replayed = []
    for _ in range(12):
        replayed.append(actor.act(obs))
        obs, *_ = env.step(replayed[-1])
    env.close()
    np.testing.assert_allclose(np.stack(replayed), dataset.low_dim(0)["action"][:12], atol=1e-6)


def test_noise_is_seeded_and_the_same_numbers_from_the_expert_are_other_episodes(tmp_path_factory, tmp_path):
    run, _ = tiny_wam_run(tmp_path_factory)
    first = _collect(tmp_path / "a", run, noise=0.3, episodes=1)
    _collect(tmp_path / "b", run, noise=0.3, episodes=1)
    a, b = Dataset(tmp_path / "a").low_dim(0)["action"], Dataset(tmp_path / "b").low_dim(0)["action"]
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a) <= 1.0) and first.added == 1
    expert = collect(CollectConfig(("reach-v3",), 1, tmp_path / "a", max_steps=12), progress=False)
    assert expert.added == 1, "a scripted episode with the same number is not the policy's episode"
    assert _collect(tmp_path / "a", run, noise=0.3, episodes=1).added == 0, "a rerun adds nothing"


def test_a_pretraining_run_or_explore_is_refused_before_anything_is_written(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="pretraining run"):
        _collect(tmp_path / "x", pretrained)
    run, _ = tiny_wam_run(tmp_path_factory)
    with pytest.raises(ValueError, match="explore"):
        _collect(tmp_path / "y", run, explore=0.5)
    with pytest.raises(ValueError, match="--size 64"):
        _collect(tmp_path / "z", run, size=32)
    assert not any((tmp_path / d).exists() for d in "xyz")
