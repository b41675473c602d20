"""A shared tiny finetuning run (on the tiny pretraining run of tests.support.pretrain_fixtures), built once per session."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.support.pretrain_fixtures import tiny_dataset, tiny_run, write_dataset

_CACHE: dict[str, object] = {}


def tiny_finetune_config(steps: int = 30, **changes):
    from wam.config import finetune_preset

    config = finetune_preset("tiny")
    train = replace(config.train, device="cpu", steps=steps, eval_every=min(config.train.eval_every, steps),
                    checkpoint_every=min(config.train.checkpoint_every, steps))
    return replace(config, train=train, **changes)


def tiny_wam_run(tmp_path_factory) -> tuple[Path, dict]:
    """(run directory, summary): the tiny pretraining run finetuned on its own labelled episodes, K = 4."""
    if "run" not in _CACHE:
        from wam.train.finetune import finetune

        pretrained, _ = tiny_run(tmp_path_factory)
        out = tmp_path_factory.mktemp("tiny_wam") / "run"
        summary = finetune(pretrained, [tiny_dataset(tmp_path_factory)], out, tiny_finetune_config(episodes_per_task=4), progress=False)
        _CACHE["run"] = (out, summary)
    return _CACHE["run"]


def tiny_dream_run(tmp_path_factory) -> Path:
    """A tiny WAM finetuned on episodes that carry rewards and success flags: something to dream with."""
    if "dream" not in _CACHE:
        from wam.train.finetune import finetune

        pretrained, _ = tiny_run(tmp_path_factory)
        root = tmp_path_factory.mktemp("dream")
        data = write_dataset(root / "rewarded", range(20, 30), rewards=True)
        finetune(pretrained, [data], root / "wam", tiny_finetune_config(steps=60), progress=False)
        _CACHE["dream"] = root / "wam"
    return _CACHE["dream"]


def private_dream_world(tmp_path_factory, tmp_path) -> Path:
    """A private copy of the shared tiny dream world, so what a test trains into it (a judge, a guard) stays there."""
    import shutil

    world = tmp_path / "world"
    shutil.copytree(tiny_dream_run(tmp_path_factory), world)
    return world

