from dataclasses import replace

import torch

from wam.config import finetune_preset, pretrain_preset
from wam.models.text import tokenize
from wam.models.wam import WAMConfig, WorldActionModel


def _world():
    """The tiny world model for a robot with a 4-d state and 4-d actions (as its dataset would set them)."""
    return replace(pretrain_preset("tiny").world, state_dim=4)


def _model(chunk: int = 4) -> WorldActionModel:
    torch.manual_seed(0)
    world = _world()
    return WorldActionModel(WAMConfig(world=world, chunk=chunk, stride=1, hidden=32, robot_action_dim=4))


def _batch(model: WorldActionModel, b: int = 2, w: int = 3) -> dict:
    wc = model.config.world
    chunk = model.config.chunk
    return {
        "latents": torch.rand(b, w, wc.latent_channels, wc.latent_size, wc.latent_size) * 2 - 1,
        "state": torch.randn(b, w, 4),
        "text_ids": tokenize(["move the square"] * b, wc.text),
        "action": torch.rand(b, w, model.config.stride, 4) * 2 - 1,
        "action_chunk": torch.rand(b, w, chunk, 4) * 2 - 1,
        "action_chunk_mask": torch.ones(b, w, chunk, dtype=torch.bool),
    }


def test_forward_gives_a_finite_loss_and_trains_every_part():
    model = _model()
    torch.nn.init.normal_(model.world.next_latent.weight, std=0.01)  # zero before pretraining: no gradient behind it
    loss, metrics = model(_batch(model))
    assert torch.isfinite(loss)
    assert {"action_l1", "imagined_mse", "dynamics_mse", "align_mse", "state_mse"} <= set(metrics)
    loss.backward()
    for name in ("action_chunk.0.weight", "action_encoder.0.weight", "robot_action_in.weight", "robot_state_skip.weight",
                 "world.blocks.0.qkv.weight", "world.unknown_action"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_masked_chunk_steps_do_not_count():
    model = _model()
    batch = _batch(model)
    batch["action_chunk_mask"][:] = False
    batch["action_chunk_mask"][:, :, 0] = True
    _, only_first = model(batch)
    batch["action_chunk"][:, :, 1:] += 100.0  # masked targets: no effect
    _, changed = model(batch)
    assert abs(float(only_first["action_l1"]) - float(changed["action_l1"])) < 1e-6


def test_act_gives_one_bounded_chunk_per_context():
    model = _model(chunk=6).eval()
    batch = _batch(model, b=3, w=2)
    chunk = model.act(batch["latents"], batch["text_ids"], batch["state"])
    assert chunk.shape == (3, 6, 4)
    assert chunk.abs().max() <= 1.0


def test_encoded_actions_live_in_the_latent_action_range():
    model = _model()
    encoded = model.encode_actions(torch.rand(5, 7, model.config.stride, 4) * 2 - 1)
    assert encoded.shape == (5, 7, model.config.world.action_dim)
    assert encoded.abs().max() <= 1.0


def test_video_windows_add_the_pretraining_loss():
    model = _model()
    batch = _batch(model)
    base, _ = model(batch)
    batch["video"] = {k: batch[k] for k in ("latents", "text_ids")}
    torch.manual_seed(1)
    mixed, metrics = model(batch)
    assert "video_mse" in metrics and mixed > base


def _scored(batch: dict) -> dict:
    b, w = batch["latents"].shape[:2]
    return {**batch, "reward": torch.rand(b, w) * 10, "success": torch.rand(b, w) > 0.5,
            "reward_mask": torch.ones(b, w, dtype=torch.bool)}


def test_play_windows_train_the_simulator_and_never_the_policy():
    model = _model()
    play = _scored(_batch(model))
    losses = model.conditioned_losses(play)
    assert set(losses) == {"align", "dynamics", "state", "reward", "success"} and losses["success"] > 0
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(grads[n] is None for n in grads if n.startswith("action_chunk.")), "play data reached the policy head"
    for name in ("action_encoder.0.weight", "robot_action_in.weight", "reward.weight", "success.weight", "world.blocks.0.qkv.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name

    batch = _batch(model)
    base, _ = model(batch)
    mixed, metrics = model({**batch, "play": play})
    assert "play_dynamics" in metrics and mixed > base


def test_task_free_dynamics_ignores_the_text_and_the_policy_does_not():
    torch.manual_seed(0)
    model = WorldActionModel(WAMConfig(world=_world(), chunk=4, stride=1, hidden=32, task_free_dynamics=True,
                                          robot_action_dim=4))
    torch.nn.init.normal_(model.world.next_latent.weight, std=0.05)
    batch = _batch(model)
    other = tokenize(["open the window"] * 2, model.config.world.text)
    step = lambda text: model.step(batch["latents"], batch["action"], text, batch["state"])[0]  # noqa: E731
    torch.testing.assert_close(step(batch["text_ids"]), step(other))
    act = lambda text: model.act(batch["latents"], text, batch["state"])  # noqa: E731
    assert not torch.allclose(act(batch["text_ids"]), act(other)), "the policy still reads the instruction"


def test_config_round_trips_through_a_dict():
    config = WAMConfig(world=_world(), chunk=5, robot_action_dim=4)
    assert WAMConfig.from_dict(config.to_dict()) == config
    assert finetune_preset("cpu").chunk == 8
