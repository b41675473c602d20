"""Guards the writer's crash safety: an append is whole or absent, whenever the writer dies.

A writer process killed with SIGKILL mid-loop, or one that fails at a chosen point of a
commit, must leave every committed episode readable in full with no integrity errors
(leftover files are warnings); the next writer removes the leftovers and appends with the
episode and frame numbering continuing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from wam.data import Dataset, DatasetWriter
from wam.data.check import check_dataset
from wam.data.layout import data_path, video_path

ROOT = Path(__file__).resolve().parents[2]  # the writer subprocess imports the tests package from here
TASKS = ["pick", "push", "reach"]


def spec(i: int) -> dict:
    """Episode i of these tests: lengths, tasks and labelling vary with i."""
    return dict(seed=i, length=12 + i % 5, task=TASKS[i % 3], labelled=i % 4 != 1)


class SimulatedCrash(Exception):
    pass


def _errors(root):
    return [str(p) for p in check_dataset(root) if p.severity == "error"]


def _assert_episodes_intact(root, synth, n):
    ds = Dataset(root)
    assert ds.num_episodes == n
    start = 0
    for i in range(n):
        expected = synth.make_episode(**spec(i))
        meta = ds.episodes[i]
        assert (meta.index, meta.length, meta.task, meta.from_index) == (i, expected.length, expected.task, start)
        whole = ds.episode(i)
        np.testing.assert_array_equal(whole["observation.state"], expected.data["observation.state"])
        assert whole["action_mask"].all() == expected.has_actions and meta.has_actions == expected.has_actions
        if expected.has_actions:
            np.testing.assert_array_equal(whole["action"], expected.data["action"])
        assert synth.psnr(whole[synth.CAMERA], expected.images[synth.CAMERA]) >= 35.0
        task_index = int(ds.low_dim(i)["task_index"][0])
        assert ds.tasks[task_index : task_index + 1] == [expected.task], f"episode {i}: task_index {task_index}, tasks {ds.tasks}"
        start += expected.length
    return ds


def _leftovers(root):
    return [p for p in root.rglob("*") if p.is_file() and (p.name.startswith(".tmp-") or ".staging" in p.parts)]


def _reopen_and_append(root, synth, n):
    """The next writer cleans up; appending continues the numbering."""
    with DatasetWriter(root) as writer:
        assert writer.num_episodes == n
        assert check_dataset(root) == []
        assert _leftovers(root) == []
        assert writer.add_episode(synth.make_episode(**spec(n))) == n
    ds = _assert_episodes_intact(root, synth, n + 1)
    assert check_dataset(root) == []
    last = ds.episodes[n]
    assert last.from_index == ds.episodes[n - 1].from_index + ds.episodes[n - 1].length
    np.testing.assert_array_equal(ds.low_dim(n)["frame_index"], np.arange(last.length))


SCRIPT = textwrap.dedent(
    """
    from tests.data.conftest import make_episode
    from tests.data.test_killed_writer import spec
    from wam.data import DatasetWriter

    with DatasetWriter({root!r}) as writer:
        for i in range(writer.num_episodes, 10_000):
            writer.add_episode(make_episode(**spec(i)))
    """
)


def _total_episodes(root):
    try:
        return json.loads((root / "meta/info.json").read_text())["total_episodes"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("moment", ["after_commit", "mid_encode"])
def test_sigkill_mid_append(tmp_path, synth, moment):
    """Kill just after an episode's metadata landed, or while the next one is being encoded."""
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(**spec(0))])
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(root))], stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while _total_episodes(root) < 3:  # at least two episodes committed by the subprocess
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer subprocess committed nothing in 60 s"
            time.sleep(0.002)
        while moment == "mid_encode" and not any((root / ".staging").glob("*.mp4")) and time.monotonic() < deadline:
            pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    n = Dataset(root).num_episodes
    assert n >= 3
    _assert_episodes_intact(root, synth, n)
    assert _errors(root) == []  # leftovers of the killed writer are warnings at most
    _reopen_and_append(root, synth, n)


def test_crash_between_data_rename_and_commit(tmp_path, synth, monkeypatch):
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(**spec(i)) for i in range(2)])

    def crash(self, index):
        raise SimulatedCrash(f"killed before committing episode {index}")

    writer = DatasetWriter(root)
    monkeypatch.setattr(DatasetWriter, "_write_episode_rows", crash)
    with pytest.raises(SimulatedCrash):
        writer.add_episode(synth.make_episode(**spec(2)))
    monkeypatch.undo()
    writer.close()  # the process is gone: the OS drops its lock

    # the episode's files were renamed into place, but it was never committed
    orphans = {data_path(root, 2), video_path(root, synth.CAMERA, 2)}
    assert all(p.is_file() for p in orphans)
    _assert_episodes_intact(root, synth, 2)
    problems = check_dataset(root)
    assert _errors(root) == []
    assert orphans <= {p.path for p in problems if p.severity == "warning"}

    _reopen_and_append(root, synth, 2)


def test_crash_after_commit_point_before_derived_metadata(tmp_path, synth, monkeypatch):
    """Killed after meta/episodes is renamed but before tasks.parquet / info.json are rewritten."""
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(**spec(0))])

    def crash(self):
        raise SimulatedCrash("killed before rewriting the derived metadata")

    writer = DatasetWriter(root)
    monkeypatch.setattr(DatasetWriter, "_write_derived_meta", crash)
    with pytest.raises(SimulatedCrash):
        writer.add_episode(synth.make_episode(**spec(1)))  # a task the dataset has not seen
    monkeypatch.undo()
    writer.close()

    # the episode is committed (its row is in meta/episodes), so it must check clean and read whole
    assert _errors(root) == []
    _assert_episodes_intact(root, synth, 2)
    _reopen_and_append(root, synth, 2)


def test_failed_commit_leaves_no_trace(tmp_path, synth, monkeypatch):
    """A commit that raised must not leave its task behind in a writer that carries on."""
    root = synth.write_dataset(tmp_path / "ds", [synth.make_episode(**spec(0))])
    with DatasetWriter(root) as writer:
        with monkeypatch.context() as patch:
            patch.setattr(DatasetWriter, "_write_episode_rows", lambda self, index: (_ for _ in ()).throw(SimulatedCrash()))
            with pytest.raises(SimulatedCrash):
                writer.add_episode(synth.make_episode(seed=90, length=12, task="never committed"))
        assert writer.add_episode(synth.make_episode(**spec(1))) == 1
    assert Dataset(root).tasks == ["pick", "push"]
    _assert_episodes_intact(root, synth, 2)
    with DatasetWriter(root):  # reopening rebuilds tasks.parquet from meta/episodes
        pass
    _assert_episodes_intact(root, synth, 2)
