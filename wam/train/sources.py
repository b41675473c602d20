"""Where the training loop's batches come from: a pure function of (seed, step).

That is what makes resume exact without saving any sampler state: the batch of step N
is the same whether the run got there in one go or was killed and resumed before it.
`RandomWindowSource` loads in this process; `LoaderSource` loads the same batches ahead
in DataLoader worker processes.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterator, Protocol

import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from wam.data.torch_dataset import loader_context


class BatchSource(Protocol):
    def batch(self, step: int) -> dict[str, Any]:
        """The batch of global step `step` (1-based), the same every time it is asked for."""
        ...


def step_indices(num_samples: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Dataset indices of step `step`: drawn with replacement from a generator seeded by (seed, step)."""
    digest = hashlib.blake2b(f"{seed}:{step}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))
    return torch.randint(num_samples, (batch_size,), generator=generator).tolist()


class RandomWindowSource:
    """Random samples (windows) of a map-style dataset, loaded in this process."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, collate: Callable = default_collate):
        if len(dataset) == 0:
            raise ValueError("RandomWindowSource: the dataset is empty")
        self.dataset, self.batch_size, self.seed, self.collate = dataset, batch_size, seed, collate

    def batch(self, step: int) -> dict[str, Any]:
        indices = step_indices(len(self.dataset), self.batch_size, self.seed, step)
        return self.collate([self.dataset[i] for i in indices])


class _StepSampler(Sampler[list[int]]):
    """Yields the index lists of steps start_step, start_step + 1, ... without end."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, start_step: int):
        self.num_samples, self.batch_size, self.seed, self.start_step = num_samples, batch_size, seed, start_step

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield step_indices(self.num_samples, self.batch_size, self.seed, step)
            step += 1


class LoaderSource:
    """The batches of `RandomWindowSource`, loaded ahead by DataLoader worker processes.

    Iterating yields the batches of steps start_step, start_step + 1, ...; `batch(step)`
    takes the next one when asked in order and restarts the workers at `step` otherwise.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, num_workers: int,
                 start_step: int = 1, collate: Callable = default_collate):
        if len(dataset) == 0:
            raise ValueError("LoaderSource: the dataset is empty")
        self.dataset, self.batch_size, self.seed, self.collate = dataset, batch_size, seed, collate
        self.num_workers, self.start_step = num_workers, start_step
        self._iterator: Iterator | None = None
        self._next_step = start_step

    def _loader(self, start_step: int) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_sampler=_StepSampler(len(self.dataset), self.batch_size, self.seed, start_step),
            num_workers=self.num_workers,
            multiprocessing_context=loader_context(self.num_workers),
            collate_fn=self.collate,
            # Its own generator: DataLoader otherwise draws worker seeds from the global RNG,
            # which would make training depend on when the workers were started.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._loader(self.start_step))

    def batch(self, step: int) -> dict[str, Any]:
        if self._iterator is None or step != self._next_step:
            self.close()
            self._iterator = iter(self._loader(step))
        self._next_step = step + 1
        return next(self._iterator)

    def close(self) -> None:
        self._iterator = None  # the DataLoader iterator shuts its workers down when dropped
