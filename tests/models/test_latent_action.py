"""Latent actions: a small Gaussian bottleneck over consecutive latent frames."""

from __future__ import annotations

import torch

from wam.models.latent_action import LatentActionConfig, LatentActionEncoder


def make(tiny) -> LatentActionEncoder:
    w = tiny.world
    torch.manual_seed(0)
    return LatentActionEncoder(LatentActionConfig(w.latent_channels, w.latent_size, w.action_dim, w.latent_action_hidden, w.kl_weight))


def latents(tiny, b: int = 3, t: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = tiny.world
    return torch.rand(b, t, w.latent_channels, w.latent_size, w.latent_size, generator=g) * 2 - 1


def test_infer_shapes_and_kl(tiny):
    encoder = make(tiny)
    z = latents(tiny)
    for sample in (False, True):
        actions, kl = encoder.infer(z, sample=sample)
        assert actions.shape == (3, 4, tiny.world.action_dim)
        assert kl.ndim == 0 and torch.isfinite(kl) and kl.item() >= 0.0


def test_mean_is_used_without_sampling(tiny):
    encoder = make(tiny).eval()
    z = latents(tiny)
    a1, kl1 = encoder.infer(z, sample=False)
    torch.manual_seed(123)
    a2, kl2 = encoder.infer(z, sample=False)
    assert torch.equal(a1, a2) and torch.equal(kl1, kl2)
    mean, log_std = encoder(z[:, :-1].flatten(0, 1), z[:, 1:].flatten(0, 1))
    torch.testing.assert_close(a1, mean.view(3, 4, -1))
    assert (log_std >= -6.0).all() and (log_std <= 2.0).all()
    # sampling adds noise around that mean
    torch.manual_seed(1)
    s1, _ = encoder.infer(z, sample=True)
    torch.manual_seed(2)
    s2, _ = encoder.infer(z, sample=True)
    assert not torch.allclose(s1, a1) and not torch.allclose(s1, s2)


def test_kl_is_zero_for_a_unit_gaussian_and_positive_otherwise(tiny):
    encoder = make(tiny)
    last = encoder.head[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)  # mean 0, log_std 0: exactly N(0, 1)
    _, kl = encoder.infer(latents(tiny), sample=False)
    assert abs(kl.item()) < 1e-6
    torch.nn.init.constant_(last.bias, 0.5)
    _, kl = encoder.infer(latents(tiny), sample=False)
    assert kl.item() > 0.1


def test_transitions_are_encoded_independently(tiny):
    """Each action depends on its own pair of frames only (batch and time are flattened)."""
    encoder = make(tiny).eval()
    z = latents(tiny)
    a, _ = encoder.infer(z, sample=False)
    changed = z.clone()
    changed[:, 4] = -changed[:, 4]
    b, _ = encoder.infer(changed, sample=False)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])
