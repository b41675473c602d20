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


# -- packed files, as lerobot writes them ---------------------------------------------------------
import io  # noqa: E402
import shutil  # noqa: E402

import pyarrow as pa  # noqa: E402
from PIL import Image  # noqa: E402

from tests.support.lerobot_like import VARIANTS, data_file, drop_rows, truncate_file, video_file, write_lerobot_dataset  # noqa: E402

TOP = "observation.images.top"


@pytest.fixture(scope="module")
def lerobot_clean(tmp_path_factory):
    """Each variant written once; copy one before damaging it."""
    base = tmp_path_factory.mktemp("lerobot_clean")
    return {name: write_lerobot_dataset(base / name, **kwargs) for name, kwargs in VARIANTS.items()}


def _copy(lerobot_clean, variant, tmp_path):
    return shutil.copytree(lerobot_clean[variant], tmp_path / variant)


def _failing_episodes(root):
    ds = Dataset(root)
    failing = []
    for e in range(ds.num_episodes):
        try:
            ds.episode(e)
        except DatasetError:
            failing.append(e)
    return failing


def _named(episodes):
    """How check names a set of episodes (a run of three or more collapses to a range)."""
    if len(episodes) == 1:
        return f"episode {episodes[0]}"
    return f"episodes {episodes[0]}-{episodes[-1]}" if episodes == list(range(episodes[0], episodes[-1] + 1)) else None


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lerobot_like_dataset_has_no_problems(lerobot_clean, variant):
    assert check_dataset(lerobot_clean[variant]) == []


# Cuts that leave episode 0 whole (the moov atom sits at the front, then the episodes in order).
@pytest.mark.parametrize("variant,keep", [("h264", 0.75), ("h264", 0.92)] + [("av1", 0.75)] * ("av1" in VARIANTS))
def test_truncated_packed_mp4_names_the_episodes_it_breaks(lerobot_clean, tmp_path, variant, keep):
    root = _copy(lerobot_clean, variant, tmp_path)
    path = truncate_file(video_file(root, TOP), keep)
    failing = _failing_episodes(root)  # what a reader meets: the episodes past the cut
    assert failing and failing[0] > 0 and failing[-1] == 2
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path] and problems[0].severity == "error"
    assert "of the 35 frames of episodes 0-2" in problems[0].reason
    assert problems[0].reason.split("(truncated?): breaks ")[1].startswith(_named(failing)), problems[0].reason
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        Dataset(root).episode(2)


def test_truncated_packed_mp4_on_one_camera_of_two(lerobot_clean, tmp_path):
    root = _copy(lerobot_clean, "two_cameras", tmp_path)
    path = truncate_file(video_file(root, "observation.images.wrist"), 0.3)
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path]
    assert "breaks episode" in problems[0].reason
    np.testing.assert_array_equal(Dataset(root).frames(0, TOP).shape, (10, 48, 64, 3))  # the other camera reads


def test_truncated_packed_parquet_names_every_episode_in_it(lerobot_clean, tmp_path):
    root = _copy(lerobot_clean, "h264", tmp_path)
    path = truncate_file(data_file(root), 0.5)
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path] and problems[0].severity == "error"
    assert "unreadable parquet" in problems[0].reason and problems[0].reason.endswith("episodes 0-2 cannot be read")
    assert _failing_episodes(root) == [0, 1, 2]


@pytest.mark.parametrize("variant", ["h264", "image"])
def test_short_packed_parquet_names_the_episodes_missing_rows(lerobot_clean, tmp_path, variant):
    root = _copy(lerobot_clean, variant, tmp_path)
    path = drop_rows(data_file(root), 15)  # episode 0 has 12 rows, episode 1 keeps 3 of 9, episode 2 none
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path] and problems[0].severity == "error"
    assert problems[0].reason == "15 rows, meta/episodes says 35: rows missing for episodes 1-2"
    assert _failing_episodes(root) == [1, 2]
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*episode 1 has 3 rows"):
        Dataset(root).low_dim(1)


def _rewrite_image(root, key, row, payload):
    """Replace one row's image cell in the packed data parquet (row groups kept: one per episode)."""
    path = data_file(root)
    parquet = pq.ParquetFile(path)
    groups = [parquet.read_row_group(i) for i in range(parquet.metadata.num_row_groups)]
    schema = parquet.schema_arrow
    parquet.close()
    offset = 0
    with pq.ParquetWriter(path, schema) as writer:
        for table in groups:
            if offset <= row < offset + table.num_rows:
                cells = table[key].to_pylist()
                cells[row - offset] = payload
                table = table.set_column(table.schema.get_field_index(key), key, pa.array(cells, type=table.schema.field(key).type))
            writer.write_table(table)
            offset += table.num_rows
    return path


def _png(height, width):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "payload,reason",
    [
        (None, "rows without an image in episode 1"),
        ({"bytes": None, "path": "frame-000000.png"}, "rows without an image in episode 1"),
        ({"bytes": b"\x89PNG broken", "path": "frame-000000.png"}, "undecodable images in episode 1"),
        ({"bytes": _png(40, 64), "path": "frame-000000.png"}, "images are 40x64 (episode 1), info.json says 48x64"),
    ],
    ids=["null_cell", "null_bytes", "not_a_png", "wrong_size"],
)
def test_damaged_stored_image_reported(lerobot_clean, tmp_path, payload, reason):
    root = _copy(lerobot_clean, "image", tmp_path)
    path = _rewrite_image(root, TOP, 12, payload)  # the first frame of episode 1
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path] and problems[0].severity == "error"
    assert problems[0].reason.startswith(f"column {TOP!r}: {reason}"), problems[0].reason
    Dataset(root).episode(0)  # the other episodes still read
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*episode 1 frame 0"):
        Dataset(root).frames(1, TOP)


def test_missing_image_column_reported(lerobot_clean, tmp_path):
    root = _copy(lerobot_clean, "image", tmp_path)
    path = data_file(root)
    pq.write_table(pq.read_table(path).drop_columns(["observation.images.wrist"]), path)
    problems = check_dataset(root)
    assert [p.path for p in problems] == [path]
    assert "no column 'observation.images.wrist'" in problems[0].reason
    with pytest.raises(DatasetError, match="no column"):
        Dataset(root).frames(0, "observation.images.wrist")


def test_episode_span_disagreeing_with_its_length_reported(lerobot_clean, tmp_path):
    root = _copy(lerobot_clean, "h264", tmp_path)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    column = f"videos/{TOP}/to_timestamp"
    ends = table[column].to_pylist()
    ends[1] += 0.1  # five frames at 50 fps
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, pa.array(ends)), path)
    problems = check_dataset(root)
    assert len(problems) == 1 and problems[0].path == root / "meta/episodes"
    assert problems[0].reason.startswith(f"episode 1: videos/{TOP} spans") and "but length is 9" in problems[0].reason


def test_the_quick_check_passes_a_clean_dataset(clean_dataset):
    from wam.data.check import quick_check

    assert quick_check(clean_dataset) == []


@pytest.mark.parametrize("corrupt", [truncated_mp4, truncated_data_parquet], ids=lambda f: f.__name__)
def test_data_info_names_a_truncated_file_and_exits_1(mixed_copy, corrupt):
    from typer.testing import CliRunner

    from wam.cli import app
    from wam.data.check import quick_check

    path, _ = corrupt(mixed_copy)
    assert [p.path for p in quick_check(mixed_copy)] == [path]
    result = CliRunner().invoke(app, ["data", "info", str(mixed_copy)])
    assert result.exit_code == 1 and path.name in result.output and "damaged" in result.output
    assert "Traceback" not in result.output
