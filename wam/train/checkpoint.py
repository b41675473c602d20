"""Checkpoints: what training writes and every later stage (dojo, api, research) reads.

A checkpoint is a directory of three files:

    model.safetensors   the weights (safetensors: no pickle, loadable without wam)
    config.json         {"kind", "step", "wam_version", "config": the model's config}
    trainer.pt          optimiser state, step, extra, RNG states: what exact resume needs

It is written whole or not at all: files go into a sibling `NAME.tmp-<pid>` directory,
each renamed into place after fsync; then the old checkpoint is renamed aside to
`NAME.old-<pid>`, the new one renamed in, and the old one removed. A process killed at any
moment leaves either the old or the new checkpoint complete; if it dies between the two
renames, the reader (and the next writer) takes the one set aside.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

import wam
from wam.errors import CheckpointError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAINER_FILE = "trainer.pt"


@dataclass
class LoadedCheckpoint:
    """What `load_checkpoint` read; the weights (and optimiser state) went into the objects passed."""

    directory: Path
    kind: str
    step: int
    config: dict[str, Any]
    wam_version: str
    extra: dict[str, Any] = field(default_factory=dict)
    scheduler_state: Any = None
    rng: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------
# Writing


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    config: dict[str, Any] | Any,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler_state: Any = None,
    extra: dict[str, Any] | None = None,
    rng_state: bool = True,
    kind: str = "model",
) -> Path:
    """Write `model` (and what resuming needs) to `directory` atomically; returns the directory.

    `config` is the model's config (a dict or a dataclass), JSON-serialisable; `kind` names
    what the checkpoint holds (`world_model`, `wam`, ...) so a stage can refuse the wrong one.
    """
    directory = Path(directory)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    meta = {"kind": kind, "step": int(step), "wam_version": wam.__version__, "config": config}
    try:
        config_text = json.dumps(meta, indent=2, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{directory / CONFIG_FILE}: the model config is not JSON-serialisable: {err}") from err

    directory.parent.mkdir(parents=True, exist_ok=True)
    _recover(directory)
    _remove_stale(directory)
    staging = _sibling(directory, "tmp", os.getpid())
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()

    _write_atomic(staging / MODEL_FILE, lambda p: safetensors.torch.save_file(_weights(model), str(p), metadata={"format": "pt"}))
    trainer = {
        "step": int(step),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler_state,
        "extra": extra or {},
        "rng": _rng_state() if rng_state else None,
    }
    _write_atomic(staging / TRAINER_FILE, lambda p: torch.save(trainer, p))
    _write_atomic(staging / CONFIG_FILE, lambda p: p.write_text(config_text))
    _fsync_dir(staging)

    aside = _sibling(directory, "old", os.getpid())
    if directory.exists():
        os.replace(directory, aside)
    os.replace(staging, directory)
    _fsync_dir(directory.parent)
    if aside.exists():
        shutil.rmtree(aside)
    return directory


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as contiguous CPU tensors; tensors sharing storage (tied weights) are cloned.

    safetensors refuses two names over one storage; cloning keeps both names so the state
    dict loads back strictly.
    """
    out: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in storages or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        elif tensor.numel():
            storages.add(ptr)
        out[name] = tensor
    return out


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its file 0600; keep all three readable alike
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sibling(directory: Path, what: str, pid: int) -> Path:
    return directory.with_name(f"{directory.name}.{what}-{pid}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _leftovers(directory: Path, what: str) -> list[tuple[Path, int]]:
    out = []
    for path in directory.parent.glob(f"{directory.name}.{what}-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        if suffix.isdigit():
            out.append((path, int(suffix)))
    return out


def _recover(directory: Path) -> None:
    """A writer killed between its two renames left the old checkpoint aside: put it back."""
    if directory.exists():
        return
    aside = [p for p, pid in _leftovers(directory, "old") if (p / CONFIG_FILE).exists()]
    if aside:
        os.replace(max(aside, key=lambda p: p.stat().st_mtime), directory)


def _remove_stale(directory: Path) -> None:
    """Staging and set-aside directories of writers that are no longer running."""
    for what in ("tmp", "old"):
        for path, pid in _leftovers(directory, what):
            if not _pid_alive(pid) or (pid == os.getpid() and what == "old"):
                shutil.rmtree(path, ignore_errors=True)


def resolve(directory: str | Path) -> Path | None:
    """The directory holding the complete checkpoint at `directory`, or None if there is none.

    Normally `directory` itself; after a writer died between its renames, the copy it set aside.
    """
    directory = Path(directory)
    if (directory / CONFIG_FILE).is_file():
        return directory
    if directory.exists():
        return None
    aside = [p for p, _ in _leftovers(directory, "old") if (p / CONFIG_FILE).is_file()]
    return max(aside, key=lambda p: p.stat().st_mtime) if aside else None


# ---------------------------------------------------------------------------------------
# Reading


def load_checkpoint(
    directory: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
    expected_kind: str | None = None,
    optional_weights: tuple[str, ...] = (),
) -> LoadedCheckpoint:
    """Read the checkpoint at `directory`, loading weights into `model` and state into `optimizer`.

    Raises `CheckpointError` naming the file for anything missing, corrupt or not fitting.
    """
    directory = Path(directory)
    found = resolve(directory)
    if found is None:
        if not directory.exists():
            raise CheckpointError(f"{directory}: no such checkpoint directory")
        raise CheckpointError(f"{directory / CONFIG_FILE}: missing; {directory} is not a complete checkpoint")
    meta = _read_config(found / CONFIG_FILE)
    kind = meta["kind"]
    if expected_kind is not None and kind != expected_kind:
        raise CheckpointError(
            f"{found / CONFIG_FILE}: expected a '{expected_kind}' checkpoint, {directory} is a '{kind}' checkpoint"
        )

    if model is not None:
        _load_weights(found / MODEL_FILE, model, optional_weights)
    elif not (found / MODEL_FILE).is_file():
        raise CheckpointError(f"{found / MODEL_FILE}: missing")

    trainer: dict[str, Any] = {}
    trainer_path = found / TRAINER_FILE
    if trainer_path.is_file():
        try:
            trainer = torch.load(trainer_path, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises many kinds for a damaged pickle
            raise CheckpointError(f"{trainer_path}: unreadable ({type(err).__name__}: {err})") from err
    elif optimizer is not None:
        raise CheckpointError(f"{trainer_path}: missing, so the optimiser state cannot be restored")

    if optimizer is not None:
        if trainer.get("optimizer") is None:
            raise CheckpointError(f"{trainer_path}: holds no optimiser state")
        try:
            optimizer.load_state_dict(trainer["optimizer"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{trainer_path}: the optimiser state does not fit this optimiser: {err}") from err

    return LoadedCheckpoint(
        directory=found,
        kind=kind,
        step=int(meta["step"]),
        config=meta["config"],
        wam_version=str(meta.get("wam_version", "")),
        extra=trainer.get("extra") or {},
        scheduler_state=trainer.get("scheduler"),
        rng=trainer.get("rng"),
    )


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    for key, types in (("kind", str), ("step", int), ("config", dict)):
        if not isinstance(meta.get(key), types):
            raise CheckpointError(f"{path}: field '{key}' is missing or not a {types.__name__}")
    return meta


def _load_weights(path: Path, model: nn.Module, optional: tuple[str, ...] = ()) -> None:
    """Strict, except that weights whose names start with an `optional` prefix may be missing
    (parts added to a model after the checkpoint was written keep their initial values)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        state = safetensors.torch.load_file(str(path))  # on CPU; load_state_dict copies onto the model's device
    except Exception as err:  # SafetensorError, OSError, ... for a damaged file
        raise CheckpointError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not (optional and k.startswith(optional)))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or misshaped:
        parts = [f"{label}: {_short(keys)}" for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
        raise CheckpointError(f"{path}: weights do not fit the model ({'; '.join(parts)})")
    model.load_state_dict(state, strict=not optional)


def _short(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------
# Random number generators


def _rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states, as tensors and plain values (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": _to_lists(random.getstate()),
    }


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, (tuple, list)) else value


def restore_rng(loaded: LoadedCheckpoint) -> None:
    """Put the RNGs back as they were when the checkpoint was written (no-op if it saved none)."""
    rng = loaded.rng
    if not rng:
        return
    torch.set_rng_state(rng["torch"].cpu())
    if rng.get("cuda") and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(rng["python"]))
