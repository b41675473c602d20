"""Latent actions: what action-free video teaches about control.

An inverse-dynamics encoder looks at two consecutive latent frames and infers a small
continuous vector, the latent action, that the world model is then conditioned on to
predict the second frame. The bottleneck is what makes this an action and not a copy of
the future: 8 dimensions squashed into [-1, 1] by tanh, with Gaussian noise (std 0.1)
added during training, so each dimension carries a few bits at most: room for what the
agent did, not for the next frame. A KL-regularised Gaussian was tried first and
collapsed: with noise of std 1 at the start, the world model learned to ignore the input
before the encoder learned to say anything. Later a real robot action is mapped into the
same space.
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
    noise: float = 0.1  # std of the training noise on the tanh-bounded action


class LatentActionEncoder(nn.Module):
    """(z_t, z_{t+1}) -> latent action in [-1, 1]^action_dim."""

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
        self.head = nn.Sequential(nn.Linear(flat, config.hidden), nn.SiLU(), nn.Linear(config.hidden, config.action_dim))

    def forward(self, current: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        """current, following: (N, C, h, V*w) -> pre-activation (N, action_dim); the action is its tanh.

        With several camera views side by side, each view's motion features are computed on their
        own and averaged: one action moved the robot in every view, and a model pretrained on one
        camera reads two unchanged."""
        n, _, h, width = current.shape
        views = width // h
        pair = torch.cat([current, following - current], dim=1)
        if views > 1:
            pair = pair.view(n, pair.shape[1], h, views, h).permute(0, 3, 1, 2, 4).reshape(n * views, -1, h, h)
        features = self.features(pair)
        if views > 1:
            features = features.view(n, views, -1).mean(1)
        return self.head(features)

    def infer(self, latents: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent actions of every transition in (B, T, C, h, w): (B, T-1, action_dim), and an L2
        penalty on the pre-activations that keeps tanh out of saturation."""
        b, t = latents.shape[:2]
        pre = self(latents[:, :-1].flatten(0, 1), latents[:, 1:].flatten(0, 1))
        action = torch.tanh(pre)
        if sample:
            action = action + torch.randn_like(action) * self.config.noise
        return action.view(b, t - 1, -1), pre.pow(2).mean()
