import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from wam.config import DreamSettings
from wam.dojo.dream_env import DreamConfig, DreamEnv, DreamVectorEnv
from wam.envs import make
from wam.errors import CheckpointError

from tests.support.finetune_fixtures import tiny_dream_run
from tests.support.pretrain_fixtures import tiny_run

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

TASK = "move the square"


def dream_run(tmp_path_factory) -> Path:
    return tiny_dream_run(tmp_path_factory)


def test_the_reward_and_success_heads_train_on_a_tiny_dataset(tmp_path_factory):
    metrics = [json.loads(line) for line in (dream_run(tmp_path_factory) / "wam" / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if "reward_mse" in m]
    assert train[-1]["reward_mse"] < 0.5 * train[0]["reward_mse"]
    assert train[-1]["success_bce"] < train[0]["success_bce"]


def test_a_dream_passes_gymnasiums_env_checker(tmp_path_factory):
    env = make(f"dream/{dream_run(tmp_path_factory)}", task=TASK, max_episode_steps=20, device="cpu")
    assert isinstance(env, DreamEnv)
    check_env(env, skip_render_check=False)


def test_a_batch_of_dreams_equals_the_same_dreams_one_by_one(tmp_path_factory):
    run = dream_run(tmp_path_factory)
    seeds = [5, 6, 7]
    batch = DreamVectorEnv(DreamConfig(run, TASK, num_envs=3, max_episode_steps=8, device="cpu"))
    obs, _ = batch.reset(seed=seeds)
    actions = np.random.default_rng(0).uniform(-1, 1, (10, 3, 4)).astype(np.float32)
    trace = [(obs, None, None)]
    for a in actions:
        obs, reward, terminated, truncated, _ = batch.step(a)
        trace.append((obs, reward, terminated | truncated))
    for i, seed in enumerate(seeds):
        single = DreamVectorEnv(DreamConfig(run, TASK, num_envs=1, max_episode_steps=8, device="cpu"))
        obs, _ = single.reset(seed=[seed])
        np.testing.assert_allclose(obs["latent"][0], trace[0][0]["latent"][i], atol=1e-5)
        for step, a in enumerate(actions, start=1):
            obs, reward, terminated, truncated, _ = single.step(a[i][None])
            np.testing.assert_allclose(obs["latent"][0], trace[step][0]["latent"][i], atol=1e-4)
            np.testing.assert_allclose(obs["state"][0], trace[step][0]["state"][i], atol=1e-4)
            assert reward[0] == pytest.approx(trace[step][1][i], abs=1e-4)
            assert bool(terminated[0] | truncated[0]) == bool(trace[step][2][i])


def test_images_are_decoded_only_when_a_frame_changes_and_always_match_the_latent(tmp_path_factory):
    env = DreamVectorEnv(DreamConfig(dream_run(tmp_path_factory), TASK, num_envs=2, max_episode_steps=5, device="cpu"))
    decoded = []
    original = env._decode
    env._decode = lambda latents: decoded.append(len(latents)) or original(latents)
    obs, _ = env.reset(seed=0)
    changed = 2  # both first frames
    for a in np.random.default_rng(1).uniform(-1, 1, (9, 2, 4)).astype(np.float32):
        before = obs["latent"]
        obs, *_ = env.step(a)
        np.testing.assert_array_equal(obs["image"], original(torch.from_numpy(obs["latent"])))
        changed += int(sum(not np.array_equal(x, y) for x, y in zip(before, obs["latent"])))
    # One decoded row per new frame (model step or reset); none for control steps that keep the frame.
    assert sum(decoded) == changed


def test_episodes_end_at_the_horizon_and_autoreset_on_the_next_step(tmp_path_factory):
    env = DreamVectorEnv(DreamConfig(dream_run(tmp_path_factory), TASK, num_envs=2, max_episode_steps=4,
                                     terminate_on_success=False, decode_images=False, device="cpu"))
    obs, _ = env.reset(seed=0)
    assert "image" not in obs and obs["latent"].shape[0] == 2
    done = []
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(np.zeros((2, 4), np.float32))
        done.append(truncated.copy())
    assert [d.all() for d in done] == [False, False, False, True, False]  # step 5 is the reset
    assert env.render().shape == (2, 64, 64, 3)


def test_actions_are_checked(tmp_path_factory):
    env = make(f"dream/{dream_run(tmp_path_factory)}", task=TASK, device="cpu")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))


def test_a_dream_of_a_checkpoint_without_an_action_encoder_is_a_clear_error(tmp_path_factory):
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="no action encoder"):
        make(f"dream/{pretrained}", task=TASK)
    with pytest.raises(ValueError, match="which task"):
        make(f"dream/{dream_run(tmp_path_factory)}")


def test_a_policy_is_evaluated_in_a_dream_like_in_the_simulator(tmp_path_factory):
    from wam.dojo.evaluate import EvalConfig, evaluate_policy

    run = dream_run(tmp_path_factory)
    result = evaluate_policy(EvalConfig(run, (TASK,), episodes=2, max_steps=10, env=f"dream/{run}"), progress=False)
    assert result["tasks"][TASK]["episodes"] == 2
    assert all(1 <= e["length"] <= 10 for e in result["episode_results"])


def test_an_rl_step_in_a_dream_changes_the_policy_and_keeps_actions_in_bounds(tmp_path_factory, tmp_path):
    import torch

    import wam.policy
    from wam.train.finetune import load_wam
    from wam.train.rl import RLConfig, rl

    run = dream_run(tmp_path_factory)
    config = RLConfig(task=TASK, iterations=2, starts=2, group=3, horizon=8, lr=1e-2, device="cpu")
    summary = rl(run, run, tmp_path / "rl", config, progress=False)
    before, after = load_wam(run), load_wam(tmp_path / "rl")
    assert not torch.equal(before.action_chunk[0].weight, after.action_chunk[0].weight)
    assert torch.equal(before.world.blocks[0].qkv.weight, after.world.blocks[0].qkv.weight)  # only the head trains
    assert set(summary["dream_success"]) == {"first", "last"}
    policy = wam.policy.load(tmp_path / "rl", device="cpu")
    policy.reset(TASK)
    env = make(f"dream/{run}", task=TASK, device="cpu")
    obs, _ = env.reset(seed=1)
    for _ in range(6):
        action = policy.act(obs)
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)


def test_practice_dreams_start_from_the_given_datasets_first_frames(tmp_path_factory, tmp_path):
    from tests.support.pretrain_fixtures import write_dataset

    from wam.errors import DatasetError
    from wam.train.rl import RLConfig, rl

    run = dream_run(tmp_path_factory)
    elsewhere = write_dataset(tmp_path / "other", range(60, 62), task="stack the blocks", rewards=True)
    config = RLConfig(task=TASK, iterations=1, starts=1, group=2, horizon=4, device="cpu", start_data=(str(elsewhere),))
    with pytest.raises(DatasetError, match=f"{elsewhere}.*no episode of task"):
        rl(run, run, tmp_path / "rl", config, progress=False)
    assert not (tmp_path / "rl").exists(), "a refused run writes nothing"
    starts = write_dataset(tmp_path / "starts", range(70, 75), rewards=True)
    config = RLConfig(task=TASK, iterations=1, starts=1, group=2, horizon=4, device="cpu", start_data=(str(starts),),
                      dream=DreamSettings(success_hold=2))
    summary = rl(run, run, tmp_path / "rl", config, progress=False)
    assert json.loads((tmp_path / "rl" / "rl.json").read_text())["config"]["start_data"] == [str(starts)]
    assert 0.0 <= summary["dream_success"]["last"] <= 1.0


def test_dreams_started_anywhere_start_at_the_datas_frames_before_each_success(tmp_path_factory, tmp_path):
    from tests.support.pretrain_fixtures import write_dataset

    from wam.data import Dataset
    from wam.train.rl import RLConfig, rl

    run = dream_run(tmp_path_factory)
    data = write_dataset(tmp_path / "starts", range(80, 84), rewards=True)
    expected = []
    dataset = Dataset(data)
    for meta in dataset.episodes:
        low_dim = dataset.low_dim(meta.index)
        success = np.ravel(low_dim["success"]).astype(bool)
        expected.append(low_dim["observation.state"][: int(np.argmax(success)) if success.any() else len(success)])
    expected = np.concatenate(expected)
    assert len(expected) > 4, "the fixture's episodes must not all succeed at their first frame"
    dreams = DreamVectorEnv(DreamConfig(run, TASK, num_envs=8, data=(data,), device="cpu", decode_images=False,
                                        start_anywhere=True))
    np.testing.assert_allclose(dreams.start_states.numpy(), expected, atol=1e-6)
    obs, _ = dreams.reset(seed=list(range(8)))
    firsts = np.stack([dataset.low_dim(m.index)["observation.state"][0] for m in dataset.episodes])
    assert not all(np.isclose(firsts, s, atol=1e-6).all(1).any() for s in obs["state"]), "some starts are mid-episode"
    config = RLConfig(task=TASK, iterations=1, starts=2, group=2, horizon=4, device="cpu", start_data=(str(data),),
                      start_anywhere=True)
    rl(run, run, tmp_path / "rl", config, progress=False)
    assert json.loads((tmp_path / "rl" / "rl.json").read_text())["config"]["start_anywhere"] is True


def test_a_wam_finetuned_without_rewards_cannot_dream(tmp_path_factory):
    from tests.support.finetune_fixtures import tiny_wam_run

    run, _ = tiny_wam_run(tmp_path_factory)  # its robot data has no reward or success features
    with pytest.raises(CheckpointError, match="without rewards"):
        make(f"dream/{run}", task=TASK)


def test_a_dream_starts_from_the_frame_it_is_given(tmp_path_factory):
    env = DreamVectorEnv(DreamConfig(dream_run(tmp_path_factory), TASK, num_envs=2, max_episode_steps=5, device="cpu"))
    image = np.random.default_rng(3).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    state = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]], np.float32)
    obs, _ = env.reset(seed=0, options={"image": image, "state": state})
    with torch.no_grad():
        expected = env.tokenizer.encode(torch.from_numpy(image).permute(0, 3, 1, 2))
    np.testing.assert_allclose(obs["latent"], expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(obs["state"], state)
    with pytest.raises(ValueError, match="'image' must be uint8 of shape"):
        env.reset(options={"image": image[:1], "state": state})
    with pytest.raises(ValueError, match="'image' and 'state'"):
        env.reset(options={"image": image})
    single = make(f"dream/{dream_run(tmp_path_factory)}", task=TASK, device="cpu")
    obs, _ = single.reset(seed=1, options={"image": image[1], "state": state[1]})
    np.testing.assert_allclose(obs["latent"], expected[1].numpy(), atol=1e-6)


def test_bf16_dreams_stay_close_to_float32_dreams(tmp_path_factory):
    run = dream_run(tmp_path_factory)
    actions = np.random.default_rng(2).uniform(-1, 1, (6, 2, 4)).astype(np.float32)
    traces = []
    for bf16 in (False, True):
        env = DreamVectorEnv(DreamConfig(run, TASK, num_envs=2, max_episode_steps=50, decode_images=False, device="cpu", settings=DreamSettings(bf16=bf16)))
        obs, _ = env.reset(seed=4)
        for a in actions:
            obs, reward, *_ = env.step(a)
        traces.append((obs["latent"], obs["state"], reward))
        assert obs["latent"].dtype == np.float32
    (lat32, state32, reward32), (lat16, state16, reward16) = traces
    assert not np.array_equal(lat32, lat16)  # bf16 really ran
    np.testing.assert_allclose(lat16, lat32, atol=0.05)
    np.testing.assert_allclose(state16, state32, atol=0.05)
    np.testing.assert_allclose(reward16, reward32, atol=0.5)


def script_success_logits(env: DreamVectorEnv, logits: list[float]) -> None:
    """The dream's real model steps, with the success logit of each successive model step replaced by `logits`."""
    from types import SimpleNamespace

    verdicts = iter(logits)
    model_step = env.stepper.step

    def scripted(*args):
        latents, state, reward, success = model_step(*args)
        return latents, state, reward, torch.full_like(success, next(verdicts))

    env.stepper = SimpleNamespace(step=scripted)


@pytest.mark.parametrize("hold, done_at_model_step", [(1, 1), (2, 4), (3, 5), (4, None)])
def test_the_task_is_done_only_when_the_success_head_agrees_hold_model_steps_in_a_row(tmp_path_factory, hold, done_at_model_step):
    env = DreamVectorEnv(DreamConfig(dream_run(tmp_path_factory), TASK, num_envs=1, max_episode_steps=40, decode_images=False,
                                     device="cpu", settings=DreamSettings(success_hold=hold)))
    script_success_logits(env, [5.0, -5.0, 5.0, 5.0, 5.0] + [-5.0] * 100)
    env.reset(seed=0)
    ended = None
    for control_step in range(1, 41):
        _, _, terminated, truncated, info = env.step(np.zeros((1, 4), np.float32))
        if terminated[0] or truncated[0]:
            ended = (control_step, bool(terminated[0]), bool(info["success"][0]))
            break
    if done_at_model_step is None:
        assert ended == (40, False, False)  # never four in a row: the horizon ends it
    else:
        assert ended == (done_at_model_step * env.stride, True, True)


def test_a_success_hold_below_one_is_refused():
    with pytest.raises(ValueError, match="success_hold"):
        DreamSettings(success_hold=0)


@pytest.mark.parametrize("tail, expected", [([5.0, -5.0, -5.0], False), ([-5.0, 5.0, 5.0], True)])
def test_a_final_verdict_judges_a_dream_once_on_its_last_model_steps(tmp_path_factory, tail, expected):
    """Successes early on (which an "any" verdict would end the dream at) count for nothing; the mean probability
    of the last `final_window` model steps decides, and only the last step reports it."""
    env = DreamVectorEnv(DreamConfig(dream_run(tmp_path_factory), TASK, num_envs=1, max_episode_steps=40, decode_images=False,
                                     device="cpu", settings=DreamSettings(verdict="final", final_window=3)))
    model_steps = 40 // env.stride
    script_success_logits(env, [5.0] * (model_steps - 3) + tail + [-5.0] * 10)
    env.reset(seed=0)
    reported = []
    for control_step in range(1, 41):
        _, _, terminated, truncated, info = env.step(np.zeros((1, 4), np.float32))
        reported.append(bool(info["success"][0]))
        assert not terminated[0], "a final verdict never ends a dream early"
        assert bool(truncated[0]) == (control_step == 40)
    assert reported == [False] * 39 + [expected]


def test_dream_settings_refuse_what_cannot_be_judged():
    with pytest.raises(ValueError, match="verdict must be one of any, final, got 'last'"):
        DreamSettings(verdict="last")
    with pytest.raises(ValueError, match="final_window"):
        DreamSettings(verdict="final", final_window=0)
    with pytest.raises(ValueError, match="success_threshold"):
        DreamSettings(success_threshold=1.5)


def test_an_option_a_dream_does_not_know_is_refused_not_swallowed(tmp_path_factory):
    with pytest.raises(TypeError, match="succes_hold"):  # misspelled: once silently ignored
        make(f"dream/{dream_run(tmp_path_factory)}", task=TASK, device="cpu", succes_hold=3)


def test_a_two_camera_run_dreams_judges_and_distils_its_views_side_by_side(tmp_path):
    """Latents and decoded images hold the run's two camera views side by side, in the observation space, the start
    frames, reset options, and the judge's and the student's inputs."""
    from dataclasses import replace

    from tests.support.finetune_fixtures import tiny_finetune_config
    from tests.support.lerobot_like import write_lerobot_dataset
    from wam.config import distill_preset, judge_preset
    from wam.train.distill import distill, load_student
    from wam.train.finetune import finetune
    from wam.train.judge import load_judge, train_judge

    task = "pick the cube"
    data = write_lerobot_dataset(tmp_path / "data", cameras={"observation.images.top": (64, 64),
                                                             "observation.images.wrist": (48, 64)},
                                 state_dim=4, action_dim=4, fps=10, episodes=4, length=10, tasks=(task,))
    run = tmp_path / "run"
    finetune(None, [data], run, tiny_finetune_config(steps=2, val_episodes=1, scratch_tokenizer_steps=2), progress=False)
    short = lambda preset: replace(preset, train=replace(preset.train, device="cpu", steps=2, eval_every=2,  # noqa: E731
                                                         checkpoint_every=2))
    train_judge(run, [], short(judge_preset("tiny")), progress=False)
    distill(run, short(distill_preset("tiny")), progress=False)
    assert load_judge(run).config.views == 2 and load_student(run).config.views == 2

    for kind in ({}, {"judge": True}, {"student": True}):
        dreams = DreamVectorEnv(DreamConfig(run, task, num_envs=2, max_episode_steps=4, device="cpu",
                                            settings=DreamSettings(**kind)))
        c, h, _ = dreams.single_observation_space["latent"].shape
        assert dreams.single_observation_space["latent"].shape == (c, h, 2 * h)
        assert dreams.single_observation_space["image"].shape == (64, 128, 3)
        obs, _ = dreams.reset(seed=0)
        assert dreams.observation_space.contains(obs)
        middle = (dreams.single_action_space.low + dreams.single_action_space.high) / 2
        for _ in range(3):
            obs, *_ = dreams.step(np.stack([middle, middle]))
        assert dreams.observation_space.contains(obs)
        obs, _ = dreams.reset(options={"image": obs["image"], "state": obs["state"]})  # a strip of both views
        assert obs["image"].shape == (2, 64, 128, 3)
        with pytest.raises(ValueError, match=r"\(2, 64, 128, 3\)"):
            dreams.reset(options={"image": obs["image"][:, :, :64], "state": obs["state"]})
