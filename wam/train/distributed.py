"""Data-parallel training under `torchrun`: who this process is, and the few collective steps the loop needs.

`torchrun --nproc_per_node N -m wam.cli pretrain ...` starts N copies of a stage; torchrun sets `RANK`, `WORLD_SIZE`
and `LOCAL_RANK` (and the rendezvous address). Each copy joins the process group here (gloo on the CPU, NCCL on
GPUs), trains a DistributedDataParallel replica on its share of every global batch, and only rank 0 writes: caches,
checkpoints, logs. A plain `python` run has none of those variables: it is world size 1, every function here is a
no-op, and a single machine needs no launcher.

Why the runs stay reproducible: the batch of step N is a pure function of (seed, N) for the whole world (the global
batch), and rank r keeps its r-th contiguous slice of it, so the data a run sees does not depend on the world size.
A model whose forward draws random numbers (hidden-action masks, latent noise) draws them per rank from a generator
seeded by (seed, step, rank): a run is then exact for a given world size, resume included, and differs from one at
another world size only in those draws.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

from wam.errors import WamError


class DistributedError(WamError):
    """A distributed run cannot go on: a batch that does not split evenly over the ranks, a bad launch."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def init_from_env(device: str = "auto") -> World:
    """Join the process group torchrun set up, once; world size 1 (and nothing to join) without torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or not dist.is_available():
        return World()
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise DistributedError(f"WORLD_SIZE={size} but no MASTER_ADDR: start multi-process training with torchrun "
                                   "(torchrun --nproc_per_node N -m wam.cli pretrain ...)")
        gpu = torch.cuda.is_available() and device != "cpu"
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if gpu else "gloo")
    return current()


def device_for(world: World, device: torch.device) -> torch.device:
    """A rank's own GPU (cuda:LOCAL_RANK) when training on CUDA; the CPU is shared."""
    if device.type == "cuda" and world.distributed and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


def barrier() -> None:
    if current().distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[World]:
    """Rank 0 runs the block first (it builds what is cached on disk), the others after it (they find it built)."""
    world = init_from_env()
    if not world.main:
        dist.barrier()
    yield world
    if world.main and world.distributed:
        dist.barrier()


def shard(batch: Any, world: World, where: str = "batch") -> Any:
    """Rank `world.rank`'s contiguous slice of every tensor's first dimension (nested dicts and lists followed).

    Every rank draws the same global batch from the memory-mapped cache (a cheap index) and keeps its rows; forward and
    backward, the cost, are split. Each part of a mixed batch (robot windows, video, play) is split on its own."""
    if not world.distributed:
        return batch
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            return batch
        rows = batch.shape[0]
        if rows % world.size:
            raise DistributedError(f"{where} has {rows} rows, which do not split over {world.size} processes: make every "
                                   f"batch size a multiple of the world size")
        part = rows // world.size
        return batch[world.rank * part:(world.rank + 1) * part]
    if isinstance(batch, dict):
        return {k: shard(v, world, f"{where}['{k}']") for k, v in batch.items()}
    if type(batch) in (list, tuple):
        return type(batch)(shard(v, world, f"{where}[{i}]") for i, v in enumerate(batch))
    return batch


def seed_step(seed: int, step: int, world: World) -> None:
    """The random draws inside a rank's forward at `step`: a function of (seed, step, rank), so resume stays exact."""
    digest = hashlib.blake2b(f"{seed}:{step}:{world.rank}".encode(), digest_size=8).digest()
    torch.manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))


def mean_over_ranks(values: dict[str, float], world: World) -> dict[str, float]:
    """The mean of each logged value over the ranks (one all-reduce), so rank 0 logs the global batch's figures."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    device = torch.device("cuda", world.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    stacked = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(stacked)
    return dict(zip(keys, (stacked / world.size).tolist()))


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module the loop calls: DistributedDataParallel over ranks, the model itself alone.

    `find_unused_parameters`: a stage's heads go unused on some batches (no actions in a video window), and a rank
    whose slice has none must still join the gradient all-reduce."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)
