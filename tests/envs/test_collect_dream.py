"""Guards `wam collect --env dream/RUN --policy P`: a policy's dreamed episodes become a dataset,
so that every tool that takes an env (eval, collect, the Physical API) takes a dream too."""

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

from tests.support.finetune_fixtures import tiny_dream_run, tiny_finetune_config
from tests.support.pretrain_fixtures import tiny_run, write_dataset

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

TASK = "move the square"


def _collect(out: Path, world: Path, policy: Path | None, tasks=(TASK,), **kwargs):
    config = CollectConfig(**{"tasks": tasks, "episodes": 2, "out": out, "max_steps": 10, "policy": policy and PolicyActors(policy),
                              "env": f"dream/{world}", **kwargs})
    return collect(config, progress=False)


def test_dreamed_episodes_are_recorded_with_the_policys_actions_and_the_worlds_verdict(tmp_path_factory, tmp_path):
    world = tiny_dream_run(tmp_path_factory)
    result = _collect(tmp_path / "dreams", world, world)
    dataset = Dataset(tmp_path / "dreams")
    assert result.added == 2 and dataset.num_episodes == 2
    assert check_dataset(tmp_path / "dreams") == []
    assert {e.info["env"] for e in dataset.episodes} == {f"dream/{world}"}
    assert {e.info["task"] for e in dataset.episodes} == {TASK}
    assert {e.task for e in dataset.episodes} == {TASK}
    # The same policy in the same dream, seeded alike, acts the recorded actions again and earns the recorded rewards.
    env = make(f"dream/{world}", task=TASK, max_episode_steps=10, device="cpu", terminate_on_success=False)
    actor = PolicyActor(world, TASK)
    seed = episode_seed(0, TASK, 0)
    obs, _ = env.reset(seed=seed)
    actor.reset(seed=seed)
    actions, rewards = [], []
    for _ in range(dataset.episodes[0].length - 1):
        actions.append(actor.act(obs))
        obs, reward, *_ = env.step(actions[-1])
        rewards.append(reward)
    recorded = dataset.low_dim(0)
    np.testing.assert_allclose(np.stack(actions), recorded["action"][:-1], atol=1e-5)
    np.testing.assert_allclose(rewards, np.ravel(recorded["reward"])[1:], atol=1e-5)
    assert _collect(tmp_path / "dreams", world, world).added == 0, "a rerun adds nothing"


def test_a_dream_of_a_metaworld_task_starts_in_the_simulators_scene_of_the_same_seed(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    data = write_dataset(tmp_path / "reach", range(40, 46), rewards=True, task="reach the goal position")
    from wam.train.finetune import finetune

    world = tmp_path / "world"
    finetune(pretrained, [data], world, tiny_finetune_config(steps=10), progress=False)
    _collect(tmp_path / "dreams", world, world, tasks=("reach-v3",), episodes=1, max_steps=4)
    recorded = Dataset(tmp_path / "dreams").low_dim(0)
    scene = make("metaworld/reach-v3", obs="pixels", size=64)
    first, _ = scene.reset(seed=episode_seed(0, "reach-v3", 0))
    scene.close()
    np.testing.assert_allclose(recorded["observation.state"][0], first["state"], atol=1e-6)


def test_what_cannot_dream_is_refused_before_anything_is_written(tmp_path_factory, tmp_path):
    world = tiny_dream_run(tmp_path_factory)
    with pytest.raises(ValueError, match="--policy"):
        _collect(tmp_path / "a", world, None)
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="no action encoder"):
        _collect(tmp_path / "b", pretrained, world)
    with pytest.raises(ValueError, match="--size 64"):
        _collect(tmp_path / "c", world, world, size=32)
    with pytest.raises(ValueError, match="'metaworld', 'hand', 'scan/<SCENE>' or 'dream/<RUN>'"):
        collect(CollectConfig((TASK,), 1, tmp_path / "d", policy=PolicyActors(world), env="robosuite"), progress=False)
    with pytest.raises(ValueError, match="no tasks"):
        _collect(tmp_path / "e", world, world, tasks=())
    assert not any((tmp_path / d).exists() for d in "abcde")
