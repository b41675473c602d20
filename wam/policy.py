"""A finetuned WAM as a closed-loop policy: `policy = wam.policy.load(RUN)`, then per episode
`policy.reset(task)` and per control step `policy.act(obs) -> action`.

The model sees frames `stride` control steps apart (the pretraining frame rate), so the
policy keeps the latents of every `stride`-th observation (up to `window - 1` of them)
with their states. Action chunking with a **receding horizon**: each prediction is a
chunk of H actions, of which the first `execute` are run before predicting again from
the newest frames (H = 8, execute = 4 by default: one model call every 4 control steps).
One model call per `execute` steps is what keeps the control rate high on a CPU.

Observations are raw, as the robot or the dataset gives them: an environment's `{"image",
"images", "state"}` or a dataset row's `{"observation.images.<camera>", "observation.state"}`,
camera frames of any size (fitted to the model's resolution the way the run was trained:
`wam/data/fit.py`), HWC uint8 or lerobot's CHW float in [0, 1]. Actions come back in the
dataset's units (the model's normaliser undoes its scaling), clipped to the range the
training actions spanned. A state or camera the run did not train on is a clear error.

`ensemble=m` switches to **temporal ensembling** (ACT's scheme): a model call at every
frame (`stride` steps), and the action run at step t is the average of every chunk still
covering t, the older predictions weighted exp(-m * i) more (i = 0 the oldest), which
smooths the switches between chunks at the price of a model call per frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wam.data.fit import fit_frames
from wam.data.layout import IMAGE_PREFIX, STATE_KEY
from wam.envs.tasks import instruction
from wam.errors import CheckpointError
from wam.models.text import tokenize
from wam.runs import load_run
from wam.train.finetune import load_wam, split_snapshot
from wam.train.pretrain import load_tokenizer


class WAMPolicy:
    def __init__(self, run: Path, which: str = "checkpoint", device: str = "cpu", execute: int | None = None,
                 ensemble: float | None = None):
        self.run, which = split_snapshot(run, which)
        self.record = load_run(self.run, "finetune")
        config = self.record.config
        self.model = load_wam(self.run, which).to(device)
        self.tokenizer = load_tokenizer(self.run).to(device)
        self.device = torch.device(device)
        self.stride = self.record.stride
        self.image_size = self.record.image_size
        self.tasks = list(self.record.tasks)
        spec = self.record.spec
        self.camera_keys = _camera_candidates(spec)  # per view slot: the observation keys that can fill it
        self.views = ("image",) if spec is None else spec.views  # the slots' names (a simulator's camera names)
        self.state_dim = self.model.config.world.state_dim if spec is None else spec.state_dim  # 0: trained without
        self.action_dim = self.model.config.robot_action_dim
        self.context = config.window - 1
        self.chunk = config.chunk
        self.execute = config.execute if execute is None else execute
        if self.execute % self.stride:
            raise ValueError(f"execute ({self.execute}) must be a multiple of the frame stride ({self.stride})")
        if not 1 <= self.execute <= self.chunk:
            raise ValueError(f"execute must be in 1..{self.chunk}, got {self.execute}")
        if ensemble is not None and ensemble < 0:
            raise ValueError(f"ensemble (the weight decay m of temporal ensembling) must be >= 0, got {ensemble}")
        self.ensemble = ensemble
        self.text_ids: torch.Tensor | None = None
        self.reset()

    def reset(self, task: str | None = None) -> None:
        """Start an episode; `task` is an instruction ("open the drawer") or a task name (Meta-World, hand scenes)."""
        if task is not None:
            text = instruction(task)
            self.text_ids = tokenize([text], self.model.config.world.text).to(self.device)
        self.latents: deque[torch.Tensor] = deque(maxlen=self.context)
        self.states: deque[torch.Tensor] = deque(maxlen=self.context)
        self.queue: deque[np.ndarray] = deque()
        self.chunks: deque[tuple[int, np.ndarray]] = deque()  # temporal ensembling: (first step, chunk (H, A))
        self.steps = 0

    @torch.no_grad()
    def act(self, obs: dict) -> np.ndarray:
        if self.text_ids is None:
            raise ValueError("call reset(task) with the task's instruction before act()")
        if self.steps % self.stride == 0:
            image, state = self.observation(obs)
            self.latents.append(self.tokenizer.encode_images(image[None])[0])
            self.states.append(torch.as_tensor(state, device=self.device))
        if self.ensemble is not None:
            return self._ensembled().astype(np.float32)
        if not self.queue:
            self.queue.extend(self._next_chunk(*self._context())[: self.execute])
        self.steps += 1
        return self.queue.popleft().astype(np.float32)

    def observation(self, obs: dict) -> tuple[np.ndarray, np.ndarray]:
        """A raw observation -> the model's image strip (S, V*S, 3) uint8 and state (S,) float32, or a ValueError naming
        what is missing or of the wrong size."""
        if not isinstance(obs, dict):
            raise ValueError(f"an observation is a dict of camera images and the state, got {type(obs).__name__}")
        views = []
        for slot, keys in enumerate(self.camera_keys):
            image = _find_image(obs, keys)
            if image is None:
                raise ValueError(f"the observation has no image for camera slot {slot} (looked for {', '.join(keys)}); "
                                 f"its keys: {', '.join(map(str, obs))}")
            views.append(fit_frames(_as_hwc_uint8(image, keys[0])[None], self.image_size, self.record.fit)[0])
        state = obs.get("state", obs.get(STATE_KEY))
        if self.state_dim == 0:
            state = np.zeros(self.model.config.world.state_dim, np.float32)  # trained without a state
        elif state is None:
            raise ValueError(f"the observation has no state ('state' or {STATE_KEY!r}); the policy needs {self.state_dim} values")
        state = np.array(state, dtype=np.float32).reshape(-1)  # a copy: torch refuses read-only arrays
        if state.shape != (self.model.config.world.state_dim,):
            raise ValueError(f"the observation's state has {state.size} values, the policy was trained on "
                             f"{self.model.config.world.state_dim} ({STATE_KEY} of its data)")
        return np.concatenate(views, axis=1), state

    def _context(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, T, C, h, w) latents and (1, T, S) states of the frames kept."""
        return torch.stack(list(self.latents))[None], torch.stack(list(self.states))[None]

    def _ensembled(self) -> np.ndarray:
        t = self.steps
        if t % self.stride == 0:
            self.chunks.append((t, self._next_chunk(*self._context())))
        while self.chunks and self.chunks[0][0] + self.chunk <= t:
            self.chunks.popleft()  # no longer covers this step
        actions = np.stack([chunk[t - start] for start, chunk in self.chunks])  # oldest first
        weights = np.exp(-self.ensemble * np.arange(len(actions)))
        self.steps += 1
        return (weights[:, None] * actions).sum(0) / weights.sum()

    def _next_chunk(self, latents: torch.Tensor, states: torch.Tensor) -> np.ndarray:
        """The next action chunk (H, A) from the context; planners override this."""
        return self.model.act(latents, self.text_ids, states)[0].cpu().numpy()


def _camera_candidates(spec) -> list[list[str]]:
    """For each view slot, the observation keys that can fill it, in order of preference."""
    if spec is None:
        return [["image"]]
    slots = []
    for v, view in enumerate(spec.views):
        keys = list(dict.fromkeys([keys[v] for keys in spec.camera_keys.values()] + [IMAGE_PREFIX + view, view]))
        if spec.num_views == 1:
            keys.append("image")
        slots.append(keys)
    return slots


def _find_image(obs: dict, keys: list[str]):
    images = obs.get("images") if isinstance(obs.get("images"), dict) else {}
    for key in keys:
        if key in obs and key != "images":
            return obs[key]
        short = key.removeprefix(IMAGE_PREFIX)
        if short in images:
            return images[short]
        if key in images:
            return images[key]
    return None


def _as_hwc_uint8(image, name: str) -> np.ndarray:
    """(H, W, 3) uint8 as environments give, or (3, H, W) float in [0, 1] as lerobot's loaders give."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = np.moveaxis(image, 0, -1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"camera {name}: expected an (H, W, 3) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)
    return image


def load(run: str | Path, which: str = "checkpoint", device: str | None = None, execute: int | None = None,
         ensemble: float | None = None) -> WAMPolicy:
    """The policy of a finetuning run (`wam finetune --out RUN`), or `RUN@STEP` for the weights it kept at STEP;
    a pretraining run is refused."""
    if not split_snapshot(run)[0].exists():
        raise CheckpointError(f"{run}: no such run directory")
    return WAMPolicy(Path(run), which, device or ("cuda" if torch.cuda.is_available() else "cpu"), execute, ensemble)


class PolicyActor:
    """A finetuned policy in the expert's seat, so the collector records the policy's own episodes.

    Why: a world model trained on demonstrations (and play) learns what good arms do; it has
    never seen how a weak policy fails, so its dreams let a near-miss policy reach the goal.
    Recording the policy's rollouts, failures included, and finetuning the world on them is
    the Dyna loop (real experience of the current policies improves the model). `noise`
    adds clipped Gaussian noise to every action, seeded per episode like the expert's.
    """

    def __init__(self, run, task: str, noise: float = 0.0):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.policy, self.task, self.noise = load(run, device="cpu"), task, noise
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.policy.reset(self.task)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = self.policy.act(obs)
        if self.noise > 0:
            action = action + self._rng.normal(0.0, self.noise, size=action.shape).astype(np.float32)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class PolicyActors:
    """Collection's actors for a finetuned run (`CollectConfig.policy`): a PolicyActor per task, made inside each
    collection worker. Picklable, so it travels to the workers with the config; the collector never imports a
    model (collection comes before training in the data flow: the command line chooses who acts)."""

    run: Path  # RUN or RUN@STEP

    @property
    def source(self) -> str:
        return f"policy:{self.run}"

    @property
    def image_size(self) -> int:
        """The frames the policy sees (a clear CheckpointError for a directory that is no finetuned run)."""
        return load_run(split_snapshot(self.run)[0], "finetune").image_size

    def __call__(self, task: str, noise: float = 0.0) -> PolicyActor:
        torch.set_num_threads(1)  # one worker a core: the policy's matmuls must not fight the other workers
        return PolicyActor(self.run, task, noise=noise)
