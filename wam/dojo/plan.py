"""Planning in the dream: sampling-based model-predictive control (CEM) over action chunks.

At every decision the planner holds the recent latent frames and states (as the policy
does), samples `samples` action chunks of H control actions from a Gaussian, dreams each
one forward through the WAM's action-conditioned world model (H / stride model steps, all
samples in one batch), scores them, refits the Gaussian to the best `elites`, and after
`iterations` rounds executes the first `execute` actions of the mean (receding horizon).

The Gaussian starts at the WAM policy's own chunk (std `init_std`), so planning refines
the policy rather than searching from nothing. Score: the reward head's predicted rewards
summed over the dreamed frames plus `success_bonus` times the success head's final
probability; or, given a goal image, minus the latent distance of the last dreamed frame
to the goal's latent.

`CEMPlanner` has the policy interface (`reset(task)`, `act(obs)`), so `wam eval` runs it
in the real simulator exactly like a policy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wam.policy import WAMPolicy


@dataclass(frozen=True)
class PlanConfig:
    samples: int = 64
    elites: int = 8
    iterations: int = 3
    init_std: float = 0.3
    min_std: float = 0.05
    success_bonus: float = 10.0
    execute: int | None = None  # default: the policy's
    seed: int = 0


class CEMPlanner(WAMPolicy):
    def __init__(self, run: Path, config: PlanConfig = PlanConfig(), device: str = "cpu", goal_image: np.ndarray | None = None):
        super().__init__(Path(run), device=device, execute=config.execute)
        if config.elites > config.samples:
            raise ValueError(f"elites ({config.elites}) must not exceed samples ({config.samples})")
        self.plan_config = config
        self.generator = torch.Generator().manual_seed(config.seed)
        self.goal = None
        if goal_image is not None:
            self.goal = self.tokenizer.encode_images(np.asarray(goal_image)[None])[0]
        self.actions_taken: deque = deque()

    def reset(self, task: str | None = None) -> None:
        super().reset(task)
        self.actions_taken = deque(maxlen=self.context * self.stride)

    @torch.no_grad()
    def act(self, obs: dict) -> np.ndarray:
        action = super().act(obs)
        self.actions_taken.append(torch.from_numpy(action))
        return action

    @torch.no_grad()
    def plan_chunk(self, latents: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """(1, T, C, h, w), (1, T, S) -> the chunk to execute (H, A)."""
        cfg, model = self.plan_config, self.model
        mean = model.act(latents, self.text_ids, states)[0]  # (H, A): the policy's proposal
        std = torch.full_like(mean, cfg.init_std)
        past = self._past_actions(latents.shape[1])  # (T - 1, stride, A) actions between the context frames
        for _ in range(cfg.iterations):
            noise = torch.randn((cfg.samples, *mean.shape), generator=self.generator).to(mean.device)
            chunks = (mean + std * noise).clamp(-1.0, 1.0)
            chunks[0] = mean  # the current mean always competes
            scores = self.score(latents, states, past, chunks)
            elite = chunks[scores.topk(cfg.elites).indices]
            mean, std = elite.mean(0), elite.std(0).clamp(min=cfg.min_std)
        return mean

    def score(self, latents, states, past, chunks) -> torch.Tensor:
        """Dream every chunk forward and score it: (N,)."""
        n, stride = len(chunks), self.stride
        frames, state = latents.expand(n, -1, -1, -1, -1), states.expand(n, -1, -1)
        history = past[None].expand(n, -1, -1, -1)  # (N, T - 1, stride, A)
        total = torch.zeros(n, device=chunks.device)
        success = torch.zeros(n, device=chunks.device)
        for k in range(self.chunk // stride):
            actions = torch.cat([history, chunks[:, None, k * stride : (k + 1) * stride]], dim=1)[:, -frames.shape[1]:]
            next_latents, next_state, reward, success_logit = self.model.step(frames, actions, self.text_ids.expand(n, -1), state)
            total += reward[:, -1]
            success = torch.sigmoid(success_logit[:, -1])
            frames = torch.cat([frames, next_latents[:, -1:]], 1)[:, -self.context:]
            state = torch.cat([state, next_state[:, -1:]], 1)[:, -self.context:]
            history = actions[:, -(self.context - 1):] if self.context > 1 else actions[:, :0]
        if self.goal is not None:
            return -(frames[:, -1] - self.goal).pow(2).flatten(1).mean(1)
        return total + self.plan_config.success_bonus * success

    def _past_actions(self, frames: int) -> torch.Tensor:
        """The actions executed between the last `frames` observed frames: (frames - 1, stride, A).

        Planning happens right after a frame is observed and before that step's action, so
        these are the last (frames - 1) * stride actions taken."""
        need, a = (frames - 1) * self.stride, self.model.config.robot_action_dim
        if need == 0:
            return torch.zeros(0, self.stride, a, device=self.device)
        return torch.stack(list(self.actions_taken)[-need:]).view(frames - 1, self.stride, a).to(self.device)

    def _next_chunk(self, latents: torch.Tensor, states: torch.Tensor) -> np.ndarray:
        return self.plan_chunk(latents, states).cpu().numpy()
