"""The progress judge: progress labels from success flags, clips with hard negatives, training beside a world,
calibration on held-out policies, and a dream whose verdict thresholds the judge's progress."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.finetune_fixtures import private_dream_world
from wam.config import DreamSettings, judge_preset
from wam.models.text import TextConfig, tokenize
from wam.train.frame_cache import CachedEpisode, FrameCache
from wam.train.judge import JudgeSource
from wam.train.progress_judge import ClipBatches, clip_rows, progress_targets

TASK = "move the square"


def test_progress_rises_to_the_first_success_and_failures_stay_below_the_ceiling():
    np.testing.assert_allclose(progress_targets(np.array([0, 0, 0, 0, 1, 1], bool), 0.5), [0, 0.25, 0.5, 0.75, 1, 1])
    np.testing.assert_allclose(progress_targets(np.zeros(5, bool), 0.5), [0, 0.125, 0.25, 0.375, 0.5])
    np.testing.assert_allclose(progress_targets(np.array([1, 1], bool), 0.5), [1, 1])  # done from the start


def test_a_clip_ends_at_its_frame_and_repeats_the_first_before_the_start():
    assert clip_rows(10, 19, 4, 3).tolist() == [10, 13, 16, 19]
    assert clip_rows(10, 12, 4, 3).tolist() == [10, 10, 10, 12]


def _source(lengths_success: list[tuple[int, int | None, str]]) -> JudgeSource:
    """Episodes (length, first success or None, task) whose latent at row r holds the value r (to follow the rows)."""
    episodes, success, start = [], [], 0
    for i, (length, first, task) in enumerate(lengths_success):
        episodes.append(CachedEpisode("d", i, start, length, task, has_state=True, has_actions=False, has_reward=True))
        flags = np.zeros(length, bool)
        if first is not None:
            flags[first:] = True
        success.append(flags)
        start += length
    n = start
    cache = FrameCache(Path("."), np.empty((0,), np.uint8), np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32),
                       episodes, np.zeros(n, np.float32), np.concatenate(success))
    latents = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 2, 2)).copy()
    return JudgeSource(cache, latents, episodes, [])


def test_clip_batches_label_progress_and_make_hard_negatives():
    source = _source([(20, 10, "open the drawer"), (20, None, "close the window")])
    text = TextConfig()
    plain = ClipBatches([source], text, clip=3, stride=2, batch_size=300, seed=0).batch(1)
    last = plain["latents"][:, -1, 0, 0, 0].long()  # the row each clip ends at
    expected = np.concatenate([progress_targets(source.cache.success[:20], 0.5), progress_targets(source.cache.success[20:], 0.5)])
    np.testing.assert_allclose(plain["progress"].numpy(), expected[last.numpy()], atol=1e-6)
    assert torch.equal(plain["success"].bool(), torch.from_numpy(source.cache.success[last.numpy()]))
    assert (plain["latents"][:, 1, 0, 0, 0] <= plain["latents"][:, 2, 0, 0, 0]).all(), "clips run forward in time"
    hard = ClipBatches([source], text, clip=3, stride=2, batch_size=300, seed=0, relabel=0.3, reverse=0.3).batch(1)
    backwards = hard["latents"][:, 0, 0, 0, 0] > hard["latents"][:, -1, 0, 0, 0]
    assert backwards.any() and not hard["success"][backwards].any()
    # a reversed clip is labelled with the progress of the frame it ends on (its original first frame)
    ends = hard["latents"][backwards][:, -1, 0, 0, 0].long().numpy()
    relabelled = ~torch.isclose(hard["progress"][backwards], torch.from_numpy(expected[ends]))
    assert (hard["progress"][backwards][relabelled] == 0).all()  # unless also shown another task's words
    drawer = tokenize(["open the drawer"], text)[0]
    others = [i for i in range(300) if hard["progress"][i] == 0 and hard["success"][i] == 0 and
              hard["latents"][i, -1, 0, 0, 0] < 20 and not torch.equal(hard["text_ids"][i], drawer)]
    assert others, "some drawer clips carry the window's instruction, as failures"


@pytest.mark.slow
def test_a_progress_judge_trains_calibrates_and_gives_the_dreams_verdict(tmp_path_factory, tmp_path):
    from tests.support.pretrain_fixtures import write_rollouts
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.models.progress_judge import ProgressJudge
    from wam.train.judge import load_judge, train_judge
    from wam.train.judge_calibration import load_calibration

    world = private_dream_world(tmp_path_factory, tmp_path)
    data = write_rollouts(tmp_path / "rollouts", {"policy:a": range(200, 206), "policy:b": range(210, 216)})
    config = judge_preset("tiny")
    config = replace(config, train=replace(config.train, device="cpu", steps=40, eval_every=40, checkpoint_every=40),
                     kind="progress", clip=3, reverse=0.2, relabel=0.2)
    summary = train_judge(world, [data], config, progress=False)
    judge = load_judge(world)
    assert isinstance(judge, ProgressJudge) and judge.config.clip == 3
    assert summary["held_out"]["split"] == "policies" and summary["held_out"]["episodes"] == 6
    calibration = load_calibration(world / "judge")
    assert 0.0 <= calibration.threshold <= 1.0
    env = DreamVectorEnv(DreamConfig(world, TASK, num_envs=2, device="cpu", decode_images=False,
                                     settings=DreamSettings(judge=True), max_episode_steps=12))
    assert env.threshold == calibration.threshold
    env.reset(seed=0)
    for _ in range(12):
        _, _, terminated, truncated, info = env.step(np.zeros((2, 4), np.float32))
        assert info["success"].dtype == bool
