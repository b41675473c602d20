"""Windows of T consecutive frames as a PyTorch Dataset, for training with worker processes.

Every start position of every episode long enough is one sample, so an epoch sees each
frame about T times; datasets from several directories (video and robot data) mix freely.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from wam.data.layout import ACTION_KEY, IMAGE_PREFIX
from wam.data.reader import Dataset
from wam.errors import DatasetError


def split_episodes(dataset: Dataset, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Held-out episodes chosen by seed: (train, val) episode indices, val non-empty when possible."""
    order = np.random.default_rng(seed).permutation(dataset.num_episodes)
    n_val = int(round(val_fraction * dataset.num_episodes))
    if val_fraction > 0 and dataset.num_episodes > 1:
        n_val = max(1, n_val)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class WindowDataset(torch.utils.data.Dataset):
    """Samples (T frames of every camera, state, action + mask, task text) from one or more datasets."""

    def __init__(
        self,
        datasets: Sequence[Dataset | str | Path] | Dataset | str | Path,
        window: int,
        episodes: Sequence[Sequence[int] | None] | None = None,
        require_actions: bool = False,
        stride: int = 1,
        cameras: tuple[str, ...] | None = None,
    ):
        """`cameras` names the views (wam/data/spec.py); items hold each view under `observation.images.<view>`
        whatever a dataset calls it, and datasets without a common camera are refused."""
        from wam.data.spec import dataset_spec, merge_specs

        if isinstance(datasets, (Dataset, str, Path)):
            datasets = [datasets]
        self.datasets = [d if isinstance(d, Dataset) else Dataset(d) for d in datasets]
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
        self.window = window
        action_dims = {d.action_dim for d in self.datasets if d.has_actions}
        if len(action_dims) > 1:
            raise DatasetError(f"datasets disagree on the action size: {sorted(action_dims)}")
        self.action_dim = action_dims.pop() if action_dims else None
        # Only what every dataset has can be batched together.
        self.data_keys = sorted(set.intersection(*(set(d.data_keys) - {ACTION_KEY} for d in self.datasets)))
        spec = merge_specs([dataset_spec(d) for d in self.datasets], cameras)
        self.view_keys = {str(d.root): spec.camera_keys[str(d.root)] for d in self.datasets}
        self.camera_keys = [IMAGE_PREFIX + view for view in spec.views]  # the keys items hold
        index: list[tuple[int, int, int]] = []
        for d, dataset in enumerate(self.datasets):
            chosen = range(dataset.num_episodes) if episodes is None or episodes[d] is None else episodes[d]
            for e in chosen:
                meta = dataset.episodes[e]
                if require_actions and not meta.has_actions:
                    continue
                index.extend((d, e, s) for s in range(0, meta.length - window + 1, stride))
        if not index:
            roots = ", ".join(str(d.root) for d in self.datasets)
            raise DatasetError(f"{roots}: no episode has {window} frames{' with actions' if require_actions else ''}")
        self._index = np.array(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        d, e, start = (int(x) for x in self._index[i])
        dataset = self.datasets[d]
        own = self.view_keys[str(dataset.root)]
        raw = dataset.window(e, start, self.window, cameras=list(own))
        item: dict[str, Any] = {"task": raw["task"], "episode_index": e, "dataset_index": d, "start": start}
        for key, source in zip(self.camera_keys, own):
            item[key] = torch.from_numpy(raw[source]).permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W) uint8
        for key in self.data_keys:
            item[key] = torch.from_numpy(np.array(raw[key], dtype=np.float32))  # a copy: arrow buffers are read-only
        if self.action_dim is not None:
            actions = raw.get(ACTION_KEY, np.zeros((self.window, self.action_dim), dtype=np.float32))
            item[ACTION_KEY] = torch.from_numpy(np.array(actions, dtype=np.float32))  # (T, A), zeros where masked
        item["action_mask"] = torch.from_numpy(np.array(raw["action_mask"]))  # (T,) bool
        return item


def loader_context(workers: int):
    """How DataLoader workers start: from a fork server, never by forking this process.

    A trainer's process holds threads (torch's pools, a Ray client's, a TensorBoard writer's);
    a child forked while one of them held a lock waits on it forever. The fork server is a
    clean single-threaded process, and starting from it costs far less than `spawn`.
    """
    if workers <= 0:
        return None
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def make_loader(dataset: WindowDataset, batch_size: int, shuffle: bool = True, workers: int = 0, seed: int = 0) -> DataLoader:
    """A DataLoader with a seeded shuffle; worker processes each decode their own windows."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=generator,
        persistent_workers=workers > 0,
        multiprocessing_context=loader_context(workers),
        drop_last=shuffle,
    )
