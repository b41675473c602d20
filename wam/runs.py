"""The run record: what a run directory holds, read by one loader for every kind.

A pretraining run (`pretrain.json`) and a finetuned WAM (`finetune.json`) each save their
typed config, the feature spec read from their data (cameras, sizes, fps, fields), the
model's resolution, frame stride and image fit, and where the data came from. Policies,
dreams, judges, evaluations and the API read those facts through `load_run` instead of
picking keys out of JSON; asking a run for the wrong kind names what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from wam.config import FinetuneConfig, PretrainConfig, pretrain_config_from_dict
from wam.data.spec import FeatureSpec, read_spec
from wam.errors import CheckpointError

RUN_FILES = {"pretrain": "pretrain.json", "finetune": "finetune.json"}
WHAT = {"pretrain": "a pretraining run", "finetune": "a finetuned WAM"}


@dataclass(frozen=True)
class RunRecord:
    path: Path
    kind: str  # "pretrain" or "finetune"
    config: PretrainConfig | FinetuneConfig
    spec: FeatureSpec | None  # None: a run saved before feature specs (Meta-World-shaped data)
    image_size: int
    stride: int  # control steps between model frames in the run's (labelled) data
    fit: str
    frame_seconds: float | None = None
    pretrained: Path | None = None  # a finetuned WAM's pretraining run (None: from scratch)
    data: dict[str, list[str]] = field(default_factory=dict)  # role ("robot", "video", "play") -> paths
    tasks: tuple[str, ...] = ()
    rewards: bool = False  # whether the reward and success heads learned anything
    init_from: Path | None = None  # the run whose weights this one started from (`--init-from`), if any
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the file as saved, for fields not typed here

    @property
    def views(self) -> int:
        """Camera views side by side in the run's frames and latents: its data's, which a world model pretrained on
        more cameras may exceed (its `WorldModelConfig.views` counts slots, not the views the run sees)."""
        return 1 if self.spec is None else self.spec.num_views

    @property
    def camera_choice(self) -> tuple[str, ...] | None:
        """The camera slots new data must fill to be read by this run (None: any single camera)."""
        if self.spec is None or self.spec.num_views == 1:
            return None
        return self.spec.views

    def spec_for(self, paths: Sequence[str | Path], need_actions: bool = False) -> FeatureSpec:
        """The feature spec of other datasets read the way this run reads its own (the same camera slots)."""
        return read_spec(paths, self.camera_choice, need_actions)


def run_kind(path: str | Path) -> str | None:
    path = Path(path)
    for kind in ("finetune", "pretrain"):
        if (path / RUN_FILES[kind]).is_file():
            return kind
    return None


def load_run(path: str | Path, kind: str | None = None) -> RunRecord:
    """The record of the run at `path`; `kind` ("pretrain" or "finetune") refuses any other kind by name."""
    path = Path(path)
    if kind is not None and kind not in RUN_FILES:
        raise ValueError(f"a run's kind is one of {', '.join(RUN_FILES)}, got {kind!r}")
    found = kind if kind is not None and (path / RUN_FILES[kind]).is_file() else run_kind(path)
    if found is None:
        wanted = path / RUN_FILES[kind or "finetune"]
        missing = "" if path.exists() else f"; {path}: no such run directory"
        raise CheckpointError(f"{wanted}: missing (not a {'pretraining' if kind == 'pretrain' else 'finetuning'} "
                              f"run directory{missing})")
    if kind is not None and found != kind:
        hint = f" (finetune it with `wam finetune --pretrained {path}`)" if found == "pretrain" else ""
        raise CheckpointError(f"{path}: {WHAT[found]}, not {WHAT[kind]}{hint}")
    file = path / RUN_FILES[found]
    try:
        saved = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from None
    try:
        return _pretrain_record(path, saved) if found == "pretrain" else _finetune_record(path, saved)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{file}: malformed run record ({type(err).__name__}: {err})") from None


def _spec(saved: dict) -> FeatureSpec | None:
    return FeatureSpec.from_dict(saved["spec"]) if saved.get("spec") else None


def _path(value) -> Path | None:
    return None if value is None else Path(value)


def _pretrain_record(path: Path, saved: dict) -> RunRecord:
    config = pretrain_config_from_dict(saved)
    return RunRecord(path, "pretrain", config, _spec(saved), config.tokenizer.image_size, config.stride, config.fit,
                     config.frame_seconds, data={}, init_from=_path(saved.get("init_from")), raw=saved)


def _finetune_record(path: Path, saved: dict) -> RunRecord:
    config = FinetuneConfig.from_dict(saved["config"])
    data = {role: [str(p) for p in saved.get(role) or []] for role in ("robot", "video", "play")}
    return RunRecord(
        path, "finetune", config, _spec(saved), int(saved["image_size"]), int(saved["stride"]), config.fit,
        saved.get("frame_seconds"), _path(saved.get("pretrained")), data, tuple(saved.get("tasks", [])),
        bool(saved.get("rewards", False)), _path(saved.get("init_from")), saved,
    )
