"""Frame tokenizer: 64x64 frames <-> an 8x8 latent grid bounded in [-1, 1]."""

from __future__ import annotations

import pytest
import torch

from wam.models.tokenizer import FrameTokenizer, TokenizerConfig, psnr, to_uint8


def frames(batch: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g)


def test_encode_decode_shapes_and_range(tiny):
    torch.manual_seed(0)
    tokenizer = FrameTokenizer(tiny.tokenizer).eval()
    cfg = tiny.tokenizer
    with torch.no_grad():
        z = tokenizer.encode(frames())
        assert z.shape == (3, cfg.latent_channels, 8, 8) == (3, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
        assert z.dtype == torch.float32
        assert z.min() >= -1.0 and z.max() <= 1.0
        out = tokenizer.decode(z)
    assert out.shape == (3, 3, 64, 64)
    assert torch.isfinite(out).all()


def test_uint8_and_unit_range_inputs_encode_alike(tiny):
    torch.manual_seed(0)
    tokenizer = FrameTokenizer(tiny.tokenizer).eval()
    x = frames()
    with torch.no_grad():
        torch.testing.assert_close(tokenizer.encode(x), tokenizer.encode(x.float() / 127.5 - 1.0))


def test_default_config_is_64_to_8():
    cfg = TokenizerConfig()
    assert cfg.latent_size == 8
    tokenizer = FrameTokenizer(cfg).eval()
    with torch.no_grad():
        z = tokenizer.encode(frames(1))
    assert z.shape == (1, cfg.latent_channels, 8, 8)


@pytest.mark.parametrize("size", [60, 36, 100])
def test_image_size_not_divisible_by_the_stages_raises(size):
    with pytest.raises(ValueError, match=str(size)):
        FrameTokenizer(TokenizerConfig(size, (16, 16, 16), 8))


def test_forward_loss_and_psnr(tiny):
    torch.manual_seed(0)
    tokenizer = FrameTokenizer(tiny.tokenizer)
    loss, metrics = tokenizer({"frames": frames()})
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    assert set(metrics) == {"psnr"} and metrics["psnr"] > 0


def test_psnr_and_to_uint8():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert psnr(x, x) == pytest.approx(10 * torch.log10(torch.tensor(4.0 / 1e-10)).item())
    assert psnr(x + 0.1, x) < psnr(x + 0.01, x)
    u = to_uint8(torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]))
    assert u.dtype == torch.uint8 and u.tolist() == [0, 0, 128, 255, 255]
    # to_uint8 inverts to_unit up to rounding
    x8 = frames(1, 16)
    assert torch.equal(to_uint8(FrameTokenizer.to_unit(x8)), x8)
