"""A small, fast student of the WAM's action-conditioned world model: dreams at batch speed.

The WAM steps a dream by running its transformer over every token of the last frames
(17 tokens a frame, up to 4 frames, 6 layers), about 10 MFLOP a token: on two CPU cores a
batched dream barely outruns the simulator. The student predicts the same things from
much less: the last two latent frames (the current one and its change, which carries the
velocity), the robot state, the real actions since the last frame and the task text go
through a residual MLP over the flattened latent grid (C, h, V*w: the run's V camera views
side by side), one matrix multiply per layer for the whole batch. It is trained by distillation (`wam/train/distill.py`): its targets are
the teacher's predictions on real windows, so it dreams the teacher's dreams, errors
included, and a dream evaluated with it should rank policies as the teacher does.

Outputs for the last frame only, through the same `step` interface as the WAM (so the
dream env runs either): next latent (as a change of the current one, zero-initialised:
an untrained student copies the frame), next state (a change, too), reward, success logit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data
from wam.models.text import TextConfig, TextEncoder
from wam.models.wam import REWARD_SCALE


@dataclass(frozen=True)
class DreamStudentConfig:
    latent_channels: int = 16
    latent_size: int = 8
    state_dim: int = FROM_DATA  # the robot sizes: set from the teacher WAM (its data)
    robot_action_dim: int = FROM_DATA
    stride: int = 2  # control steps between frames: the actions of one model step
    hidden: int = 1024
    layers: int = 3  # residual blocks
    condition: int = 256  # width of the text + state + action embedding
    text: TextConfig = field(default_factory=TextConfig)
    latent_weight: float = 100.0  # the WAM's weighting: latent MSEs sit near 1e-3
    state_weight: float = 10.0
    views: int = 1  # camera views side by side in a latent (the run's data's; students saved before views had one)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.latent_channels, self.latent_size, self.views * self.latent_size

    @property
    def latent_numel(self) -> int:
        return self.latent_channels * self.latent_size * self.views * self.latent_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DreamStudentConfig":
        data = dict(data)
        data["text"] = TextConfig(**data.get("text", {}))
        return cls(**data)


class _Residual(nn.Module):
    def __init__(self, width: int, condition: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(condition, 2 * width)  # the condition scales and shifts every block
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(c).chunk(2, dim=-1)
        return x + self.mlp(self.norm(x) * (1 + scale) + shift)


class DreamStudent(nn.Module):
    kind = "dream_student"

    def __init__(self, config: DreamStudentConfig = DreamStudentConfig()):
        super().__init__()
        require_from_data("DreamStudent", state_dim=config.state_dim, robot_action_dim=config.robot_action_dim)
        self.config = config
        n, h, c = config.latent_numel, config.hidden, config.condition
        self.text = TextEncoder(config.text, c)
        self.state_in = nn.Linear(config.state_dim, c)
        self.action_in = nn.Sequential(nn.Linear(config.stride * config.robot_action_dim, c), nn.SiLU(), nn.Linear(c, c))
        self.frames_in = nn.Linear(2 * n, h)
        self.blocks = nn.ModuleList(_Residual(h, c) for _ in range(config.layers))
        self.norm = nn.LayerNorm(h)
        self.next_latent = nn.Linear(h, n)
        self.outcome = nn.Linear(h + c, config.state_dim + 2)  # state change, reward / REWARD_SCALE, success logit
        for head in (self.next_latent, self.outcome):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def _last(self, latents, actions, text_ids, state):
        """Everything the student reads, from the WAM-shaped inputs: the last frame, its change, its actions."""
        if tuple(latents.shape[2:]) != self.config.latent_shape:
            raise ValueError(f"latents are {tuple(latents.shape[2:])} a frame, the student reads {self.config.latent_shape} "
                             f"({self.config.views} camera view(s) side by side)")
        now = latents[:, -1]
        before = latents[:, -2] if latents.shape[1] > 1 else now
        unique, which = torch.unique(text_ids, dim=0, return_inverse=True)  # a batch of dreams mostly shares one task
        condition = self.text(unique)[which] + self.state_in(state[:, -1]) + self.action_in(actions[:, -1].flatten(1))
        x = self.frames_in(torch.cat([now.flatten(1), (now - before).flatten(1)], dim=1))
        for block in self.blocks:
            x = block(x, condition)
        x = self.norm(x)
        next_latent = (now + self.next_latent(x).view_as(now)).clamp(-1.0, 1.0)
        outcome = self.outcome(torch.cat([x, condition], dim=1))
        next_state = state[:, -1] + outcome[:, : self.config.state_dim]
        return next_latent, next_state, outcome[:, -2], outcome[:, -1]

    def step(
        self,
        latents: torch.Tensor,  # (B, T, C, h, V*w)
        actions: torch.Tensor,  # (B, T, stride, A)
        text_ids: torch.Tensor,  # (B, L)
        state: torch.Tensor,  # (B, T, S)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `WorldActionModel.step`, for the last frame only: (B, 1, C, h, V*w), (B, 1, S), (B, 1), (B, 1)."""
        next_latent, next_state, reward, success = self._last(latents, actions, text_ids, state)
        return next_latent[:, None], next_state[:, None], (reward * REWARD_SCALE)[:, None], success[:, None]

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Distillation loss against the teacher's predictions for the last frame of each window."""
        cfg = self.config
        next_latent, next_state, reward, success = self._last(batch["latents"], batch["action"], batch["text_ids"], batch["state"])
        latent_loss = F.mse_loss(next_latent, batch["teacher_latent"])
        state_loss = F.mse_loss(next_state, batch["teacher_state"])
        reward_loss = F.mse_loss(reward, batch["teacher_reward"] / REWARD_SCALE)
        success_loss = F.binary_cross_entropy_with_logits(success, torch.sigmoid(batch["teacher_success"]))
        loss = cfg.latent_weight * latent_loss + cfg.state_weight * state_loss + reward_loss + success_loss
        agree = ((success > 0) == (batch["teacher_success"] > 0)).float().mean()
        return loss, {"latent_mse": latent_loss.detach(), "state_mse": state_loss.detach(), "reward_mse": reward_loss.detach(),
                      "success_bce": success_loss.detach(), "success_agreement": agree.detach()}
