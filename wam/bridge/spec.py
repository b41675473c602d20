"""What a robot behind a bridge declares: its state, its actions and their bounds, its cameras, its rate.

The server sizes everything from this declaration (the action space, the observation space,
the features of the dataset its episodes are recorded into), so nothing on the server names
a robot's dimensions. The same record travels as the `hello` message's JSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_DIM, MAX_CAMERAS, MAX_PIXELS = 256, 8, 4096 * 4096


@dataclass(frozen=True)
class RobotDeclaration:
    """A robot's interface. `action_low`/`action_high` bound every action (the bridge clips to them as well);
    `max_delta` (optional, per action dimension) caps how far one action may move from the previous one."""

    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width), RGB uint8
    fps: float = 30.0
    robot_type: str = "robot"
    max_delta: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_declaration(self)

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def to_json(self) -> dict:
        out = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
        out["cameras"] = {name: list(size) for name, size in self.cameras.items()}
        return out

    @classmethod
    def from_json(cls, value) -> "RobotDeclaration":
        """ValueError naming the field at fault for anything that is not a declaration."""
        if not isinstance(value, dict):
            raise ValueError(f"a robot declaration must be a JSON object, got {type(value).__name__}")
        known = {"state_names", "action_names", "action_low", "action_high", "cameras", "fps", "robot_type", "max_delta"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"robot declaration: unknown field(s) {unknown}; fields: {sorted(known)}")
        missing = sorted({"state_names", "action_names", "action_low", "action_high"} - set(value))
        if missing:
            raise ValueError(f"robot declaration: missing field(s) {missing}")
        try:
            cameras = value.get("cameras") or {}
            if not isinstance(cameras, dict):
                raise ValueError(f"robot declaration: cameras must map a name to [height, width], got {cameras!r}"[:200])
            return cls(
                state_names=_strings(value["state_names"], "state_names"), action_names=_strings(value["action_names"], "action_names"),
                action_low=_numbers(value["action_low"], "action_low"), action_high=_numbers(value["action_high"], "action_high"),
                cameras={str(name): _size(size, f"cameras.{name}") for name, size in cameras.items()},
                fps=_number(value.get("fps", 30.0), "fps"), robot_type=str(value.get("robot_type", "robot")),
                max_delta=None if value.get("max_delta") is None else _numbers(value["max_delta"], "max_delta"))
        except TypeError as error:
            raise ValueError(f"robot declaration: {error}") from None


def check_declaration(d: RobotDeclaration) -> None:
    for field_name, names in (("state_names", d.state_names), ("action_names", d.action_names)):
        if not 0 < len(names) <= MAX_DIM:
            raise ValueError(f"robot declaration: {field_name} must list 1 to {MAX_DIM} names, got {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"robot declaration: {field_name} has repeated names")
    for field_name, bound in (("action_low", d.action_low), ("action_high", d.action_high), ("max_delta", d.max_delta)):
        if bound is None:
            continue
        if len(bound) != d.action_dim:
            raise ValueError(f"robot declaration: {field_name} has {len(bound)} values for {d.action_dim} action names")
        if not all(math.isfinite(v) for v in bound):
            raise ValueError(f"robot declaration: {field_name} must be finite numbers, got {list(bound)}")
    for name, low, high in zip(d.action_names, d.action_low, d.action_high):
        if not low < high:
            raise ValueError(f"robot declaration: action {name!r} has low {low} not below high {high}")
    if d.max_delta is not None and any(v <= 0 for v in d.max_delta):
        raise ValueError(f"robot declaration: max_delta must be positive, got {list(d.max_delta)}")
    if len(d.cameras) > MAX_CAMERAS:
        raise ValueError(f"robot declaration: {len(d.cameras)} cameras; at most {MAX_CAMERAS}")
    for name, (height, width) in d.cameras.items():
        if not NAME.fullmatch(name):
            raise ValueError(f"robot declaration: camera name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if height < 1 or width < 1 or height * width > MAX_PIXELS:
            raise ValueError(f"robot declaration: camera {name!r} size {height}x{width} is not a frame size")
        if height % 2 or width % 2:
            raise ValueError(f"robot declaration: camera {name!r} size {height}x{width} must be even (video is stored "
                             "as 4:2:0); crop or resize it on the bridge")
    if not (math.isfinite(d.fps) and 0 < d.fps <= 1000):
        raise ValueError(f"robot declaration: fps must be in (0, 1000], got {d.fps}")
    if not NAME.fullmatch(d.robot_type):
        raise ValueError(f"robot declaration: robot_type {d.robot_type!r} must be 1-64 letters, digits, '_', '.' or '-'")


def _strings(value, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in value):
        raise ValueError(f"robot declaration: {name} must be a list of non-empty names, got {value!r}"[:200])
    return tuple(value)


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"robot declaration: {name} must be a number, got {value!r}"[:200])
    return float(value)


def _numbers(value, name: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"robot declaration: {name} must be a list of numbers, got {value!r}"[:200])
    return tuple(_number(v, name) for v in value)


def _size(value, name: str) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"robot declaration: {name} must be [height, width], got {value!r}"[:200])
    return int(value[0]), int(value[1])
