"""The shared training loop: it learns, follows its schedule, and resumes exactly.

A toy regression MLP (with dropout, so resume must restore the RNG too) trains for a
few dozen steps; interrupted runs, in-process and killed with SIGKILL, must log the same
losses as an uninterrupted run, each step once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.support.ddp_toy import ToyData
from wam.errors import CheckpointError
from wam.train import (
    LoaderSource, RandomWindowSource, TrainConfig, TrainError, load_checkpoint, lr_factor, make_source, train,
)
from wam.train.loop import TrainResult, stage_seconds
from wam.train.schedule import make_optimizer

ROOT = Path(__file__).resolve().parents[2]  # the subprocess imports this module as tests.train.test_loop from here
STEPS = 40


class ToyModel(nn.Module):
    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, 2))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        error = self.net(batch["x"]) - batch["y"]
        loss = (error**2).mean()
        return loss, {"mae": error.abs().mean().detach()}


class ScriptedSource:
    """The toy batches, with NaN targets from `nan_from`, a KeyboardInterrupt at `interrupt_at`,
    and a sleep per step (a long one after `block_after`) so a test can kill a run mid-way."""

    def __init__(self, nan_from=None, interrupt_at=None, sleep=0.0, block_after=None):
        self.inner = RandomWindowSource(ToyData(), batch_size=8, seed=0)
        self.nan_from, self.interrupt_at, self.sleep, self.block_after = nan_from, interrupt_at, sleep, block_after

    def batch(self, step: int) -> dict:
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.sleep if self.block_after is None or step <= self.block_after else 120)
        batch = self.inner.batch(step)
        if self.nan_from is not None and step >= self.nan_from:
            batch["y"] = torch.full_like(batch["y"], math.nan)
        return batch



def config(**overrides) -> TrainConfig:
    base = dict(steps=STEPS, batch_size=8, lr=3e-3, warmup_steps=5, log_every=1, checkpoint_every=10, seed=0, device="cpu")
    return TrainConfig(**{**base, **overrides})


def run(run_dir, source=None, resume=False, evaluate=None, **overrides):
    torch.manual_seed(0)  # the same initial weights in every run
    return train(
        ToyModel(), source or ScriptedSource(), config(**overrides), Path(run_dir),
        model_config={"hidden": 16}, kind="toy", resume=resume, evaluate=evaluate, progress=False,
    )


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir) -> dict[int, float]:
    records = read_metrics(run_dir)
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), f"steps repeated or out of order: {steps}"
    return {r["step"]: r["loss"] for r in records}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Losses of an uninterrupted 40-step run."""
    run_dir = tmp_path_factory.mktemp("reference")
    result = run(run_dir)
    assert result.step == STEPS
    return losses(run_dir)


def test_loss_decreases(tmp_path):
    result = run(tmp_path / "run", steps=200, log_every=10, checkpoint_every=200, warmup_steps=10, lr=2e-2)
    curve = [r["loss"] for r in read_metrics(tmp_path / "run")]
    assert len(curve) == 20 and curve[-1] < 0.2 * curve[0], curve
    assert result.step == 200 and result.loss == curve[-1] and result.steps_per_s > 0
    record = read_metrics(tmp_path / "run")[-1]
    assert {"loss", "mae", "lr", "grad_norm", "steps_per_s"} <= set(record)
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert load_checkpoint(tmp_path / "run" / "checkpoint", ToyModel()).step == 200


class AutocastProbe(ToyModel):
    """The toy model, noting the dtype CPU autocast gave each training forward (None: autocast off)."""

    def __init__(self):
        super().__init__()
        self.seen: list = []

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        if self.training:
            self.seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return super().forward(batch)


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (None, None), (False, None)])
def test_bf16_autocasts_on_the_cpu_only_when_asked(tmp_path, bf16, expected):
    """--bf16 on a CPU (1.6-3x faster steps where the CPU has bf16 units) must really run in bf16, and the
    default on a CPU must stay full precision; either way the model trains."""
    torch.manual_seed(0)
    model = AutocastProbe()
    train(model, ScriptedSource(), config(steps=60, lr=2e-2, log_every=10, checkpoint_every=60, bf16=bf16), tmp_path / "run",
          model_config={}, kind="toy", progress=False)
    assert model.seen and set(model.seen) == {expected}
    curve = [r["loss"] for r in read_metrics(tmp_path / "run")]
    assert curve[-1] < 0.5 * curve[0], curve


def test_lr_schedule():
    total, warmup, floor = 100, 10, 0.1
    factors = [lr_factor(s, total, warmup, floor) for s in range(1, total + 1)]
    rises = [factors[i + 1] - factors[i] for i in range(warmup - 1)]
    assert factors[0] == pytest.approx(0.1) and max(rises) == pytest.approx(min(rises))  # linear warm-up
    assert factors[warmup - 1] == 1.0 == max(factors)  # the peak at the end of warm-up
    decay = factors[warmup - 1 :]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert factors[warmup - 1 + (total - warmup) // 2] == pytest.approx(floor + (1 - floor) / 2)  # cosine midpoint
    assert factors[-1] == pytest.approx(floor)


def test_no_weight_decay_on_biases_norms_and_embeddings():
    model = nn.ModuleDict({"embed": nn.Embedding(10, 4), "proj": nn.Linear(4, 4), "norm": nn.LayerNorm(4)})
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.05)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model["proj"].weight)}


def test_resume_is_exact(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # interrupted after step 20, just checkpointed
        run(run_dir, source=ScriptedSource(interrupt_at=21))
    assert load_checkpoint(run_dir / "checkpoint").step == 20
    result = run(run_dir, resume=True)
    assert result.step == STEPS
    resumed = losses(run_dir)
    assert list(resumed) == list(range(1, STEPS + 1))
    assert all(resumed[s] == reference[s] for s in range(21, STEPS + 1)), (resumed, reference)
    lrs = {r["step"]: r["lr"] for r in read_metrics(run_dir)}
    assert all(lrs[s] == pytest.approx(3e-3 * lr_factor(s, STEPS, 5, 0.1)) for s in lrs)


@pytest.mark.slow  # a training subprocess, killed
def test_sigkill_then_resume(tmp_path, reference):
    """Killed after its checkpoint at step 5, with steps 6..8 logged: those are re-run, once each."""
    run_dir = tmp_path / "run"
    script = (
        "import torch; torch.set_num_threads(1)\n"
        "from tests.train.test_loop import ScriptedSource, run\n"
        f"run({str(run_dir)!r}, source=ScriptedSource(sleep=0.01, block_after=8), checkpoint_every=5)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not ((run_dir / "checkpoint" / "config.json").exists() and _logged(run_dir, 8)):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the training subprocess wrote no checkpoint in 60 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir / "checkpoint").step == 5

    result = run(run_dir, resume=True, checkpoint_every=5)
    assert result.step == STEPS
    resumed = losses(run_dir)
    assert list(resumed) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=1e-7), step


def _logged(run_dir: Path, step: int) -> bool:
    try:
        return any(json.loads(line)["step"] >= step for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    except (OSError, ValueError):
        return False


def test_loader_source_matches_random_window_source():
    data = ToyData()
    direct = RandomWindowSource(data, batch_size=8, seed=3)
    loader = LoaderSource(data, batch_size=8, seed=3, num_workers=2, start_step=4)
    for step, batch in zip(range(4, 10), loader):
        expected = direct.batch(step)
        assert torch.equal(batch["x"], expected["x"]) and torch.equal(batch["index"], expected["index"])
    for step in (2, 3, 7):  # asked in order, then out of order: the workers restart at 7
        assert torch.equal(loader.batch(step)["index"], direct.batch(step)["index"])
    loader.close()
    assert isinstance(make_source(data, config(num_workers=2)), LoaderSource)
    assert isinstance(make_source(data, config()), RandomWindowSource)


def test_nonfinite_first_loss_fails_before_any_checkpoint(tmp_path):
    with pytest.raises(TrainError, match=r"first batch \(step 1\).*non-finite loss.*batch\['y'\]"):
        run(tmp_path / "run", source=ScriptedSource(nan_from=1))
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_nonfinite_loss_mid_run_keeps_last_good_step(tmp_path):
    with pytest.raises(TrainError, match=r"step 7 gave a non-finite loss.*last good step \(6\)"):
        run(tmp_path / "run", source=ScriptedSource(nan_from=7))
    model = ToyModel()
    assert load_checkpoint(tmp_path / "run" / "checkpoint", model).step == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_existing_run_needs_resume(tmp_path):
    run(tmp_path / "run", steps=3)
    with pytest.raises(TrainError, match="--resume"):
        run(tmp_path / "run", steps=3)
    with pytest.raises(CheckpointError, match="expected a 'other' checkpoint"):
        torch.manual_seed(0)
        train(ToyModel(), ScriptedSource(), config(steps=5), tmp_path / "run", model_config={}, kind="other", resume=True, progress=False)


def test_resume_without_checkpoint_starts_fresh(tmp_path, capsys):
    result = run(tmp_path / "run", resume=True, steps=3)
    assert result.step == 3 and "starting from step 1" in capsys.readouterr().err


def test_evaluation_and_best_checkpoint(tmp_path):
    scores = iter([3.0, 1.0, 2.0, 5.0])

    def evaluate(model):
        assert not model.training and not torch.is_grad_enabled()
        return {"val_loss": next(scores)}

    run(tmp_path / "run", evaluate=evaluate, eval_every=10)
    evals = {r["step"]: r["eval/val_loss"] for r in read_metrics(tmp_path / "run") if "eval/val_loss" in r}
    assert evals == {10: 3.0, 20: 1.0, 30: 2.0, 40: 5.0}
    best = load_checkpoint(tmp_path / "run" / "best", ToyModel())
    assert best.step == 20 and best.extra["val_loss"] == 1.0


def test_stage_seconds_add_to_what_the_run_recorded(tmp_path):
    summary = tmp_path / "summary.json"
    ran = TrainResult(step=10, loss=0.1, seconds=2.5, steps_per_s=4.0, run_dir=tmp_path)
    assert stage_seconds(summary, {"tokenizer": ran, "world_model": None}) == {"tokenizer": 2.5}  # no summary yet
    summary.write_text(json.dumps({"seconds": {"tokenizer": 10.0, "world_model": 20.0}}))
    assert stage_seconds(summary, {"tokenizer": None, "world_model": None}) == {"tokenizer": 10.0, "world_model": 20.0}
    assert stage_seconds(summary, {"tokenizer": None, "world_model": ran}) == {"tokenizer": 10.0, "world_model": 22.5}
    summary.write_text("{not json")  # a torn summary: this call's figures only
    assert stage_seconds(summary, {"world_model": ran}) == {"world_model": 2.5}
