"""The dataset an egocentric importer writes, shared by every format: opened at the first episode that imports
(its frame size and rate become the dataset's), with the counts an ImportResult reports."""

from __future__ import annotations

from pathlib import Path

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import Feature
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter
from wam.ego import hands

class HumanVideoWriter:
    def __init__(self, out: str | Path, camera: str, video: VideoConfig):
        self.out, self.camera, self.video = Path(out), camera, video
        self.writer: DatasetWriter | None = None
        self.shape: tuple[int, int] | None = None
        self.rate = 0
        self.episodes, self.frames, self.tasks = 0, 0, []

    @property
    def opened(self) -> bool:
        return self.writer is not None

    def add(self, episode: Episode, rate: int) -> None:
        if self.writer is None:
            self.shape, self.rate = episode.images[self.camera].shape[1:3], rate
            features = {self.camera: Feature("video", (*self.shape, 3), ("height", "width", "channels")),
                        **hands.track_features()}
            self.writer = DatasetWriter(self.out, features=features, fps=rate, robot_type="human", video=self.video)
        self.writer.add_episode(episode)
        self.episodes, self.frames = self.episodes + 1, self.frames + episode.length
        self.tasks += [episode.task] if episode.task not in self.tasks else []

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def result(self, source: Path, fmt: str, notes: list[str]) -> ImportResult:
        return ImportResult(str(source), str(self.out), fmt, self.episodes, self.frames, self.rate, {self.camera: self.shape},
                            self.tasks, notes)
