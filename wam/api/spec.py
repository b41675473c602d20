"""The fleet on the command line: `metaworld/reach-v3*8,metaworld/drawer-open-v3*4,dream/runs/wam*2`.

Each comma-separated item is an env id from `wam.envs.make` with an optional `*N` count;
every robot gets an id that names what it is (`reach-v3-0`, `drawer-open-v3-3`,
`dream-wam-0`, `so100-0` for `remote/so100`) so key patterns such as `reach-*` read naturally.
A `remote/<name>` robot is real hardware: it is offline until its bridge connects (`wam bridge`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_ROBOTS = 1024
REMOTE_FAMILY = "remote"  # `remote/<name>`: a real robot that a bridge connects for (wam.bridge)


@dataclass(frozen=True)
class RobotSpec:
    """One robot: its id, the env it runs, and the task it starts with (None: set at the first reset)."""

    robot_id: str
    env_id: str
    task: str | None

    @property
    def remote(self) -> bool:
        return self.env_id.startswith(REMOTE_FAMILY + "/")

    def task_error(self, task: str | None) -> str | None:
        """Why `task` cannot be set on this robot, or None. A Meta-World robot takes only Meta-World task names;
        a scanned scene takes its tabletop tasks; a remote robot (and any other env) takes any instruction, which is
        recorded as the episode's task."""
        if task is not None and self.env_id.startswith("scan/"):
            from wam.envs.tabletop.env import TASKS

            return None if task in TASKS else f"task {task!r} is not a tabletop task ({', '.join(TASKS)})"
        if task is None or not self.env_id.startswith("metaworld/"):
            return None
        from wam.envs.tasks import MT50

        return None if task in MT50 else f"task {task!r} is not a Meta-World task name (e.g. reach-v3)"


def parse_fleet(spec: str) -> list[RobotSpec]:
    """Raise ValueError naming the item at fault; ids are unique and stable for the same spec."""
    robots: list[RobotSpec] = []
    counters: dict[str, int] = {}
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError(f"robot spec {spec!r} names no robots; e.g. metaworld/reach-v3*8")
    for item in items:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)/(.+?)(?:\*(\d+))?", item)
        if not match:
            raise ValueError(f"robot spec item {item!r} must look like <family>/<name>[*N], e.g. metaworld/reach-v3*8")
        family, name, count = match.group(1), match.group(2), int(match.group(3) or 1)
        if count < 1:
            raise ValueError(f"robot spec item {item!r}: count must be at least 1")
        if family == "metaworld":
            from wam.envs.tasks import MT50

            if name not in MT50:
                raise ValueError(f"robot spec item {item!r}: unknown Meta-World task {name!r}")
            stem, task = name, name
        elif family == REMOTE_FAMILY:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,48}", name):
                raise ValueError(f"robot spec item {item!r}: a remote robot's name is 1-48 letters, digits, '_', '.' or '-', "
                                 "e.g. remote/so100*2")
            stem, task = name, None
        elif family == "dream":
            stem, task = f"dream-{Path(name).name}", None
        else:
            stem, task = f"{family}-{Path(name).name}", None
        for _ in range(count):
            number = counters.get(stem, 0)
            counters[stem] = number + 1
            robots.append(RobotSpec(f"{stem}-{number}", f"{family}/{name}", task))
    if len(robots) > MAX_ROBOTS:
        raise ValueError(f"robot spec asks for {len(robots)} robots; at most {MAX_ROBOTS} per server")
    return robots
