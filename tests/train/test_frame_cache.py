"""The frame cache: every frame decoded once, reused while the datasets are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wam.data import Dataset
from wam.train.frame_cache import build_frame_cache, link_matching_cache, load_frame_cache

from tests.support.pretrain_fixtures import SIZE, add_episodes, copy_dataset, write_dataset  # noqa: F401


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A labelled dataset (3 episodes) and an action-free one (2 episodes, one of them without state)."""
    root = tmp_path_factory.mktemp("cache_data")
    labelled = write_dataset(root / "labelled", [1, 2, 3], length=12)
    video = write_dataset(root / "video", [4, 5], length=10, labelled=False, state=False, task="watch the square")
    return labelled, video


def build(paths, root: Path):
    return build_frame_cache(paths, root, SIZE, 4, 4, progress=False)


def test_frames_state_and_actions_equal_the_datasets(datasets, tmp_path):
    labelled, video = datasets
    cache = build([labelled, video], tmp_path / "cache")
    assert cache.frames.shape == (3 * 12 + 2 * 10, SIZE, SIZE, 3) and cache.frames.dtype == np.uint8
    assert cache.image_size == SIZE
    assert [(e.episode, e.start, e.length) for e in cache.episodes] == [(0, 0, 12), (1, 12, 12), (2, 24, 12), (0, 36, 10), (1, 46, 10)]
    assert [(e.has_state, e.has_actions) for e in cache.episodes] == [(True, True)] * 3 + [(False, False)] * 2
    assert cache.tasks == ["move the square", "watch the square"]
    for episode in cache.episodes:
        dataset = Dataset(episode.dataset)
        rows = slice(episode.start, episode.start + episode.length)
        np.testing.assert_array_equal(cache.frames[rows], dataset.frames(episode.episode))
        low = dataset.low_dim(episode.episode)
        if episode.has_state:
            np.testing.assert_array_equal(cache.state[rows], low["observation.state"])
            np.testing.assert_array_equal(cache.action[rows], low["action"])
        else:
            assert not cache.state[rows].any() and not cache.action[rows].any()
    again = load_frame_cache(tmp_path / "cache")
    np.testing.assert_array_equal(again.frames, cache.frames)
    assert again.episodes == cache.episodes


def test_unchanged_datasets_reuse_the_cache(datasets, tmp_path):
    labelled, video = datasets
    root = tmp_path / "cache"
    first = build([labelled, video], root)
    frames_file = root / "frames.npy"
    stamp = frames_file.stat().st_mtime_ns
    manifest = (root / "manifest.json").read_text()
    (root / "marker").write_text("a rebuild replaces the whole directory")
    second = build([str(labelled), Path(video)], root)  # new Dataset objects, paths given differently
    assert frames_file.stat().st_mtime_ns == stamp
    assert (root / "marker").exists()
    assert (root / "manifest.json").read_text() == manifest
    np.testing.assert_array_equal(second.frames, first.frames)
    assert not list(tmp_path.glob("cache.tmp-*"))


def test_a_dataset_that_gained_an_episode_rebuilds_the_cache(datasets, tmp_path):
    labelled, video = datasets
    mine = copy_dataset(labelled, tmp_path / "labelled")
    root = tmp_path / "cache"
    before = build([mine, video], root)
    n = len(before.frames)
    (root / "marker").touch()
    add_episodes(mine, [9], length=14)
    after = build([mine, video], root)
    assert not (root / "marker").exists()
    assert len(after.frames) == n + 14
    assert [e.length for e in after.episodes] == [12, 12, 12, 14, 10, 10]
    new = after.episodes[3]
    assert (new.episode, new.start) == (3, 36)
    np.testing.assert_array_equal(after.frames[36:50], Dataset(mine).frames(3))
    np.testing.assert_array_equal(after.frames[50:], before.frames[36:])  # the video dataset moved down
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["fingerprint"][0]["episodes"] == 4


def test_another_dataset_list_rebuilds(datasets, tmp_path):
    labelled, video = datasets
    root = tmp_path / "cache"
    assert len(build([labelled, video], root).episodes) == 5
    only = build([video], root)
    assert len(only.episodes) == 2 and len(only.frames) == 20


def test_unreadable_cache_names_the_directory(datasets, tmp_path):
    from wam.errors import DatasetError

    root = tmp_path / "cache"
    build([datasets[1]], root)
    (root / "state.npy").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="unreadable frame cache") as caught:
        load_frame_cache(root)
    assert str(root) in str(caught.value)


def test_a_matching_cache_is_linked_not_decoded_again(datasets, tmp_path):
    labelled, video = datasets
    parent = build([labelled, video], tmp_path / "parent" / "cache")
    child = tmp_path / "child" / "cache"
    assert link_matching_cache([str(labelled), video], parent.root, child, SIZE)
    assert (child / "frames.npy").stat().st_ino == (parent.root / "frames.npy").stat().st_ino
    linked = build([labelled, video], child)  # finds the linked manifest: nothing rebuilt
    assert (child / "frames.npy").stat().st_ino == (parent.root / "frames.npy").stat().st_ino
    np.testing.assert_array_equal(linked.frames, parent.frames)
    np.testing.assert_array_equal(linked.success, parent.success)
    assert not list(child.parent.glob("cache.tmp-*"))
    # a rebuild in the child replaces its files and leaves the parent's intact
    build([video], child)
    assert len(load_frame_cache(parent.root).episodes) == 5


def test_a_cache_of_other_data_or_an_existing_cache_is_not_linked(datasets, tmp_path):
    labelled, video = datasets
    parent = build([labelled], tmp_path / "parent")
    assert not link_matching_cache([labelled, video], parent.root, tmp_path / "other", SIZE)
    assert not (tmp_path / "other").exists()
    assert not link_matching_cache([labelled], tmp_path / "missing", tmp_path / "other", SIZE)
    own = build([labelled], tmp_path / "own")
    stamp = (own.root / "frames.npy").stat().st_ino
    assert not link_matching_cache([labelled], parent.root, own.root, SIZE)
    assert (own.root / "frames.npy").stat().st_ino == stamp


def test_a_damaged_manifest_is_an_error_naming_it_and_the_cache_to_delete(datasets, tmp_path):
    from wam.errors import DatasetError

    labelled, _ = datasets
    parent = build([labelled], tmp_path / "parent")
    (parent.root / "manifest.json").write_text('{"fingerprint": [')
    for attempt in (lambda: link_matching_cache([labelled], parent.root, tmp_path / "child", SIZE),
                    lambda: build([labelled], parent.root)):
        with pytest.raises(DatasetError, match="unreadable frame-cache manifest") as caught:
            attempt()
        assert str(parent.root / "manifest.json") in str(caught.value)
    assert not (tmp_path / "child").exists()
