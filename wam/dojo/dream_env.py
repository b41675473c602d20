"""Dreams: a finetuned WAM's action-conditioned world model as a Gymnasium environment.

Stage three of the recipe: compute becomes data. `DreamVectorEnv` runs N dreams in one
batch. Reset starts each from a real first frame and state of an episode of the task
(sampled from the run's robot data by the env's seed; with `start_anywhere`, from any frame
of the episodes before their success); step takes real robot actions.
The world model works on frames `stride` control steps apart, so actions are collected
until a frame's worth (`stride` of them) is in, then one batched model step predicts the
next latent frame, the next state, the reward received and whether the task is done (the
WAM's learned `reward` and `success` heads). Between model steps the observation stays
the last frame and the reward the last one predicted, so one dream step is one control
step, as in the simulator, and the same policies and tools run in both.

Observations: `latent` (the world model's frame), `state`, and `image` (the decoded frame,
when `decode_images`; off for speed). Episodes end when the success head says so (its
probability above `DreamSettings.success_threshold` for `success_hold` model steps in a row) or at
`max_episode_steps`. A hold above one guards against the cheapest exploit of a learned
simulator: a policy that steers the dream through one frame the head mistakes for the goal.
Autoreset follows Gymnasium's next-step mode: the step after an episode ends resets that dream.

With `DreamSettings(judge=True)` the verdict comes from the run's success judge (`wam judge`;
wam/models/judge.py) reading each predicted frame, instead of the WAM's own success head.

`wam.envs.make("dream/<RUN>", task=...)` gives `DreamEnv`, the single-env view. With
`DreamSettings(student=True)` the model steps are the run's distilled dream student's
(`wam distill`; wam/models/dream_student.py): the same dream, tens of times cheaper a step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from wam.config import DreamSettings
from wam.data.fit import fit_frames
from wam.errors import CheckpointError, DatasetError
from wam.envs.tasks import instruction
from wam.models.text import tokenize
from wam.models.tokenizer import to_uint8
from wam.runs import RunRecord, load_run, run_kind


@dataclass(frozen=True)
class DreamConfig:
    run: Path
    task: str  # a Meta-World task name or its instruction
    num_envs: int = 1
    max_episode_steps: int = 300  # control steps
    decode_images: bool = True
    terminate_on_success: bool = True
    data: tuple[Path, ...] = ()  # datasets with the task's first frames; default: the run's robot data
    # Start from any frame of `data` before its episode's success, not only first frames: short dreams branched
    # from states real episodes visited (with a policy's own recorded rollouts, the states it reaches) stay where
    # the world model saw data, as model-based RL's short branched rollouts do (MBPO).
    start_anywhere: bool = False
    device: str = "auto"
    # How the dream steps (the WAM or its student, bf16) and calls success (head or judge, "any" or "final"); the
    # default "any" stays because in 300-step dreams of the play world the end has drifted and nearly every
    # "final" dream fails (docs/dream_dojo.md).
    settings: DreamSettings = DreamSettings()


def preflight(run: str, size: int | None = None) -> None:
    """`wam.envs.registry.preflight("dream/<RUN>", size=...)`: whether RUN can dream, and at that image size."""
    dreams = dreamable(Path(run)).image_size
    if size is not None and size != dreams:
        raise ValueError(f"{run} dreams {dreams}-pixel images, not {size}; use --size {dreams}")


def dreamable(run: Path) -> RunRecord:
    """The run's record, or a CheckpointError saying why the run cannot dream (checked before loading)."""
    run = Path(run)
    if run_kind(run) == "pretrain":
        raise CheckpointError(f"{run}: a pretraining run has no action encoder, so it cannot be stepped with robot actions; "
                              f"finetune it into a WAM first (`wam finetune --pretrained {run} ...`)")
    record = load_run(run, "finetune")
    if not record.rewards:
        raise CheckpointError(f"{run}: finetuned on data without rewards and success flags, so its reward and success heads "
                              "never learned; finetune on episodes recorded with them (wam collect records both)")
    return record


def _load_dreamer(run: Path, device: torch.device):
    from wam.train.finetune import load_wam
    from wam.train.pretrain import load_tokenizer

    record = dreamable(run)
    return load_wam(run).to(device), load_tokenizer(run).to(device), record


@torch.no_grad()
def _start_frames(datasets: list[Path], text: str, tokenizer, device, record: RunRecord,
                  anywhere: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and states dreams may start from: (E, C, h, V*w), (E, S). The first frame of every episode of the
    task or, `anywhere`, every frame before the episode's first success (a start that is already the goal would
    hand the dream a free success). Each frame holds the run's camera views side by side, fitted as it fits them."""
    from wam.data import STATE_KEY, Dataset

    spec = record.spec_for(datasets) if record.views > 1 else None  # several views: the cameras the run's slots name
    images, states = [], []
    for path in datasets:
        dataset = Dataset(path)
        cameras = dataset.camera_keys[:1] if spec is None else spec.camera_keys[str(dataset.root)]
        for meta in dataset.episodes:
            if meta.task != text:
                continue
            low_dim = dataset.low_dim(meta.index)
            end = 1
            if anywhere:
                success = np.ravel(low_dim["success"]).astype(bool) if "success" in low_dim else np.zeros(meta.length, bool)
                end = int(np.argmax(success)) if success.any() else meta.length
            views = [fit_frames(dataset.frames(meta.index, camera)[:end], record.image_size, record.fit) for camera in cameras]
            images.extend(np.concatenate(views, axis=2))  # (end, S, V*S, 3)
            states.extend(low_dim[STATE_KEY][:end])
    if not images:
        raise DatasetError(f"{', '.join(map(str, datasets))}: no episode of task {text!r} to start dreams from")
    return tokenizer.encode_images(np.stack(images)), torch.from_numpy(np.stack(states).astype(np.float32)).to(device)


class DreamVectorEnv(gym.vector.VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, config: DreamConfig):
        self.config = config
        device = config.device
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        self.model, self.tokenizer, record = _load_dreamer(config.run, self.device)
        if config.settings.student:
            from wam.train.distill import load_student

            self.stepper = load_student(config.run).to(self.device)
        else:
            self.stepper = self.model  # anything with WorldActionModel.step's signature
        self.judge = None
        # The verdict: probability above `threshold` for `hold` model steps (the judge's calibration, when it has one)
        self.threshold, self.hold = config.settings.success_threshold, config.settings.success_hold
        if config.settings.judge:
            from wam.train.judge import JUDGE_DIR, load_judge
            from wam.train.judge_calibration import load_calibration

            self.judge = load_judge(config.run).to(self.device)
            calibration = load_calibration(Path(config.run) / JUDGE_DIR) if config.settings.calibrated else None
            if calibration is not None:
                self.threshold, self.hold = calibration.threshold, calibration.hold
        self.guard, self.tolerance = None, None
        if config.settings.drift_guard:  # the dream checks that its frames still follow the commanded actions
            from wam.train.drift_guard import load_drift_guard

            self.guard, self.tolerance = load_drift_guard(config.run)
            self.guard = self.guard.to(self.device)
        self.stride, self.context = record.stride, record.config.window - 1
        self.task_text = instruction(config.task)
        data = list(config.data) or [Path(p) for p in record.data["robot"]]
        self.start_latents, self.start_states = _start_frames(data, self.task_text, self.tokenizer, self.device, record,
                                                              config.start_anywhere)
        self.text_ids = tokenize([self.task_text] * config.num_envs, self.model.config.world.text).to(self.device)
        self.num_envs = config.num_envs
        self.render_mode = "rgb_array"
        wc = self.model.config.world
        size = self.tokenizer_image_size = record.image_size
        self.views = record.views  # camera views side by side in every latent and image
        spaces = {"latent": gym.spaces.Box(-1.0, 1.0, (wc.latent_channels, wc.latent_size, self.views * wc.latent_size),
                                           np.float32),
                  "state": gym.spaces.Box(-np.inf, np.inf, (wc.state_dim,), np.float32)}
        if config.decode_images:
            spaces["image"] = gym.spaces.Box(0, 255, (size, self.views * size, 3), np.uint8)
        self.single_observation_space = gym.spaces.Dict(spaces)
        # the range the training actions spanned, in the data's units ([-1, 1] for a WAM saved before normalisation)
        low, high = (self.model.action_norm.low.cpu().numpy(), self.model.action_norm.high.cpu().numpy())
        self.single_action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._rngs = [np.random.default_rng(i) for i in range(self.num_envs)]
        self._needs_reset = np.ones(self.num_envs, bool)
        self._history: list[deque] = [deque(maxlen=self.context) for _ in range(self.num_envs)]  # (latent, state, actions)
        self._pending = [[] for _ in range(self.num_envs)]
        self._latest = torch.zeros((self.num_envs, *spaces["latent"].shape), device=self.device)
        self._state = torch.zeros((self.num_envs, wc.state_dim), device=self.device)
        self._reward = np.zeros(self.num_envs, np.float32)
        self._success = np.zeros(self.num_envs, bool)
        self._undecided = np.zeros(self.num_envs, bool)  # the drift guard tripped: no verdict, never a success
        self._guard_errors: list[list[float]] = [[] for _ in range(self.num_envs)]
        self._agreeing = np.zeros(self.num_envs, np.int64)  # model steps in a row the success head has said done
        self._recent: list[list[float]] = [[] for _ in range(self.num_envs)]  # last success probabilities ("final")
        self._steps = np.zeros(self.num_envs, np.int64)
        self._actions_of: list[list[torch.Tensor]] = [[] for _ in range(self.num_envs)]  # (stride, A) per history frame
        # Decoded frames, redone only for dreams whose latent changed: between model steps (stride - 1 of
        # every stride control steps) the observation is the same frame, and decoding is a large share of a step.
        self._images = np.zeros((self.num_envs, size, self.views * size, 3), np.uint8)
        self._stale = np.ones(self.num_envs, bool)

    # -- gymnasium ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        """Start every dream from a first frame of the task's data (picked by the seed), or, with
        `options={"image": (N, S, V*S, 3) uint8, "state": (N, S)}`, from the frames given (the run's V camera views
        side by side at its resolution): a real scene's first frame dreams the same episode the simulator would run."""
        if seed is not None:
            seeds = seed if isinstance(seed, (list, tuple)) else [seed + i for i in range(self.num_envs)]
            self._rngs = [np.random.default_rng(s) for s in seeds]
        starts = self._given_starts(options) if options else None
        for i in range(self.num_envs):
            self._reset_one(i, None if starts is None else (starts[0][i], starts[1][i]))
        return self._observation(), {"success": self._success.copy(), "task": [self.task_text] * self.num_envs}

    @torch.no_grad()
    def _given_starts(self, options: dict) -> tuple[torch.Tensor, torch.Tensor]:
        unknown = set(options) - {"image", "state"}
        if unknown or not {"image", "state"} <= set(options):
            raise ValueError(f"reset options take 'image' and 'state' (both), got {sorted(options)}")
        image = np.asarray(options["image"])
        state = np.asarray(options["state"], dtype=np.float32)
        size = self.tokenizer_image_size
        if image.shape != (self.num_envs, size, self.views * size, 3) or image.dtype != np.uint8:
            raise ValueError(f"reset option 'image' must be uint8 of shape {(self.num_envs, size, self.views * size, 3)}, "
                             f"got {image.dtype} {image.shape}")
        if state.shape != self._state.shape:
            raise ValueError(f"reset option 'state' must have shape {tuple(self._state.shape)}, got {state.shape}")
        return self.tokenizer.encode_images(image), torch.from_numpy(state).to(self.device)

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf")
        actions = np.clip(actions, self.single_action_space.low, self.single_action_space.high)
        rewards = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        due = []
        for i in range(self.num_envs):
            if self._needs_reset[i]:
                self._reset_one(i)  # next-step autoreset: this step's action is not used
                continue
            self._pending[i].append(actions[i])
            self._steps[i] += 1
            if len(self._pending[i]) == self.stride:
                due.append(i)
        if due:
            self._model_step(due)
        final = self.config.settings.verdict == "final"
        for i in range(self.num_envs):
            if self._steps[i] == 0:
                continue
            rewards[i] = self._reward[i]
            self._success[i] = self._success[i] and not self._undecided[i]
            terminated[i] = bool(self._success[i]) and self.config.terminate_on_success and not final
            truncated[i] = (self._steps[i] >= self.config.max_episode_steps or self._undecided[i]) and not terminated[i]
            self._needs_reset[i] = terminated[i] or truncated[i]
        # A final verdict is given once, on the dream's last step; before it the dream has no verdict.
        success = self._success & truncated & ~self._undecided if final else self._success.copy()
        info = {"success": success, "undecided": self._undecided.copy(), "task": [self.task_text] * self.num_envs}
        return self._observation(), rewards, terminated, truncated, info

    def render(self) -> np.ndarray:
        """The decoded current frame of every dream: (N, H, W, 3) uint8."""
        return self._decode(self._latest)

    def close(self, **kwargs) -> None:
        pass

    # -- inside ----------------------------------------------------------------------------------
    def _reset_one(self, i: int, given: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if given is None:
            start = int(self._rngs[i].integers(len(self.start_latents)))
            given = self.start_latents[start], self.start_states[start]
        self._history[i].clear()
        self._pending[i] = []
        self._latest[i], self._state[i] = given
        self._history[i].append(given)
        self._reward[i], self._success[i], self._steps[i], self._agreeing[i] = 0.0, False, 0, 0
        self._undecided[i], self._guard_errors[i] = False, []
        self._recent[i] = []
        self._needs_reset[i] = False
        self._stale[i] = True
        self._actions_of[i] = []

    @torch.no_grad()
    def _model_step(self, due: list[int]) -> None:
        """One batched world-model step for the dreams with a frame's worth of actions; grouped by context
        length so every dream is computed exactly as it would be alone."""
        for i in due:
            self._actions_of[i].append(torch.from_numpy(np.stack(self._pending[i])).to(self.device))
            self._actions_of[i] = self._actions_of[i][-self.context:]
            self._pending[i] = []
        by_length: dict[int, list[int]] = {}
        for i in due:
            by_length.setdefault(len(self._history[i]), []).append(i)
        for length, group in by_length.items():
            latents = torch.stack([torch.stack([h[0] for h in self._history[i]]) for i in group])  # (G, T, C, h, V*w)
            states = torch.stack([torch.stack([h[1] for h in self._history[i]]) for i in group])  # (G, T, S)
            actions = torch.stack([torch.stack(self._actions_of[i][-length:]) for i in group])  # (G, T, stride, A)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.settings.bf16):
                next_latents, next_state, reward, success = self.stepper.step(latents, actions, self.text_ids[group], states)
            next_latents, next_state, reward, success = (t.float() for t in (next_latents, next_state, reward, success))
            if self.judge is not None and self.judge.kind == "progress_judge":  # the verdict thresholds progress
                probability = self._clip_progress(latents, next_latents[:, -1], states, next_state[:, -1], group)
            else:
                if self.judge is not None:  # the judge reads the frame and state the dream arrived at
                    success = self.judge.logit(next_latents[:, -1], next_state[:, -1], self.text_ids[group])[:, None]
                probability = torch.sigmoid(success[:, -1]).cpu().numpy()
            if self.guard is not None:
                self._check_drift(group, latents[:, -1], next_latents[:, -1], states[:, -1], next_state[:, -1], actions[:, -1])
            for row, i in enumerate(group):
                self._latest[i], self._state[i] = next_latents[row, -1], next_state[row, -1]
                self._stale[i] = True
                self._history[i].append((next_latents[row, -1], next_state[row, -1]))
                self._reward[i] = float(reward[row, -1])
                if self.config.settings.verdict == "final":
                    self._recent[i] = (self._recent[i] + [float(probability[row])])[-self.config.settings.final_window:]
                    self._success[i] = bool(np.mean(self._recent[i]) > self.threshold)
                    continue
                self._agreeing[i] = self._agreeing[i] + 1 if probability[row] > self.threshold else 0
                self._success[i] = bool(self._agreeing[i] >= self.hold) and not self._undecided[i]

    def _clip_progress(self, latents, next_latent, states, next_state, group: list[int]) -> np.ndarray:
        """The progress judge on the clip ending at the frame the dream arrived at (its last `clip` model steps; a
        dream younger than that repeats its first frame, as the judge's training clips do)."""
        clip = self.judge.config.clip
        frames = torch.cat([latents, next_latent[:, None]], 1)[:, -clip:]
        state = torch.cat([states, next_state[:, None]], 1)[:, -clip:]
        if frames.shape[1] < clip:
            pad = clip - frames.shape[1]
            frames = torch.cat([frames[:, :1].expand(-1, pad, *frames.shape[2:]), frames], 1)
            state = torch.cat([state[:, :1].expand(-1, pad, -1), state], 1)
        progress, _ = self.judge.scores(frames, state, self.text_ids[group])
        return progress.float().cpu().numpy()

    def _check_drift(self, group: list[int], latents, next_latents, states, next_states, actions) -> None:
        """The drift guard: the actions read off the dream's own step against those commanded; a mean error over the
        guard's window above its tolerance (calibrated on real episodes) leaves the dream undecided."""
        errors = self.guard.error(self.guard.actions(latents, next_latents, states, next_states), actions).cpu().numpy()
        window, tolerance = int(self.tolerance["window"]), float(self.tolerance["tolerance"])
        for row, i in enumerate(group):
            self._guard_errors[i] = (self._guard_errors[i] + [float(errors[row])])[-window:]
            if len(self._guard_errors[i]) == window and np.mean(self._guard_errors[i]) > tolerance:
                self._undecided[i] = True

    @torch.no_grad()
    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        return to_uint8(self.tokenizer.decode(latents)).permute(0, 2, 3, 1).cpu().numpy()

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"latent": self._latest.cpu().numpy().astype(np.float32), "state": self._state.cpu().numpy().astype(np.float32)}
        if self.config.decode_images:
            stale = np.flatnonzero(self._stale)
            if len(stale):
                self._images[stale] = self._decode(self._latest[torch.from_numpy(stale).to(self.device)])
                self._stale[:] = False
            obs["image"] = self._images.copy()
        return obs


class DreamEnv(gym.Env):
    """One dream, for every tool that takes a single env (evaluation, collection, the Physical API)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, config: DreamConfig):
        if config.num_envs != 1:
            raise ValueError("DreamEnv is one dream; use DreamVectorEnv for a batch")
        self.dreams = DreamVectorEnv(config)
        self.task_text = self.dreams.task_text
        self.render_mode = "rgb_array"
        self.observation_space = self.dreams.single_observation_space
        self.action_space = self.dreams.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and not getattr(self, "_seeded", False):
            seed = int(self.np_random.integers(2**31 - 1))
        self._seeded = True
        if options:
            options = {key: np.asarray(value)[None] for key, value in options.items()}
        obs, info = self.dreams.reset(seed=None if seed is None else [seed], options=options)
        return {k: v[0] for k, v in obs.items()}, {"success": bool(info["success"][0]), "task": self.task_text}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.dreams.step(np.asarray(action, np.float32)[None])
        return ({k: v[0] for k, v in obs.items()}, float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                {"success": bool(info["success"][0]), "undecided": bool(info["undecided"][0]), "task": self.task_text})

    def render(self) -> np.ndarray:
        return self.dreams.render()[0]


def make_dream(run: str, task: str | None = None, num_envs: int = 1, max_episode_steps: int = 300, decode_images: bool = True,
               data: tuple[Path, ...] = (), device: str = "auto", terminate_on_success: bool = True,
               start_anywhere: bool = False, settings: DreamSettings | None = None) -> gym.Env:
    """`wam.envs.make("dream/<RUN>", task=...)`: a DreamEnv (num_envs = 1) or a DreamVectorEnv. An option the dream
    does not know (a misspelling, or a simulator's option such as `obs`) is a TypeError naming it, never ignored."""
    if task is None:
        raise ValueError(f"dream/{run}: say which task to dream (task='drawer-open-v3' or an instruction)")
    config = DreamConfig(Path(run), task, num_envs, max_episode_steps, decode_images, terminate_on_success=terminate_on_success,
                         data=tuple(data), device=device, start_anywhere=start_anywhere, settings=settings or DreamSettings())
    return DreamEnv(config) if num_envs == 1 else DreamVectorEnv(config)
