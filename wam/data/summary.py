"""What is in a dataset, for `wam data info`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from wam.data.reader import Dataset


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    size = sum(p.stat().st_size for p in dataset.root.rglob("*") if p.is_file())
    per_task = Counter(e.task for e in dataset.episodes)
    successes = [e.success for e in dataset.episodes if e.success is not None]
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
        "features": {k: f.to_json() for k, f in dataset.features.items()},
        "tasks": [{"task": t, "episodes": per_task.get(t, 0)} for t in dataset.tasks],
        "size_bytes": size,
        "size_mb": round(size / 1e6, 3),
    }
