"""A progress judge: how far along is the task at the end of this clip, and is it done?

The frame judge (wam/models/judge.py) answers yes or no from one frame, and a dream gives it a hundred frames to be
fooled by one. Judges that grade dreams well score task progress instead (RoboWorld's, Pearson 0.989 against real
success): a failure that hovers near the goal reads as "most of the way", not as "done", and a success shows progress
rising to the end. This one reads a short clip (K latent frames one model step apart, their states, the task text),
so it sees motion as well as the scene, and predicts progress in [0, 1] and a success logit. The verdict is progress
above a threshold calibrated on held-out policies (wam/train/judge_calibration.py), held for a window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data
from wam.models.judge import JudgeInputs
from wam.models.text import TextConfig, TextEncoder


@dataclass(frozen=True)
class ProgressJudgeConfig(JudgeInputs):
    latent_channels: int = 16
    latent_size: int = 8
    state_dim: int = FROM_DATA
    hidden: int = 256
    clip: int = 4  # latent frames read, one model step apart; the clip ends at the frame judged
    dropout: float = 0.1
    success_weight: float = 0.5  # the success head's share of the loss beside progress
    text: TextConfig = field(default_factory=TextConfig)
    views: int = 1


class ProgressJudge(nn.Module):
    kind = "progress_judge"

    def __init__(self, config: ProgressJudgeConfig = ProgressJudgeConfig()):
        super().__init__()
        require_from_data("ProgressJudge", state_dim=config.state_dim)
        self.config = config
        c, h, w = config.latent_shape
        self.frame = nn.Sequential(nn.Linear(c * h * w + config.state_dim, config.hidden), nn.SiLU(), nn.Dropout(config.dropout))
        self.clip = nn.Sequential(nn.Linear(config.clip * config.hidden, config.hidden), nn.SiLU())
        self.text = TextEncoder(config.text, config.hidden)
        self.progress_head = nn.Linear(config.hidden, 1)
        self.success_head = nn.Linear(config.hidden, 1)

    def scores(self, latents: torch.Tensor, state: torch.Tensor, text_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, C, h, V*w), (B, K, S), (B, L) -> progress in [0, 1] (B,), success logit (B,), at the clip's last frame."""
        if tuple(latents.shape[2:]) != self.config.latent_shape or latents.shape[1] != self.config.clip:
            raise ValueError(f"clips are {tuple(latents.shape[1:])}, the judge reads {self.config.clip} frames of "
                             f"{self.config.latent_shape}")
        b, k = latents.shape[:2]
        frames = self.frame(torch.cat([latents.flatten(2).float(), state.float()], dim=2))  # (B, K, hidden)
        x = self.clip(frames.reshape(b, k * self.config.hidden))
        unique, which = torch.unique(text_ids, dim=0, return_inverse=True)
        x = x * (1 + self.text(unique)[which])
        return torch.sigmoid(self.progress_head(x).squeeze(1)), self.success_head(x).squeeze(1)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        progress, logit = self.scores(batch["latents"], batch["state"], batch["text_ids"])
        progress_loss = F.mse_loss(progress, batch["progress"].float())
        success_loss = F.binary_cross_entropy_with_logits(logit, batch["success"].float())
        loss = progress_loss + self.config.success_weight * success_loss
        return loss, {"progress_mse": progress_loss.detach(), "success_bce": success_loss.detach(),
                      "progress_error": (progress - batch["progress"].float()).abs().mean().detach()}
