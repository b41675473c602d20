"""Episodes copied into a new dataset: the successful ones, or any list, with everything they hold."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from wam.cli import app
from wam.data.reader import Dataset
from wam.data.subset import copy_episodes, successful
from wam.errors import DatasetError


@pytest.fixture
def lerobot(tmp_path):
    from tests.support.lerobot_like import write_lerobot_dataset

    return write_lerobot_dataset(tmp_path / "source", episodes=4, length=12, fps=10)


def test_chosen_episodes_are_copied_with_frames_features_task_and_flags(lerobot, tmp_path):
    source = Dataset(lerobot)
    copy = Dataset(copy_episodes(source, [2, 0], tmp_path / "copy"))
    assert copy.num_episodes == 2 and [e.task for e in copy.episodes] == [source.episodes[2].task, source.episodes[0].task]
    assert [e.success for e in copy.episodes] == [source.episodes[2].success, source.episodes[0].success]
    np.testing.assert_allclose(copy.low_dim(0)["action"], source.low_dim(2)["action"], rtol=1e-6)
    camera = source.camera_keys[0]
    assert np.abs(copy.frames(0, camera).astype(int) - source.frames(2, camera).astype(int)).mean() < 4  # re-encoded
    with pytest.raises(DatasetError, match="already there"):
        copy_episodes(source, [1], tmp_path / "copy")
    with pytest.raises(DatasetError, match="no episode 9"):
        copy_episodes(source, [9], tmp_path / "other")


def test_wam_data_filter_keeps_only_the_successes(tmp_path):
    from wam.envs.collect import CollectConfig, collect

    collect(CollectConfig(("reach-v3",), 3, tmp_path / "mixed", max_steps=8, size=32), progress=False)  # too short to succeed
    collect(CollectConfig(("reach-v3",), 2, tmp_path / "mixed", max_steps=150, size=32, seed=1), progress=False)
    source = Dataset(tmp_path / "mixed")
    assert len(successful(source)) == 2 and source.num_episodes == 5
    result = CliRunner().invoke(app, ["data", "filter", str(tmp_path / "mixed"), "--out", str(tmp_path / "wins"), "--success"])
    assert result.exit_code == 0, result.output
    kept = Dataset(tmp_path / "wins")
    assert kept.num_episodes == 2 and all(e.success for e in kept.episodes)
