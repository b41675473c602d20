"""The one training loop every stage runs: pretraining, finetuning, and RL later.

A stage supplies its model (whose `forward(batch)` returns `(loss, metrics)`), a batch
source and a config; the loop owns the optimiser, the learning-rate schedule, mixed
precision, logging (TensorBoard, `metrics.jsonl`, a progress bar), evaluation, checkpoints
and resume. Resume is exact: the batch of step N is a function of (seed, N) alone, the
learning rate a function of N alone, and the checkpoint carries weights, optimiser and RNG
states, so a run interrupted and resumed logs the same losses as one that never stopped.

A run directory holds:

    checkpoint/     the latest checkpoint (see wam/train/checkpoint.py)
    best/           the checkpoint with the lowest `val_loss` so far, if evaluation gives one
    snapshots/      weights every `snapshot_every` steps, when asked (models of graded quality from one run)
    metrics.jsonl   one JSON line per logged step, never a step twice
    tb/             TensorBoard event files

Under torchrun the same loop trains data-parallel (wam/train/distributed.py): each rank its slice of the step's
global batch, gradients averaged by DistributedDataParallel, logged figures averaged over the ranks, and only rank 0
writes the run directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import default_collate

from wam.errors import WamError
from wam.train import checkpoint as ckpt
from wam.train import distributed
from wam.train.schedule import lr_factor, make_optimizer, set_lr
from wam.train.sources import BatchSource, LoaderSource, RandomWindowSource

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
SNAPSHOT_DIR = "snapshots"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"


def snapshot_name(step: int) -> str:
    return f"step-{step:06d}"


class TrainError(WamError):
    """Training cannot start or cannot go on: a non-finite loss, a run directory already in use."""


@dataclass
class TrainConfig:
    """How to optimise; what to optimise is the stage's business."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05  # on matrices only: see schedule.no_decay
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0  # max global grad norm; 0 turns clipping off
    log_every: int = 10  # logs the mean over the steps since the last log; a checkpoint_every that is
    # a multiple of it keeps a resumed run's log identical to an uninterrupted one
    eval_every: int = 0  # 0: never
    checkpoint_every: int = 500
    snapshot_every: int = 0  # > 0: also keep the weights every this many steps (`wam.policy.load("RUN@STEP")`)
    seed: int = 0
    device: str = "auto"  # "auto": cuda if available, else cpu
    bf16: bool | None = None  # bfloat16 autocast; None: on cuda only
    num_workers: int = 0  # batch-loading processes (make_source)
    betas: tuple[float, float] = (0.9, 0.95)
    compile: bool = False  # torch.compile the model's forward (worth it on a GPU for long runs; minutes to compile)

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("log_every", 1), ("checkpoint_every", 1),
                          ("warmup_steps", 0), ("eval_every", 0), ("num_workers", 0), ("snapshot_every", 0)):
            if int(getattr(self, name)) < low:
                raise ValueError(f"TrainConfig.{name} must be >= {low}, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(f"TrainConfig.weight_decay and grad_clip must be >= 0, got {self.weight_decay}, {self.grad_clip}")


@dataclass
class TrainResult:
    step: int  # the last step trained (the checkpoint's step)
    loss: float | None  # mean loss of the last logged window
    seconds: float  # wall time of this call
    steps_per_s: float  # steps this call ran, per second
    run_dir: Path


def stage_seconds(summary_path: Path, results: dict[str, TrainResult | None]) -> dict[str, float]:
    """Training wall time per stage, summed over the calls that wrote the run's summary. A stage that
    was already finished returns None and ran for no time in this call: without the earlier summary's
    figure, resuming a finished run (as the rebuild scripts do) would erase how long it trained.
    A call killed before its summary leaves no figure to add, so a killed stage's time is not counted."""
    previous: dict = {}
    if summary_path.is_file():
        with contextlib.suppress(json.JSONDecodeError, AttributeError, OSError):
            previous = dict(json.loads(summary_path.read_text()).get("seconds", {}))
    seconds = {name: float(value) for name, value in previous.items() if isinstance(value, (int, float))}
    for name, result in results.items():
        if result is not None:
            seconds[name] = round(seconds.get(name, 0.0) + result.seconds, 1)
    return seconds


def make_source(dataset: torch.utils.data.Dataset, config: TrainConfig, collate: Callable = default_collate) -> BatchSource:
    """The batch source a config asks for: in-process, or with `config.num_workers` workers."""
    if config.num_workers > 0:
        return LoaderSource(dataset, config.batch_size, config.seed, config.num_workers, collate=collate)
    return RandomWindowSource(dataset, config.batch_size, config.seed, collate)


# ---------------------------------------------------------------------------------------
# The loop


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when there is a GPU, else the CPU; under torchrun each rank its own GPU."""
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    return distributed.device_for(distributed.current(), device)


def train(
    model: nn.Module,
    batches: BatchSource,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    model_config: dict[str, Any],
    kind: str,
    resume: bool = False,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `model` for `config.steps` steps in `run_dir`, or continue the run there (`resume`).

    `model_config` and `kind` go into every checkpoint so a later stage can rebuild the
    model and refuse the wrong kind. `evaluate(model)`, called every `eval_every` steps in
    eval mode without gradients, returns metrics; a `val_loss` among them selects `best/`.
    """
    run_dir = Path(run_dir)
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    world = distributed.init_from_env(config.device)
    console = Console(stderr=True, quiet=not world.main)
    device = resolve_device(config.device)
    bf16 = config.bf16 if config.bf16 is not None else device.type == "cuda"
    existing = ckpt.resolve(checkpoint_dir)
    if existing is not None and not resume:
        raise TrainError(
            f"{run_dir} already holds a training run (checkpoint in {existing}); "
            "pass --resume (resume=True) to continue it, or choose another run directory"
        )

    model.to(device)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.betas, fused=device.type == "cuda")
    _seed_everything(config.seed)
    start, best_val = 1, math.inf
    if resume and existing is not None:
        loaded = ckpt.load_checkpoint(checkpoint_dir, model, optimizer, map_location=device, expected_kind=kind)
        ckpt.restore_rng(loaded)
        start = loaded.step + 1
        best_val = float(loaded.extra.get("best_val_loss", math.inf))
        console.print(f"resuming {run_dir} after step {loaded.step}")
    elif resume:
        console.print(f"{checkpoint_dir}: no checkpoint yet, starting from step 1")
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / METRICS_FILE
    last_loss = _truncate_metrics(metrics_path, start - 1) if world.main else None
    distributed.barrier()  # every rank has read the checkpoint before rank 0 writes the next one

    def save(step: int) -> None:
        if world.main:
            extra = {"best_val_loss": best_val, "train_config": dataclasses.asdict(config), "world_size": world.size}
            ckpt.save_checkpoint(checkpoint_dir, model, model_config, step, optimizer, extra=extra, kind=kind)

    tb = _summary_writer(run_dir / TB_DIR, start, world)
    params = [p for p in model.parameters() if p.requires_grad]
    forward = distributed.wrap(model, world, device)
    if config.compile:
        forward = torch.compile(forward)
    bar = _progress_bar(console, enabled=progress and world.main)
    task = bar.add_task(kind, total=config.steps, completed=start - 1, loss="-", rate="-")
    t_start = window_t0 = time.perf_counter()
    window: dict[str, Any] = {}
    window_steps = 0
    saved_step = last_step = start - 1
    model.train()
    try:
        with bar, (open(metrics_path, "a") if world.main else contextlib.nullcontext(_NullFile())) as metrics_file:
            for step in range(start, config.steps + 1):
                lr = config.lr * lr_factor(step, config.steps, config.warmup_steps, config.min_lr_ratio)
                set_lr(optimizer, lr)
                batch = _to_device(distributed.shard(batches.batch(step), world), device)
                if world.distributed:
                    distributed.seed_step(config.seed, step, world)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss, metrics = forward(batch)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip or math.inf)
                loss_value, grad_value = torch.stack([loss.detach().float(), grad_norm.float().to(loss.device)]).tolist()
                if not (math.isfinite(loss_value) and math.isfinite(grad_value)):
                    if step > start and saved_step < step - 1:
                        save(step - 1)  # weights and optimiser are still those of the last good step
                    raise _nonfinite_error(run_dir, step, step == start, loss_value, grad_value, batch)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

                last_step = step
                window_steps += 1
                _accumulate(window, {"loss": loss_value, "grad_norm": grad_value, **metrics})
                bar.update(task, advance=1)
                record: dict[str, Any] = {}
                if step % config.log_every == 0 or step == config.steps:
                    now = time.perf_counter()
                    train_metrics = distributed.mean_over_ranks({k: float(v) / window_steps for k, v in window.items()}, world)
                    rate = window_steps / max(now - window_t0, 1e-9)
                    train_metrics.update(lr=lr, steps_per_s=rate)
                    record.update(train_metrics)
                    for key, value in train_metrics.items():
                        tb.add_scalar(f"train/{key}", value, step)
                    last_loss = train_metrics["loss"]
                    bar.update(task, loss=f"{last_loss:.4g}", rate=f"{rate:.1f}")
                    window, window_steps, window_t0 = {}, 0, now
                if evaluate is not None and config.eval_every and (step % config.eval_every == 0 or step == config.steps):
                    results = _evaluate(model, evaluate, device, bf16) if world.main else {}
                    distributed.barrier()  # the other ranks wait for rank 0's evaluation
                    for key, value in results.items():
                        record[f"eval/{key}"] = value
                        tb.add_scalar(f"eval/{key}", value, step)
                    if "val_loss" in results and results["val_loss"] < best_val:
                        best_val = results["val_loss"]
                        ckpt.save_checkpoint(run_dir / BEST_DIR, model, model_config, step,
                                             extra={"val_loss": best_val}, rng_state=False, kind=kind)
                if record and world.main:
                    metrics_file.write(json.dumps({"step": step, **record}) + "\n")
                    metrics_file.flush()
                if config.snapshot_every and step % config.snapshot_every == 0 and world.main:
                    ckpt.save_checkpoint(run_dir / SNAPSHOT_DIR / snapshot_name(step), model, model_config, step,
                                         rng_state=False, kind=kind)
                if step % config.checkpoint_every == 0 or step == config.steps:
                    if world.main:
                        os.fsync(metrics_file.fileno())  # the log is as durable as the checkpoint
                    save(step)
                    tb.flush()
                    saved_step = step
    finally:
        tb.close()
    distributed.barrier()  # the last checkpoint is on disk before any rank reads it
    seconds = time.perf_counter() - t_start
    ran = last_step - (start - 1)
    return TrainResult(step=last_step, loss=last_loss, seconds=seconds, steps_per_s=ran / max(seconds, 1e-9), run_dir=run_dir)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _to_device(value: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists and tuples) moved to `device`; anything else as it is. To a GPU through
    pinned memory, so the copy runs beside the previous step's kernels."""
    if isinstance(value, torch.Tensor):
        if device.type == "cuda" and value.device.type == "cpu":
            value = value.pin_memory()
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _accumulate(window: dict[str, Any], values: dict[str, Any]) -> None:
    """Running sums; tensor metrics stay on the device until logged, so no sync per step."""
    for key, value in values.items():
        value = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
        window[key] = window.get(key, 0.0) + value


def _nonfinite_error(run_dir: Path, step: int, first: bool, loss: float, grad_norm: float, batch: dict) -> TrainError:
    what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", grad_norm)
    bad = [k for k, v in batch.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    inputs = f" (non-finite values in batch['{bad[0]}']{' and others' if len(bad) > 1 else ''})" if bad else ""
    if first:
        return TrainError(f"{run_dir}: the first batch (step {step}) gives a non-finite {what} ({value}){inputs} "
                          "before any training; check the data and the model's initialisation")
    return TrainError(f"{run_dir}: step {step} gave a non-finite {what} ({value}){inputs}; stopped. The last good step "
                      f"({step - 1}) is checkpointed in {run_dir / CHECKPOINT_DIR}; lower the learning rate or check the data, then resume")


@contextlib.contextmanager
def _rng_preserved(device: torch.device) -> Iterator[None]:
    """Evaluation must not move the training RNGs, or when it runs would change training."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def _evaluate(model: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]], device: torch.device, bf16: bool) -> dict[str, float]:
    model.eval()
    try:
        with _rng_preserved(device), torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return {k: float(v) for k, v in evaluate(model).items()}
    finally:
        model.train()


def _truncate_metrics(path: Path, last_step: int) -> float | None:
    """Drop lines past `last_step` (and any cut short by a kill); returns the last kept loss."""
    if not path.exists():
        return None
    kept, last_loss = [], None
    lines = path.read_text().splitlines()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
            kept.append(line)
            last_loss = record.get("loss", last_loss)
    if kept != lines:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
    return last_loss


class _NullFile:
    """The metrics file of a rank that does not write."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _NullWriter:
    """TensorBoard of a rank that does not write."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _summary_writer(path: Path, start: int, world: distributed.World):
    if not world.main:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(path), purge_step=start)  # hides events a killed run logged past `start`


def _progress_bar(console: Console, enabled: bool) -> Progress:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("{task.fields[rate]} steps/s"), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not enabled)
