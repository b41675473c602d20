"""Every episode run through the API becomes training data: commit it to the dataset, then index it.

One `DatasetWriter` (the dataset's single writer) commits the episodes workers staged; the
commit is the dataset's own atomic rename, so a server killed at any moment leaves every
committed episode readable and no partial one. The store row comes second; `reconcile`
restores rows the store missed, so the dataset and the index never disagree for long.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from wam.api.store import EpisodeRecord, Store
from wam.api.worker import WorkerConfig, dataset_features


class Recorder:
    def __init__(self, config: WorkerConfig, store: Store):
        from wam.data.writer import DatasetWriter
        from wam.envs.metaworld_env import CONTROL_FPS

        self.root = Path(config.data)
        self.store = store
        self.writer = DatasetWriter(self.root, features=dataset_features(config), fps=CONTROL_FPS, robot_type="sawyer")
        self._lock = threading.Lock()
        self.reconcile()

    def close(self) -> None:
        self.writer.close()

    def reconcile(self) -> int:
        """Add store rows for API episodes the dataset holds and the store does not; returns how many."""
        from wam.data.meta import read_episode_rows

        known = self.store.episode_ids()
        added = 0
        for row in read_episode_rows(self.root):
            if row.get("info/source") == "api" and row["episode_index"] not in known:
                self.store.add_episode(self._record(row))
                added += 1
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
