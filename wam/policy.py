"""A finetuned WAM as a closed-loop policy: `policy = wam.policy.load(RUN)`, then per episode
`policy.reset(task)` and per control step `policy.act(obs) -> action`.

The model sees frames `stride` control steps apart (the pretraining frame rate), so the
policy keeps the latents of every `stride`-th observation (up to `window - 1` of them)
with their states. Action chunking with a **receding horizon**: each prediction is a
chunk of H actions, of which the first `execute` are run before predicting again from
the newest frames (H = 8, execute = 4 by default: one model call every 4 control steps).
One model call per `execute` steps is what keeps the control rate high on a CPU.

`ensemble=m` switches to **temporal ensembling** (ACT's scheme): a model call at every
frame (`stride` steps), and the action run at step t is the average of every chunk still
covering t, the older predictions weighted exp(-m * i) more (i = 0 the oldest), which
smooths the switches between chunks at the price of a model call per frame.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import torch

from wam.envs.tasks import TASK_TEXT
from wam.errors import CheckpointError
from wam.models.text import tokenize
from wam.train.finetune import load_finetune_config, load_wam, split_snapshot
from wam.train.pretrain import load_tokenizer


class WAMPolicy:
    def __init__(self, run: Path, which: str = "checkpoint", device: str = "cpu", execute: int | None = None,
                 ensemble: float | None = None):
        self.run, which = split_snapshot(run, which)
        config, saved = load_finetune_config(self.run)
        self.model = load_wam(self.run, which).to(device)
        self.tokenizer = load_tokenizer(self.run).to(device)
        self.device = torch.device(device)
        self.stride = int(saved["stride"])
        self.image_size = int(saved["image_size"])
        self.tasks = list(saved.get("tasks", []))
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
        """Start an episode; `task` is an instruction ("open the drawer") or a Meta-World task name."""
        if task is not None:
            text = TASK_TEXT.get(task, task)
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
            image = np.asarray(obs["image"])
            if image.shape != (self.image_size, self.image_size, 3):
                raise ValueError(f"observation image is {image.shape}, the policy expects ({self.image_size}, {self.image_size}, 3)")
            self.latents.append(self.tokenizer.encode_images(image[None])[0])
            self.states.append(torch.as_tensor(np.asarray(obs["state"], dtype=np.float32), device=self.device))
        if self.ensemble is not None:
            return self._ensembled().astype(np.float32)
        if not self.queue:
            self.queue.extend(self._next_chunk(*self._context())[: self.execute])
        self.steps += 1
        return self.queue.popleft().astype(np.float32)

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


def load(run: str | Path, which: str = "checkpoint", device: str | None = None, execute: int | None = None,
         ensemble: float | None = None) -> WAMPolicy:
    """The policy of a finetuning run (`wam finetune --out RUN`), or `RUN@STEP` for the weights it kept at STEP;
    a pretraining run is refused."""
    if not split_snapshot(run)[0].exists():
        raise CheckpointError(f"{run}: no such run directory")
    return WAMPolicy(Path(run), which, device or ("cuda" if torch.cuda.is_available() else "cpu"), execute, ensemble)
