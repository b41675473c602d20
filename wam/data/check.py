"""Integrity check: read every file of a dataset and say, file by file, what is wrong.

Errors make a dataset unusable for what they touch (a truncated mp4, a parquet with the
wrong row count, missing metadata). Warnings are leftovers of an interrupted writer
(temporary or unreferenced files) that readers ignore and the next writer removes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from wam.data import layout
from wam.data.meta import episode_meta_files, read_episode_rows, read_tasks
from wam.data.video import count_frames
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
    cameras = {k: f for k, f in features.items() if f.is_video}

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

    referenced: set[Path] = set()
    data_rows: dict[Path, int] = {}
    for row in rows:
        e, length = row["episode_index"], int(row["length"])
        data_file = root / layout.DATA_PATH.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        referenced.add(data_file)
        data_rows[data_file] = data_rows.get(data_file, 0) + length
        if int(row["dataset_to_index"]) - int(row["dataset_from_index"]) != length:
            problems.append(Problem(root / "meta/episodes", f"episode {e}: index range disagrees with length {length}"))
        for key in cameras:
            video = root / layout.VIDEO_PATH.format(
                video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
            )
            referenced.add(video)
            if float(row.get(f"videos/{key}/from_timestamp", 0.0)) != 0.0:
                continue  # a packed lerobot file holds several episodes; its total is checked below
            problems.extend(_check_video(video, length, features[key].shape[:2], f"episode {e}"))
    task_of = {row["episode_index"]: (tasks.index(row["tasks"][0]) if tasks and row["tasks"][0] in tasks else None) for row in rows}
    for data_file, expected in data_rows.items():
        problems.extend(_check_parquet(data_file, expected, task_of))

    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        if path.name.startswith(layout.TMP_PREFIX) or relative.parts[0] == ".staging":
            problems.append(Problem(path, "temporary file of an interrupted write (the next writer removes it)", "warning"))
        elif relative.parts[0] in ("data", "videos") and path not in referenced:
            problems.append(Problem(path, "not referenced by meta/episodes: an unfinished episode (the next writer removes it)", "warning"))
    return problems


def _check_parquet(path: Path, expected_rows: int, task_of: dict[int, int | None]) -> list[Problem]:
    if not path.exists():
        return [Problem(path, "missing")]
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        return [Problem(path, f"unreadable parquet ({err})")]
    if table.num_rows != expected_rows:
        return [Problem(path, f"{table.num_rows} rows, meta/episodes says {expected_rows}")]
    if "task_index" in table.column_names and "episode_index" in table.column_names:
        pairs = set(zip(table["episode_index"].to_pylist(), table["task_index"].to_pylist()))
        wrong = sorted((e, t) for e, t in pairs if task_of.get(e) is not None and task_of[e] != t)
        if wrong:
            e, t = wrong[0]
            return [Problem(path, f"episode {e}: task_index {t} does not match its task in meta/tasks.parquet ({task_of[e]})")]
    return []


def _check_video(path: Path, expected_frames: int, size: tuple[int, int], what: str) -> list[Problem]:
    if not path.exists():
        return [Problem(path, f"missing ({what})")]
    try:
        frames, (height, width) = count_frames(path)
    except DatasetError as err:
        return [Problem(path, str(err).split(": ", 1)[-1])]
    if frames != expected_frames:
        return [Problem(path, f"decodes to {frames} frames, {what} has {expected_frames} (truncated?)")]
    if (height, width) != tuple(size):
        return [Problem(path, f"frames are {height}x{width}, info.json says {size[0]}x{size[1]}")]
    return []
