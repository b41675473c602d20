"""The PyTorch path: windows as tensors, mixed video and robot datasets, worker processes, seeded splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam.data import Dataset, DatasetError
from wam.data.torch_dataset import WindowDataset, make_loader, split_episodes

CAMERA = "observation.images.main"


def test_every_start_position_is_a_sample(clean_dataset, synth):
    window = 8
    ds = WindowDataset(clean_dataset, window=window)
    expected = sum(spec["length"] - window + 1 for spec in synth.MIXED)
    assert len(ds) == expected


def test_item_shapes_dtypes_and_mask(clean_dataset):
    ds = WindowDataset(clean_dataset, window=6)
    labelled = ds[0]
    assert labelled[CAMERA].shape == (6, 3, 32, 32) and labelled[CAMERA].dtype == torch.uint8
    assert labelled["observation.state"].shape == (6, 4) and labelled["observation.state"].dtype == torch.float32
    assert labelled["action"].shape == (6, 2)
    assert labelled["action_mask"].all()
    # the action-free episode (index 1) has zero actions and a false mask
    free = next(ds[i] for i in range(len(ds)) if ds[i]["episode_index"] == 1)
    assert not free["action_mask"].any()
    assert torch.count_nonzero(free["action"]) == 0
    assert free["task"] == "push"


def test_item_matches_reader_window(clean_dataset):
    ds = WindowDataset(clean_dataset, window=5)
    item = ds[7]
    raw = Dataset(clean_dataset).window(item["episode_index"], item["start"], 5)
    np.testing.assert_array_equal(item[CAMERA].permute(0, 2, 3, 1).numpy(), raw[CAMERA])
    np.testing.assert_array_equal(item["observation.state"].numpy(), raw["observation.state"])


def test_require_actions_skips_action_free_episodes(clean_dataset):
    ds = WindowDataset(clean_dataset, window=4, require_actions=True)
    assert {ds[i]["episode_index"] for i in range(len(ds))} == {0, 2}


def test_video_and_robot_datasets_batch_together(tmp_path, clean_dataset, synth):
    features = {k: v for k, v in synth.FEATURES.items() if k != "action"}
    video = synth.write_dataset(tmp_path / "video", [synth.make_episode(seed=9, length=12, labelled=False)], features)
    ds = WindowDataset([video, clean_dataset], window=4)
    loader = make_loader(ds, batch_size=len(ds), shuffle=False)
    batch = next(iter(loader))
    assert batch["action"].shape == (len(ds), 4, 2)
    from_video = batch["dataset_index"] == 0
    assert not batch["action_mask"][from_video].any()
    assert batch["action_mask"][~from_video].any()


def test_loader_with_worker_processes(clean_dataset):
    ds = WindowDataset(clean_dataset, window=4)
    loader = make_loader(ds, batch_size=4, shuffle=True, workers=2, seed=3)
    batches = list(loader)
    assert len(batches) == len(ds) // 4
    assert batches[0][CAMERA].shape == (4, 4, 3, 32, 32)
    again = [b["start"].tolist() for b in make_loader(ds, batch_size=4, shuffle=True, workers=0, seed=3)]
    assert [b["start"].tolist() for b in batches] == again  # same seed, same order, workers or not


def test_window_longer_than_every_episode_is_an_error(clean_dataset):
    with pytest.raises(DatasetError, match="no episode has 100 frames"):
        WindowDataset(clean_dataset, window=100)


def test_split_is_seeded_disjoint_and_complete(clean_dataset):
    dataset = Dataset(clean_dataset)
    train, val = split_episodes(dataset, 0.34, seed=0)
    assert sorted(train + val) == [0, 1, 2] and len(val) == 1
    assert split_episodes(dataset, 0.34, seed=0) == (train, val)
    seeds_differ = {tuple(split_episodes(dataset, 0.34, seed=s)[1]) for s in range(10)}
    assert len(seeds_differ) > 1


def test_datasets_naming_their_camera_differently_share_the_view_or_are_refused(tmp_path):
    """Two single-camera datasets share the one view; two two-camera datasets with other names need --cameras."""
    from tests.support.lerobot_like import write_lerobot_dataset

    from wam.errors import DatasetError

    small = dict(state_dim=3, action_dim=3, fps=10, episodes=1, length=6)
    a = write_lerobot_dataset(tmp_path / "a", cameras={"observation.images.top": (48, 48)}, **small)
    b = write_lerobot_dataset(tmp_path / "b", cameras={"observation.images.front": (48, 48)}, **small)
    both = WindowDataset([a, b], window=2)
    assert both.camera_keys == ["observation.images.top"]
    assert both[len(both) - 1]["observation.images.top"].shape == (2, 3, 48, 48)  # from b's "front"
    two = dict(small, cameras={"observation.images.top": (48, 48), "observation.images.wrist": (48, 48)})
    c = write_lerobot_dataset(tmp_path / "c", **two)
    d = write_lerobot_dataset(tmp_path / "d", **{**two, "cameras": {"observation.images.high": (48, 48),
                                                                    "observation.images.wrist": (48, 48)}})
    with pytest.raises(DatasetError, match="different cameras"):
        WindowDataset([c, d], window=2)
    mapped = WindowDataset([c, d], window=2, cameras=("top|high", "wrist"))
    assert mapped.camera_keys == ["observation.images.top", "observation.images.wrist"]
