"""The feature spec: what a model learns from, read from the data and never assumed.

Every stage asks the datasets, not the code, for the cameras (any number, any keys, video or
PNG-stored), their image sizes, the state and action sizes and names, the frame rate and the
reward / success / done fields (wam writes `reward` and `success`; lerobot's gym datasets write
`next.reward`, `next.success`, `next.done`). `merge_specs` checks that datasets trained together
agree, saying exactly where they differ and how to map them, and the merged spec is saved in
the run (`RunRecord.spec`) so a policy, a dream and an evaluation read the same facts back.

Cameras fill the model's view slots in order. `cameras` names them: a dataset key
(`observation.images.top`), its short name (`top`) or alternatives (`top|cam_high`) when
datasets call the same view differently. Without it, datasets must have the same cameras,
except that datasets with exactly one camera each share slot 0 whatever it is called (a
simulator's `main` and a webcam's `front` are both "the camera").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from wam.data.layout import ACTION_KEY, IMAGE_PREFIX, STATE_KEY
from wam.data.reader import Dataset
from wam.errors import DatasetError

# The first field a dataset has wins: lerobot's gym recordings use the `next.` names.
REWARD_KEYS = ("next.reward", "reward")
SUCCESS_KEYS = ("next.success", "success", "is_success")
DONE_KEYS = ("next.done", "done")


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset holds, as its meta/info.json says."""

    root: str
    fps: float
    cameras: dict[str, tuple[int, int]]  # key -> (height, width), in info.json order
    state_dim: int | None
    state_names: tuple[str, ...] | None
    action_dim: int | None
    action_names: tuple[str, ...] | None
    reward_key: str | None
    success_key: str | None
    done_key: str | None


def dataset_spec(dataset: Dataset) -> DatasetSpec:
    features = dataset.features
    cameras = {key: tuple(dataset.camera_size(key)) for key in dataset.camera_keys}

    def sized(key: str) -> tuple[int | None, tuple[str, ...] | None]:
        if key not in features:
            return None, None
        feature = features[key]
        size = 1
        for s in feature.shape:
            size *= int(s)
        return size, feature.names if feature.names and len(feature.names) == size else None

    def first(keys: tuple[str, ...]) -> str | None:
        return next((k for k in keys if k in features), None)

    state_dim, state_names = sized(STATE_KEY)
    action_dim, action_names = sized(ACTION_KEY)
    return DatasetSpec(str(dataset.root), float(dataset.info["fps"]), cameras, state_dim, state_names, action_dim,
                       action_names, first(REWARD_KEYS), first(SUCCESS_KEYS), first(DONE_KEYS))


def short_name(key: str) -> str:
    return key.removeprefix(IMAGE_PREFIX)


@dataclass(frozen=True)
class FeatureSpec:
    """What the datasets of a run agree on: the model's inputs and outputs, with each dataset's own keys."""

    views: tuple[str, ...]  # the model's camera slots, named after the first dataset's keys
    camera_keys: dict[str, tuple[str, ...]]  # dataset root -> its key for each slot
    image_sizes: dict[str, tuple[tuple[int, int], ...]]  # dataset root -> (height, width) of each slot
    fps: dict[str, float]  # dataset root -> frames per second
    state_dim: int  # 0: no dataset has a state
    state_names: tuple[str, ...] | None = None
    action_dim: int | None = None  # None: action-free video only
    action_names: tuple[str, ...] | None = None
    reward_keys: dict[str, str | None] = field(default_factory=dict)
    success_keys: dict[str, str | None] = field(default_factory=dict)
    done_keys: dict[str, str | None] = field(default_factory=dict)

    @property
    def num_views(self) -> int:
        return len(self.views)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(
            views=tuple(data["views"]),
            camera_keys={k: tuple(v) for k, v in data["camera_keys"].items()},
            image_sizes={k: tuple(tuple(int(x) for x in s) for s in v) for k, v in data["image_sizes"].items()},
            fps={k: float(v) for k, v in data["fps"].items()},
            state_dim=int(data["state_dim"]),
            state_names=tuple(data["state_names"]) if data.get("state_names") else None,
            action_dim=None if data.get("action_dim") is None else int(data["action_dim"]),
            action_names=tuple(data["action_names"]) if data.get("action_names") else None,
            reward_keys=dict(data.get("reward_keys", {})),
            success_keys=dict(data.get("success_keys", {})),
            done_keys=dict(data.get("done_keys", {})),
        )


def parse_cameras(text: str | None) -> tuple[str, ...] | None:
    """`--cameras top,wrist` -> ("top", "wrist"); None or "" -> None (the data decides)."""
    if not text:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"--cameras names a camera twice: {text!r}")
    return names or None


def _resolve_slot(slot: str, spec: DatasetSpec) -> str | None:
    for name in slot.split("|"):
        for key in spec.cameras:
            if name in (key, short_name(key)):
                return key
    return None


def _camera_choice(specs: Sequence[DatasetSpec], cameras: tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    if cameras is not None:
        chosen = {}
        for spec in specs:
            keys = []
            for slot in cameras:
                key = _resolve_slot(slot, spec)
                if key is None:
                    raise DatasetError(f"{spec.root}: has no camera {slot!r} (its cameras: {', '.join(spec.cameras) or 'none'}); "
                                       "name each view by a key every dataset has, or give alternatives as 'top|cam_high'")
                keys.append(key)
            chosen[spec.root] = tuple(keys)
        return chosen
    if all(len(s.cameras) == 1 for s in specs):
        return {s.root: tuple(s.cameras) for s in specs}  # one camera each: they share slot 0, whatever its name
    first = specs[0]
    for spec in specs[1:]:
        if set(spec.cameras) != set(first.cameras):
            raise DatasetError(
                f"datasets have different cameras: {first.root} has {', '.join(first.cameras) or 'none'}, {spec.root} has "
                f"{', '.join(spec.cameras) or 'none'}; choose the views with --cameras (e.g. --cameras "
                f"{short_name(next(iter(first.cameras), 'top'))}), with 'a|b' where datasets name one view differently")
    return {s.root: tuple(first.cameras) for s in specs}


def merge_specs(specs: Sequence[DatasetSpec], cameras: tuple[str, ...] | None = None, need_actions: bool = False) -> FeatureSpec:
    """One spec for datasets trained together; a DatasetError names the first disagreement."""
    if not specs:
        raise DatasetError("no dataset given")
    for spec in specs:
        if not spec.cameras:
            raise DatasetError(f"{spec.root}: dataset has no camera to learn from (no feature with dtype video or image)")
    chosen = _camera_choice(specs, cameras)
    counts = {len(keys) for keys in chosen.values()}
    if len(counts) > 1:  # only possible without --cameras when some have one camera and others several
        raise DatasetError("datasets have different numbers of cameras: " + ", ".join(f"{r} {len(k)}" for r, k in chosen.items())
                           + "; choose the views with --cameras")
    by_state = {s.state_dim for s in specs if s.state_dim is not None}
    if len(by_state) > 1:
        detail = ", ".join(f"{s.root}: {s.state_dim}" for s in specs if s.state_dim is not None)
        raise DatasetError(f"datasets disagree on the size of {STATE_KEY!r} ({detail}); train them in separate runs "
                           "or convert one to the other's state")
    by_action = {s.action_dim for s in specs if s.action_dim is not None}
    if len(by_action) > 1:
        detail = ", ".join(f"{s.root}: {s.action_dim}" for s in specs if s.action_dim is not None)
        raise DatasetError(f"datasets disagree on the size of {ACTION_KEY!r} ({detail})")
    if need_actions and not by_action:
        raise DatasetError(f"{', '.join(s.root for s in specs)}: no {ACTION_KEY!r} feature; this stage needs labelled robot data")
    with_state = [s for s in specs if s.state_dim is not None]
    with_action = [s for s in specs if s.action_dim is not None]
    first = specs[0]
    return FeatureSpec(
        views=tuple(short_name(k) for k in chosen[first.root]),
        camera_keys=chosen,
        image_sizes={s.root: tuple(s.cameras[k] for k in chosen[s.root]) for s in specs},
        fps={s.root: s.fps for s in specs},
        state_dim=by_state.pop() if by_state else 0,
        state_names=with_state[0].state_names if with_state else None,
        action_dim=by_action.pop() if by_action else None,
        action_names=with_action[0].action_names if with_action else None,
        reward_keys={s.root: s.reward_key for s in specs},
        success_keys={s.root: s.success_key for s in specs},
        done_keys={s.root: s.done_key for s in specs},
    )


def read_spec(paths: Sequence[str | Path], cameras: tuple[str, ...] | None = None, need_actions: bool = False) -> FeatureSpec:
    return merge_specs([dataset_spec(Dataset(p)) for p in paths], cameras, need_actions)


def frame_strides(spec: FeatureSpec, stride: int, frame_seconds: float | None) -> dict[str, int]:
    """Control steps between model frames, per dataset: `frame_seconds` of each dataset's own time.

    Without `frame_seconds` the stride is `stride` steps everywhere, which is only one time base
    when every dataset has the same fps; mixed rates are refused rather than silently mixed.
    """
    if frame_seconds is None:
        rates = sorted(set(spec.fps.values()))
        if len(rates) > 1:
            detail = ", ".join(f"{root}: {fps:g} fps" for root, fps in spec.fps.items())
            raise DatasetError(f"datasets have different frame rates ({detail}); a stride of {stride} steps would be a "
                               "different time in each, so set the model's frame interval in seconds with --frame-seconds")
        return {root: stride for root in spec.fps}
    if frame_seconds <= 0:
        raise ValueError(f"frame_seconds must be > 0, got {frame_seconds}")
    strides = {}
    for root, fps in spec.fps.items():
        steps = frame_seconds * fps
        if steps < 0.5:
            raise DatasetError(f"{root}: at {fps:g} fps one frame lasts {1 / fps:.4f} s, longer than the model's frame "
                               f"interval of {frame_seconds} s; use --frame-seconds >= {1 / fps:.4f}")
        strides[root] = max(1, round(steps))
        if abs(strides[root] - steps) / steps > 0.25:
            raise DatasetError(f"{root}: {frame_seconds} s is {steps:.2f} frames at {fps:g} fps, too far from a whole "
                               f"number of frames; choose --frame-seconds as a multiple of {1 / fps:.4f}")
    return strides
