"""Guards wam.data.check: each kind of damage is reported as an error on the damaged file.

Every test corrupts one file of a copy of a clean dataset. Where the damage is confined to
one episode (its data or video file), the other episodes must still read with `Dataset`,
and the damaged one must fail with a DatasetError naming the file, not with garbage.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from wam.data import Dataset, DatasetError
from wam.data.check import Problem, check_dataset
from wam.data.layout import data_path, episodes_meta_path, video_path

CAMERA = "observation.images.main"


def _truncate(path):
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])


def _edit_info(root, **changes):
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))


def truncated_mp4(root):
    _truncate(video_path(root, CAMERA, 1))
    return video_path(root, CAMERA, 1), 1


def missing_video(root):
    video_path(root, CAMERA, 2).unlink()
    return video_path(root, CAMERA, 2), 2


def truncated_data_parquet(root):
    _truncate(data_path(root, 0))
    return data_path(root, 0), 0


def data_parquet_other_row_count(root):
    path = data_path(root, 2)
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 5), path)
    return path, 2


def missing_info(root):
    (root / "meta/info.json").unlink()
    return root / "meta/info.json", None


def invalid_json_info(root):
    path = root / "meta/info.json"
    path.write_text(path.read_text()[:-40])
    return path, None


def truncated_episodes_parquet(root):
    path = episodes_meta_path(root, 0)
    _truncate(path)
    return path, None


def wrong_total_frames(root):
    _edit_info(root, total_frames=999)
    return root / "meta/info.json", None


def wrong_total_episodes(root):
    _edit_info(root, total_episodes=7)
    return root / "meta/info.json", None


def missing_tasks(root):
    (root / "meta/tasks.parquet").unlink()
    return root / "meta/tasks.parquet", None


def invalid_json_stats(root):
    path = root / "meta/stats.json"
    path.write_text("{ not json")
    return path, None


CORRUPTIONS = [
    truncated_mp4, missing_video, truncated_data_parquet, data_parquet_other_row_count, missing_info,
    invalid_json_info, truncated_episodes_parquet, wrong_total_frames, wrong_total_episodes, missing_tasks,
    invalid_json_stats,
]


def test_clean_dataset_has_no_problems(clean_dataset):
    assert check_dataset(clean_dataset) == []


def test_missing_dataset_is_an_error(tmp_path):
    problems = check_dataset(tmp_path / "nowhere")
    assert problems and problems[0].severity == "error"


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_corruption_reported_on_that_file(mixed_copy, synth, corrupt):
    path, episode = corrupt(mixed_copy)
    problems = check_dataset(mixed_copy)
    errors = [p for p in problems if p.severity == "error"]
    assert any(p.path == path for p in errors), f"no error on {path}: {[str(p) for p in problems]}"
    assert all(isinstance(p, Problem) and p.reason for p in problems)
    assert any(str(path) in str(p) for p in errors)
    if episode is None:
        return
    # per-episode damage: the other episodes still read whole and right
    ds = Dataset(mixed_copy)
    assert ds.num_episodes == 3
    for i, spec in enumerate(synth.MIXED):
        if i == episode:
            continue
        expected = synth.make_episode(**spec)
        whole = ds.episode(i)
        np.testing.assert_array_equal(whole["observation.state"], expected.data["observation.state"])
        assert synth.psnr(whole[CAMERA], expected.images[CAMERA]) >= 35.0
    # and the damaged one fails loudly, naming its file
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        ds.episode(episode)


@pytest.mark.parametrize("corrupt", [missing_info, invalid_json_info, truncated_episodes_parquet], ids=lambda f: f.__name__)
def test_dataset_refuses_broken_metadata_naming_the_file(mixed_copy, corrupt):
    path, _ = corrupt(mixed_copy)
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        Dataset(mixed_copy)


def test_leftovers_are_warnings(mixed_copy):
    tmp = mixed_copy / "data/chunk-000/.tmp-12345-file-003.parquet"
    tmp.write_bytes(b"partial")
    staged = mixed_copy / ".staging/0123abcd.mp4"
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"partial")
    orphan = video_path(mixed_copy, CAMERA, 3)
    orphan.write_bytes(video_path(mixed_copy, CAMERA, 0).read_bytes())
    problems = check_dataset(mixed_copy)
    assert {p.path for p in problems} == {tmp, staged, orphan}
    assert all(p.severity == "warning" for p in problems)
    assert Dataset(mixed_copy).num_episodes == 3


def test_totals_behind_meta_episodes_are_a_warning(mixed_copy):
    """A writer killed right after its commit point leaves info.json one episode behind: readable, not an error."""
    _edit_info(mixed_copy, total_episodes=2)
    problems = check_dataset(mixed_copy)
    assert problems and all(p.severity == "warning" for p in problems)
    assert any("stale" in p.reason for p in problems)
