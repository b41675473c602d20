"""Guards wam.data.reader: what Dataset gives back is what was written.

Low-dimensional features come back bit-exact with their dtypes, video within 35 dB PSNR,
windows agree with whole episodes, action-free episodes read as zeros with a False mask,
episode metadata (task, success, info) survives, and the object pickles for DataLoader workers.
"""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest

from wam.data import Dataset, DatasetError, Feature
from wam.data.layout import data_path


@pytest.fixture(scope="module")
def written(synth, tmp_path_factory):
    """The MIXED episodes at 64x64 (a size where the PSNR bound has a margin), and their dataset."""
    features = dict(synth.FEATURES)
    features[synth.CAMERA] = Feature("video", (64, 64, 3))
    episodes = [synth.make_episode(**spec, size=64) for spec in synth.MIXED]
    root = synth.write_dataset(tmp_path_factory.mktemp("reader") / "ds", episodes, features)
    return Dataset(root), episodes


def test_summary(written, synth):
    ds, episodes = written
    assert ds.num_episodes == 3 and ds.fps == synth.FPS
    assert ds.num_frames == sum(e.length for e in episodes)
    assert ds.tasks == ["pick", "push"]
    assert ds.camera_keys == [synth.CAMERA]
    assert ds.has_actions and ds.action_dim == 2
    assert [e.length for e in ds.episodes] == [e.length for e in episodes]
    assert [e.task for e in ds.episodes] == ["pick", "push", "pick"]
    assert repr(ds).startswith("Dataset(")


def test_low_dim_bit_exact(written):
    ds, episodes = written
    for i, episode in enumerate(episodes):
        low = ds.low_dim(i)
        for key in ("observation.state", "next.reward", "next.success") + (("action",) if episode.has_actions else ()):
            expected = episode.data[key]
            assert low[key].dtype == expected.dtype, key
            assert low[key].shape == expected.shape, key
            np.testing.assert_array_equal(low[key], expected, err_msg=key)
        assert low["observation.state"].dtype == np.float32
        assert low["next.success"].dtype == np.bool_
        np.testing.assert_array_equal(low["frame_index"], np.arange(episode.length))


def test_video_psnr(written, synth):
    ds, episodes = written
    for i, episode in enumerate(episodes):
        frames = ds.frames(i)
        assert frames.shape == episode.images[synth.CAMERA].shape and frames.dtype == np.uint8
        assert synth.psnr(episode.images[synth.CAMERA], frames) >= 35.0


def test_episode_metadata(written):
    ds, episodes = written
    for i, (meta, episode) in enumerate(zip(ds.episodes, episodes)):
        assert meta.index == i
        assert meta.success is episode.success
        assert meta.has_actions is episode.has_actions
        assert meta.info == episode.info
    assert [e.from_index for e in ds.episodes] == [0, 20, 44]


def test_mixed_labelled_and_action_free(written, synth):
    ds, episodes = written
    assert [e.has_actions for e in ds.episodes] == [True, False, True]
    free = ds.low_dim(1)
    assert "action" not in free  # absent, not zeros
    assert pq.read_table(ds.data_file(1))["action"].null_count == episodes[1].length
    window = ds.window(1, 3, 6)
    np.testing.assert_array_equal(window["action"], np.zeros((6, 2), np.float32))
    assert window["action"].dtype == np.float32
    assert window["action_mask"].dtype == np.bool_ and not window["action_mask"].any()
    labelled = ds.window(2, 3, 6)
    np.testing.assert_array_equal(labelled["action"], episodes[2].data["action"][3:9])
    assert labelled["action_mask"].shape == (6,) and labelled["action_mask"].all()


@pytest.mark.parametrize("episode,start,length", [(0, 0, 4), (0, 7, 5), (0, 16, 4), (1, 9, 8), (1, 23, 1), (2, 0, 16)])
def test_window_matches_whole_episode(written, synth, episode, start, length):
    ds, episodes = written
    window = ds.window(episode, start, length)
    whole = ds.episode(episode)
    for key in (synth.CAMERA, "observation.state", "action", "action_mask", "next.reward"):
        np.testing.assert_array_equal(window[key], whole[key][start : start + length], err_msg=key)
    assert window[synth.CAMERA].shape == (length, 64, 64, 3)
    assert window["observation.state"].shape == (length, 4)
    np.testing.assert_array_equal(window["observation.state"], episodes[episode].data["observation.state"][start : start + length])
    np.testing.assert_array_equal(window["frame_index"], np.arange(start, start + length))
    assert window["task"] == episodes[episode].task and window["episode_index"] == episode


def test_whole_episode(written, synth):
    ds, episodes = written
    whole = ds.episode(2)
    n = episodes[2].length
    assert whole[synth.CAMERA].shape == (n, 64, 64, 3)
    assert whole["action_mask"].all() and whole["task"] == "pick"
    np.testing.assert_array_equal(whole["observation.state"], episodes[2].data["observation.state"])


@pytest.mark.parametrize("episode,start,length", [(0, -1, 2), (0, 18, 3), (0, 0, 0), (1, 0, 25), (2, 16, 1)])
def test_window_outside_episode_refused(written, episode, start, length):
    with pytest.raises(DatasetError, match="outside episode"):
        written[0].window(episode, start, length)


def test_out_of_range_episode_and_frames_refused(written):
    ds = written[0]
    for bad in (-1, 3):
        with pytest.raises(DatasetError, match="out of range"):
            ds.low_dim(bad)
    with pytest.raises(DatasetError):
        ds.frames(0, start=19, count=2)


def test_pickle_round_trip(written, synth):
    ds = written[0]
    before = ds.window(0, 5, 6)
    for fresh in (Dataset(ds.root), ds):  # before and after its caches are warm
        clone = pickle.loads(pickle.dumps(fresh))
        assert clone.num_episodes == ds.num_episodes and clone.tasks == ds.tasks
        after = clone.window(0, 5, 6)
        assert set(after) == set(before)
        for key, value in before.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(after[key], value, err_msg=key)
            else:
                assert after[key] == value, key


def test_action_free_dataset(tmp_path, synth):
    features = {k: f for k, f in synth.FEATURES.items() if k != "action"}
    episodes = [synth.make_episode(s, 10, labelled=False) for s in (0, 1)]
    ds = Dataset(synth.write_dataset(tmp_path / "ds", episodes, features))
    assert not ds.has_actions and ds.action_dim is None
    assert [e.has_actions for e in ds.episodes] == [False, False]
    window = ds.window(1, 2, 4)
    assert "action" not in window
    assert window["action_mask"].shape == (4,) and not window["action_mask"].any()
    np.testing.assert_array_equal(window["observation.state"], episodes[1].data["observation.state"][2:6])
    assert "action" not in pq.read_table(data_path(ds.root, 0)).column_names


def test_missing_dataset_named(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        Dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="info.json"):
        Dataset(tmp_path / "empty")


# -- datasets as lerobot writes them: packed files, AV1 or H.264, PNG-stored cameras --------------
from tests.support.lerobot_like import VARIANTS, episode_arrays, write_lerobot_dataset  # noqa: E402


@pytest.fixture(scope="module")
def lerobot_like(tmp_path_factory):
    """Each variant written once: {name: (Dataset, kwargs)}."""
    out = {}
    for name, kwargs in VARIANTS.items():
        root = write_lerobot_dataset(tmp_path_factory.mktemp("lerobot") / name, **kwargs)
        out[name] = (Dataset(root), kwargs)
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lerobot_like_summary_and_cameras(lerobot_like, variant):
    ds, kwargs = lerobot_like[variant]
    cameras = kwargs["cameras"]
    assert ds.camera_keys == list(cameras)  # info.json order, video or image alike
    storage = "image" if kwargs.get("image_storage") == "image" else "video"
    assert [ds.camera_storage(k) for k in ds.camera_keys] == [storage] * len(cameras)
    assert {k: ds.camera_size(k) for k in ds.camera_keys} == cameras
    assert not set(ds.camera_keys) & set(ds.data_keys)
    assert ds.num_episodes == kwargs.get("episodes", 3)
    assert [e.length for e in ds.episodes] == list(kwargs["length"])
    assert ds.fps == kwargs.get("fps", 50)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lerobot_like_episodes_read_back(lerobot_like, synth, variant):
    """Every episode of the packed files: low-dim exact, frames at the right offset (exact for PNG)."""
    ds, kwargs = lerobot_like[variant]
    for e, meta in enumerate(ds.episodes):
        expected = episode_arrays(e, **kwargs)
        whole = ds.episode(e)
        for key in ("observation.state", "action", "next.reward", "next.done", "next.success"):
            if key not in expected:
                assert key not in whole
                continue
            np.testing.assert_array_equal(whole[key], expected[key].reshape(whole[key].shape), err_msg=key)
            assert whole[key].dtype == expected[key].dtype, key
        for key, (height, width) in kwargs["cameras"].items():
            frames = whole[key]
            assert frames.shape == (meta.length, height, width, 3) and frames.dtype == np.uint8
            if ds.camera_storage(key) == "image":
                np.testing.assert_array_equal(frames, expected[key], err_msg=key)
                continue
            aligned = synth.psnr(frames, expected[key])
            assert aligned > 25.0, (key, e, aligned)
            # the episode's place in the shared mp4, to the frame: one frame off is clearly worse
            off_by_one = max(synth.psnr(frames[1:], expected[key][:-1]), synth.psnr(frames[:-1], expected[key][1:]))
            assert aligned > off_by_one + 3.0, (key, e, aligned, off_by_one)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lerobot_like_windows_match_whole_episodes(lerobot_like, variant):
    ds, kwargs = lerobot_like[variant]
    last = ds.num_episodes - 1
    for episode, start, length in [(0, 0, 3), (1, 2, 5), (last, ds.episodes[last].length - 4, 4)]:
        window, whole = ds.window(episode, start, length), ds.episode(episode)
        for key in [*ds.camera_keys, "observation.state", "action"]:
            np.testing.assert_array_equal(window[key], whole[key][start : start + length], err_msg=key)
        assert window["task"] == ds.episodes[episode].task


def test_lerobot_like_tasks_and_values(lerobot_like):
    ds, _ = lerobot_like["h264"]
    assert ds.tasks == ["pick the cube", "push the cube"]
    assert [e.task for e in ds.episodes] == ["pick the cube", "push the cube", "pick the cube"]
    state = np.concatenate([ds.low_dim(e)["observation.state"] for e in range(ds.num_episodes)])
    joints, grippers = state[:, [0, 1, 2, 3, 4, 5, 7]], state[:, [6, 13]]
    assert joints.min() > 0 and joints.max() < 3.2 and joints.max() > 1.5  # radians, not unit range
    assert grippers.min() >= 0 and grippers.max() <= 0.08
    assert ds.features["observation.state"].names[:2] == ("left_waist", "left_shoulder")
