"""State and action normalisation, kept inside the model so the statistics travel with its weights.

A robot's state may be joint angles in radians, a gripper opening in metres or positions in
millimetres; the networks want inputs and targets near unit scale. `Normalizer` maps raw
values to that scale and back. Schemes (`NORMALIZE_SCHEMES`):
- `mean_std` (the default): (x - mean) / std, per dimension;
- `min_max`: the dataset's [min, max] onto [-1, 1];
- `none`: raw values (what every wam model before normalisation saw).
A dimension that never changes (std or range 0) is only centred. Its buffers are saved in the
checkpoint, so `act()` takes raw observations and returns raw actions in the dataset's units,
clipped to the range the data spans (`low`, `high`), never to [-1, 1] unless the data says so.
The identity is the default: checkpoints saved before normalisation load unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wam.data.stats import FeatureStats
from wam.errors import DatasetError

NORMALIZE_SCHEMES = ("mean_std", "min_max", "none")


class Normalizer(nn.Module):
    """x -> (x - center) / scale and back; clip to [low, high] in raw units."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("low", torch.full((dim,), -1.0))
        self.register_buffer("high", torch.full((dim,), 1.0))

    def set_stats(self, stats: FeatureStats | None, scheme: str, clip_to_data: bool = True) -> "Normalizer":
        if scheme not in NORMALIZE_SCHEMES:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALIZE_SCHEMES)}, got {scheme!r}")
        if stats is None:
            return self
        dim = self.center.numel()
        if stats.mean.shape != (dim,):
            raise DatasetError(f"{stats.source}: statistics of size {stats.mean.shape}, the model's feature has {dim}")
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=torch.float32)  # noqa: E731
        if scheme == "mean_std":
            center, scale = stats.mean, np.where(stats.std > 1e-8, stats.std, 1.0)
        elif scheme == "min_max":
            span = stats.max - stats.min
            center, scale = (stats.max + stats.min) / 2, np.where(span > 1e-8, span / 2, 1.0)
        else:
            center, scale = np.zeros(dim), np.ones(dim)
        self.center.copy_(as_tensor(center))
        self.scale.copy_(as_tensor(scale))
        if clip_to_data:
            self.low.copy_(as_tensor(stats.min))
            self.high.copy_(as_tensor(stats.max))
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) / self.scale

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.center

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x, self.high), self.low)
