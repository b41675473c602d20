"""Importers: bring datasets in the formats people already have into wam's (LeRobot v3) layout.

Each importer reads one source format and writes through `DatasetWriter`, so what comes out
is an ordinary wam dataset (checked, with stats, one file per episode). `convert_dataset`
picks the importer (or detects it from the path) and makes the output appear whole or not
at all: everything is written into a temporary sibling of the destination and renamed into
place at the end, so a failed or interrupted conversion never leaves a half-written dataset
where the user asked for one (a killed process leaves only the hidden `.tmp-...` sibling).

    IMPORTERS["lerobot-v2.1"]  a LeRobot v2.0/v2.1 directory (meta/info.json, per-episode files)
    IMPORTERS["robomimic"]     a robomimic HDF5 file (data/demo_N groups)
    IMPORTERS["egodex"]        EgoDex egocentric video (<task>/<i>.mp4 + <i>.hdf5): action-free, hand track as state
    IMPORTERS["dexycb"]        DexYCB (label_XXXXXX.npz + color_XXXXXX.jpg per camera): action-free, hand track as state
    IMPORTERS["arctic"]        ARCTIC (raw_seqs/<subject>/<seq>.mano.npy + egocentric images): needs the MANO model files
    IMPORTERS["hot3d"]         HOT3D-Clips (clip-<id>.tar): action-free, hand track from MANO; needs the MANO model files
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from wam.data import layout
from wam.data.importers.result import ImportResult
from wam.data.video import VideoConfig
from wam.errors import DatasetError

HDF5_SUFFIXES = (".hdf5", ".h5")


def _lerobot_v21(src: Path, out: Path, **options) -> ImportResult:
    from wam.data.importers.lerobot_v21 import import_lerobot_v21

    return import_lerobot_v21(src, out, **options)


def _robomimic(src: Path, out: Path, **options) -> ImportResult:
    from wam.data.importers.robomimic import import_robomimic

    return import_robomimic(src, out, **options)


def _egodex(src: Path, out: Path, **options) -> ImportResult:
    from wam.ego.egodex import import_egodex

    return import_egodex(src, out, **options)


def _dexycb(src: Path, out: Path, **options) -> ImportResult:
    from wam.ego.dexycb import import_dexycb

    return import_dexycb(src, out, **options)


def _arctic(src: Path, out: Path, **options) -> ImportResult:
    from wam.ego.arctic import import_arctic

    return import_arctic(src, out, **options)


def _hot3d(src: Path, out: Path, **options) -> ImportResult:
    from wam.ego.hot3d import import_hot3d

    return import_hot3d(src, out, **options)


# Format name -> importer(src, out, **options). Importers import their own dependencies (h5py) lazily.
IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "lerobot-v2.1": _lerobot_v21, "robomimic": _robomimic, "egodex": _egodex, "dexycb": _dexycb,
    "arctic": _arctic, "hot3d": _hot3d,
}
# The human-video formats: action-free video with the canonical hand track (wam.ego.hands) as state.
EGO_FORMATS = ("egodex", "dexycb", "arctic", "hot3d")
# Options only some formats understand, with their defaults: another value for another format is a mistake worth saying.
FORMAT_OPTIONS = {
    "robomimic": {"state_keys": None, "flip": False, "demos_succeed": True},
    "egodex": {"size": 128},
    "dexycb": {"size": 128},
    "arctic": {"size": 128, "mano_dir": None},
    "hot3d": {"size": 128, "mano_dir": None},
}


def detect_format(src: str | Path) -> str:
    """The importer for `src`: a LeRobot v2.x directory, a robomimic HDF5 file, an EgoDex directory (or one
    episode's .hdf5 with its .mp4 beside it), a DexYCB tree, an ARCTIC tree (or one .mano.npy) or a HOT3D-Clips folder
    (or one clip's .tar); DatasetError otherwise."""
    src = Path(src)
    if not src.exists():
        raise DatasetError(f"{src}: no such file or directory")
    if src.is_dir():
        info_path = src / layout.INFO_PATH
        if info_path.is_file():
            try:
                version = str(json.loads(info_path.read_text()).get("codebase_version", ""))
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
                raise DatasetError(f"{info_path}: not valid JSON ({err})") from None
            if version.startswith("v2."):
                return "lerobot-v2.1"
            if version == layout.CODEBASE_VERSION:
                raise DatasetError(f"{src}: already a LeRobot {version} dataset; wam reads it as it is")
            raise DatasetError(f"{info_path}: codebase_version {version!r} is not one wam imports (v2.0, v2.1)")
        if any(path.with_suffix(".mp4").is_file() for path in src.rglob("*.hdf5")):
            return "egodex"
        if any(src.rglob("label_*.npz")) or any(src.rglob("labels_*.npz")):
            return "dexycb"
        if any(src.rglob("*.mano.npy")):
            return "arctic"
        if any(src.rglob("clip-*.tar")):
            return "hot3d"
    elif src.name.endswith(".mano.npy"):
        return "arctic"
    elif src.suffix.lower() == ".tar" and src.name.startswith("clip-"):
        return "hot3d"
    elif src.suffix.lower() == ".hdf5" and src.with_suffix(".mp4").is_file():
        return "egodex"
    elif src.suffix.lower() in HDF5_SUFFIXES:
        return "robomimic"
    raise DatasetError(
        f"{src}: cannot tell its format (expected a LeRobot v2.x directory with meta/info.json, a robomimic "
        f".hdf5/.h5 file, an EgoDex directory of <i>.hdf5 + <i>.mp4, a DexYCB tree of label_XXXXXX.npz, an ARCTIC "
        f"tree of <seq>.mano.npy or a HOT3D-Clips folder of clip-<id>.tar); "
        f"name it with --format {'|'.join(IMPORTERS)}"
    )


def convert_dataset(
    src: str | Path,
    out: str | Path,
    format: str = "auto",
    task: str | None = None,
    fps: int | None = None,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> ImportResult:
    """Convert `src` into a new wam dataset at `out` (which must not exist, or be an empty directory).

    `options` are the importer's own (robomimic: state_keys, flip, demos_succeed); `progress(done, total)`
    is called after each episode.
    """
    src, out = Path(src), Path(out)
    if format == "auto":
        format = detect_format(src)
    elif format not in IMPORTERS:
        raise DatasetError(f"unknown format {format!r}; expected auto or one of {', '.join(IMPORTERS)}")
    elif not src.exists():
        raise DatasetError(f"{src}: no such file or directory")
    for other, defaults in FORMAT_OPTIONS.items():
        if other == format:
            continue
        own = FORMAT_OPTIONS.get(format, {})
        given = [name for name, default in defaults.items()
                 if name in options and name not in own and options[name] != default]
        if given:
            takers = [name for name, names in FORMAT_OPTIONS.items() if given[0] in names]
            raise DatasetError(f"option(s) {', '.join(given)} apply to {' and '.join(takers)} sources only, not {format}")
        for name in defaults:
            if name not in own:
                options.pop(name, None)
    return write_whole(out, lambda tmp: IMPORTERS[format](src, tmp, task=task, fps=fps, video=video, progress=progress, **options))


def write_whole(out: Path, write: Callable[[Path], ImportResult]) -> ImportResult:
    """Run `write(tmp)` on a temporary sibling of `out` and rename it to `out` only when it succeeds."""
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise DatasetError(f"{out}: already exists; choose a new output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.tmp_path_for(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = write(tmp)
        if out.exists():
            out.rmdir()  # the empty directory the user made for it
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.out = str(out)
    return result
