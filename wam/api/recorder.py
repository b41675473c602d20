"""Every episode run through the API becomes training data: commit it to the dataset, then index it.

One `DatasetWriter` (the dataset's single writer) commits the episodes workers staged; the
commit is the dataset's own atomic rename, so a server killed at any moment leaves every
committed episode readable and no partial one. The store row and the run's count come
second; on start-up `reconcile` restores rows the store missed and sets every run's counts
from the episodes the dataset holds for it, so the dataset, the index and the counters
never disagree for long (a kill between the commit and the count costs nothing).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from wam.api.store import EpisodeRecord, Store
from wam.api.worker import WorkerConfig, dataset_features


class Recorder:
    """`remote`: the fleet is real robots behind bridges, so the dataset's features are the ones their bridges
    declare; the dataset is created when the first bridge connects (or opened now, if it exists)."""

    def __init__(self, config: WorkerConfig, store: Store, remote: bool = False):
        from wam.data import layout
        from wam.data.writer import DatasetWriter
        from wam.envs.metaworld_env import CONTROL_FPS

        self.root = Path(config.data)
        self.store = store
        self._lock = threading.Lock()
        if not remote:
            self.writer = DatasetWriter(self.root, features=dataset_features(config), fps=CONTROL_FPS, robot_type="sawyer")
        else:
            self.writer = DatasetWriter(self.root) if (self.root / layout.INFO_PATH).exists() else None
        self.reconcile()

    def ensure(self, features: dict, fps: int, robot_type: str) -> None:
        """Make the dataset ready for a bridged robot's episodes; ValueError (without server paths) if they do not
        fit the dataset's features or fps: each dataset holds one kind of robot."""
        from wam.data.writer import DatasetWriter

        with self._lock:
            if self.writer is None:
                self.writer = DatasetWriter(self.root, features=features, fps=fps, robot_type=robot_type)
                return
            have = self.writer.features
            for key in sorted(set(have) | set(features)):
                if have.get(key) != features.get(key):
                    raise ValueError(f"this robot's feature {key!r} is {features.get(key)}; the server's dataset has "
                                     f"{have.get(key)} (a dataset holds one kind of robot: serve this one with another --data)")
            if self.writer.fps != fps:
                raise ValueError(f"this robot runs at {fps} fps; the server's dataset is at {self.writer.fps} fps")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def reconcile(self) -> int:
        """Add store rows for API episodes the dataset holds and the store does not, and set each run's
        episodes_done and successes from its recorded episodes; returns how many rows were added."""
        from wam.data import layout
        from wam.data.meta import read_episode_rows

        if not (self.root / layout.INFO_PATH).exists():
            return 0
        known = self.store.episode_ids()
        added = 0
        counts: dict[str, tuple[int, int]] = {}  # run id -> (episodes, successes) in the dataset
        for row in read_episode_rows(self.root):
            if row.get("info/source") != "api":
                continue
            if row["episode_index"] not in known:
                self.store.add_episode(self._record(row))
                added += 1
            if row.get("info/run"):
                done, successes = counts.get(row["info/run"], (0, 0))
                counts[row["info/run"]] = (done + 1, successes + bool(row.get("success")))
        for run_id, (done, successes) in counts.items():
            run = self.store.get_run(run_id)
            if run is not None and (run.episodes_done, run.successes) != (done, successes):
                self.store.update_run(run_id, episodes_done=done, successes=successes)
        return added

    @staticmethod
    def _record(row: dict) -> EpisodeRecord:
        return EpisodeRecord(id=int(row["episode_index"]), robot=row.get("info/robot") or "", task=row["tasks"][0],
                             success=bool(row.get("success")), length=int(row["length"]), run_id=row.get("info/run") or "",
                             end_reason=row.get("info/end_reason") or "")

    def commit(self, robot_id: str, staged, run_id: str) -> int:
        with self._lock:
            index = self.writer.commit(staged)
            row = self.writer.episode_row(index)
        self.store.add_episode(self._record(row))
        if run_id:
            self.store.count_run_episode(run_id, bool(staged.success))
        return index

    async def record(self, robot_id: str, staged, run_id: str) -> int:
        return await asyncio.to_thread(self.commit, robot_id, staged, run_id)
