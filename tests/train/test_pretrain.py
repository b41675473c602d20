"""Stage one, pretraining on video: it learns, writes a complete run directory, loads back,
resumes exactly, mixes labelled and action-free episodes, and refuses bad data up front.

The `tiny` preset trains on a few synthetic episodes (a bright square moved by the action);
one such run is shared by the tests that only read it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

import wam.train.stages as stages_module  # where the stages call the training loop
from wam.config import pretrain_config_from_dict, pretrain_preset
from wam.errors import CheckpointError
from wam.models.tokenizer import FrameTokenizer, psnr
from wam.models.world_model import WorldModel
from wam.train.batches import FrameBatches, WindowBatches
from wam.train.checkpoint import load_checkpoint
from wam.train.frame_cache import build_frame_cache, load_frame_cache
from wam.train.pretrain import load_pretrain_config, load_tokenizer, load_world_model, pretrain, split_cached_episodes

from tests.support.pretrain_fixtures import (  # noqa: F401
    SIZE, tiny_config, tiny_dataset, tiny_run, write_dataset,
)

pytestmark = pytest.mark.slow  # pretraining runs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    return tiny_run(tmp_path_factory)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def val_batches(out: Path) -> list[dict]:
    """The world model's validation batches, rebuilt the way `pretrain` draws them."""
    config = load_pretrain_config(out)
    cache = load_frame_cache(out / "cache")
    latents = np.load(out / "cache" / f"latents-{config.tokenizer_train.steps}.npy", mmap_mode="r")
    train_eps, val_eps = split_cached_episodes(cache, config.val_fraction, config.seed)
    source = WindowBatches(cache, latents, val_eps or train_eps, config.window, config.stride, 32, config.seed + 1, config.world.text)
    return [source.batch(i) for i in range(4)]


@torch.no_grad()
def val_latent_mse(model: WorldModel, batches: list[dict]) -> float:
    model.eval()
    return sum(model(batch)[1]["latent_mse"] for batch in batches) / len(batches)


# -- a tiny run ------------------------------------------------------------------------------------


def test_run_directory_is_complete(run, data):
    out, summary = run
    for path in ("pretrain.json", "split.json", "summary.json", "cache/manifest.json", "cache/frames.npy", "cache/latents-30.npy",
                 "tokenizer/metrics.jsonl", "world_model/metrics.jsonl", "world_model/best/config.json"):
        assert (out / path).is_file(), path
    for stage in ("tokenizer", "world_model"):
        for name in ("model.safetensors", "config.json", "trainer.pt"):
            assert (out / stage / "checkpoint" / name).is_file(), (stage, name)
        assert list((out / stage / "tb").iterdir()), f"{stage}: no TensorBoard events"
        meta = json.loads((out / stage / "checkpoint" / "config.json").read_text())
        assert (meta["kind"], meta["step"]) == (stage, 30)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["frames"] == 8 * 24
    assert summary["episodes"] == {"train": 7, "val": 1}
    assert summary["data"] == [str(data)]
    assert summary["world_model"]["params"] > 0 and set(summary["seconds"]) == {"tokenizer", "world_model"}
    split = json.loads((out / "split.json").read_text())
    assert len(split["val"]) == 1 and split["val"][0][0] == str(data)
    config = load_pretrain_config(out)
    asked = tiny_config(eval_every=15)
    assert config == replace(asked, world=replace(asked.world, state_dim=4))  # the asked config, sized by the data
    assert pretrain_config_from_dict(json.loads((out / "pretrain.json").read_text())) == config


def test_tokenizer_learns_to_reconstruct(run):
    out, summary = run
    log = records(out / "tokenizer" / "metrics.jsonl")
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30]
    assert log[-1]["loss"] < log[0]["loss"] / 3
    assert log[-1]["psnr"] > log[0]["psnr"] + 5
    assert summary["tokenizer"]["val_psnr"] > log[0]["psnr"] + 5
    assert summary["tokenizer"]["val_psnr"] > 18


def test_world_model_validation_loss_falls_below_its_initial_value(run):
    out, summary = run
    batches = val_batches(out)
    config = load_pretrain_config(out)
    torch.manual_seed(0)
    initial = val_latent_mse(WorldModel(config.world), batches)  # an untrained model copies the last frame
    copy_last = sum(F.mse_loss(b["latents"][:, :-1], b["latents"][:, 1:]).item() for b in batches) / len(batches)
    assert initial == pytest.approx(copy_last, rel=1e-5)
    final = summary["world_model"]["val_loss"]
    assert final < initial, (final, initial)
    log = records(out / "world_model" / "metrics.jsonl")
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30]
    evals = [r["eval/val_loss"] for r in log if "eval/val_loss" in r]
    assert len(evals) == 2 and evals[-1] < initial
    # the total loss also holds the (noisier) state loss; the latent part falls
    assert np.mean([r["latent_mse"] for r in log[-3:]]) < log[0]["latent_mse"]


def test_checkpoints_load_back_to_the_trained_models(run):
    out, summary = run
    batches = val_batches(out)
    world = load_world_model(out)
    again = load_world_model(out)
    # the loaded model gives what the in-memory model gave when it was evaluated at its last step
    logged = records(out / "world_model" / "metrics.jsonl")[-1]["eval/val_loss"]
    assert val_latent_mse(world, batches) == pytest.approx(logged, rel=1e-6, abs=1e-9)
    assert summary["world_model"]["val_loss"] == pytest.approx(logged, rel=1e-6, abs=1e-9)
    batch = batches[0]
    with torch.no_grad():
        actions, _ = world.latent_actions.infer(batch["latents"], sample=False)
        a = world.predict(batch["latents"][:, :-1], actions, batch["text_ids"], batch["state"][:, :-1])
        b = again.predict(batch["latents"][:, :-1], actions, batch["text_ids"], batch["state"][:, :-1])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], batch["latents"][:, :-1])  # trained: no longer a copy of the input
    # best/ holds the model with the lowest validation loss
    best = load_world_model(out, "best")
    best_loss = min(r["eval/val_loss"] for r in records(out / "world_model" / "metrics.jsonl") if "eval/val_loss" in r)
    assert val_latent_mse(best, batches) == pytest.approx(best_loss, rel=1e-6, abs=1e-9)

    tokenizer = load_tokenizer(out)
    assert not tokenizer.training
    cache = load_frame_cache(out / "cache")
    latents = np.load(out / "cache" / "latents-30.npy")
    with torch.no_grad():
        encoded = tokenizer.encode(torch.from_numpy(np.array(cache.frames[:40])).permute(0, 3, 1, 2))
    np.testing.assert_allclose(encoded.numpy(), latents[:40].astype(np.float32), atol=2e-3)
    _, val_eps = split_cached_episodes(cache, 0.1, 0)
    frames = FrameTokenizer.to_unit(FrameBatches(cache, val_eps, 256, seed=1).batch(0)["frames"])
    with torch.no_grad():
        assert psnr(tokenizer.decode(tokenizer.encode(frames)), frames) == pytest.approx(summary["tokenizer"]["val_psnr"], abs=1e-4)
    # the safetensors file holds exactly the model's weights
    state = safetensors.torch.load_file(str(out / "world_model" / "checkpoint" / "model.safetensors"))
    for name, tensor in world.state_dict().items():
        assert torch.equal(state[name], tensor), name
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_checkpoint(out / "world_model" / "checkpoint", FrameTokenizer(load_pretrain_config(out).tokenizer), expected_kind="tokenizer")


def test_an_existing_run_is_not_overwritten_without_resume(run, data):
    out, _ = run
    stamp = (out / "summary.json").stat().st_mtime_ns
    with pytest.raises(CheckpointError, match="--resume") as caught:
        pretrain([data], out, tiny_config(), progress=False)
    assert str(out) in str(caught.value)
    assert (out / "summary.json").stat().st_mtime_ns == stamp


def test_resuming_a_finished_run_retrains_nothing(run, data, tmp_path, capfd):
    out, summary = run
    mine = tmp_path / "run"
    shutil.copytree(out, mine)
    stamps = {p: p.stat().st_mtime_ns for p in mine.rglob("metrics.jsonl")}
    asked = pretrain_preset("cpu")
    asked = replace(asked, world=replace(asked.world, state_dim=7, views=3))  # the data decides these, never the ask
    again = pretrain([data], mine, asked, resume=True, progress=False)  # the run's own config wins
    ignored = capfd.readouterr().err
    assert "saved config" in ignored and f"world_train.steps: {tiny_config().world_train.steps} -> 1500" in ignored
    assert "world.views" not in ignored and "world.state_dim" not in ignored
    assert {p: p.stat().st_mtime_ns for p in mine.rglob("metrics.jsonl")} == stamps
    assert again["world_model"] == summary["world_model"] and again["tokenizer"] == summary["tokenizer"]
    assert again["seconds"] == summary["seconds"] and summary["seconds"]["world_model"] > 0  # kept, nothing added
    assert load_pretrain_config(mine) == load_pretrain_config(out)


# -- resume --------------------------------------------------------------------------------------------


class Killed(Exception):
    pass


class KillAt:
    """A batch source that dies when asked for step `at` (as a killed process would)."""

    def __init__(self, batches, at: int):
        self.batches, self.at = batches, at

    def batch(self, step: int):
        if step >= self.at:
            raise Killed(f"killed at step {step}")
        return self.batches.batch(step)


def small_config():
    """The tiny models with a short schedule: 2 tokenizer steps, 12 world steps, a checkpoint every 6."""
    config = tiny_config(12, log_every=2, checkpoint_every=6, eval_every=6, warmup_steps=2)
    return replace(config, tokenizer_train=replace(config.tokenizer_train, steps=2, warmup_steps=1, log_every=1, checkpoint_every=2))


def test_resume_logs_the_same_losses_as_an_uninterrupted_run(data, tmp_path, monkeypatch):
    config = small_config()
    torch.manual_seed(0)
    full = pretrain([data], tmp_path / "full", config, progress=False)

    real_train = stages_module.train

    def train_killed_at_7(model, batches, cfg, run_dir, **kwargs):
        if kwargs["kind"] == "world_model":
            batches = KillAt(batches, 7)
        return real_train(model, batches, cfg, run_dir, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(stages_module, "train", train_killed_at_7)
    torch.manual_seed(0)
    with pytest.raises(Killed):
        pretrain([data], out, config, progress=False)
    monkeypatch.setattr(stages_module, "train", real_train)
    assert json.loads((out / "world_model" / "checkpoint" / "config.json").read_text())["step"] == 6
    assert not (out / "summary.json").exists()
    tokenizer_log = (out / "tokenizer" / "metrics.jsonl").read_text()

    torch.manual_seed(1234)  # a new process: other RNG states
    resumed = pretrain([data], out, config, resume=True, progress=False)

    assert (out / "tokenizer" / "metrics.jsonl").read_text() == tokenizer_log  # finished stage: not retrained
    a = records(tmp_path / "full" / "world_model" / "metrics.jsonl")
    b = records(out / "world_model" / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [2, 4, 6, 8, 10, 12]
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for key in ra:
            if key != "steps_per_s":
                assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-7), (ra["step"], key)
    assert resumed["world_model"] == pytest.approx(full["world_model"], rel=1e-5)
    wa = load_world_model(tmp_path / "full").state_dict()
    wb = load_world_model(out).state_dict()
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-5, atol=1e-6)


def test_same_config_and_seed_give_the_same_run(data, tmp_path):
    """--seed is documented as the seed of 'data order, held-out split and initialisation'."""
    config = tiny_config(1, log_every=1)
    config = replace(config, tokenizer_train=replace(config.tokenizer_train, steps=1, log_every=1))
    torch.manual_seed(1)  # whatever the process did before must not matter
    a = pretrain([data], tmp_path / "a", config, progress=False)
    torch.manual_seed(2)
    b = pretrain([data], tmp_path / "b", config, progress=False)
    for stage in ("tokenizer", "world_model"):
        wa = safetensors.torch.load_file(str(tmp_path / "a" / stage / "checkpoint" / "model.safetensors"))
        wb = safetensors.torch.load_file(str(tmp_path / "b" / stage / "checkpoint" / "model.safetensors"))
        different = [name for name in wa if not torch.equal(wa[name], wb[name])]
        assert not different, f"{stage}: same config and seed, different weights: {different[:4]}"
    assert a["tokenizer"] == b["tokenizer"] and a["world_model"] == b["world_model"]


# -- batches: labelled and action-free episodes together ----------------------------------------------


@pytest.fixture(scope="module")
def mixed_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    labelled = write_dataset(root / "labelled", [11, 12], length=12)
    video = write_dataset(root / "video", [13, 14], length=12, labelled=False, state=False, task="watch the square")
    cache = build_frame_cache([video, labelled], root / "cache", SIZE, 4, 4, progress=False)
    config = pretrain_preset("tiny")
    config = replace(config, world=replace(config.world, state_dim=cache.state.shape[1]))  # as pretrain sets it
    g = np.random.default_rng(0)
    latents = g.uniform(-1, 1, (len(cache.frames), config.world.latent_channels, 8, 8)).astype(np.float16)
    return cache, latents, config


def test_action_free_and_labelled_episodes_mix_in_one_batch(mixed_cache):
    cache, latents, config = mixed_cache
    source = WindowBatches(cache, latents, cache.episodes, config.window, config.stride, 16, 0, config.world.text)
    batch = source.batch(1)
    b, w = 16, config.window
    assert batch["latents"].shape == (b, w, config.world.latent_channels, 8, 8) and batch["latents"].dtype == torch.float32
    assert batch["state"].shape == (b, w, 4)
    assert batch["state_mask"].shape == batch["action_mask"].shape == (b, w)
    assert batch["action"].shape == (b, w, config.stride, 4)
    assert batch["text_ids"].shape[0] == b
    labelled = batch["action_mask"][:, 0]
    assert labelled.any() and not labelled.all(), "expected both kinds of episode among 16 windows"
    assert torch.equal(batch["state_mask"], labelled[:, None].expand(-1, w))  # labelled episodes have state, video none
    assert not batch["state"][~labelled].any() and not batch["action"][~labelled].any()
    assert batch["state"][labelled].abs().sum(-1).gt(0).all()
    assert not torch.equal(batch["text_ids"][labelled][0], batch["text_ids"][~labelled][0])
    # a pure function of (seed, step)
    again = source.batch(1)
    for key in batch:
        assert torch.equal(batch[key], again[key]), key
    # and the world model trains on it: the state loss only counts labelled windows
    torch.manual_seed(0)
    model = WorldModel(config.world)
    loss, metrics = model(batch)
    loss.backward()
    assert torch.isfinite(loss) and set(metrics) == {"latent_mse", "action_std", "state_mse"}
    only_labelled = {k: v[labelled] for k, v in batch.items()}
    model.eval()
    with torch.no_grad():
        assert model(batch)[1]["state_mse"] == pytest.approx(model(only_labelled)[1]["state_mse"], rel=1e-5)
    # robot-only sources skip the video
    robot = WindowBatches(cache, latents, cache.episodes, config.window, config.stride, 16, 0, config.world.text, require_actions=True)
    assert robot.batch(1)["action_mask"].all()


def test_action_chunks_stay_inside_their_episode(mixed_cache):
    """A window that ends at its episode's last frame must not borrow the next episode's actions."""
    cache, latents, config = mixed_cache
    stride, window = 2, 3
    source = WindowBatches(cache, latents, cache.episodes, window, stride, 1, 0, config.world.text)
    first, second = [e for e in cache.episodes if e.has_actions]
    assert second.start == first.start + first.length
    start = first.length - ((window - 1) * stride + 1)  # the last window of the first labelled episode
    batch = source.window_at([first], [start])
    own = cache.action[first.start : first.start + first.length]
    last_chunk = batch["action"][0, -1].numpy()  # (stride, A): from the episode's last frame onwards
    np.testing.assert_array_equal(last_chunk[0], own[-1])
    assert not np.array_equal(own[-1], cache.action[second.start])
    np.testing.assert_array_equal(last_chunk[1], own[-1])  # past the end: the last action repeated


# -- continued pretraining ---------------------------------------------------------------------------


def test_init_from_continues_the_world_model_on_the_first_runs_tokenizer(run, data, tmp_path, monkeypatch):
    first, _ = run
    out = tmp_path / "continued"
    starts = {}

    def recording_train(model, *args, kind, **kwargs):
        starts[kind] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return train(model, *args, kind=kind, **kwargs)

    train = stages_module.train
    monkeypatch.setattr(stages_module, "train", recording_train)
    continued = pretrain([data], out, tiny_config(world_steps=10), progress=False, init_from=first)
    assert set(starts) == {"world_model"}  # the tokenizer stage does not train
    trained = safetensors.torch.load_file(first / "world_model" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(starts["world_model"][k], v) for k, v in trained.items())  # it starts where the first run ended
    assert json.loads((out / "pretrain.json").read_text())["init_from"] == str(first)
    for name in ("model.safetensors", "config.json"):  # the tokenizer is the first run's, not retrained
        assert (out / "tokenizer" / "checkpoint" / name).read_bytes() == (first / "tokenizer" / "checkpoint" / name).read_bytes()
    assert not (out / "tokenizer" / "metrics.jsonl").exists()
    assert json.loads((out / "world_model" / "checkpoint" / "config.json").read_text())["step"] == 10  # a fresh count
    again = pretrain([data], out, tiny_config(world_steps=10), resume=True, progress=False)
    assert again["seconds"] == continued["seconds"] and set(continued["seconds"]) == {"world_model"}


def test_init_from_a_run_without_a_world_model_is_refused_by_path(run, data, tmp_path):
    first, _ = run
    broken = tmp_path / "broken"
    shutil.copytree(first, broken, ignore=shutil.ignore_patterns("world_model", "cache"))
    with pytest.raises(CheckpointError, match=r"broken/world_model: no checkpoint to continue from"):
        pretrain([data], tmp_path / "out", tiny_config(world_steps=10), progress=False, init_from=broken)
    assert not (tmp_path / "out" / "pretrain.json").exists()
