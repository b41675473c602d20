"""PSNR and SSIM of predicted frames."""

from __future__ import annotations

import pytest
import torch

from wam.models.metrics import psnr_per_frame, ssim_per_frame


def smooth_frames(n: int = 3, size: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for i in range(n):
        r = (x * 255 / size + 20 * i) % 256
        g = (y * 255 / size) % 256
        b = ((x + y) * 4 + 50 * i) % 256
        out.append(torch.stack([r, g, b]))
    return torch.stack(out).to(torch.uint8)


def test_identical_frames():
    x = smooth_frames()
    psnr = psnr_per_frame(x, x)
    ssim = ssim_per_frame(x, x)
    assert psnr.shape == ssim.shape == (3,)
    torch.testing.assert_close(psnr, torch.full((3,), 60.0))  # capped: an exact repeat must not dominate a mean
    torch.testing.assert_close(ssim, torch.ones(3), atol=1e-5, rtol=0)


def test_noise_lowers_both_and_more_noise_lowers_more():
    x = smooth_frames()
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    little = (x.float() + 5 * noise).clamp(0, 255).round().to(torch.uint8)
    lots = (x.float() + 40 * noise).clamp(0, 255).round().to(torch.uint8)
    p0, p1, p2 = psnr_per_frame(x, x), psnr_per_frame(little, x), psnr_per_frame(lots, x)
    s0, s1, s2 = ssim_per_frame(x, x), ssim_per_frame(little, x), ssim_per_frame(lots, x)
    assert (p1 < p0).all() and (p2 < p1).all()
    assert (s1 < s0).all() and (s2 < s1).all()
    assert (p1 > 25).all() and (p2 < 25).all()
    assert (s2 < 0.9).all()


def test_psnr_known_value_and_float_input():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 255.0)
    assert psnr_per_frame(a, b).item() == pytest.approx(0.0, abs=1e-4)
    c = torch.full((1, 3, 4, 4), 25.5)
    assert psnr_per_frame(a, c).item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_is_symmetric_and_bounded():
    x = smooth_frames()
    y = smooth_frames().flip(-1)
    s_xy, s_yx = ssim_per_frame(x, y), ssim_per_frame(y, x)
    torch.testing.assert_close(s_xy, s_yx)
    assert (s_xy <= 1.0).all() and (s_xy >= -1.0).all() and (s_xy < 0.99).all()
