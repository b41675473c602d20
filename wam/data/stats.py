"""Feature statistics, per episode and over a dataset, in lerobot's `stats/...` layout.

Training normalises states and actions with these; lerobot reads the same numbers from
meta/stats.json. Dataset quantiles are count-weighted means of episode quantiles: exact
quantiles would need every frame again at each append.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wam.errors import DatasetError

STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


@dataclass(frozen=True)
class FeatureStats:
    """Per-dimension statistics of one feature, with where they came from (for error messages)."""

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    source: str

    def check(self, name: str) -> None:
        """NaN or infinite statistics, or a feature with no variance in any dimension, are refused."""
        for stat in ("mean", "std", "min", "max"):
            values = getattr(self, stat)
            if not np.all(np.isfinite(values)):
                bad = int(np.flatnonzero(~np.isfinite(values))[0])
                raise DatasetError(f"{self.source}: {name} {stat} is {values[bad]} at dimension {bad}; recompute the statistics")
        if np.all(self.std <= 0) and np.all(self.max <= self.min):
            raise DatasetError(f"{self.source}: {name} has zero variance in every dimension (min = max = {self.min.tolist()}); "
                               "it carries nothing to learn, so the statistics or the data are wrong")


def episode_stats(values: np.ndarray, is_image: bool = False) -> dict[str, np.ndarray]:
    """Stats over the frames of one episode. Images: per channel, scaled to [0, 1], shaped (3, 1, 1)."""
    if is_image:
        # (T, H, W, C) uint8 -> (N, C) in [0, 1]
        flat = values.reshape(-1, values.shape[-1]).astype(np.float64) / 255.0
    else:
        flat = values.reshape(values.shape[0], -1).astype(np.float64)
    stats = {
        "min": flat.min(axis=0),
        "max": flat.max(axis=0),
        "mean": flat.mean(axis=0),
        "std": flat.std(axis=0),
        "count": np.array([values.shape[0]], dtype=np.int64),
    }
    # Quantiles need a sort; for images every 16th pixel estimates them well at a fraction of the cost.
    sample = flat[::16] if is_image else flat
    quantiles = np.quantile(sample, list(QUANTILES.values()), axis=0)
    for name, values in zip(QUANTILES, quantiles):
        stats[name] = values
    if is_image:
        stats = {k: (v if k == "count" else v.reshape(-1, 1, 1)) for k, v in stats.items()}
    return stats


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine episode stats exactly for min/max/mean/std (pooled variance), approximately for quantiles."""
    counts = np.array([float(s["count"][0]) for s in per_episode])
    weights = counts / counts.sum()
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in per_episode])
    stds = np.stack([np.asarray(s["std"], dtype=np.float64) for s in per_episode])
    w = weights.reshape((-1,) + (1,) * (means.ndim - 1))
    mean = (w * means).sum(axis=0)
    variance = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
    out = {
        "min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }
    for name in QUANTILES:
        out[name] = (w * np.stack([np.asarray(s[name], dtype=np.float64) for s in per_episode])).sum(axis=0)
    return out


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    return {key: {name: np.asarray(v).tolist() for name, v in feature.items()} for key, feature in stats.items()}


def dataset_feature_stats(paths: list, key: str) -> FeatureStats | None:
    """Pooled statistics of feature `key` over datasets: from each one's meta/stats.json, or computed
    from its frames where that file (or the feature in it) is missing. None when no dataset has `key`.

    A NaN, an infinity or a malformed entry in a stats file is an error naming the file and field.
    """
    import json
    from pathlib import Path

    from wam.data.layout import STATS_PATH
    from wam.data.reader import Dataset

    pooled, sources = [], []
    for path in paths:
        dataset = Dataset(path)
        if key not in dataset.features:
            continue
        stats_file = Path(path) / STATS_PATH
        entry = None
        if stats_file.exists():
            try:
                entry = json.loads(stats_file.read_text()).get(key)
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
                raise DatasetError(f"{stats_file}: not valid JSON stats ({err})") from None
        if entry is not None:
            try:
                stats = {name: np.asarray(entry[name], dtype=np.float64).reshape(-1) for name in ("mean", "std", "min", "max")}
                stats["count"] = np.asarray(entry.get("count", [dataset.num_frames]), dtype=np.float64).reshape(-1)[:1]
            except (KeyError, TypeError, ValueError) as err:
                raise DatasetError(f"{stats_file}: {key} statistics malformed ({err!r})") from None
            sources.append(str(stats_file))
        else:
            values = [dataset.low_dim(e.index)[key] for e in dataset.episodes if key in dataset.low_dim(e.index)]
            if not values:
                continue
            flat = np.concatenate([np.asarray(v, np.float64).reshape(len(v), -1) for v in values])
            stats = {"mean": flat.mean(0), "std": flat.std(0), "min": flat.min(0), "max": flat.max(0), "count": np.array([len(flat)])}
            sources.append(f"{path} (computed from the frames: no {key} in {STATS_PATH})")
        pooled.append(stats)
    if not pooled:
        return None
    merged = aggregate_stats([{**s, "q01": s["mean"], "q10": s["mean"], "q50": s["mean"], "q90": s["mean"], "q99": s["mean"]}
                              for s in pooled])
    result = FeatureStats(merged["mean"], merged["std"], merged["min"], merged["max"], "; ".join(sources))
    result.check(key)
    return result
