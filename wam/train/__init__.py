"""Training: one shared loop (checkpoints, resume, logs) that every stage runs with its own model and data."""

from wam.train.checkpoint import LoadedCheckpoint, load_checkpoint, restore_rng, save_checkpoint
from wam.train.loop import TrainConfig, TrainError, TrainResult, make_source, train
from wam.train.schedule import lr_factor
from wam.train.sources import BatchSource, LoaderSource, RandomWindowSource

__all__ = [
    "BatchSource",
    "LoadedCheckpoint",
    "LoaderSource",
    "RandomWindowSource",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "load_checkpoint",
    "lr_factor",
    "make_source",
    "restore_rng",
    "save_checkpoint",
    "train",
]
