"""Image quality of predicted frames: PSNR and SSIM on uint8-range frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr_per_frame(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 or [0, 255] floats -> (N,) PSNR in dB, capped at 60 dB.

    The cap keeps one exact repeat (an infinite PSNR) from dominating a mean of dB values.
    """
    mse = (prediction.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0**2 / mse.clamp(min=255.0**2 * 1e-6))


def moving_psnr_per_frame(prediction: torch.Tensor, target: torch.Tensor, reference: torch.Tensor,
                          threshold: float = 12.0) -> torch.Tensor:
    """(N, 3, H, W) -> (N,) PSNR over the pixels where `target` differs from `reference` (the last frame the model
    was given) by more than `threshold` in some channel; NaN where nothing moved.

    Whole-frame PSNR is dominated by the static scene: an arm or a hand covers a few percent of the pixels, so a
    prediction that gets the motion wrong and one that gets it right can differ by a fraction of a dB. Over the
    moving pixels, what the actions decide is what is measured.
    """
    moving = ((target.float() - reference.float()).abs().amax(1, keepdim=True) > threshold).float()  # (N, 1, H, W)
    error = ((prediction.float() - target.float()).pow(2) * moving).flatten(1).sum(1)
    count = moving.flatten(1).sum(1) * prediction.shape[1]
    mse = error / count.clamp(min=1)
    psnr = 10.0 * torch.log10(255.0**2 / mse.clamp(min=255.0**2 * 1e-6))
    return torch.where(count > 0, psnr, torch.full_like(psnr, float("nan")))


def _gaussian_window(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, k, k)


def ssim_per_frame(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N,) mean SSIM over pixels and channels (Gaussian window 7, sigma 1.5)."""
    x, y = prediction.float() / 255.0, target.float() / 255.0
    channels = x.shape[1]
    window = _gaussian_window().to(x.device).expand(channels, 1, -1, -1)
    pad = window.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.flatten(1).mean(1)
