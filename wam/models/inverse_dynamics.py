"""Inverse dynamics: which actions took the robot from this frame to the next? The dream's drift guard.

A dream is only worth judging while its frames still follow the actions it was given. Trained on real transitions
(a latent frame, the next one `stride` control steps later, their states), this model recovers the actions between
them; in a dream, the actions it reads off the dream's own frames are compared with the actions actually commanded.
When the dream has drifted, when it draws a robot that no longer moves as told, they disagree, and the dream's
verdict is withheld (SC3-Eval aborts rollouts on the same kind of check). Errors are measured per action dimension in
units of that dimension's spread in the data, so one tolerance serves any robot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data


@dataclass(frozen=True)
class InverseDynamicsConfig:
    latent_channels: int = 16
    latent_size: int = 8
    views: int = 1
    state_dim: int = FROM_DATA
    action_dim: int = FROM_DATA
    stride: int = 1  # control actions between two frames
    hidden: int = 256

    @property
    def latent_numel(self) -> int:
        return self.latent_channels * self.latent_size * self.views * self.latent_size

    def to_dict(self) -> dict:
        return asdict(self)


class InverseDynamics(nn.Module):
    kind = "inverse_dynamics"

    def __init__(self, config: InverseDynamicsConfig):
        super().__init__()
        require_from_data("InverseDynamics", state_dim=config.state_dim, action_dim=config.action_dim)
        self.config = config
        inputs = 2 * config.latent_numel + 2 * config.state_dim
        self.net = nn.Sequential(nn.Linear(inputs, config.hidden), nn.SiLU(), nn.Linear(config.hidden, config.hidden), nn.SiLU(),
                                 nn.Linear(config.hidden, config.stride * config.action_dim))
        # the data's action spread (per dimension): errors are reported in its units; set from the data before training
        self.register_buffer("action_scale", torch.ones(config.action_dim))
        self.register_buffer("action_mean", torch.zeros(config.action_dim))

    def actions(self, latents: torch.Tensor, next_latents: torch.Tensor, state: torch.Tensor,
                next_state: torch.Tensor) -> torch.Tensor:
        """(B, C, h, V*w) x2, (B, S) x2 -> (B, stride, A) in the data's units."""
        x = torch.cat([latents.flatten(1).float(), next_latents.flatten(1).float(), state.float(), next_state.float()], 1)
        normalised = self.net(x).view(len(x), self.config.stride, self.config.action_dim)
        return normalised * self.action_scale + self.action_mean

    def error(self, predicted: torch.Tensor, commanded: torch.Tensor) -> torch.Tensor:
        """Mean absolute error per transition, in units of the data's action spread: (B,)."""
        return ((predicted - commanded).abs() / self.action_scale).mean((-1, -2))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Windows of two frames (WindowBatches, window 2): the actions between them are the target."""
        latents, state, action = batch["latents"], batch["state"], batch["action"]  # (B, 2, ...), (B, 2, stride, A)
        target = (action[:, 0].float() - self.action_mean) / self.action_scale
        x = torch.cat([latents[:, 0].flatten(1).float(), latents[:, 1].flatten(1).float(), state[:, 0].float(),
                       state[:, 1].float()], 1)
        predicted = self.net(x).view_as(target)
        loss = F.smooth_l1_loss(predicted, target)
        return loss, {"action_error": (predicted - target).abs().mean().detach()}
