"""Reading and writing the small metadata tables: meta/episodes and meta/tasks.parquet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wam.data import layout
from wam.errors import DatasetError


def episode_meta_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "meta" / "episodes").rglob("*.parquet") if not p.name.startswith(layout.TMP_PREFIX))


def read_episode_rows(root: Path) -> list[dict[str, Any]]:
    """Every episode's row, in episode order; raises DatasetError naming a bad file."""
    rows: list[dict[str, Any]] = []
    for path in episode_meta_files(root):
        try:
            rows.extend(pq.read_table(path).to_pylist())
        except (pa.ArrowException, OSError) as err:
            raise DatasetError(f"{path}: unreadable parquet ({err})") from None
    rows.sort(key=lambda row: row.get("episode_index", -1))
    for expected, row in enumerate(rows):
        for field in ("episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"):
            if row.get(field) is None:
                raise DatasetError(f"{root / 'meta/episodes'}: episode row {expected} has no {field!r}")
        if row["episode_index"] != expected:
            raise DatasetError(
                f"{root / 'meta/episodes'}: episode indices are not contiguous (expected {expected}, found {row['episode_index']})"
            )
    return rows


def write_tasks(root: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes it: task text is the index, `task_index` the column."""
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), type=pa.int64()),
            "__index_level_0__": pa.array(tasks, type=pa.large_string()),
        }
    )
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    path = root / layout.TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.tmp_path_for(path)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_tasks(root: Path) -> list[str]:
    path = root / layout.TASKS_PATH
    if not path.exists():
        raise DatasetError(f"{path}: missing")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable parquet ({err})") from None
    text_column = "__index_level_0__" if "__index_level_0__" in table.column_names else "task"
    if text_column not in table.column_names or "task_index" not in table.column_names:
        raise DatasetError(f"{path}: expected columns task_index and the task text, found {table.column_names}")
    pairs = sorted(zip(table["task_index"].to_pylist(), table[text_column].to_pylist()))
    return [text for _, text in pairs]
