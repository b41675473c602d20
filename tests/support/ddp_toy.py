"""A deterministic toy regression trained by the shared loop, in one process or as one rank of several.

No dropout and a loss that is a plain mean over samples: the gradient of the global batch is then exactly the mean of
the ranks' gradients, so a data-parallel run must log the single process's losses up to float rounding."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from wam.train import RandomWindowSource, TrainConfig, train


class ToyData(torch.utils.data.Dataset):
    """y = x W + noise: `n` samples of 8 inputs and 2 outputs, fixed by a seed (also the loop's own tests' data)."""

    def __init__(self, n: int = 128, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g)
        self.y = self.x @ torch.randn(8, 2, generator=g) + 0.05 * torch.randn(n, 2, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "index": i}


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 2))
        self.unused = nn.Linear(2, 2)  # a head some batches never reach: DDP must still all-reduce

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        error = self.net(batch["x"]) - batch["y"]
        return (error**2).mean(), {"mae": error.abs().mean().detach()}


class Stopped(Exception):
    """The run was cut off at a chosen step, as a kill would (the checkpoints before it stay)."""


class StoppingSource:
    def __init__(self, source, stop_at: int | None):
        self.source, self.stop_at = source, stop_at

    def batch(self, step: int) -> dict:
        if self.stop_at is not None and step >= self.stop_at:
            raise Stopped(step)
        return self.source.batch(step)


def toy_train(run_dir: Path, steps: int, batch_size: int = 8, resume: bool = False, stop_at: int | None = None):
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=1e-1, warmup_steps=2, log_every=1, checkpoint_every=5,
                         device="cpu")
    source = StoppingSource(RandomWindowSource(ToyData(96), batch_size, seed=3), stop_at)
    try:
        return train(ToyModel(), source, config, run_dir, model_config={}, kind="toy", resume=resume, progress=False)
    except Stopped:
        return None


def rank_main(rank: int, world_size: int, port: int, run_dir: str, steps: int, batch_size: int, resume: bool,
              stop_at: int | None = None) -> None:
    """One rank, as torchrun would start it (its environment variables set by hand)."""
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        toy_train(Path(run_dir), steps, batch_size, resume, stop_at)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
