"""Bad input to pretraining is refused before any training, naming what is at fault, and leaves no run behind."""

from __future__ import annotations

from pathlib import Path

import pytest

import wam.train.pretrain as pretrain_module
from wam.errors import DatasetError
from wam.train.pretrain import pretrain

from tests.support.pretrain_fixtures import poison_state, tiny_config, tiny_dataset, write_dataset, write_empty_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


class Killed(Exception):
    pass


def assert_refused_before_training(out: Path) -> None:
    assert not (out / "tokenizer").exists() and not (out / "world_model").exists()


def test_empty_dataset(tmp_path):
    empty = write_empty_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no episodes") as caught:
        pretrain([empty], tmp_path / "run", tiny_config(), progress=False)
    assert str(empty) in str(caught.value)
    assert_refused_before_training(tmp_path / "run")


@pytest.mark.slow  # a pretraining run
def test_frames_of_another_size_are_fitted_to_the_model(data, tmp_path):
    """Frames are no longer refused for their size: 32x32 frames are scaled to the preset's 64x64 and train beside
    64x64 ones (wam/data/fit.py); the tiny preset's run finishes."""
    from wam.train.frame_cache import load_frame_cache

    small = write_dataset(tmp_path / "small", [1], length=6, size=32)
    pretrain([data, small], tmp_path / "run", tiny_config(), progress=False)
    cache = load_frame_cache(tmp_path / "run" / "cache")
    assert cache.frames.shape[1:] == (64, 64, 3)


def test_nan_in_state(tmp_path):
    bad = write_dataset(tmp_path / "bad", [1, 2], length=8)
    path = poison_state(bad, episode=1)
    with pytest.raises(DatasetError) as caught:
        pretrain([bad], tmp_path / "run", tiny_config(), progress=False)
    message = str(caught.value)
    assert str(path) in message and "episode 1" in message and "observation.state" in message
    assert_refused_before_training(tmp_path / "run")


def test_episodes_too_short_for_a_window(tmp_path):
    """The tiny preset needs 5 frames per window: 4-frame episodes must be refused before the tokenizer trains."""
    short = write_dataset(tmp_path / "short", [1, 2, 3], length=4)
    with pytest.raises((DatasetError, ValueError), match="long enough|too short|frames"):
        pretrain([short], tmp_path / "run", tiny_config(), progress=False)
    assert_refused_before_training(tmp_path / "run")


def test_a_refused_dataset_does_not_leave_a_run_behind(data, tmp_path, monkeypatch):
    """After fixing the data, the same command (same --out, no --resume) must start the run."""
    empty = write_empty_dataset(tmp_path / "empty")
    out = tmp_path / "run"
    with pytest.raises(DatasetError):
        pretrain([empty], out, tiny_config(), progress=False)

    def stop_at_the_cache(*args, **kwargs):
        raise Killed("got as far as building the frame cache")

    monkeypatch.setattr(pretrain_module, "build_frame_cache", stop_at_the_cache)
    with pytest.raises(Killed):  # not CheckpointError: "a pretraining run already exists here; pass --resume"
        pretrain([data], out, tiny_config(), progress=False)
