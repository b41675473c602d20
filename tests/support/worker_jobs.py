"""Job functions for tests of wam.workers: importable, so local worker processes and Ray workers can run them."""

from __future__ import annotations

import os
from pathlib import Path

_SETUP: dict = {}


def setup(config: dict) -> None:
    _SETUP.clear()
    _SETUP.update(config)


def square(job: int) -> tuple[int, int]:
    """(job, job**2 + offset), with the offset the worker was set up with."""
    return job, job * job + _SETUP.get("offset", 0)


def dies_once(job: int) -> tuple[int, int]:
    """The worker process dies (as a killed or crashed node would) the first time it meets job 3."""
    marker = Path(_SETUP["marker_dir"]) / f"died-{job}"
    if job == 3 and not marker.exists():
        marker.write_text("once")
        os._exit(1)
    return job, job * job


def fails(job: int) -> int:
    if job == 2:
        raise ValueError("episode 2 is broken")
    return job
