"""Frame tokenizer: a convolutional autoencoder from 64x64 frames to an 8x8 latent grid.

Several cameras travel side by side: V views of an SxS model resolution make an S x V*S strip
(frames) and an h x V*w strip (latents). Each view is encoded and decoded on its own (the
strip is split before the convolutions, so no view leaks into its neighbour), and every
consumer of latents keeps the (B, C, h, W) shape whatever the number of cameras.

The world model predicts in this latent space, not in pixels: an 8x8x16 grid is 48 times
smaller than the frame, and a frozen tokenizer lets pretraining encode every frame once
and train the dynamics on cached latents. Latents are bounded by tanh so their scale
cannot drift, which keeps the world model's regression targets well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TokenizerConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128)  # one stride-2 stage each: 64 -> 32 -> 16 -> 8
    latent_channels: int = 16

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** len(self.channels)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class FrameTokenizer(nn.Module):
    """encode: uint8 or [-1, 1] frames (B, 3, H, W) -> latents (B, C, h, w) in [-1, 1]; decode: the way back."""

    def __init__(self, config: TokenizerConfig = TokenizerConfig()):
        super().__init__()
        if config.image_size % 2 ** len(config.channels):
            raise ValueError(f"image_size {config.image_size} is not divisible by 2^{len(config.channels)}")
        self.config = config
        layers: list[nn.Module] = [nn.Conv2d(3, config.channels[0], 3, padding=1)]
        c_in = config.channels[0]
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), ResBlock(c_out)]
            c_in = c_out
        layers += [nn.GroupNorm(8, c_in), nn.SiLU(), nn.Conv2d(c_in, config.latent_channels, 1)]
        self.encoder = nn.Sequential(*layers)

        layers = [nn.Conv2d(config.latent_channels, config.channels[-1], 3, padding=1)]
        c_in = config.channels[-1]
        for c_out in reversed(config.channels):
            layers += [ResBlock(c_in), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
            c_in = c_out
        layers += [nn.GroupNorm(8, c_in), nn.SiLU(), nn.Conv2d(c_in, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*layers)

    @staticmethod
    def to_unit(frames: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float [-1, 1]; float input is assumed to be in [-1, 1] already."""
        return frames.float() / 127.5 - 1.0 if frames.dtype == torch.uint8 else frames

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, V*S) frames -> (B, C, h, V*w) latents, each of the V views on its own."""
        views = frames.shape[-1] // frames.shape[-2]
        if views * frames.shape[-2] != frames.shape[-1]:
            raise ValueError(f"frames are {frames.shape[-2]}x{frames.shape[-1]}: not square views side by side")
        x = split_views(self.to_unit(frames), views)
        return join_views(torch.tanh(self.encoder(x)), views)

    @torch.no_grad()
    def encode_images(self, images) -> torch.Tensor:
        """Camera images as environments and datasets give them, (B, H, W, 3) uint8 arrays, -> latents (B, C, h, w)."""
        device = next(self.parameters()).device
        frames = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)
        return self.encode(frames)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, V*w) latents -> (B, 3, S, V*S) frames in about [-1, 1]."""
        views = latents.shape[-1] // latents.shape[-2]
        return join_views(self.decoder(split_views(latents, views)), views)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        frames = self.to_unit(batch["frames"])  # (B, 3, H, W)
        reconstruction = self.decode(self.encode(frames))
        loss = F.mse_loss(reconstruction, frames)
        return loss, {"psnr": psnr(reconstruction, frames)}


def split_views(x: torch.Tensor, views: int) -> torch.Tensor:
    """(B, C, H, V*W) -> (B*V, C, H, W), view-major within each sample."""
    if views == 1:
        return x
    b, c, h, w = x.shape
    return x.view(b, c, h, views, w // views).permute(0, 3, 1, 2, 4).reshape(b * views, c, h, w // views)


def join_views(x: torch.Tensor, views: int) -> torch.Tensor:
    """(B*V, C, H, W) -> (B, C, H, V*W): the inverse of `split_views`."""
    if views == 1:
        return x
    bv, c, h, w = x.shape
    return x.view(bv // views, views, c, h, w).permute(0, 2, 3, 1, 4).reshape(bv // views, c, h, views * w)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of frames in [-1, 1] (the peak-to-peak range is 2)."""
    mse = F.mse_loss(prediction.detach().float().clamp(-1, 1), target.float()).item()
    return 10.0 * torch.log10(torch.tensor(4.0 / max(mse, 1e-10))).item()


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float frames -> uint8 [0, 255]."""
    return ((frames.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
