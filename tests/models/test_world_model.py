"""The world model: frame-causal next-latent prediction, copy-last-frame at initialisation, rollouts."""

from __future__ import annotations

import pytest
import torch

from wam.models.text import tokenize
from wam.models.world_model import WorldModel, WorldModelConfig, frame_causal_mask


def inputs(cfg: WorldModelConfig, b: int = 2, t: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(b, t, cfg.latent_channels, cfg.latent_size, cfg.latent_size, generator=g) * 1.6 - 0.8
    actions = torch.randn(b, t, cfg.action_dim, generator=g)
    state = torch.randn(b, t, cfg.state_dim, generator=g)
    text = tokenize(["push the puck", "open the drawer"][:b] + ["reach"] * max(0, b - 2), cfg.text)
    return z, actions, text, state


def trained_looking(cfg: WorldModelConfig, seed: int = 0) -> WorldModel:
    """A model whose prediction heads are not zero (as after some training)."""
    torch.manual_seed(seed)
    model = WorldModel(cfg).eval()
    for head in (model.next_latent, model.next_state):
        torch.nn.init.normal_(head.weight, std=0.05)
        torch.nn.init.normal_(head.bias, std=0.05)
    return model


def test_predict_shapes(tiny):
    cfg = tiny.world
    torch.manual_seed(0)
    model = WorldModel(cfg).eval()
    z, actions, text, state = inputs(cfg)
    with torch.no_grad():
        nxt, nxt_state = model.predict(z, actions, text, state)
        assert nxt.shape == z.shape and nxt_state.shape == state.shape
        nxt, nxt_state = model.predict(z[:, :2], actions[:, :2], text)  # no state, fewer frames
        assert nxt.shape == z[:, :2].shape and nxt_state.shape == (2, 2, cfg.state_dim)


def test_more_frames_than_context_raises(tiny):
    cfg = tiny.world
    model = WorldModel(cfg)
    z, actions, text, _ = inputs(cfg, t=cfg.context + 1)
    with pytest.raises(ValueError, match="context"):
        model.predict(z, actions, text)


def test_untrained_model_copies_the_last_frame(tiny):
    cfg = tiny.world
    torch.manual_seed(0)
    model = WorldModel(cfg).eval()
    z, actions, text, state = inputs(cfg)
    with torch.no_grad():
        nxt, nxt_state = model.predict(z, actions, text, state, torch.ones(2, 4, dtype=torch.bool))
        dreamed, dreamed_state = model.rollout(z[:, :2], torch.randn(2, 2 - 1 + 5, cfg.action_dim), text, state[:, :2])
    assert torch.equal(nxt, z)
    assert torch.equal(nxt_state, state)  # the state head predicts a change of the state: zero at init
    assert torch.equal(dreamed, z[:, 1:2].expand(-1, 5, -1, -1, -1))
    assert torch.equal(dreamed_state, state[:, 1:2].expand(-1, 5, -1))


def test_frame_causality(tiny):
    """Changing frame t+1 (its latents, action or state) never changes the predictions for frames <= t."""
    cfg = tiny.world
    model = trained_looking(cfg)
    z, actions, text, state = inputs(cfg)
    with torch.no_grad():
        base, base_state = model.predict(z, actions, text, state)
        for t in range(cfg.context - 1):
            z2, a2, s2 = z.clone(), actions.clone(), state.clone()
            z2[:, t + 1] = torch.rand_like(z2[:, t + 1]) * 2 - 1
            a2[:, t + 1] += 3.0
            s2[:, t + 1] -= 2.0
            out, out_state = model.predict(z2, a2, text, s2)
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(out_state[:, : t + 1], base_state[:, : t + 1], rtol=1e-5, atol=1e-5)
            assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])  # later frames do see it


def test_frame_causal_mask():
    mask = frame_causal_mask(3, 2, torch.device("cpu"))
    expected = torch.tensor([
        [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_action_text_and_state_condition_the_prediction(tiny):
    cfg = tiny.world
    model = trained_looking(cfg)
    z, actions, text, state = inputs(cfg)
    with torch.no_grad():
        base, _ = model.predict(z, actions, text, state)
        assert not torch.allclose(model.predict(z, actions + 1.0, text, state)[0], base)
        assert not torch.allclose(model.predict(z, actions, text.flip(0), state)[0], base)
        masked, _ = model.predict(z, actions, text, state, torch.zeros(2, 4, dtype=torch.bool))
        no_state, _ = model.predict(z, actions, text, None)
        torch.testing.assert_close(masked, no_state)  # a masked state is an absent state


def test_rollout_first_step_equals_predict(tiny):
    cfg = tiny.world
    model = trained_looking(cfg)
    z, _, text, state = inputs(cfg, t=3)
    k, horizon = 3, 6  # horizon past the model's context of 4: the window slides
    g = torch.Generator().manual_seed(5)
    actions = torch.randn(2, k - 1 + horizon, cfg.action_dim, generator=g)
    with torch.no_grad():
        dreamed, dreamed_state = model.rollout(z, actions, text, state)
        assert dreamed.shape == (2, horizon, *z.shape[2:]) and dreamed_state.shape == (2, horizon, cfg.state_dim)
        first, first_state = model.predict(z, actions[:, :k], text, state)
        torch.testing.assert_close(dreamed[:, 0], first[:, -1])
        torch.testing.assert_close(dreamed_state[:, 0], first_state[:, -1])
        # step two feeds the dream back in, with the next action
        frames = torch.cat([z, dreamed[:, :1]], 1)
        states = torch.cat([state, dreamed_state[:, :1]], 1)
        second, _ = model.predict(frames[:, -cfg.context :], actions[:, : k + 1][:, -cfg.context :], text, states[:, -cfg.context :])
        torch.testing.assert_close(dreamed[:, 1], second[:, -1])
        # and the window slides over the last `context` frames
        frames = torch.cat([z, dreamed], 1)
        states = torch.cat([state, dreamed_state], 1)
        n = k + horizon - 1
        last, _ = model.predict(frames[:, n - cfg.context : n], actions[:, n - cfg.context : n], text, states[:, n - cfg.context : n])
        torch.testing.assert_close(dreamed[:, -1], last[:, -1])
        no_state, none = model.rollout(z, actions, text)
        assert no_state.shape == dreamed.shape and none is None


def test_forward_loss_and_metrics(tiny):
    cfg = tiny.world
    model = trained_looking(cfg).train()
    z, _, text, state = inputs(cfg, t=5 if cfg.context >= 4 else cfg.context + 1)
    mask = torch.tensor([[True] * 5, [False] * 5])
    loss, metrics = model({"latents": z, "text_ids": text, "state": state, "state_mask": mask})
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    assert set(metrics) == {"latent_mse", "action_std", "state_mse"}
    loss.backward()
    assert model.next_latent.weight.grad is not None and model.latent_actions.head[-1].weight.grad is not None
    # video without state: no state loss
    loss, metrics = model({"latents": z, "text_ids": text})
    assert set(metrics) == {"latent_mse", "action_std"}


def test_patch_must_divide_latent_size():
    with pytest.raises(ValueError, match="patch"):
        WorldModel(WorldModelConfig(latent_size=8, patch=3, state_dim=4))


def test_a_model_without_its_robot_sizes_is_refused_naming_them():
    with pytest.raises(ValueError, match="WorldModel: state_dim not set; a robot's sizes come from its dataset"):
        WorldModel(WorldModelConfig())


def test_hidden_actions_are_the_unknown_action_token():
    from dataclasses import replace

    import torch

    from wam.config import pretrain_preset
    from wam.models.text import tokenize
    from wam.models.world_model import WorldModel

    torch.manual_seed(0)
    cfg = replace(pretrain_preset("tiny").world, state_dim=4)
    model = WorldModel(cfg).eval()
    latents = torch.rand(2, 3, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    text = tokenize(["a", "b"], cfg.text)
    actions = torch.randn(2, 3, cfg.action_dim)
    with torch.no_grad():
        model.unknown_action.normal_()
        model.next_latent.weight.normal_(std=0.1)
        hidden = torch.zeros(2, 3, dtype=torch.bool)
        a, _ = model.predict(latents, actions, text, action_known=hidden)
        b, _ = model.predict(latents, None, text)
        c, _ = model.predict(latents, actions, text)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-4)
