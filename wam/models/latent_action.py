"""Latent actions: what action-free video teaches about control.

An inverse-dynamics encoder looks at two consecutive latent frames and infers a small
continuous vector, the latent action, that the world model is then conditioned on to
predict the second frame. The bottleneck is what makes this an action and not a copy of
the future: few dimensions, Gaussian noise on them during training, and a KL pull toward
a unit Gaussian, so only the part of the change that the past cannot predict (what the
agent did) is worth encoding. Later a real robot action is mapped into the same space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LatentActionConfig:
    latent_channels: int = 16
    latent_size: int = 8
    action_dim: int = 8  # the bottleneck
    hidden: int = 256
    kl_weight: float = 1e-5


class LatentActionEncoder(nn.Module):
    """(z_t, z_{t+1}) -> latent action distribution; its mean is the action at inference."""

    def __init__(self, config: LatentActionConfig):
        super().__init__()
        self.config = config
        c = config.latent_channels
        self.features = nn.Sequential(
            nn.Conv2d(2 * c, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(),
        )
        flat = 64 * ((config.latent_size + 1) // 2) ** 2
        self.head = nn.Sequential(nn.Linear(flat, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 2 * config.action_dim))

    def forward(self, current: torch.Tensor, following: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """current, following: (N, C, h, w) -> mean, log_std: (N, action_dim)."""
        x = torch.cat([current, following - current], dim=1)
        mean, log_std = self.head(self.features(x)).chunk(2, dim=-1)
        return mean, log_std.clamp(-6.0, 2.0)

    def infer(self, latents: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent actions of every transition in (B, T, C, h, w): (B, T-1, action_dim), and the KL term."""
        b, t = latents.shape[:2]
        current = latents[:, :-1].flatten(0, 1)
        following = latents[:, 1:].flatten(0, 1)
        mean, log_std = self(current, following)
        action = mean + torch.randn_like(mean) * log_std.exp() if sample else mean
        kl = 0.5 * (mean.pow(2) + (2 * log_std).exp() - 2 * log_std - 1).sum(-1).mean()
        return action.view(b, t - 1, -1), kl
