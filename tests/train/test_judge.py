"""Guards wam.train.judge and the dream's use of it: a success judge trained on real frames beside a world."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from wam.config import DreamSettings
from wam.config import judge_preset
from wam.errors import CheckpointError, DatasetError
from wam.train.judge import JudgeBatches, load_judge, train_judge

from tests.support.finetune_fixtures import private_dream_world
from tests.support.pretrain_fixtures import write_rollouts

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

TASK = "move the square"


def _config(steps: int = 40):
    config = judge_preset("tiny")
    return replace(config, train=replace(config.train, device="cpu", steps=steps, eval_every=steps, checkpoint_every=steps))


def test_the_judge_learns_success_from_real_frames_and_reports_held_out_rates(tmp_path_factory, tmp_path):
    world = private_dream_world(tmp_path_factory, tmp_path)
    from wam.dojo.judge_replay import dreamed_source

    data = write_rollouts(tmp_path / "rollouts", {"policy:a": range(200, 206), "policy:b": range(210, 216)})
    summary = train_judge(world, [data], _config(steps=60), progress=False, dream_replay=dreamed_source)
    assert (world / "judge" / "summary.json").exists()
    held_out = summary["held_out"]
    assert held_out["episodes"] >= 1 and summary["train_positives"] > 0
    # whole policies held out (one of the two), never episodes of a policy it trained on; the verdict calibrated there
    assert held_out["split"] == "policies" and held_out["policies"] in (["policy:a"], ["policy:b"])
    assert held_out["episodes"] == 6 and held_out["precision_target"] == 0.9
    from wam.train.judge_calibration import load_calibration

    calibration = load_calibration(world / "judge")
    assert calibration is not None and 0.0 <= calibration.threshold <= 1.0 and calibration.curve and calibration.reliability
    # the same held-out episodes as the dream draws them, judged at the calibrated threshold
    in_dreams = held_out["in_dreams"]
    assert in_dreams["episodes"] == 6 and in_dreams["threshold"] == calibration.threshold
    assert set(in_dreams) >= {"precision", "true_positive_rate", "false_positive_rate"}
    assert summary["dreamed_frames"] == 0, "dreamed frames are trained on only with --dreamed"
    judge = load_judge(world)
    assert summary["params"] == sum(p.numel() for p in judge.parameters())
    from wam.train.finetune import load_wam

    assert judge.config.text == load_wam(world).config.world.text, "dreams tokenize the task with the world's hashing"
    untrained = type(judge)(judge.config)
    # Loss on training frames falls from the untrained judge's.
    sources = _sources_for(world, [data])
    frames = JudgeBatches(sources, judge.config.text, 256, seed=5).batch(0)
    with torch.no_grad():
        trained_loss, _ = judge(frames)
        untrained_loss, _ = untrained.eval()(frames)
    assert float(trained_loss) < float(untrained_loss)


def _sources_for(world: Path, data: list[Path]):
    """The judge's training sources as train_judge builds them (the caches exist after training)."""
    from wam.train.frame_cache import load_frame_cache
    from wam.train.judge import JudgeSource

    sources = []
    for name in ("cache", "cache_judge"):
        cache = load_frame_cache(world / name)
        latents = np.load(next((world / name).glob("latents-*.npy")), mmap_mode="r")
        sources.append(JudgeSource(cache, latents, [e for e in cache.episodes if e.has_reward], []))
    return sources


def test_excluded_sources_are_left_out_of_training(tmp_path_factory, tmp_path):
    world = private_dream_world(tmp_path_factory, tmp_path)
    data = write_rollouts(tmp_path / "rollouts", {"policy:a": range(200, 204), "policy:b": range(210, 214)})
    every = replace(_config(steps=5), val_fraction=0.0)  # no policy held out: every episode left is trained on
    both = train_judge(world, [data], every, progress=False)["train_frames"]
    shutil.rmtree(world / "judge")
    without_b = train_judge(world, [data], every, exclude_sources=("policy:b",), progress=False)
    assert without_b["exclude_sources"] == ["policy:b"]
    assert without_b["train_frames"] < both


def test_an_existing_judge_is_not_overwritten_without_resume(tmp_path_factory, tmp_path):
    world = private_dream_world(tmp_path_factory, tmp_path)
    train_judge(world, [], _config(steps=5), progress=False)
    before = (world / "judge" / "checkpoint" / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="a judge already exists"):
        train_judge(world, [], _config(steps=5), progress=False)
    assert (world / "judge" / "checkpoint" / "model.safetensors").read_bytes() == before


def test_data_without_success_flags_is_refused(tmp_path_factory, tmp_path):
    from tests.support.pretrain_fixtures import write_dataset

    world = private_dream_world(tmp_path_factory, tmp_path)
    unscored = write_dataset(tmp_path / "unscored", range(300, 302))  # no rewards, no success flags
    saved = json.loads((world / "finetune.json").read_text())
    (world / "finetune.json").write_text(json.dumps({**saved, "robot": [str(unscored)], "play": []}))
    with pytest.raises(DatasetError, match="success flags"):
        train_judge(world, [], _config(steps=5), progress=False)


def test_a_dream_asked_for_a_missing_judge_says_how_to_train_one(tmp_path_factory, tmp_path):
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv

    world = private_dream_world(tmp_path_factory, tmp_path)
    with pytest.raises(CheckpointError, match="wam judge"):
        DreamVectorEnv(DreamConfig(world, TASK, num_envs=2, device="cpu", settings=DreamSettings(judge=True)))


@pytest.mark.parametrize("logit, done", [(5.0, True), (-5.0, False)])
def test_the_dream_verdict_comes_from_the_judge_when_asked(tmp_path_factory, tmp_path, monkeypatch, logit, done):
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.models.judge import SuccessJudge

    world = private_dream_world(tmp_path_factory, tmp_path)
    train_judge(world, [], _config(steps=5), progress=False)
    seen = []

    def scripted(self, latents, state, text_ids):
        seen.append(latents.shape)
        return torch.full((len(latents),), logit)

    monkeypatch.setattr(SuccessJudge, "logit", scripted)
    env = DreamVectorEnv(DreamConfig(world, TASK, num_envs=3, device="cpu", decode_images=False,
                                     settings=DreamSettings(judge=True, calibrated=False)))
    env.reset(seed=0)
    terminated = np.zeros(3, bool)
    for _ in range(env.stride):
        _, _, terminated, _, info = env.step(np.zeros((3, 4), np.float32))
    assert list(terminated) == [done] * 3 and list(info["success"]) == [done] * 3
    assert seen and seen[0][0] == 3, "one batched judge call reads the predicted frames"


def test_dreamed_frames_carry_reality_s_flags_for_the_frames_their_actions_reached(tmp_path_factory, tmp_path):
    from wam.train.frame_cache import build_frame_cache, load_frame_cache
    from wam.dojo.judge_replay import dreamed_source
    from wam.train.judge import JudgeSource

    world = private_dream_world(tmp_path_factory, tmp_path)
    data = write_rollouts(tmp_path / "rollouts", {"policy:a": range(200, 206)})
    summary = train_judge(world, [data], replace(_config(steps=5), dreamed=True), progress=False, dream_replay=dreamed_source)
    saved = json.loads((world / "finetune.json").read_text())
    stride = int(saved["stride"])
    trained = load_frame_cache(world / "cache_judge").episodes  # one policy: none to hold out, all six trained on
    assert len(trained) == 6 and summary["held_out"]["split"].startswith("episodes of the training policies")
    assert summary["dreamed_frames"] == sum((e.length - 1) // stride for e in trained)

    cache = build_frame_cache([str(data)], world / "cache_judge", int(saved["image_size"]), 4, 4, False)
    train_lengths = [e.length for e in cache.episodes]
    latents = np.load(next((world / "cache_judge").glob("latents-*.npy")), mmap_mode="r")
    source = JudgeSource(cache, latents, cache.episodes, [])
    dreamed = dreamed_source(world, source, torch.device("cpu"), batch=4, progress=False)
    assert [e.length for e in dreamed.train] == [(n - 1) // stride for n in train_lengths]
    for real, replay in zip(cache.episodes, dreamed.train):
        reached = cache.success[real.start + stride: real.start + real.length: stride][: replay.length]
        assert list(dreamed.cache.success[replay.start: replay.start + replay.length]) == list(reached)
    assert dreamed.cache.success.any() and not dreamed.cache.success.all(), "the fixture should give both labels"
    assert not np.allclose(np.asarray(dreamed.latents[1], np.float32), np.asarray(dreamed.latents[0], np.float32))


def test_balanced_batches_draw_rare_successes_as_often_as_failures():
    from wam.models.text import TextConfig
    from wam.train.frame_cache import CachedEpisode, FrameCache
    from wam.train.judge import JudgeSource

    def source(n: int, positives: int) -> JudgeSource:
        success = np.zeros(n, bool)
        success[n - positives:] = True  # a few success frames at the end, as in a dreamed replay
        episode = CachedEpisode("d", 0, 0, n, TASK, has_state=True, has_actions=False, has_reward=True)
        cache = FrameCache(Path("."), np.empty((0,), np.uint8), np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32),
                           [episode], np.zeros(n, np.float32), success)
        return JudgeSource(cache, np.zeros((n, 2, 2, 2), np.float16), [episode], [])

    sources = [source(1000, 10), source(500, 0)]
    plain = JudgeBatches(sources, TextConfig(), 600, seed=0).batch(0)
    balanced = JudgeBatches(sources, TextConfig(), 600, seed=0, balance=True)
    assert float(plain["success"].mean()) < 0.03  # drawn by frame: 10 of 1,500
    rates = [float(balanced.batch(step)["success"].mean()) for step in range(3)]
    assert all(0.25 < r < 0.42 for r in rates), rates  # three groups (two of source 0, one of source 1): a third each
    torch.testing.assert_close(balanced.batch(7)["success"], balanced.batch(7)["success"])  # a function of the step


def test_a_dream_with_the_judge_uses_its_calibrated_threshold_and_hold(tmp_path_factory, tmp_path, monkeypatch):
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.models.judge import SuccessJudge
    from wam.train.judge_calibration import load_calibration, save_calibration

    world = private_dream_world(tmp_path_factory, tmp_path)
    train_judge(world, [], _config(steps=5), progress=False)
    calibration = load_calibration(world / "judge")
    save_calibration(world / "judge", replace(calibration, threshold=0.95, hold=2))
    monkeypatch.setattr(SuccessJudge, "logit", lambda self, latents, state, text_ids: torch.full((len(latents),), 2.0))
    settings = DreamSettings(judge=True)  # p = 0.88: a success at the default 0.5, not at the calibrated 0.95
    env = DreamVectorEnv(DreamConfig(world, TASK, num_envs=2, device="cpu", decode_images=False, settings=settings))
    assert (env.threshold, env.hold) == (0.95, 2)
    env.reset(seed=0)
    for _ in range(3 * env.stride):
        _, _, terminated, _, info = env.step(np.zeros((2, 4), np.float32))
        assert not info["success"].any()
    uncalibrated = DreamVectorEnv(DreamConfig(world, TASK, num_envs=2, device="cpu", decode_images=False,
                                              settings=replace(settings, calibrated=False)))
    assert (uncalibrated.threshold, uncalibrated.hold) == (0.5, 1)



def test_relabelled_frames_are_hard_negatives_with_another_tasks_instruction():
    from wam.models.text import TextConfig, tokenize
    from wam.train.frame_cache import CachedEpisode, FrameCache
    from wam.train.judge import JudgeSource

    n = 400
    episodes = [CachedEpisode("d", 0, 0, n // 2, "open the drawer", has_state=True, has_actions=False, has_reward=True),
                CachedEpisode("d", 1, n // 2, n // 2, "close the window", has_state=True, has_actions=False, has_reward=True)]
    success = np.ones(n, bool)  # every frame a success of its own task
    cache = FrameCache(Path("."), np.empty((0,), np.uint8), np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32),
                       episodes, np.zeros(n, np.float32), success)
    source = JudgeSource(cache, np.zeros((n, 2, 2, 2), np.float16), episodes, [])
    text = TextConfig()
    plain = JudgeBatches([source], text, 500, seed=0).batch(0)
    assert float(plain["success"].mean()) == 1.0
    batch = JudgeBatches([source], text, 500, seed=0, relabel=0.3).batch(0)
    negatives = batch["success"] == 0
    assert 0.2 < float(negatives.float().mean()) < 0.4
    drawer, window = tokenize(["open the drawer"], text)[0], tokenize(["close the window"], text)[0]
    # a relabelled frame carries the other task's words; the others keep their own
    own = plain["text_ids"]
    for i in np.flatnonzero(negatives.numpy())[:20]:
        assert not torch.equal(batch["text_ids"][i], own[i]) and any(torch.equal(batch["text_ids"][i], t) for t in (drawer, window))
    single = JudgeSource(cache, source.latents, [episodes[0]], [])
    assert float(JudgeBatches([single], text, 200, seed=0, relabel=0.5).batch(0)["success"].mean()) == 1.0  # one task: none
