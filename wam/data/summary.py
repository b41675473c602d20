"""What is in a dataset, for `wam data info`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from wam.data.reader import Dataset
from wam.data.spec import dataset_spec


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    size = sum(p.stat().st_size for p in dataset.root.rglob("*") if p.is_file())
    per_task = Counter(e.task for e in dataset.episodes)
    spec = dataset_spec(dataset)
    successes = [e.success for e in dataset.episodes if e.success is not None]
    if not successes and spec.success_key is not None:  # lerobot keeps success per frame only (`next.success`)
        successes = [bool(dataset.low_dim(e.index)[spec.success_key].any()) for e in dataset.episodes
                     if spec.success_key in dataset.low_dim(e.index)]
    return {
        "path": str(dataset.root),
        "codebase_version": dataset.info["codebase_version"],
        "robot_type": dataset.info.get("robot_type"),
        "episodes": dataset.num_episodes,
        "frames": dataset.num_frames,
        "fps": dataset.fps,
        "duration_s": round(dataset.num_frames / dataset.fps, 2),
        "episodes_with_actions": sum(e.has_actions for e in dataset.episodes),
        "episodes_without_actions": sum(not e.has_actions for e in dataset.episodes),
        "success_rate": round(sum(successes) / len(successes), 4) if successes else None,
        "cameras": {k: f"{dataset.camera_storage(k)} {h}x{w}" for k, (h, w) in spec.cameras.items()},
        "state_dim": spec.state_dim,
        "action_dim": spec.action_dim,
        "reward_fields": [k for k in (spec.reward_key, spec.success_key, spec.done_key) if k],
        "features": {k: f.to_json() for k, f in dataset.features.items()},
        "tasks": [{"task": t, "episodes": per_task.get(t, 0)} for t in dataset.tasks],
        "size_bytes": size,
        "size_mb": round(size / 1e6, 3),
    }
