"""What every command shares: the consoles, the one-line failure, results files, and a preset's schedule."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)


def distributed_rank() -> int:
    """This process's rank under torchrun (0 alone): only rank 0 prints a stage's summary."""
    import os

    return int(os.environ.get("RANK", "0"))


def fail(message: str, code: int = 2) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


BF16_HELP = ("bfloat16 autocast (--bf16) or full precision (--fp32); default: bf16 on cuda only. On CPUs with bf16 units "
             "(AVX512-BF16, AMX) --bf16 trains the cpu preset's tokenizer ~2.7x and world model ~1.7x faster per step "
             "(benchmarks/train_throughput.py --precisions fp32,bf16)")


def train_config(train, seed: int, steps: int | None):
    """A preset's TrainConfig with the seed, and with --steps the schedule and intervals shrunk to fit it."""
    from dataclasses import replace

    train = replace(train, seed=seed)
    if steps is None:
        return train
    return replace(train, steps=steps, warmup_steps=min(train.warmup_steps, max(1, steps // 10)),
                   eval_every=min(train.eval_every, steps), checkpoint_every=min(train.checkpoint_every, steps))


def write_json(path: Path, value) -> None:
    """Results to a file the command line was given (checked up front by `file_out`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


RAY_HELP = ("run the episodes as Ray tasks instead of local workers: auto (the cluster this machine joined with `ray "
            "start`), local (start one here) or a cluster address (ray://HEAD:10001); needs pip install 'wam[ray]'")
