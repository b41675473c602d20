"""Checkpoints: a round trip gives back the same model, optimiser and RNGs; every way a
checkpoint can be missing, damaged or wrong is refused naming the file; a writer that dies
part-way leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wam.errors import CheckpointError
from wam.train import checkpoint as ckpt
from wam.train import load_checkpoint, restore_rng, save_checkpoint
from wam.train.schedule import make_optimizer



class Toy(nn.Module):
    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Tied(nn.Module):
    """An embedding shared with the output projection, as language-model heads do."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


def trained(steps: int = 3) -> tuple[Toy, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = Toy()
    optimizer = make_optimizer(model, lr=1e-2, weight_decay=0.05)
    for _ in range(steps):
        loss = model(torch.randn(4, 8)).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def test_round_trip(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path / "ck", model, {"hidden": 16}, step=3, optimizer=optimizer, extra={"note": "hi"}, kind="toy")
    expected_draws = (torch.rand(3), np.random.rand(3), random.random())

    fresh = Toy()
    fresh_optimizer = make_optimizer(fresh, lr=1e-2, weight_decay=0.05)
    loaded = load_checkpoint(tmp_path / "ck", fresh, fresh_optimizer, expected_kind="toy")
    assert (loaded.kind, loaded.step, loaded.config, loaded.extra) == ("toy", 3, {"hidden": 16}, {"note": "hi"})
    x = torch.randn(5, 8)
    assert torch.equal(model(x), fresh(x))
    saved, restored = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert saved["param_groups"] == restored["param_groups"]
    for key, state in saved["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(restored["state"][key][name])), (key, name)

    restore_rng(loaded)  # the RNGs continue as they would have after the save
    assert torch.equal(torch.rand(3), expected_draws[0])
    assert np.array_equal(np.random.rand(3), expected_draws[1]) and random.random() == expected_draws[2]

    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["kind"] == "toy" and meta["step"] == 3 and meta["wam_version"]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.safetensors", "trainer.pt"]


def test_tied_weights(tmp_path):
    model = Tied()
    save_checkpoint(tmp_path / "ck", model, {}, step=0)
    fresh = Tied()
    load_checkpoint(tmp_path / "ck", fresh)
    assert torch.equal(fresh.embed.weight, model.embed.weight) and fresh.head.weight is fresh.embed.weight


def test_overwrite_keeps_one_complete_checkpoint(tmp_path):
    model, optimizer = trained()
    for step in (1, 2):
        save_checkpoint(tmp_path / "ck", model, {}, step=step, optimizer=optimizer)
    assert load_checkpoint(tmp_path / "ck").step == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


@pytest.fixture
def saved(tmp_path) -> Path:
    model, optimizer = trained()
    return save_checkpoint(tmp_path / "run", model, {"hidden": 16}, step=7, optimizer=optimizer, kind="world_model")


def _refused(directory: Path, match: str, model: nn.Module | None = None, **kwargs) -> str:
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(directory, model, **kwargs)
    return str(err.value)


def test_missing_directory(tmp_path):
    assert str(tmp_path / "nothing") in _refused(tmp_path / "nothing", "no such checkpoint directory")


def test_missing_or_corrupt_config(saved):
    (saved / "config.json").write_text('{"kind": "world_model", "step": ')
    assert str(saved / "config.json") in _refused(saved, "not valid JSON")
    (saved / "config.json").write_text('{"kind": "world_model", "config": {}}')
    _refused(saved, r"config.json: field 'step'")
    (saved / "config.json").unlink()
    _refused(saved, r"config.json: missing")


def test_missing_or_corrupt_weights(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert str(saved / "model.safetensors") in _refused(saved, "unreadable", Toy())
    (saved / "model.safetensors").unlink()
    _refused(saved, r"model.safetensors: missing", Toy())
    _refused(saved, r"model.safetensors: missing")  # also without a model to load into


def test_weights_that_do_not_fit(saved):
    message = _refused(saved, "weights do not fit the model", Toy(hidden=32))
    assert "model.safetensors" in message and "mis-shaped: " in message and "net.0.weight (16, 8) vs model (32, 8)" in message

    class Renamed(Toy):
        def __init__(self):
            super().__init__()
            self.extra = nn.Linear(2, 2)

    message = _refused(saved, "weights do not fit", Renamed())
    assert "missing: extra.bias, extra.weight" in message
    message = _refused(saved, "weights do not fit", nn.Sequential(nn.Linear(8, 16)))
    assert "unexpected: net.0.bias" in message and "missing: 0.bias, 0.weight" in message


def test_wrong_kind(saved):
    message = _refused(saved, f"expected a 'wam' checkpoint, {saved} is a 'world_model' checkpoint", expected_kind="wam")
    assert "config.json" in message


def test_corrupt_trainer_state(saved):
    (saved / "trainer.pt").write_bytes(b"not a pickle")
    model = Toy()
    _refused(saved, r"trainer.pt: unreadable", model, optimizer=make_optimizer(model, 1e-3, 0.0))
    (saved / "trainer.pt").unlink()
    _refused(saved, r"trainer.pt: missing", model, optimizer=make_optimizer(model, 1e-3, 0.0))
    assert load_checkpoint(saved, Toy()).step == 7  # the weights alone still load


def test_crash_between_renames_keeps_old_checkpoint(saved, monkeypatch):
    """Killed after the old checkpoint went aside and before the new one came in."""
    real_replace = os.replace

    def crash_on_move_in(src, dst):
        if ".tmp-" in Path(src).name:
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    model, _ = trained(steps=5)
    monkeypatch.setattr(ckpt.os, "replace", crash_on_move_in)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(saved, model, {}, step=8)
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert not saved.exists()
    assert load_checkpoint(saved, Toy()).step == 7  # read from where it was set aside
    save_checkpoint(saved, model, {}, step=8)  # the next writer puts things right
    assert load_checkpoint(saved, Toy()).step == 8
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_crash_while_writing_keeps_old_checkpoint(saved, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    model, _ = trained(steps=5)
    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(saved, model, {}, step=8)
    monkeypatch.undo()
    assert load_checkpoint(saved, Toy()).step == 7
    save_checkpoint(saved, model, {}, step=8)
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_weights_named_optional_may_be_missing_but_nothing_else(tmp_path):
    import torch
    from torch import nn

    from wam.errors import CheckpointError
    from wam.train.checkpoint import load_checkpoint, save_checkpoint

    old = nn.Sequential(nn.Linear(3, 3))
    save_checkpoint(tmp_path / "ck", old, {}, 1, kind="m")
    grown = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))  # a head added later: "1.weight", "1.bias"
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "ck", grown)
    load_checkpoint(tmp_path / "ck", grown, optional_weights=("1.",))
    assert torch.equal(grown[0].weight, old[0].weight)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "ck", nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1)), optional_weights=("2.",))
