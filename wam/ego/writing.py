"""The dataset an egocentric importer writes, shared by every format: opened at the first episode that imports
(its frame size and rate become the dataset's), with the counts an ImportResult reports."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import Feature
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter
from wam.ego import hands
from wam.errors import DatasetError

Source = TypeVar("Source")

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


def check_frame_size(size: int) -> None:
    """The frame height an importer resizes to: even (H.264 needs it) and at least 2 pixels."""
    if size < 2 or size % 2:
        raise DatasetError(f"size must be an even number of pixels >= 2, got {size}")


def write_episodes(out: str | Path, camera: str, video: VideoConfig, sources: Sequence[Source],
                   load: Callable[[Source, tuple[int, int] | None], tuple[Episode, int, list[str]]],
                   what: str, root: Path, progress: Callable[[int, int], None] | None = None,
                   notes: list[str] | None = None) -> tuple[HumanVideoWriter, list[str]]:
    """Every importer's loop: `load(source, shape)` each episode (shape: the frame size the dataset took from its
    first episode, None before), write it, and turn a bad one (DatasetError) into a note while the others import.
    An episode at another frame rate than the first is a bad one; only when none imports is it an error, naming
    `root` and every note. `what` names the sources in that error ("EgoDex episode(s)")."""
    written, notes = HumanVideoWriter(out, camera, video), list(notes or [])
    try:
        for number, source in enumerate(sources):
            try:
                episode, rate, episode_notes = load(source, written.shape)
                if written.opened and rate != written.rate:
                    raise DatasetError(f"{episode.info.get('source_file', source)}: {rate} fps, the episodes before it "
                                       f"have {written.rate}")
            except DatasetError as err:
                notes.append(f"skipped episode: {err}")
                continue
            if not written.opened and rate < 1:
                raise DatasetError(f"{episode.info.get('source_file', source)}: the video has no frame rate; give one with fps")
            written.add(episode, rate)
            notes += [n for n in episode_notes if n not in notes]
            if progress is not None:
                progress(number + 1, len(sources))
    finally:
        written.close()
    if not written.opened:
        raise DatasetError(f"{root}: none of its {len(sources)} {what} imported:\n  " + "\n  ".join(notes))
    return written, notes
