"""What an importer reports: its own module, so that importers and the package that picks them share it without
importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportResult:
    """What a conversion wrote, and what it had to leave out or change (`notes`)."""

    source: str
    out: str
    format: str
    episodes: int
    frames: int
    fps: int
    cameras: dict[str, tuple[int, int]]  # key -> (height, width)
    tasks: list[str]
    notes: list[str] = field(default_factory=list)
