"""Guards wam.data.writer: what DatasetWriter puts on disk and what it refuses.

Covers the LeRobot v3 metadata (info.json totals, tasks.parquet, stats.json), episode and
global frame numbering across reopen-and-append, the fixed feature set (action-free datasets
refuse labelled episodes), the all-or-nothing refusal of bad episodes, and the writer lock.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from wam.data import Dataset, DatasetError, DatasetWriter, Episode, Feature
from wam.data.layout import data_path, video_path
from wam.data.check import check_dataset


def _info(root):
    return json.loads((root / "meta/info.json").read_text())


def test_layout_and_info_totals(clean_dataset, synth):
    root = clean_dataset
    lengths = [spec["length"] for spec in synth.MIXED]
    for i in range(len(lengths)):
        assert data_path(root, i).is_file()
        assert video_path(root, synth.CAMERA, i).is_file()
    info = _info(root)
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(lengths), 2)
    assert info["fps"] == synth.FPS
    assert info["splits"] == {"train": "0:3"}
    features = info["features"]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in features
    assert features["observation.state"] == {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "grip"]}
    camera = features[synth.CAMERA]
    assert camera["dtype"] == "video" and camera["shape"] == [synth.SIZE, synth.SIZE, 3]
    assert camera["info"]["video.height"] == synth.SIZE and camera["info"]["video.fps"] == synth.FPS


def test_data_parquet_columns_and_global_index(clean_dataset, synth):
    start = 0
    for i, spec in enumerate(synth.MIXED):
        table = pq.read_table(data_path(clean_dataset, i))
        n = spec["length"]
        assert table.num_rows == n
        assert table["episode_index"].to_pylist() == [i] * n
        assert table["frame_index"].to_pylist() == list(range(n))
        assert table["index"].to_pylist() == list(range(start, start + n))
        np.testing.assert_allclose(table["timestamp"].to_numpy(), np.arange(n) / synth.FPS, rtol=0, atol=1e-6)
        assert table["action"].null_count == (0 if spec.get("labelled", True) else n)
        start += n


def test_tasks_by_first_appearance(tmp_path, synth):
    tasks = ["pick", "push", "pick", "reach", "push"]
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(i, 6, task) for i, task in enumerate(tasks)])
    table = pq.read_table(root / "meta/tasks.parquet")
    assert set(table.column_names) == {"task_index", "__index_level_0__"}
    assert table["__index_level_0__"].to_pylist() == ["pick", "push", "reach"]
    assert table["task_index"].to_pylist() == [0, 1, 2]
    ds = Dataset(root)
    assert ds.tasks == ["pick", "push", "reach"]
    for i, task in enumerate(tasks):
        assert set(pq.read_table(data_path(root, i))["task_index"].to_pylist()) == {ds.tasks.index(task)}
        assert ds.episodes[i].task == task
    # a reopened writer keeps the indices and numbers a new task next
    with DatasetWriter(root) as writer:
        writer.add_episode(synth.make_episode(9, 6, "open"))
        writer.add_episode(synth.make_episode(10, 6, "pick"))
    assert Dataset(root).tasks == ["pick", "push", "reach", "open"]
    assert set(pq.read_table(data_path(root, 5))["task_index"].to_pylist()) == {3}
    assert set(pq.read_table(data_path(root, 6))["task_index"].to_pylist()) == {0}
    assert _info(root)["total_tasks"] == 4


def test_reopen_and_append_continue_numbering(tmp_path, synth):
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(0, 12), synth.make_episode(1, 7, labelled=False)])
    with DatasetWriter(root) as writer:  # no features or fps: read from info.json
        assert (writer.num_episodes, writer.num_frames) == (2, 19)
        assert writer.add_episode(synth.make_episode(2, 9, "push")) == 2
    with DatasetWriter(root, features=synth.FEATURES, fps=synth.FPS) as writer:  # the same features: accepted
        assert writer.add_episode(synth.make_episode(3, 5)) == 3
    ds = Dataset(root)
    assert [e.index for e in ds.episodes] == [0, 1, 2, 3]
    assert [e.from_index for e in ds.episodes] == [0, 12, 19, 28]
    assert ds.num_frames == 33
    for i, first in enumerate([0, 12, 19, 28]):
        table = pq.read_table(data_path(root, i))
        assert table["index"].to_pylist() == list(range(first, first + ds.episodes[i].length))
        assert table["episode_index"].to_pylist() == [i] * ds.episodes[i].length
    info = _info(root)
    assert (info["total_episodes"], info["total_frames"], info["splits"]["train"]) == (4, 33, "0:4")


def test_stats_match_numpy_over_all_frames(clean_dataset, synth):
    stats = json.loads((clean_dataset / "meta/stats.json").read_text())
    episodes = [synth.make_episode(**spec) for spec in synth.MIXED]
    state = np.concatenate([e.data["observation.state"] for e in episodes]).astype(np.float64)
    s = stats["observation.state"]
    np.testing.assert_allclose(s["mean"], state.mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(s["std"], state.std(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(s["min"], state.min(axis=0))
    np.testing.assert_array_equal(s["max"], state.max(axis=0))
    assert s["count"] == [len(state)]
    # actions: over the labelled episodes only, never the zeros of action-free ones
    action = np.concatenate([e.data["action"] for e in episodes if e.has_actions]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], action.mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], action.std(axis=0), rtol=0, atol=1e-6)
    assert stats["action"]["count"] == [len(action)]
    # images: per channel in [0, 1], shaped (3, 1, 1)
    assert np.asarray(stats[synth.CAMERA]["mean"]).shape == (3, 1, 1)


def test_stats_stay_exact_after_reopen(tmp_path, synth):
    episodes = [synth.make_episode(i, 8 + 3 * i) for i in range(3)]
    root = synth.write_dataset(tmp_path / "ds", episodes[:2])
    with DatasetWriter(root) as writer:
        writer.add_episode(episodes[2])
    state = np.concatenate([e.data["observation.state"] for e in episodes]).astype(np.float64)
    stats = json.loads((root / "meta/stats.json").read_text())["observation.state"]
    np.testing.assert_allclose(stats["mean"], state.mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(stats["std"], state.std(axis=0), rtol=0, atol=1e-6)


def _bad(synth, kind):
    """(episode, the name its error must mention)."""
    ep = synth.make_episode(7, 10)
    if kind == "wrong state shape":
        ep.data["observation.state"] = np.zeros((10, 5), np.float32)
        return ep, "observation.state"
    if kind == "wrong action length":
        ep.data["action"] = np.zeros((9, 2), np.float32)
        return ep, "action"
    if kind == "NaN in state":
        ep.data["observation.state"][3, 1] = np.nan
        return ep, "observation.state"
    if kind == "inf in reward":
        ep.data["next.reward"][0] = np.inf
        return ep, "next.reward"
    if kind == "missing camera":
        ep.images.clear()
        return ep, synth.CAMERA
    if kind == "wrong camera size":
        ep.images[synth.CAMERA] = synth.make_frames(10, size=16)
        return ep, synth.CAMERA
    if kind == "float camera":
        ep.images[synth.CAMERA] = ep.images[synth.CAMERA].astype(np.float32)
        return ep, synth.CAMERA
    if kind == "missing state":
        del ep.data["observation.state"]
        return ep, "observation.state"
    if kind == "unknown feature":
        ep.data["observation.velocity"] = np.zeros((10, 3), np.float32)
        return ep, "observation.velocity"
    raise AssertionError(kind)


BAD = ["wrong state shape", "wrong action length", "NaN in state", "inf in reward", "missing camera",
       "wrong camera size", "float camera", "missing state", "unknown feature"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_episode_refused_and_nothing_written(mixed_copy, synth, kind):
    before = synth.files_under(mixed_copy)
    episode, name = _bad(synth, kind)
    with DatasetWriter(mixed_copy) as writer:
        with pytest.raises(DatasetError, match=name.replace(".", r"\.")):
            writer.add_episode(episode)
        assert writer.num_episodes == 3
    assert synth.files_under(mixed_copy) == before
    assert Dataset(mixed_copy).num_episodes == 3


def test_action_free_dataset_refuses_labelled_episodes(tmp_path, synth):
    features = {k: f for k, f in synth.FEATURES.items() if k != "action"}
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(0, 8, labelled=False)], features)
    before = synth.files_under(root)
    with DatasetWriter(root) as writer:
        with pytest.raises(DatasetError, match="action"):
            writer.add_episode(synth.make_episode(1, 8, labelled=True))
        writer.add_episode(synth.make_episode(2, 8, labelled=False))  # still accepts action-free ones
    with pytest.raises(DatasetError, match="action"):
        DatasetWriter(root, features=synth.FEATURES)
    ds = Dataset(root)
    assert ds.num_episodes == 2 and not ds.has_actions
    assert set(synth.files_under(root)) - set(before) == {  # only the second action-free episode arrived
        "data/chunk-000/file-001.parquet", f"videos/{synth.CAMERA}/chunk-000/file-001.mp4"
    }


def test_reopen_with_other_features_or_fps_refused(mixed_copy, synth):
    other = dict(synth.FEATURES, **{"observation.state": Feature("float32", (6,))})
    with pytest.raises(DatasetError, match=r"observation\.state") as wrong_features:
        DatasetWriter(mixed_copy, features=other)
    with pytest.raises(DatasetError, match="fps") as wrong_fps:
        DatasetWriter(mixed_copy, fps=synth.FPS + 1)
    # A refused open must not keep the dataset locked, even while its exception is still
    # referenced (as pytest's excinfo, a logger, or a REPL's last traceback keep it).
    assert wrong_features.value is not None and wrong_fps.value is not None
    with DatasetWriter(mixed_copy) as writer:
        assert writer.num_episodes == 3


def test_new_dataset_needs_features_and_fps(tmp_path):
    with pytest.raises(DatasetError):
        DatasetWriter(tmp_path / "new")


def test_second_concurrent_writer_refused(mixed_copy, synth):
    with DatasetWriter(mixed_copy) as writer:
        with pytest.raises(DatasetError, match="another writer"):
            DatasetWriter(mixed_copy)
        writer.add_episode(synth.make_episode(4, 6))
    with DatasetWriter(mixed_copy) as writer:  # released on close
        assert writer.num_episodes == 4


def test_two_phase_stage_and_commit(mixed_copy, synth):
    from wam.data import stage_episode

    with DatasetWriter(mixed_copy) as writer:
        staged = [stage_episode(mixed_copy, synth.make_episode(s, 6), writer.features, writer.fps, writer.video) for s in (5, 6)]
        assert Dataset(mixed_copy).num_episodes == 3  # staged is not committed
        assert [writer.commit(s) for s in reversed(staged)] == [3, 4]
    ds = Dataset(mixed_copy)
    np.testing.assert_array_equal(ds.low_dim(3)["observation.state"], synth.make_episode(6, 6).data["observation.state"])
    assert not list((mixed_copy / ".staging").glob("*"))


def test_episode_without_frames_or_task_refused(tmp_path, synth):
    with DatasetWriter(tmp_path / "ds", features=synth.FEATURES, fps=synth.FPS) as writer:
        with pytest.raises(DatasetError, match="task"):
            writer.add_episode(Episode("", synth.make_episode(0, 4).images, synth.make_episode(0, 4).data))
        with pytest.raises(DatasetError):
            writer.add_episode(Episode("pick", {}, {}))
        assert writer.num_episodes == 0


def test_odd_camera_size_refused_and_nothing_written(tmp_path, synth):
    odd = {synth.CAMERA: Feature("video", (33, 33, 3)), "observation.state": Feature("float32", (4,))}
    episode = Episode("pick", {synth.CAMERA: np.zeros((5, 33, 33, 3), np.uint8)}, {"observation.state": np.zeros((5, 4), np.float32)})
    with pytest.raises(DatasetError, match="even"):  # H.264 needs even sizes: refused when the dataset is made
        DatasetWriter(tmp_path / "ds", features=odd, fps=synth.FPS)
    assert episode.length == 5
    assert not (tmp_path / "ds/meta/info.json").exists()
    assert not (tmp_path / "ds/data").exists() and not (tmp_path / "ds/videos").exists()


def test_episode_index_rolls_over_into_several_meta_files(tmp_path, synth, monkeypatch):
    """Appends rewrite only the last meta/episodes file; readers see every file's rows in order."""
    from wam.data import layout

    monkeypatch.setattr(layout, "EPISODES_PER_META_FILE", 3)
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(seed=s, length=5) for s in range(7)])
    files = sorted((root / "meta/episodes").rglob("*.parquet"))
    assert [f.name for f in files] == ["file-000.parquet", "file-001.parquet", "file-002.parquet"]
    ds = Dataset(root)
    assert [e.index for e in ds.episodes] == list(range(7))
    assert ds.episodes[6].info["seed"] == 6
    assert check_dataset(root) == []


def test_commit_fsyncs_the_episode_files_and_directories_before_the_commit_rename(tmp_path, synth, monkeypatch):
    """A power cut after the commit must find the data and video files the meta/episodes row points at."""
    import os
    from pathlib import Path

    from wam.data import layout

    events = []  # ("fsync", path) and ("replace", source, target), in order
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target):
        events.append(("replace", os.path.realpath(source), os.path.realpath(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    root = Path(os.path.realpath(tmp_path)) / "ds"
    with DatasetWriter(root, features=synth.FEATURES, fps=synth.FPS) as writer:  # a new dataset: every directory is new
        index = writer.add_episode(synth.make_episode(1, 6))

    def position(kind, target):
        return next(i for i, e in enumerate(events) if e[0] == kind and e[-1] == str(target))

    commit = position("replace", layout.episodes_meta_path(root, index))
    for final in (data_path(root, index), video_path(root, synth.CAMERA, index)):
        renamed = position("replace", final)
        source = events[renamed][1]
        assert position("fsync", source) < renamed, f"{source} was not fsynced before it became {final}"
        assert renamed < position("fsync", final.parent) < commit, f"the entry of {final} was not fsynced before the commit"
    assert position("fsync", root / "data") < commit  # the new chunk directory's own entry
    assert position("fsync", root / "videos" / synth.CAMERA) < commit
    meta = layout.episodes_meta_path(root, index)
    assert position("fsync", layout.tmp_path_for(meta)) < commit < position("fsync", meta.parent)  # the commit itself
    assert Dataset(root).num_episodes == 1
