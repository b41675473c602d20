"""A stage of a multi-stage run (tokenizer, world model, WAM): skipped when finished, resumed
when started, so rerunning `wam pretrain --resume` or `wam finetune --resume` picks up exactly
where a killed run stopped. Also the validation metrics every stage logs the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from rich.console import Console
from torch import nn

from wam.config import config_changes

from wam.train.checkpoint import resolve
from wam.train.loop import TrainConfig, TrainResult, _to_device, train


def warn_ignored_settings(run_dir: Path, asked: dict, saved: dict) -> None:
    """Say on stderr which asked-for settings a resumed run leaves unused (it keeps its saved config)."""
    changes = config_changes(asked, saved)
    if changes:
        Console(stderr=True).print(f"{run_dir}: resuming with the run's saved config; these settings asked for now are "
                                   "not used (saved -> asked):\n  " + "\n  ".join(changes), style="yellow", markup=False,
                                   highlight=False)


def stage_finished(run_dir: Path, steps: int) -> bool:
    found = resolve(Path(run_dir) / "checkpoint")
    if found is None:
        return False
    return int(json.loads((found / "config.json").read_text()).get("step", -1)) >= steps


def train_stage(model: nn.Module, batches, config: TrainConfig, run_dir: Path, *, model_config: dict, kind: str,
                resume: bool, evaluate: Callable | None = None, progress: bool = True) -> TrainResult | None:
    """Train `model` in `run_dir` unless that stage already reached `config.steps`; None when skipped."""
    if stage_finished(run_dir, config.steps):
        return None
    return train(model, batches, config, run_dir, model_config=model_config, kind=kind,
                 resume=resume and resolve(Path(run_dir) / "checkpoint") is not None, evaluate=evaluate, progress=progress)


def validation_metrics(model: nn.Module, batches: list[dict], loss_key: str) -> dict[str, float]:
    """Mean of the model's metrics over fixed validation batches, as `val_<name>`; `loss_key` is `val_loss`."""
    device = next(model.parameters()).device
    totals: dict[str, float] = {}
    for batch in batches:
        _, metrics = model(_to_device(batch, device))
        for key, value in metrics.items():
            totals[key] = totals.get(key, 0.0) + float(value) / len(batches)
    return {"val_loss": totals[loss_key], **{f"val_{k}": v for k, v in totals.items()}}
