"""Integrity check: read every file of a dataset and say, file by file, what is wrong.

Errors make a dataset unusable for what they touch (a truncated mp4, a parquet with the
wrong row count, missing metadata). Files lerobot packs (one data parquet, one mp4 per
camera, for many episodes) are read once each, and damage names the episodes it breaks. Warnings are leftovers of an interrupted writer
(temporary or unreferenced files) that readers ignore and the next writer removes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from wam.data import layout
from wam.data.meta import episode_meta_files, read_episode_rows, read_tasks
from wam.data.reader import CAMERA_DTYPES, camera_size, decode_png
from wam.data.video import scan_video
from wam.errors import DatasetError


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return f"{self.severity.upper():7s} {self.path}: {self.reason}"


def check_dataset(root: str | Path) -> list[Problem]:
    """Every problem found; an empty list means every file read back whole and consistent."""
    root = Path(root)
    problems: list[Problem] = []
    try:
        info = layout.load_info(root)
        features = layout.parse_features(info, str(root / layout.INFO_PATH))
    except DatasetError as err:
        return [Problem(root / layout.INFO_PATH, str(err).split(": ", 1)[-1])]
    fps = int(info["fps"])
    sizes = {k: camera_size(info["features"][k], f) for k, f in features.items() if f.dtype in CAMERA_DTYPES}
    videos = [k for k in sizes if features[k].is_video]
    images = {k: size for k, size in sizes.items() if not features[k].is_video}

    try:
        tasks = read_tasks(root)
    except DatasetError as err:
        problems.append(Problem(root / layout.TASKS_PATH, str(err).split(": ", 1)[-1]))
        tasks = None

    for path in episode_meta_files(root):
        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError) as err:
            problems.append(Problem(path, f"unreadable parquet ({err})"))
    if problems and any(p.path.parent.parent.name == "episodes" for p in problems):
        return problems
    try:
        rows = read_episode_rows(root)
    except DatasetError as err:
        return problems + [Problem(root / "meta/episodes", str(err).split(": ", 1)[-1])]
    if not episode_meta_files(root):
        problems.append(Problem(root / "meta/episodes", "no episode files"))

    total_frames = sum(int(r["length"]) for r in rows)
    # Totals that lag behind meta/episodes are what a writer killed right after its commit leaves.
    for field, actual in (("total_episodes", len(rows)), ("total_frames", total_frames)):
        stated = info.get(field)
        if stated != actual:
            stale = isinstance(stated, int) and stated < actual
            reason = f"{field} is {stated}, meta/episodes says {actual}"
            if stale:
                reason += " (stale after an interrupted write; the next writer rewrites it)"
            problems.append(Problem(root / layout.INFO_PATH, reason, "warning" if stale else "error"))
    if tasks is not None:
        missing = sorted({t for r in rows for t in r["tasks"]} - set(tasks))
        if missing:
            problems.append(Problem(root / layout.TASKS_PATH, f"tasks used by episodes but not listed: {missing}"))
    stats_path = root / layout.STATS_PATH
    if stats_path.exists():
        try:
            json.loads(stats_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problems.append(Problem(stats_path, f"not valid JSON ({err})"))

    data_files: dict[Path, list[dict]] = {}
    video_files: dict[Path, list[tuple[int, int, int]]] = {}  # file -> (episode, first frame, length)
    video_key: dict[Path, str] = {}
    for row in rows:
        e, length = row["episode_index"], int(row["length"])
        data_file = root / layout.DATA_PATH.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        data_files.setdefault(data_file, []).append(row)
        if int(row["dataset_to_index"]) - int(row["dataset_from_index"]) != length:
            problems.append(Problem(root / "meta/episodes", f"episode {e}: index range disagrees with length {length}"))
        for key in videos:
            if row.get(f"videos/{key}/chunk_index") is None or row.get(f"videos/{key}/file_index") is None:
                problems.append(Problem(root / "meta/episodes", f"episode {e}: no videos/{key}/chunk_index and file_index"))
                continue
            video = root / layout.VIDEO_PATH.format(
                video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
            )
            start = float(row.get(f"videos/{key}/from_timestamp") or 0.0)
            end = row.get(f"videos/{key}/to_timestamp")
            if end is not None and abs((float(end) - start) * fps - length) > 0.5:
                problems.append(Problem(root / "meta/episodes", f"episode {e}: videos/{key} spans {start:g}..{float(end):g} s, "
                                        f"{(float(end) - start) * fps:.1f} frames at {fps} fps, but length is {length}"))
            video_files.setdefault(video, []).append((e, int(round(start * fps)), length))
            video_key[video] = key
    referenced = set(data_files) | set(video_files)
    task_of = {row["episode_index"]: (tasks.index(row["tasks"][0]) if tasks and row["tasks"][0] in tasks else None) for row in rows}
    for data_file, file_rows in data_files.items():
        problems.extend(_check_parquet(data_file, file_rows, task_of))
        problems.extend(_check_images(data_file, file_rows, images))
    for video, spans in video_files.items():
        problems.extend(_check_video(video, spans, sizes[video_key[video]]))

    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        if path.name.startswith(layout.TMP_PREFIX) or relative.parts[0] == ".staging":
            problems.append(Problem(path, "temporary file of an interrupted write (the next writer removes it)", "warning"))
        elif relative.parts[0] in ("data", "videos") and path not in referenced:
            problems.append(Problem(path, "not referenced by meta/episodes: an unfinished episode (the next writer removes it)", "warning"))
    return problems


def _episodes(indices: list[int]) -> str:
    """Name episodes as `episode 3` or `episodes 0-2, 5`: runs collapse, so a file of 1000 episodes stays one line."""
    indices = sorted(set(indices))
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"episode {text}" if len(indices) == 1 else f"episodes {text}"


def _check_parquet(path: Path, rows: list[dict], task_of: dict[int, int | None]) -> list[Problem]:
    """Row counts per episode: a packed file that is short names the episodes whose rows are missing."""
    lengths = {row["episode_index"]: int(row["length"]) for row in rows}
    if not path.exists():
        return [Problem(path, f"missing (the rows of {_episodes(list(lengths))})")]
    try:
        with pq.ParquetFile(path) as parquet:
            columns = [c for c in ("episode_index", "task_index") if c in parquet.schema_arrow.names]
            table = parquet.read(columns=columns)
    except (pa.ArrowException, OSError) as err:
        return [Problem(path, f"unreadable parquet ({err}): {_episodes(list(lengths))} cannot be read")]
    expected = sum(lengths.values())
    if table.num_rows != expected:
        reason = f"{table.num_rows} rows, meta/episodes says {expected}"
        if "episode_index" in table.column_names and len(lengths) > 1:
            found = Counter(table["episode_index"].to_pylist())
            short = [e for e, n in lengths.items() if found.get(e, 0) < n]
            extra = [e for e, n in found.items() if n > lengths.get(e, 0)]
            if short:
                reason += f": rows missing for {_episodes(short)}"
            if extra:
                reason += f"{';' if short else ':'} rows beyond meta/episodes for {_episodes(extra)}"
        return [Problem(path, reason)]
    if "task_index" in table.column_names and "episode_index" in table.column_names:
        pairs = set(zip(table["episode_index"].to_pylist(), table["task_index"].to_pylist()))
        wrong = sorted((e, t) for e, t in pairs if task_of.get(e) is not None and task_of[e] != t)
        if wrong:
            e, t = wrong[0]
            return [Problem(path, f"episode {e}: task_index {t} does not match its task in meta/tasks.parquet ({task_of[e]})")]
    return []


def _check_images(path: Path, rows: list[dict], images: dict[str, tuple[int, int]]) -> list[Problem]:
    """PNG-stored cameras: one image per row, and the first and last image of each episode decode at the stated size."""
    if not images or not path.exists():
        return []
    lengths = {row["episode_index"]: int(row["length"]) for row in rows}
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError):
        return []  # _check_parquet reports it
    problems: list[Problem] = []
    with parquet:
        names = parquet.schema_arrow.names
        for key, size in images.items():
            if key not in names:
                problems.append(Problem(path, f"no column {key!r} for the image feature ({_episodes(list(lengths))})"))
                continue
            empty: list[int] = []
            samples: dict[int, dict[int, object]] = {}  # episode -> {frame: cell}, its first and last row
            seen: Counter = Counter()
            try:
                for group in range(parquet.metadata.num_row_groups):
                    table = parquet.read_row_group(group, columns=[key, "episode_index"])
                    cells = table[key].to_pylist()
                    for e, cell in zip(table["episode_index"].to_pylist(), cells):
                        payload = cell.get("bytes") if isinstance(cell, dict) else cell
                        if not payload:
                            empty.append(e)
                        frame = seen[e]
                        seen[e] += 1
                        if frame == 0 or frame == lengths.get(e, 0) - 1:
                            samples.setdefault(e, {})[frame] = cell
            except (pa.ArrowException, OSError, KeyError):
                continue  # unreadable or without episode_index: _check_parquet reports it
            if empty:
                problems.append(Problem(path, f"column {key!r}: rows without an image in {_episodes(empty)}"))
            broken, resized = [], []
            for e, cells in samples.items():
                for frame, cell in cells.items():
                    if not (cell.get("bytes") if isinstance(cell, dict) else cell):
                        continue
                    try:
                        image = decode_png(cell, f"episode {e} frame {frame}")
                    except DatasetError as err:
                        broken.append((e, str(err)))
                        continue
                    if image.shape[:2] != tuple(size):
                        resized.append((e, image.shape[:2]))
            if broken:
                problems.append(Problem(path, f"column {key!r}: undecodable images in {_episodes([e for e, _ in broken])} ({broken[0][1]})"))
            if resized:
                (h, w), e = resized[0][1], resized[0][0]
                problems.append(Problem(path, f"column {key!r}: images are {h}x{w} ({_episodes([e for e, _ in resized])}), "
                                        f"info.json says {size[0]}x{size[1]}"))
    return problems


def _check_video(path: Path, spans: list[tuple[int, int, int]], size: tuple[int, int]) -> list[Problem]:
    """Decode the file once; if it ends early, name the episodes whose frames lie past the decoded end."""
    episodes = [e for e, _, _ in spans]
    if not path.exists():
        return [Problem(path, f"missing ({_episodes(episodes)})")]
    scan = scan_video(path)
    needed = max(first + length for _, first, length in spans)
    cause = f" ({scan.error})" if scan.error else ""
    if scan.frames < needed:
        broken = [e for e, first, length in spans if first + length > scan.frames]
        if len(spans) == 1 and spans[0][1] == 0:
            reason = f"decodes to {scan.frames} frames, episode {episodes[0]} has {needed} (truncated?){cause}"
        else:
            reason = (f"decodes to {scan.frames} of the {needed} frames of {_episodes(episodes)} (truncated?): "
                      f"breaks {_episodes(broken)}{cause}")
        return [Problem(path, reason)]
    if scan.error:
        return [Problem(path, f"decoding fails after frame {scan.frames}, past the {needed} frames of {_episodes(episodes)}{cause}")]
    if scan.frames > needed:
        return [Problem(path, f"decodes to {scan.frames} frames, meta/episodes accounts for {needed} ({_episodes(episodes)})")]
    if scan.size != tuple(size):
        height, width = scan.size
        return [Problem(path, f"frames are {height}x{width}, info.json says {size[0]}x{size[1]}")]
    return []


def quick_check(root: str | Path) -> list[Problem]:
    """Damage found without decoding anything, for `wam data info`: every parquet's footer and every mp4's box
    structure (a truncated file has a box that runs past its end). Quick on any size; `check_dataset` reads all."""
    root = Path(root)
    problems = []
    for path in sorted(root.glob("data/**/*.parquet")) + episode_meta_files(root):
        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError) as err:
            problems.append(Problem(path, f"unreadable parquet ({err})"))
    for path in sorted(root.glob("videos/**/*.mp4")):
        if reason := mp4_damage(path):
            problems.append(Problem(path, reason))
    return problems


def mp4_damage(path: Path) -> str | None:
    """Why the top-level MP4 boxes of `path` do not add up to the file, or None."""
    size, offset, seen = path.stat().st_size, 0, []
    with path.open("rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                return f"truncated mp4: {size - offset} stray bytes at offset {offset}"
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:
                length = size - offset  # the last box runs to the end of the file
            if length < 8:
                return f"not an mp4: a box of {length} bytes at offset {offset}"
            if offset + length > size:
                return (f"truncated mp4: its {kind.decode('latin-1')!r} box needs {offset + length} bytes, the file has "
                        f"{size}")
            seen.append(kind)
            offset += length
    if b"moov" not in seen:
        return "not a playable mp4: no 'moov' box (the file was cut before its index was written)"
    return None
