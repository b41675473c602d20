"""Simulated environments behind one registry, scripted experts, and data collection."""

from wam.envs.rendering import configure_headless_rendering

configure_headless_rendering()

from wam.envs.registry import REGISTRY, make, register  # noqa: E402
from wam.envs.tasks import MT10, MT50, TASK_SETS, TASK_TEXT, resolve_tasks, task_text  # noqa: E402

__all__ = ["REGISTRY", "make", "register", "MT10", "MT50", "TASK_SETS", "TASK_TEXT", "resolve_tasks", "task_text"]
