"""Synthetic episodes and small datasets shared by the wam.data tests.

Frames are smooth colour gradients with a moving square, so H.264 at the default settings
has something realistic to compress and PSNR is meaningful. Everything is deterministic in
`seed`, so a test (or a subprocess) can regenerate exactly what was written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from wam.data import DatasetWriter, Episode, Feature

CAMERA = "observation.images.main"
FPS = 10
SIZE = 32  # frame height and width

FEATURES = {
    CAMERA: Feature("video", (SIZE, SIZE, 3)),
    "observation.state": Feature("float32", (4,), ("x", "y", "z", "grip")),
    "action": Feature("float32", (2,)),
    "next.reward": Feature("float32", (1,)),
    "next.success": Feature("bool", (1,)),
}


def make_frames(length: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """(length, size, size, 3) uint8: gradients drifting over time plus a moving square."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    phase = 7 * seed
    out = np.empty((length, size, size, 3), np.uint8)
    square = max(size // 4, 2)
    for t in range(length):
        red = (x * 255 / size + 3 * t + phase) % 256
        green = (y * 255 / size + phase) % 256
        blue = ((x + y) * 128 / size + 2 * t) % 256
        image = np.stack([red, green, blue], -1)
        px, py = (2 * t + seed) % (size - square), (t + 3 * seed) % (size - square)
        image[py : py + square, px : px + square] = (250, 30 + 5 * seed % 200, 30)
        out[t] = image.astype(np.uint8)
    return out


def make_episode(seed: int, length: int = 20, task: str = "pick", labelled: bool = True, size: int = SIZE) -> Episode:
    """An episode of FEATURES; `labelled=False` leaves `action` out (action-free video)."""
    rng = np.random.default_rng(seed)
    data = {
        "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
        "next.reward": rng.normal(size=length).astype(np.float32),
        "next.success": rng.random(length) > 0.5,
    }
    if labelled:
        data["action"] = rng.uniform(-1, 1, size=(length, 2)).astype(np.float32)
    return Episode(
        task=task,
        images={CAMERA: make_frames(length, size, seed)},
        data=data,
        success=bool(seed % 2),
        info={"seed": seed, "env": "synthetic", "noise": 0.25 * seed},
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def write_dataset(root: Path, episodes: list[Episode], features: dict[str, Feature] = FEATURES) -> Path:
    with DatasetWriter(root, features=features, fps=FPS) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return root


def files_under(root: Path) -> dict[str, bytes]:
    """Every file of a dataset (the writer's lock file aside) with its content."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".writer.lock"
    }


# Three episodes: labelled, action-free, labelled (two tasks).
MIXED = [
    dict(seed=1, length=20, task="pick"),
    dict(seed=2, length=24, task="push", labelled=False),
    dict(seed=3, length=16, task="pick"),
]


@pytest.fixture(scope="session")
def synth() -> SimpleNamespace:
    return SimpleNamespace(
        CAMERA=CAMERA, FPS=FPS, SIZE=SIZE, FEATURES=FEATURES, MIXED=MIXED, make_frames=make_frames,
        make_episode=make_episode, psnr=psnr, write_dataset=write_dataset, files_under=files_under,
    )


@pytest.fixture(scope="session")
def clean_dataset(tmp_path_factory) -> Path:
    """A written dataset of the MIXED episodes; copy it before changing anything."""
    root = tmp_path_factory.mktemp("clean") / "ds"
    return write_dataset(root, [make_episode(**spec) for spec in MIXED])


@pytest.fixture
def mixed_copy(clean_dataset, tmp_path) -> Path:
    """A private copy of the clean dataset."""
    root = tmp_path / "ds"
    shutil.copytree(clean_dataset, root)
    return root
