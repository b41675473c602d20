"""The recipe on data wam did not write: datasets laid out as lerobot's own writer lays them out (packed episodes,
several cameras, non-square frames, PNG-stored images, `next.*` fields, joint-space units) pass the check, pretrain,
finetune, and give a policy whose `act(raw observation)` returns an action of the data's size and units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import wam.policy
from wam.data import Dataset
from wam.data.check import check_dataset
from wam.errors import CheckpointError, DatasetError
from wam.runs import load_run
from wam.train.finetune import finetune
from wam.train.pretrain import pretrain

from tests.support.finetune_fixtures import tiny_finetune_config
from tests.support.lerobot_like import episode_arrays, write_lerobot_dataset
from tests.support.pretrain_fixtures import tiny_config

pytestmark = pytest.mark.slow  # pretrains and finetunes on each lerobot-like layout

KINDS = {
    # ALOHA-like: head and wrist cameras, 14-d joints, 50 fps
    "aloha": dict(cameras={"observation.images.top": (96, 96), "observation.images.wrist": (96, 96)}, state_dim=14,
                  action_dim=14, fps=50),
    # SO-100-like behind a webcam: one 480x640 camera, 6-d joints, 30 fps
    "so100": dict(cameras={"observation.images.front": (480, 640)}, state_dim=6, action_dim=6, fps=30),
    # PNG-stored frames (dtype: image)
    "png": dict(cameras={"observation.images.top": (64, 64)}, state_dim=6, action_dim=6, fps=30, image_storage="image"),
}


def write(root: Path, kind: str, **changes) -> Path:
    return write_lerobot_dataset(root, **{**KINDS[kind], "episodes": 3, "length": 16, **changes})


@pytest.fixture(scope="module", params=sorted(KINDS))
def trained(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(f"any_{kind}")
    data = write(root / "data", kind)
    pretrained = root / "pretrain"
    pretrain([data], pretrained, tiny_config(), progress=False)
    run = root / "wam"
    finetune(pretrained, [data], run, tiny_finetune_config(val_episodes=1), progress=False)
    return kind, data, pretrained, run


def test_the_dataset_passes_the_check(trained):
    _, data, _, _ = trained
    assert [p for p in check_dataset(data) if p.severity == "error"] == []


def test_the_run_records_the_spec_read_from_the_data(trained):
    kind, data, pretrained, run = trained
    record = load_run(run, "finetune")
    spec = KINDS[kind]
    assert record.spec.action_dim == spec["action_dim"] and record.spec.state_dim == spec["state_dim"]
    assert record.spec.num_views == len(spec["cameras"])
    assert record.spec.fps[str(data)] == spec["fps"]
    assert load_run(pretrained, "pretrain").spec.views == record.spec.views
    with pytest.raises(CheckpointError, match="a pretraining run, not a finetuned WAM"):
        load_run(pretrained, "finetune")


def test_the_policy_acts_on_a_raw_dataset_row_in_the_data_units(trained):
    kind, data, _, run = trained
    dataset = Dataset(data)
    row = dataset.window(0, 0, 1)
    actions = np.concatenate([dataset.low_dim(e.index)["action"] for e in dataset.episodes])
    policy = wam.policy.load(run, device="cpu")
    policy.reset(dataset.episodes[0].task)
    obs = {key: row[key][0] for key in dataset.camera_keys} | {"observation.state": row["observation.state"][0]}
    action = policy.act(obs)
    assert action.shape == (KINDS[kind]["action_dim"],)
    # raw units: within the range the data spans (joint angles up to ~3 rad), not clipped to [-1, 1]
    assert np.all(action >= actions.min(0) - 1e-5) and np.all(action <= actions.max(0) + 1e-5)
    assert actions.max() > 1.5 and np.abs(action).max() <= actions.max() + 1e-5
    with pytest.raises(ValueError, match=f"trained on {KINDS[kind]['state_dim']}"):
        policy.act({**obs, "observation.state": np.zeros(KINDS[kind]["state_dim"] + 1)})


def test_normalisation_travels_in_the_checkpoint(trained):
    kind, data, _, run = trained
    from wam.train.finetune import load_wam

    model = load_wam(run)
    actions = np.concatenate([Dataset(data).low_dim(e.index)["action"] for e in Dataset(data).episodes])
    np.testing.assert_allclose(model.action_norm.center.numpy(), actions.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(model.action_norm.high.numpy(), actions.max(0), rtol=1e-4, atol=1e-4)


def test_next_fields_reach_the_reward_heads_one_frame_later(tmp_path):
    """lerobot's next.reward at t is received after acting at t: wam's reward of frame t + 1."""
    from wam.train.frame_cache import build_frame_cache

    data = write(tmp_path / "d", "png")
    cache = build_frame_cache([data], tmp_path / "cache", 64, 6, 6, progress=False)
    arrays = episode_arrays(0, **{**KINDS["png"], "episodes": 3, "length": 16})
    assert all(e.has_reward for e in cache.episodes)
    rewards = np.asarray(arrays["next.reward"]).reshape(-1)
    np.testing.assert_allclose(cache.reward[1:15], rewards[:14])
    assert cache.reward[0] == 0.0
    for e in cache.episodes:  # nothing lost: the last transition lands on the last frame
        arrays = episode_arrays(e.episode, **{**KINDS["png"], "episodes": 3, "length": 16})
        done = np.asarray(arrays["next.success"]).reshape(-1)
        assert cache.success[e.start : e.start + e.length].any() == done.any()
        np.testing.assert_allclose(cache.reward[e.start : e.start + e.length].sum(),
                                   np.asarray(arrays["next.reward"]).reshape(-1).sum(), rtol=1e-5)
    assert cache.success.sum() == 2  # episodes 0 and 2 succeed, on their last frame (as lerobot's gym recordings do)


def test_a_checkpoint_with_another_action_size_is_refused_before_training(trained, tmp_path):
    kind, _, pretrained, run = trained
    other = write(tmp_path / "other", kind, action_dim=KINDS[kind]["action_dim"] + 1)
    with pytest.raises(CheckpointError, match="action"):
        finetune(pretrained, [other], tmp_path / "dyna", tiny_finetune_config(val_episodes=1), init_from=run, progress=False)
    assert not (tmp_path / "dyna" / "wam").exists()


def test_datasets_with_different_cameras_and_no_mapping_are_refused(tmp_path):
    a = write(tmp_path / "a", "aloha")
    b = write(tmp_path / "b", "aloha", cameras={"observation.images.high": (96, 96), "observation.images.wrist": (96, 96)})
    with pytest.raises(DatasetError, match="different cameras.*--cameras"):
        pretrain([a, b], tmp_path / "run", tiny_config(), progress=False)
    assert not (tmp_path / "run" / "tokenizer").exists()
    # named alternatives map them onto the same slots
    from dataclasses import replace

    pretrain([a, b], tmp_path / "run", replace(tiny_config(), cameras=("top|high", "wrist")), progress=False)
    assert load_run(tmp_path / "run", "pretrain").spec.camera_keys[str(b)] == ("observation.images.high",
                                                                                "observation.images.wrist")


def test_one_view_pretraining_and_two_view_robot_data_work_together(tmp_path):
    video = write(tmp_path / "video", "so100", cameras={"observation.images.front": (64, 64)})
    robot = write(tmp_path / "robot", "aloha", fps=30)
    pretrain([video], tmp_path / "pre", tiny_config(), progress=False)
    finetune(tmp_path / "pre", [robot], tmp_path / "wam", tiny_finetune_config(val_episodes=1), video=[video], progress=False)
    policy = wam.policy.load(tmp_path / "wam", device="cpu")
    assert len(policy.camera_keys) == 2 and policy.model.config.world.views == 2
    policy.reset("pick the cube")
    obs = {"images": {"top": np.zeros((96, 96, 3), np.uint8), "wrist": np.zeros((96, 96, 3), np.uint8)},
           "state": np.zeros(14, np.float32)}
    assert policy.act(obs).shape == (14,)


@pytest.mark.parametrize("trained", ["so100"], indirect=True)  # one robot is enough: the check is the same for all
def test_a_policy_of_another_robot_is_refused_by_the_simulator_evaluation(trained):
    _, _, _, run = trained
    from wam.dojo.evaluate import EvalConfig, evaluate_policy

    with pytest.raises(ValueError, match="6-d actions .* takes 4-d"):
        evaluate_policy(EvalConfig(run, ("reach-v3",), episodes=1, max_steps=4), progress=False)
