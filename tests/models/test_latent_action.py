"""Latent actions: a tanh-bounded, noisy bottleneck over consecutive latent frames."""

from __future__ import annotations

import torch

from wam.models.latent_action import LatentActionConfig, LatentActionEncoder


def make(tiny) -> LatentActionEncoder:
    w = tiny.world
    torch.manual_seed(0)
    return LatentActionEncoder(LatentActionConfig(w.latent_channels, w.latent_size, w.action_dim, w.latent_action_hidden, w.latent_action_noise))


def latents(tiny, b: int = 3, t: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = tiny.world
    return torch.rand(b, t, w.latent_channels, w.latent_size, w.latent_size, generator=g) * 2 - 1


def test_infer_shapes_bounds_and_penalty(tiny):
    encoder = make(tiny)
    z = latents(tiny)
    for sample in (False, True):
        actions, penalty = encoder.infer(z, sample=sample)
        assert actions.shape == (3, 4, tiny.world.action_dim)
        assert penalty.ndim == 0 and torch.isfinite(penalty) and penalty.item() >= 0.0
    actions, _ = encoder.infer(z, sample=False)
    assert actions.abs().max() <= 1.0


def test_deterministic_without_sampling_noisy_with(tiny):
    encoder = make(tiny).eval()
    z = latents(tiny)
    a1, p1 = encoder.infer(z, sample=False)
    torch.manual_seed(123)
    a2, p2 = encoder.infer(z, sample=False)
    assert torch.equal(a1, a2) and torch.equal(p1, p2)
    pre = encoder(z[:, :-1].flatten(0, 1), z[:, 1:].flatten(0, 1))
    torch.testing.assert_close(a1, torch.tanh(pre).view(3, 4, -1))
    torch.manual_seed(1)
    s1, _ = encoder.infer(z, sample=True)
    torch.manual_seed(2)
    s2, _ = encoder.infer(z, sample=True)
    assert not torch.allclose(s1, a1) and not torch.allclose(s1, s2)
    noise = (s1 - a1).std().item()
    assert 0.5 * encoder.config.noise < noise < 2.0 * encoder.config.noise


def test_actions_depend_on_the_change_between_frames(tiny):
    encoder = make(tiny)
    z = latents(tiny)
    still = torch.cat([z[:, :1]] * z.shape[1], dim=1)  # no change at all
    moving, _ = encoder.infer(z, sample=False)
    static, _ = encoder.infer(still, sample=False)
    assert not torch.allclose(moving, static)
