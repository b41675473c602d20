"""A finetuned WAM as a closed-loop policy: `policy = wam.policy.load(RUN)`, then per episode
`policy.reset(task)` and per control step `policy.act(obs) -> action`.

The model sees frames `stride` control steps apart (the pretraining frame rate), so the
policy keeps the latents of every `stride`-th observation (up to `window - 1` of them)
with their states. Action chunking with a **receding horizon**: each prediction is a
chunk of H actions, of which the first `execute` are run before predicting again from
the newest frames (H = 8, execute = 4 by default: one model call every 4 control steps).
No temporal ensembling: the receding horizon is the simpler of the two, and one model call
per `execute` steps is what keeps the control rate high on a CPU.
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
    def __init__(self, run: Path, which: str = "checkpoint", device: str = "cpu", execute: int | None = None):
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
        if not self.queue:
            latents = torch.stack(list(self.latents))[None]  # (1, T, C, h, w)
            states = torch.stack(list(self.states))[None]  # (1, T, S)
            self.queue.extend(self._next_chunk(latents, states)[: self.execute])
        self.steps += 1
        return self.queue.popleft().astype(np.float32)

    def _next_chunk(self, latents: torch.Tensor, states: torch.Tensor) -> np.ndarray:
        """The next action chunk (H, A) from the context; planners override this."""
        return self.model.act(latents, self.text_ids, states)[0].cpu().numpy()


def load(run: str | Path, which: str = "checkpoint", device: str | None = None, execute: int | None = None) -> WAMPolicy:
    """The policy of a finetuning run (`wam finetune --out RUN`), or `RUN@STEP` for the weights it kept at STEP;
    a pretraining run is refused."""
    if not split_snapshot(run)[0].exists():
        raise CheckpointError(f"{run}: no such run directory")
    return WAMPolicy(Path(run), which, device or ("cuda" if torch.cuda.is_available() else "cpu"), execute)
