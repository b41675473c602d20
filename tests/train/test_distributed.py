"""Data-parallel training (torchrun, DDP on gloo): the same losses as one process at the same global batch.

The toy runs start two ranks with torch.multiprocessing (what torchrun does, without its agent); the pretraining run
goes through the real `torchrun -m wam.cli pretrain`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.support.ddp_toy import rank_main, toy_train
from tests.support.live_server import free_port
from wam.train import distributed

ROOT = Path(__file__).resolve().parents[2]


def losses(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r}


def two_ranks(run_dir: Path, steps: int, resume: bool = False, batch_size: int = 8, stop_at: int | None = None) -> None:
    mp.start_processes(rank_main, args=(2, free_port(), str(run_dir), steps, batch_size, resume, stop_at), nprocs=2,
                       start_method="spawn", join=True)


def test_shard_takes_each_ranks_rows_of_every_part():
    batch = {"x": torch.arange(8).view(8, 1), "video": {"latents": torch.arange(4)}, "n": torch.tensor(3), "name": "a"}
    first = distributed.shard(batch, distributed.World(rank=0, size=2))
    second = distributed.shard(batch, distributed.World(rank=1, size=2))
    assert first["x"].flatten().tolist() == [0, 1, 2, 3] and second["x"].flatten().tolist() == [4, 5, 6, 7]
    assert first["video"]["latents"].tolist() == [0, 1] and second["video"]["latents"].tolist() == [2, 3]
    assert first["n"].item() == 3 and first["name"] == "a"
    assert distributed.shard(batch, distributed.World()) is batch


def test_a_batch_that_does_not_split_names_its_part():
    with pytest.raises(distributed.DistributedError, match=r"batch\['video'\]\['latents'\] has 3 rows.*2 processes"):
        distributed.shard({"video": {"latents": torch.zeros(3, 2)}, "x": torch.zeros(6)}, distributed.World(rank=0, size=2))


def test_world_size_above_one_without_torchrun_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(distributed.DistributedError, match="torchrun"):
        distributed.init_from_env("cpu")


@pytest.mark.slow
def test_two_ranks_log_the_single_process_losses_and_resume_on_one(tmp_path):
    single = tmp_path / "single"
    toy_train(single, steps=20)
    ddp = tmp_path / "ddp"
    two_ranks(ddp, steps=20, stop_at=11)  # cut off after the checkpoint of step 10
    expected, got = losses(single), losses(ddp)
    assert sorted(got) == list(range(1, 11))
    for step in got:
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-7), step
    checkpoint = json.loads((ddp / "checkpoint" / "config.json").read_text())
    assert checkpoint["step"] == 10
    # resumed on one process: the global batch of step N is the same, so the curve goes on as the single run's
    toy_train(ddp, steps=20, resume=True)
    resumed = losses(ddp)
    assert sorted(resumed) == list(range(1, 21))
    for step in range(11, 21):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-6), step
    assert sum(resumed[s] for s in range(16, 21)) < 0.5 * sum(resumed[s] for s in range(1, 6))  # and it learned


@pytest.mark.slow
def test_torchrun_pretrain_matches_one_process_and_writes_once(tmp_path):
    from tests.support.pretrain_fixtures import write_dataset

    data = write_dataset(tmp_path / "data", range(6))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["pretrain", "--data", str(data), "--preset", "tiny", "--steps", "8"]
    single = subprocess.run([sys.executable, "-m", "wam.cli", *common, "--out", str(tmp_path / "one")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", f"--master_port={free_port()}"]
    ddp = subprocess.run([*launcher, "-m", "wam.cli", *common, "--out", str(tmp_path / "two")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    # the tokenizer's loss is a plain mean over pixels: the two-rank curve is the single one's
    one, two = losses(tmp_path / "one" / "tokenizer"), losses(tmp_path / "two" / "tokenizer")
    assert sorted(one) == sorted(two) and one
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4), step
    # the world model's forward draws per rank (hidden actions), so it matches in what it sees, not bit for bit
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_model"]["val_loss"] > 0
    world_lines = (tmp_path / "two" / "world_model" / "metrics.jsonl").read_text().splitlines()
    assert len(world_lines) == len({json.loads(line)["step"] for line in world_lines})  # one writer: no step twice
    trainer = torch.load(next((tmp_path / "two" / "world_model").glob("checkpoint/trainer.pt")), weights_only=False)
    assert trainer["extra"]["world_size"] == 2
