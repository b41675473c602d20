import json

import numpy as np
import pytest
import torch

from wam.config import FinetuneConfig, pretrain_preset
from wam.train.augment import episode_shifts, shift_images
from wam.train.batches import WindowBatches
from wam.train.finetune import finetune
from wam.train.frame_cache import CachedEpisode, build_frame_cache
from wam.train.pretrain import load_tokenizer

from tests.support.finetune_fixtures import tiny_finetune_config
from tests.support.pretrain_fixtures import tiny_dataset, tiny_run


def _episodes(n: int, offset: int = 0) -> list[CachedEpisode]:
    return [CachedEpisode(dataset="data/d", episode=i, start=offset + i * 10, length=10, task="t", has_state=True,
                          has_actions=True) for i in range(n)]


def test_a_shift_moves_the_content_and_repeats_the_border():
    images = np.arange(2 * 6 * 6 * 3, dtype=np.uint8).reshape(2, 6, 6, 3)
    moved = shift_images(images, dx=2, dy=-1)  # right by 2, up by 1
    assert moved.shape == images.shape
    np.testing.assert_array_equal(moved[:, 0:5, 2:6], images[:, 1:6, 0:4])
    np.testing.assert_array_equal(moved[:, :, 0], moved[:, :, 2])  # the left edge, repeated
    np.testing.assert_array_equal(moved[:, 5], moved[:, 4])  # the bottom edge, repeated
    np.testing.assert_array_equal(shift_images(images, 0, 0), images)


def test_shifts_are_per_episode_bounded_and_reproducible():
    shifts = episode_shifts(_episodes(50), copies=3, pad=4, seed=7)
    assert shifts.shape == (3, 50, 2) and np.abs(shifts).max() <= 4
    assert len({tuple(s) for s in shifts.reshape(-1, 2)}) > 20  # not one shift for everything
    np.testing.assert_array_equal(shifts, episode_shifts(_episodes(50), copies=3, pad=4, seed=7))
    assert not np.array_equal(shifts, episode_shifts(_episodes(50), copies=3, pad=4, seed=8))
    # where a cache happens to put an episode does not change its shifts
    np.testing.assert_array_equal(shifts, episode_shifts(_episodes(50, offset=1000), copies=3, pad=4, seed=7))


def test_augmentation_is_refused_with_a_bad_pad():
    with pytest.raises(ValueError, match="augment_pad"):
        FinetuneConfig(augment_copies=2, augment_pad=0)


def test_windows_mix_recorded_and_shifted_copies(tmp_path_factory):
    cache = build_frame_cache([tiny_dataset(tmp_path_factory)], tmp_path_factory.mktemp("aug_cache"), 64, 4, 4, progress=False)
    latents = np.random.default_rng(0).normal(size=(len(cache.frames), 8, 8, 8)).astype(np.float16)
    shifted = np.stack([latents + 1, latents + 2])  # copy c differs from the recording by exactly c
    text = pretrain_preset("tiny").world.text
    plain = WindowBatches(cache, latents, cache.episodes, 3, 1, 64, 0, text)
    mixed = WindowBatches(cache, latents, cache.episodes, 3, 1, 64, 0, text, shifted=shifted)
    a, b = plain.batch(5), mixed.batch(5)
    offsets = (b["latents"] - a["latents"]).flatten(2).mean(-1)  # (B, W): which copy each window came from
    np.testing.assert_allclose(offsets, offsets[:, :1].expand_as(offsets), atol=1e-2)  # one copy for a whole window
    assert set(np.round(offsets[:, 0].numpy()).astype(int)) == {0, 1, 2}
    for key in ("state", "action", "text_ids"):  # everything but the frames is the recording's
        assert (a[key] == b[key]).all()


@pytest.mark.slow  # finetunes the shared tiny pretraining run
def test_finetuning_with_augmentation_encodes_each_episodes_shifted_frames(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    config = tiny_finetune_config(steps=6, episodes_per_task=2, augment_copies=2, augment_pad=2)
    summary = finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "aug", config, progress=False)
    files = list((tmp_path / "aug" / "cache").glob("shifted-*-2x2.npy"))
    assert len(files) == 1
    shifted = np.load(files[0], mmap_mode="r")
    trained = {tuple(e) for e in json.loads((tmp_path / "aug" / "split.json").read_text())["train"]}
    assert summary["episodes"]["train"] == len(trained) == 2
    cache = build_frame_cache([tiny_dataset(tmp_path_factory)], tmp_path / "aug" / "cache", 64, 4, 4, progress=False)
    tokenizer = load_tokenizer(tmp_path / "aug")
    chosen = [e for e in cache.episodes if (e.dataset, e.episode) in trained]
    shifts = episode_shifts(chosen, 2, 2, config.seed)
    for e in cache.episodes:
        rows = slice(e.start, e.start + e.length)
        if e in chosen:  # each copy is the tokenizer's latents of the episode's frames moved by its shift
            for c in range(2):
                dx, dy = shifts[c, chosen.index(e)]
                expected = tokenizer.encode_images(shift_images(np.array(cache.frames[rows]), int(dx), int(dy)))
                torch.testing.assert_close(torch.from_numpy(np.asarray(shifted[c, rows], np.float32)), expected.float(),
                                           atol=2e-3, rtol=0)
        else:  # never sampled: never encoded
            assert not np.asarray(shifted[:, rows]).any()
    saved = json.loads((tmp_path / "aug" / "finetune.json").read_text())["config"]
    assert saved["augment_copies"] == 2 and saved["augment_pad"] == 2


def test_views_side_by_side_are_shifted_each_on_its_own():
    from wam.train.augment import shift_images

    left = np.zeros((1, 8, 8, 3), np.uint8)
    right = np.full((1, 8, 8, 3), 255, np.uint8)
    strip = np.concatenate([left, right], axis=2)  # (1, 8, 16, 3): two views
    shifted = shift_images(strip, 3, 0)
    assert shifted.shape == strip.shape
    assert shifted[:, :, :8].max() == 0 and shifted[:, :, 8:].min() == 255  # nothing of one view reached the other
