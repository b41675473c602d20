"""Import a robomimic HDF5 file (robosuite demonstrations) into a wam dataset.

Source layout:
    data            attrs: total, env_args (JSON: env_name, env_kwargs with control_freq, robots, cameras)
    data/demo_N     attr num_samples; actions (T, A), rewards (T,), dones (T,), states (T, S), obs/<key>
    mask/<filter>   names of the demos in a split, e.g. train, valid

Mapping:
    obs/<name>_image (T, H, W, 3) uint8  camera `observation.images.<name>`
    obs/<state keys>                     `observation.state`, concatenated in the order given (default:
                                         every robot0_* low-dim key, sorted), dimensions named `<key>_<i>`
    every other low-dim obs/<key>        `observation.<key>` (e.g. `observation.object`)
    actions / rewards / dones            `action` / `next.reward` / `next.done`
    states                               `sim_state` (float64, exact: the simulator state for replay)
    success                              `next.success`: true on a demo's last frame when the demos are
                                         successful (`demos_succeed`, the default: robomimic's human demos
                                         all are); with demos_succeed=False it is left out (unknown, not false)
    mask/<filter>                        per episode `info/mask_<filter>` (bool); `info/source_demo` = demo_N
    env_name, control_freq               task text (unless `task`), fps (unless `fps`; default 20)

Low-dimensional values are stored as float32, LeRobot's and wam's dtype (exact for float32
sources; float64 sources are rounded to float32), except `sim_state`. Images are encoded
as video with wam's codec, `VideoConfig` (by default H.264, yuv444p, CRF 12): close to the
source, not bit-equal. robosuite renders with the image origin at the bottom, so in many
robomimic files the frames are upside down: `flip=True` (`--flip`) turns them upright.
Depth maps (`*_depth`) and other non-RGB image observations are left out (listed in notes), and
so is `next_obs` (the observations shifted by one frame, already in `obs`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from wam.data.episode import Episode
from wam.data.importers.result import ImportResult
from wam.data.layout import ACTION_KEY, IMAGE_PREFIX, STATE_KEY, Feature
from wam.data.video import VideoConfig
from wam.data.writer import DatasetWriter
from wam.errors import DatasetError

FORMAT = "robomimic"
DEFAULT_FPS = 20
IMAGE_SUFFIX = "_image"


def _demo_number(name: str) -> tuple[int, str]:
    match = re.fullmatch(r"demo_(\d+)", name)
    return (int(match.group(1)), name) if match else (1 << 62, name)


def camera_key(obs_key: str) -> str:
    return IMAGE_PREFIX + obs_key.removesuffix(IMAGE_SUFFIX)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Source:
    """The open file, its demos, env args and masks, with errors that name the file and field."""

    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path
        if "data" not in handle:
            raise DatasetError(f"{path}: no 'data' group (not a robomimic file)")
        self.data = handle["data"]
        self.demos = sorted((name for name in self.data if name.startswith("demo")), key=_demo_number)
        if not self.demos:
            raise DatasetError(f"{path}: 'data' has no demo_N groups")
        self.env_args: dict[str, Any] = {}
        if "env_args" in self.data.attrs:
            try:
                self.env_args = json.loads(_text(self.data.attrs["env_args"]))
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}: data.attrs['env_args'] is not valid JSON ({err})") from None
        self.masks: dict[str, set[str]] = {}
        if "mask" in handle:
            for name, names in handle["mask"].items():
                self.masks[name] = {_text(n) for n in np.asarray(names).reshape(-1)}

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return self.env_args.get("env_kwargs") or {}

    def demo(self, name: str):
        return self.data[name]

    def field(self, demo: str, key: str, length: int | None = None) -> np.ndarray:
        group = self.data[demo]
        if key not in group:
            raise DatasetError(f"{self.path}: data/{demo} has no {key!r}")
        try:
            values = np.asarray(group[key][()])
        except OSError as err:  # a damaged chunk inside the file
            raise DatasetError(f"{self.path}: data/{demo}/{key} unreadable ({err})") from None
        if length is not None and (values.ndim == 0 or values.shape[0] != length):
            got = values.shape[0] if values.ndim else "no"
            raise DatasetError(f"{self.path}: data/{demo}/{key} has {got} frames, actions has {length}")
        return values


def _classify(source: _Source) -> tuple[list[str], dict[str, int], list[str]]:
    """From the first demo: image obs keys, low-dim obs keys -> width, and notes on what is left out."""
    first = source.demo(source.demos[0])
    images, low_dim, notes = [], {}, []
    obs = first["obs"] if "obs" in first else {}
    for key in sorted(obs):
        shape, dtype = obs[key].shape, obs[key].dtype
        if key.endswith(IMAGE_SUFFIX) and len(shape) == 4 and shape[-1] == 3:
            images.append(key)
        elif len(shape) in (1, 2) and (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            low_dim[key] = 1 if len(shape) == 1 else int(shape[1])
        else:
            notes.append(f"observation {key!r} {tuple(shape)} {dtype} left out: not an RGB image nor low-dimensional")
    return images, low_dim, notes


def plan_features(
    source: _Source, state_keys: Sequence[str] | None, demos_succeed: bool
) -> tuple[dict[str, Feature], list[str], list[str], list[str]]:
    """(features, image keys, state keys, notes) for the file, from its first demo."""
    images, low_dim, notes = _classify(source)
    first = source.demo(source.demos[0])
    if state_keys is None:
        state_keys = [k for k in sorted(low_dim) if k.startswith("robot0_")]
    else:
        state_keys = list(state_keys)
        unknown = [k for k in state_keys if k not in low_dim]
        if unknown:
            raise DatasetError(
                f"{source.path}: unknown state key(s) {', '.join(map(repr, unknown))}; the low-dim observations of "
                f"data/{source.demos[0]}/obs are: {', '.join(sorted(low_dim)) or 'none'}"
            )
    features: dict[str, Feature] = {}
    for key in images:
        height, width = first["obs"][key].shape[1:3]
        features[camera_key(key)] = Feature("video", (int(height), int(width), 3), ("height", "width", "channels"))
    if state_keys:
        names = tuple(f"{key}_{i}" for key in state_keys for i in range(low_dim[key]))
        features[STATE_KEY] = Feature("float32", (len(names),), names)
    else:
        notes.append("no state keys: observation.state left out")
    for key in sorted(set(low_dim) - set(state_keys)):
        features[f"observation.{key}"] = Feature("float32", (low_dim[key],))
    if "actions" not in first:
        raise DatasetError(f"{source.path}: data/{source.demos[0]} has no 'actions'")
    actions = first["actions"].shape
    features[ACTION_KEY] = Feature("float32", (int(actions[1]) if len(actions) == 2 else 1,))
    if "rewards" in first:
        features["next.reward"] = Feature("float32", (1,))
    if "dones" in first:
        features["next.done"] = Feature("bool", (1,))
    if demos_succeed:
        features["next.success"] = Feature("bool", (1,))
    if "states" in first:
        features["sim_state"] = Feature("float64", (int(np.prod(first["states"].shape[1:])),))
    return features, images, state_keys, notes


def load_demo(
    source: _Source, demo: str, features: dict[str, Feature], images: list[str], state_keys: list[str],
    task: str, flip: bool, demos_succeed: bool,
) -> Episode:
    """One demo as an episode; every field checked against the length of its actions."""
    actions = source.field(demo, "actions")
    length = int(actions.shape[0]) if actions.ndim else 0
    if length == 0:
        raise DatasetError(f"{source.path}: data/{demo}/actions is empty")
    stated = source.demo(demo).attrs.get("num_samples")
    if stated is not None and int(stated) != length:
        raise DatasetError(f"{source.path}: data/{demo} attrs num_samples is {int(stated)}, actions has {length} frames")
    frames = {}
    for key in images:
        values = source.field(demo, f"obs/{key}", length)
        if values.dtype != np.uint8 or values.ndim != 4 or values.shape[1:] != features[camera_key(key)].shape:
            raise DatasetError(f"{source.path}: data/{demo}/obs/{key} is {values.dtype} {values.shape[1:]}, "
                               f"expected uint8 {features[camera_key(key)].shape} (as in data/{source.demos[0]})")
        frames[camera_key(key)] = np.ascontiguousarray(values[:, ::-1] if flip else values)
    data: dict[str, np.ndarray] = {}

    def low(key: str, name: str) -> np.ndarray:
        values = source.field(demo, key, length).reshape(length, -1)
        width = int(np.prod(features[name].shape)) if name != STATE_KEY else None
        if width is not None and values.shape[1] != width:
            raise DatasetError(f"{source.path}: data/{demo}/{key} has {values.shape[1]} values per frame, "
                               f"data/{source.demos[0]} has {width}")
        return values

    if state_keys:
        state = np.concatenate([low(f"obs/{key}", STATE_KEY) for key in state_keys], axis=1)
        if state.shape[1] != features[STATE_KEY].shape[0]:
            raise DatasetError(f"{source.path}: data/{demo}: state keys give {state.shape[1]} values per frame, "
                               f"data/{source.demos[0]} gives {features[STATE_KEY].shape[0]}")
        data[STATE_KEY] = state.astype(np.float32)
    for name in features:
        if name.startswith("observation.") and name != STATE_KEY and not features[name].is_video:
            data[name] = low(f"obs/{name.removeprefix('observation.')}", name).astype(np.float32)
    data[ACTION_KEY] = low("actions", ACTION_KEY).astype(np.float32)
    if "next.reward" in features:
        data["next.reward"] = low("rewards", "next.reward").reshape(length).astype(np.float32)
    if "next.done" in features:
        data["next.done"] = low("dones", "next.done").reshape(length) != 0
    if "sim_state" in features:
        data["sim_state"] = low("states", "sim_state").astype(np.float64)
    if demos_succeed:
        data["next.success"] = np.arange(length) == length - 1
    info: dict[str, str | bool] = {"source_demo": demo}
    for mask, names in sorted(source.masks.items()):
        info[f"mask_{mask}"] = demo in names
    return Episode(task, frames, data, success=True if demos_succeed else None, info=info)


def import_robomimic(
    src: str | Path,
    out: str | Path,
    task: str | None = None,
    fps: int | None = None,
    state_keys: Sequence[str] | None = None,
    flip: bool = False,
    demos_succeed: bool = True,
    video: VideoConfig = VideoConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Convert the robomimic file `src` into a wam dataset at `out` (a new directory; see `convert_dataset`
    for the whole-or-nothing wrapper)."""
    import h5py

    path = Path(src)
    if not path.is_file():
        raise DatasetError(f"{path}: {'a directory, not' if path.is_dir() else 'no such file, expected'} a robomimic HDF5 file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle:
        source = _Source(handle, path)
        features, images, keys, notes = plan_features(source, state_keys, demos_succeed)
        env_name = source.env_args.get("env_name")
        text = task or (str(env_name) if env_name else path.stem)
        rate = int(fps or source.env_kwargs.get("control_freq") or DEFAULT_FPS)
        robots = source.env_kwargs.get("robots")
        robot_type = ",".join(robots) if isinstance(robots, list) else str(robots or "unknown")
        frames = 0
        with DatasetWriter(out, features=features, fps=rate, robot_type=robot_type, video=video) as writer:
            for number, demo in enumerate(source.demos):
                episode = load_demo(source, demo, features, images, keys, text, flip, demos_succeed)
                writer.add_episode(episode)
                frames += episode.length
                if progress is not None:
                    progress(number + 1, len(source.demos))
    cameras = {k: (f.shape[0], f.shape[1]) for k, f in features.items() if f.is_video}
    return ImportResult(str(path), str(out), FORMAT, len(source.demos), frames, rate, cameras, [text], notes)
