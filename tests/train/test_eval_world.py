"""`evaluate_world`: rollouts of the pretrained world model beside copy-last-frame and
zeroed / shuffled latent actions, on held-out episodes, with side-by-side videos.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import wam.train.eval_world as eval_world_module
from wam.errors import CheckpointError
from wam.train.batches import WindowBatches
from wam.train.eval_world import METHODS, EvalWorldConfig, evaluate_world
from wam.train.pretrain import pretrain

from tests.support.pretrain_fixtures import tiny_config, tiny_dataset, tiny_run  # noqa: F401

pytestmark = pytest.mark.slow  # pretraining runs, and the shared tiny one

CONFIG = EvalWorldConfig(context=2, horizons=(1, 4, 8), samples=4, videos=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)[0]


class Spy(WindowBatches):
    """WindowBatches that remembers which episodes it drew windows from."""

    seen: list = []

    def __init__(self, cache, latents, episodes, *args, **kwargs):
        Spy.seen.append([(e.dataset, e.episode) for e in episodes])
        super().__init__(cache, latents, episodes, *args, **kwargs)


@pytest.fixture(scope="module")
def evaluated(run, data, tmp_path_factory):
    """(results, out, episodes drawn from) of the tiny run on its own data."""
    out = tmp_path_factory.mktemp("eval") / "eval_world"
    with pytest.MonkeyPatch.context() as mp:
        Spy.seen = []
        mp.setattr(eval_world_module, "WindowBatches", Spy)
        results = evaluate_world(run, [data], out, CONFIG, progress=False)
    return results, out, Spy.seen[-1]


def test_all_methods_and_horizons(evaluated):
    results, out, _ = evaluated
    assert tuple(results["methods"]) == METHODS
    for method, scores in results["methods"].items():
        assert set(scores) == {"h1", "h4", "h8"}, method
        for h, values in scores.items():
            assert set(values) == {"psnr_at", "psnr_mean", "ssim_at", "latent_mse_at", "psnr_moving_at"}
            assert all(np.isfinite(v) for k, v in values.items() if k != "psnr_moving_at"), (method, h, values)
            assert values["psnr_moving_at"] is None or np.isfinite(values["psnr_moving_at"])
            assert 0 < values["psnr_at"] < 100 and -1 <= values["ssim_at"] <= 1 and values["latent_mse_at"] >= 0
    assert results["samples"] == 4 and results["context"] == 2 and results["horizons"] == [1, 4, 8]
    assert results["stride"] == 1
    assert 15 < results["tokenizer_ceiling_psnr"] < 60
    margins = {"psnr_h8_model_minus_zeroed", "psnr_h8_model_minus_shuffled", "psnr_moving_h8_model_minus_zeroed",
               "psnr_moving_h8_model_minus_shuffled"}
    assert set(results["summary"]) == {"psnr_h8_model_minus_copy_last", *margins, *(f"{m}_95" for m in margins)}
    for margin in ("psnr_h8_model_minus_zeroed", "psnr_h8_model_minus_shuffled"):  # paired over the same windows
        low, high = results["summary"][f"{margin}_95"]
        assert low <= results["summary"][margin] + 1e-3 and results["summary"][margin] - 1e-3 <= high
    # psnr_mean at h1 is psnr_at at h1
    for scores in results["methods"].values():
        assert scores["h1"]["psnr_mean"] == pytest.approx(scores["h1"]["psnr_at"], abs=1e-3)


def test_copy_last_frame_degrades_with_the_horizon(evaluated):
    copy = evaluated[0]["methods"]["copy_last_frame"]
    assert copy["h1"]["psnr_at"] > copy["h8"]["psnr_at"] + 1.0
    assert copy["h1"]["ssim_at"] > copy["h8"]["ssim_at"]
    assert copy["h1"]["latent_mse_at"] < copy["h8"]["latent_mse_at"]


def test_results_and_videos_are_written(evaluated):
    results, out, _ = evaluated
    assert json.loads((out / "eval_world.json").read_text()) == results
    assert results["videos"] == ["videos/sample0.mp4", "videos/sample0.gif"]
    mp4, gif = out / "videos" / "sample0.mp4", out / "videos" / "sample0.gif"
    assert mp4.stat().st_size > 0 and gif.stat().st_size > 0
    window = CONFIG.context + max(CONFIG.horizons)
    with av.open(str(mp4)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == window
    assert frames[0].shape == (64 * 4, 3 * 64 * 4, 3)  # truth | dream | zeroed-action dream, 4x
    with Image.open(gif) as image:
        assert image.n_frames == window and image.size == (3 * 64 * 4, 64 * 4)
    assert len(list((out / "videos").iterdir())) == 2


def test_own_data_is_evaluated_on_held_out_episodes_only(evaluated, run):
    _, _, drawn = evaluated
    val = [tuple(e) for e in json.loads((run / "split.json").read_text())["val"]]
    assert drawn == val


def test_a_relative_data_path_is_still_the_runs_own_data(run, data, tmp_path, monkeypatch):
    """`wam eval-world RUN --data data/x` from the directory `wam pretrain --data data/x` ran in."""
    monkeypatch.chdir(data.parent)
    Spy.seen = []
    monkeypatch.setattr(eval_world_module, "WindowBatches", Spy)
    relative = Path(data.name)
    mine = tmp_path / "run"
    shutil.copytree(run, mine, ignore=shutil.ignore_patterns("cache"))
    summary = json.loads((mine / "summary.json").read_text())
    summary["data"] = [str(relative)]  # as `pretrain` records a relative --data
    (mine / "summary.json").write_text(json.dumps(summary))
    evaluate_world(mine, [relative], tmp_path / "eval", replace(CONFIG, videos=0), progress=False)
    val = [tuple(e) for e in json.loads((run / "split.json").read_text())["val"]]
    assert [episode for _, episode in Spy.seen[-1]] == [episode for _, episode in val], (
        f"evaluated on {Spy.seen[-1]}, held-out episodes are {val}"
    )


def test_other_data_is_evaluated_whole(run, tmp_path, monkeypatch):
    from tests.support.pretrain_fixtures import write_dataset

    other = write_dataset(tmp_path / "other", [21, 22], length=12)
    Spy.seen = []
    monkeypatch.setattr(eval_world_module, "WindowBatches", Spy)
    results = evaluate_world(run, [other], tmp_path / "eval", EvalWorldConfig(context=2, horizons=(1, 2), samples=3, videos=0), progress=False)
    assert Spy.seen[-1] == [(str(other), 0), (str(other), 1)]
    assert results["samples"] == 3 and results["videos"] == []
    assert not (tmp_path / "eval" / "videos").exists()


def test_one_output_directory_for_two_runs(run, data, tmp_path):
    """Evaluating another run into the same --out must use that run's tokenizer, not the first run's latents."""
    config = tiny_config(2)
    config = replace(config, tokenizer_train=replace(config.tokenizer_train, steps=2))
    torch.manual_seed(0)
    other = tmp_path / "other_run"
    pretrain([data], other, config, progress=False)
    small = replace(CONFIG, videos=0)
    evaluate_world(run, [data], tmp_path / "shared", small, progress=False)
    shared = evaluate_world(other, [data], tmp_path / "shared", small, progress=False)
    alone = evaluate_world(other, [data], tmp_path / "alone", small, progress=False)
    assert shared["methods"] == alone["methods"]
    assert shared["tokenizer_ceiling_psnr"] == alone["tokenizer_ceiling_psnr"]


def test_not_a_run_directory(data, tmp_path):
    with pytest.raises(CheckpointError, match="pretrain.json"):
        evaluate_world(tmp_path, [data], tmp_path / "eval", CONFIG, progress=False)


def test_episodes_shorter_than_context_plus_horizon(run, data, tmp_path):
    with pytest.raises(ValueError, match="long enough"):
        evaluate_world(run, [data], tmp_path / "eval", EvalWorldConfig(context=4, horizons=(1, 30), samples=2, videos=0), progress=False)


# -- do latent actions carry control? ----------------------------------------------------------------

CONTROL_STEPS = 600


def test_latent_actions_carry_control(tmp_path):
    """Action-free video where the square's velocity is drawn anew at every step: the past frames cannot
    tell where it goes next, the latent action inferred from the true future can. After training, dreaming
    with the true latent actions must beat dreaming with latent actions shuffled across windows.

    The tiny preset as it is (its latent-action bottleneck included), with the world model trained longer than its 30 steps.
    """
    from tests.support.pretrain_fixtures import write_dataset

    data = write_dataset(tmp_path / "video", range(100, 108), length=24, labelled=False, state=False, change=1.0, speed_range=(4.0, 8.0))
    torch.manual_seed(0)
    config = tiny_config(CONTROL_STEPS)
    config = replace(config, tokenizer_train=replace(config.tokenizer_train, steps=30))  # the preset's tokenizer
    summary = pretrain([data], tmp_path / "run", config, progress=False)
    results = evaluate_world(tmp_path / "run", [data], tmp_path / "eval", EvalWorldConfig(context=2, horizons=(1, 4), samples=32, videos=0),
                             progress=False)
    mse = {method: {h: scores[h]["latent_mse_at"] for h in ("h1", "h4")} for method, scores in results["methods"].items()}
    spread = summary["world_model"]["val_action_std"]
    assert spread > 0.05, f"latent actions collapsed (spread {spread:.4f}); latent MSE by method: {mse}"
    assert mse["model"]["h1"] < 0.9 * mse["shuffled_actions"]["h1"], mse
    assert mse["model"]["h4"] < mse["shuffled_actions"]["h4"], mse
    assert mse["model"]["h4"] < mse["zeroed_actions"]["h4"], mse


def test_the_runs_own_data_is_not_decoded_a_second_time(tmp_path_factory, tmp_path):
    from tests.support.pretrain_fixtures import tiny_dataset, tiny_run

    from wam.train.eval_world import EvalWorldConfig, evaluate_world

    run, _ = tiny_run(tmp_path_factory)
    evaluate_world(run, [tiny_dataset(tmp_path_factory)], tmp_path / "eval", EvalWorldConfig(samples=2, videos=0, horizons=(1, 2)),
                   progress=False)
    assert not (tmp_path / "eval" / "cache" / "frames.npy").exists()


def test_moving_psnr_scores_only_the_pixels_that_moved():
    import torch

    from wam.models.metrics import moving_psnr_per_frame, psnr_per_frame

    reference = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    target = reference.clone()
    target[:, :, :2, :2] = 200  # a small moving thing: 4 of 256 pixels
    wrong_motion, right_motion = reference.clone(), target.clone()
    # Whole-frame PSNR barely tells them apart; over the moving pixels, missing the motion is all there is.
    assert psnr_per_frame(wrong_motion, target)[0] > 20
    assert moving_psnr_per_frame(wrong_motion, target, reference)[0] < 5
    assert moving_psnr_per_frame(right_motion, target, reference)[0] == pytest.approx(60.0)
    assert torch.isnan(moving_psnr_per_frame(reference, reference, reference)).all(), "nothing moved: no score"
