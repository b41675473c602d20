"""A success judge: is the task done in this frame? Read from one latent frame, its state and the task.

The WAM's own success head is one linear map of the token that also predicts the next
frame; replaying real episodes of unseen policies, it called success on most of their
failures, even on the real frames (benchmarks/dream_replay.py --grounded). A detector of
its own, trained on real frames where the negatives include policies' near misses, does
much better on policies it never saw (benchmarks/success_probe.py). The judge is that
detector, kept beside the world (`RUN/judge/`, trained by `wam judge`): it reads the frame
the dream predicts, so the dream's verdict comes from a classifier that learned what a near
miss looks like rather than from the dynamics' by-product.

Inputs: the flattened latent grid (C, h, V*w: the run's V camera views side by side), the
robot state and the task text's embedding (hashed words, as everywhere in wam: any
instruction is accepted, known ones are what it learned).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data
from wam.models.text import TextConfig, TextEncoder


class JudgeInputs:
    """What every judge's config shares: the latent grid it reads (the run's views side by side) and its JSON form."""

    latent_channels: int
    latent_size: int
    views: int
    text: TextConfig

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.latent_channels, self.latent_size, self.views * self.latent_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        data = dict(data)
        data["text"] = TextConfig(**data.get("text", {}))
        return cls(**data)


@dataclass(frozen=True)
class SuccessJudgeConfig(JudgeInputs):
    latent_channels: int = 16
    latent_size: int = 8
    state_dim: int = FROM_DATA  # the robot state size: set from the world run (its data)
    hidden: int = 256
    dropout: float = 0.1
    text: TextConfig = field(default_factory=TextConfig)
    views: int = 1  # camera views side by side in a latent (the run's data's; judges saved before views had one)


class SuccessJudge(nn.Module):
    kind = "success_judge"

    def __init__(self, config: SuccessJudgeConfig = SuccessJudgeConfig()):
        super().__init__()
        require_from_data("SuccessJudge", state_dim=config.state_dim)
        self.config = config
        latent = config.latent_channels * config.latent_size * config.views * config.latent_size
        self.text = TextEncoder(config.text, config.hidden)
        self.net = nn.Sequential(nn.Linear(latent + config.state_dim, config.hidden), nn.SiLU(), nn.Dropout(config.dropout))
        self.head = nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 1))

    def logit(self, latents: torch.Tensor, state: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
        """(B, C, h, V*w), (B, S), (B, L) -> (B,) success logits."""
        if tuple(latents.shape[1:]) != self.config.latent_shape:
            raise ValueError(f"latents are {tuple(latents.shape[1:])}, the judge reads {self.config.latent_shape} "
                             f"({self.config.views} camera view(s) side by side)")
        unique, which = torch.unique(text_ids, dim=0, return_inverse=True)  # a batch of dreams mostly shares one task
        x = self.net(torch.cat([latents.flatten(1).float(), state.float()], dim=1))
        return self.head(x * (1 + self.text(unique)[which])).squeeze(1)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.logit(batch["latents"], batch["state"], batch["text_ids"])
        target = batch["success"].float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        accuracy = ((logits > 0) == (target > 0.5)).float().mean()
        return loss, {"success_bce": loss.detach(), "accuracy": accuracy}
