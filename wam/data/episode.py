"""One episode in memory, as collectors produce it and the writer consumes it.

An episode with `action=None` is action-free video: its actions are absent, not zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wam.data.layout import ACTION_KEY, Feature
from wam.errors import DatasetError

InfoValue = str | int | float | bool


@dataclass
class Episode:
    """Frames of one episode.

    images: camera key (e.g. `observation.images.main`) -> (T, H, W, 3) uint8
    data:   low-dimensional feature key -> (T, *shape), e.g. `observation.state` (T, 4);
            leave `action` out for action-free video
    success: did the episode achieve its task (recorded in meta/episodes)
    info:   scalar metadata kept per episode as `info/<key>` (env id, seed, noise, ...)
    """

    task: str
    images: dict[str, np.ndarray]
    data: dict[str, np.ndarray]
    success: bool | None = None
    info: dict[str, InfoValue] = field(default_factory=dict)

    @property
    def length(self) -> int:
        for array in list(self.images.values()) + list(self.data.values()):
            return int(array.shape[0])
        return 0

    @property
    def has_actions(self) -> bool:
        return ACTION_KEY in self.data

    def validate(self, features: dict[str, Feature]) -> None:
        """Raise DatasetError naming the feature whose shape, dtype or length does not fit the dataset."""
        if not self.task or not isinstance(self.task, str):
            raise DatasetError(f"episode task must be a non-empty string, got {self.task!r}")
        n = self.length
        if n == 0:
            raise DatasetError("episode has no frames")
        given = set(self.images) | set(self.data)
        unknown = given - set(features)
        if unknown:
            raise DatasetError(f"episode has features the dataset does not declare: {sorted(unknown)}")
        for key, feature in features.items():
            if feature.is_video:
                if key not in self.images:
                    raise DatasetError(f"episode is missing camera {key!r}")
                frames = self.images[key]
                expected = (n, *feature.shape)
                if frames.dtype != np.uint8 or frames.shape != expected:
                    raise DatasetError(f"camera {key!r}: expected uint8 {expected}, got {frames.dtype} {frames.shape}")
                continue
            if key not in self.data:
                if key == ACTION_KEY:
                    continue  # action-free video
                raise DatasetError(f"episode is missing feature {key!r}")
            values = np.asarray(self.data[key])
            expected_shape = (n,) if feature.shape == (1,) else (n, *feature.shape)
            if values.shape not in (expected_shape, (n, *feature.shape)):
                raise DatasetError(f"feature {key!r}: expected shape {expected_shape}, got {values.shape}")
            if feature.dtype != "bool" and not np.all(np.isfinite(values.astype(np.float64))):
                raise DatasetError(f"feature {key!r} contains NaN or inf")
        for key, value in self.info.items():
            if not isinstance(value, (str, int, float, bool)):
                raise DatasetError(f"episode info {key!r} must be a str, int, float or bool, got {type(value).__name__}")
