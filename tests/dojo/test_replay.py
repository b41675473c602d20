"""Guards wam.dojo.replay: recorded episodes replayed open-loop in a dream, and the verdict rates."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from wam.data import Dataset
from wam.dojo.replay import ReplayedEpisode, agreement, judge_real_frames, replay_in_dream
from wam.errors import DatasetError

from tests.support.finetune_fixtures import tiny_dream_run
from tests.support.pretrain_fixtures import write_dataset

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

TASK = "move the square"


def test_each_episode_gets_the_verdict_its_own_actions_earn(tmp_path_factory, tmp_path, monkeypatch):
    """With a success head scripted to fire on a fast rightward frame of actions, the verdicts of a batched replay
    are exactly those each episode's recorded actions imply (no padding, batching or off-by-one leaks in)."""
    import torch

    from wam.dojo import dream_env

    class Scripted(dream_env.DreamVectorEnv):
        def __init__(self, config):
            super().__init__(config)
            model_step = self.stepper.step

            def step(latents, actions, text_ids, states):  # actions: (G, T, stride, A)
                next_latents, next_state, reward, _ = model_step(latents, actions, text_ids, states)
                return next_latents, next_state, reward, torch.where(actions[..., 0].mean(-1) > 0.5, 5.0, -5.0)

            self.stepper = SimpleNamespace(step=step)

    from types import SimpleNamespace

    monkeypatch.setattr(dream_env, "DreamVectorEnv", Scripted)
    world = tiny_dream_run(tmp_path_factory)
    data = write_dataset(tmp_path / "episodes", range(90, 98), length=12, rewards=True)
    dataset, stride = Dataset(data), int(json.loads((Path(world) / "finetune.json").read_text())["stride"])
    for horizon, length, steps in ((None, 11, 11), (5, 5, 5), (16, 11, 16)):  # past the recording: zero actions
        replayed = replay_in_dream(world, [data], [TASK], device="cpu", horizon=horizon)
        assert [e.length for e in replayed] == [length] * 8
        expected, real = [], []
        for index in range(8):
            low = dataset.low_dim(index)
            x = np.zeros(steps)
            x[:length] = low["action"][:length, 0].clip(-1, 1)
            frames = x[: len(x) // stride * stride].reshape(-1, stride).mean(1)  # one model step per frame of actions
            expected.append(bool((frames > 0.5).any()))
            real.append(bool(low["success"][1 : length + 1].any()))  # reality over the same actions
        assert True in expected and False in expected, "the fixture should give both verdicts"
        assert [e.dream_success for e in replayed] == expected
        assert [e.real_success for e in replayed] == real


def test_the_grounded_verdict_reads_each_real_frame_with_its_own_actions_and_state(tmp_path_factory, tmp_path,
                                                                                 monkeypatch):
    """A success head scripted to fire when the frame being judged has a fast rightward frame of actions AND its
    real state lies right of a cut gives, for every episode, the verdict those recorded frames imply: frames of
    both stride offsets are judged, each with its own actions and state, never more context than the world's,
    and never past the horizon."""
    import torch

    from wam.dojo import dream_env

    world = tiny_dream_run(tmp_path_factory)
    data = write_dataset(tmp_path / "episodes", range(90, 98), length=12, rewards=True)
    dataset, stride = Dataset(data), 2
    states = [dataset.low_dim(i)["observation.state"] for i in range(8)]
    cut = float(np.median(np.concatenate([s[:, 0] for s in states])))
    load, seen, only_frame = dream_env._load_dreamer, [], []

    def scripted_loader(run, device):
        model, tokenizer, record = load(run, device)
        record = replace(record, stride=stride)  # the tiny world steps every control step; judge two a frame
        context = record.config.window - 1

        def step(latents, actions, text_ids, state):
            seen.append(latents.shape[1])
            assert latents.shape[1] <= context and len(text_ids) == len(latents)
            fire = (actions[:, -1, :, 0].mean(-1) > 0.5) & (state[:, -1, 0] > cut)
            if only_frame:  # fire on one odd frame of one episode, recognised by its real state
                fire = (state[:, -1] == torch.tensor(np.array(only_frame[0]))).all(-1)
            shape = latents.shape[:2]
            return latents, state, torch.zeros(shape), torch.where(fire[:, None], 5.0, -5.0).expand(shape)

        model.step = step
        return model, tokenizer, record

    monkeypatch.setattr(dream_env, "_load_dreamer", scripted_loader)
    for horizon in (None, 6):
        judged = judge_real_frames(world, [data], [TASK], device="cpu", horizon=horizon)
        expected = []
        for index in range(8):
            low, acted = dataset.low_dim(index), (horizon or 11)
            x = low["action"][:acted, 0].clip(-1, 1)
            expected.append(any(x[f: f + stride].mean() > 0.5 and states[index][f, 0] > cut
                                for f in range(len(x) - stride + 1)))
        assert True in expected and False in expected, "the fixture should give both verdicts"
        assert [e.dream_success for e in judged] == expected
        assert [e.length for e in judged] == [horizon or 11] * 8
    assert max(seen) > 1, "later frames are read with real history"
    only_frame.append(states[5][3])  # frame 3: only the second stride offset judges it
    assert [e.dream_success for e in judge_real_frames(world, [data], [TASK], device="cpu")] == [i == 5 for i in range(8)]


def test_the_grounded_verdict_refuses_a_hold_below_one(tmp_path_factory, tmp_path):
    data = write_dataset(tmp_path / "episodes", range(2), rewards=True)
    with pytest.raises(ValueError, match="success_hold"):
        judge_real_frames(tiny_dream_run(tmp_path_factory), [data], [TASK], device="cpu", success_hold=0)


def test_a_task_without_episodes_is_a_clear_error(tmp_path_factory, tmp_path):
    data = write_dataset(tmp_path / "episodes", range(2), rewards=True)
    with pytest.raises(DatasetError, match="no episode of task 'stack the blocks'"):
        replay_in_dream(tiny_dream_run(tmp_path_factory), [data], ["stack the blocks"], device="cpu")


def test_a_horizon_below_one_is_refused(tmp_path_factory, tmp_path):
    data = write_dataset(tmp_path / "episodes", range(2), rewards=True)
    with pytest.raises(ValueError, match="horizon"):
        replay_in_dream(tiny_dream_run(tmp_path_factory), [data], [TASK], device="cpu", horizon=0)


def test_agreement_rates():
    def ep(real, dream):
        return ReplayedEpisode("t", "s", real, dream, 10)

    rates = agreement([ep(True, True), ep(True, False), ep(False, True), ep(False, False), ep(False, False)])
    assert rates["true_positive_rate"] == 0.5 and rates["false_positive_rate"] == pytest.approx(1 / 3)
    assert rates["agreement"] == 0.6 and rates["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert agreement([ep(True, True)])["false_positive_rate"] is None
    assert np.isclose(agreement([ep(False, True)])["dream_success"], 1.0)
