"""The fleet on the command line: `metaworld/reach-v3*8,metaworld/drawer-open-v3*4,dream/runs/wam*2`.

Each comma-separated item is an env id from `wam.envs.make` with an optional `*N` count;
every robot gets an id that names what it is (`reach-v3-0`, `drawer-open-v3-3`,
`dream-wam-0`) so key patterns such as `reach-*` read naturally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_ROBOTS = 1024


@dataclass(frozen=True)
class RobotSpec:
    """One robot: its id, the env it runs, and the task it starts with (None: set at the first reset)."""

    robot_id: str
    env_id: str
    task: str | None


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
