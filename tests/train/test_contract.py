"""Every training source produces batches on the declared contract (wam/train/contract.py)."""

from __future__ import annotations

import pytest
import torch

from wam.models.text import TextConfig
from wam.train.batches import FrameBatches, WindowBatches
from wam.train.contract import CHUNK_KEYS, FRAME_BATCH, WINDOW_BATCH, check_batch
from wam.train.frame_cache import build_frame_cache

from tests.support.pretrain_fixtures import tiny_dataset


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return build_frame_cache([tiny_dataset(tmp_path_factory)], tmp_path_factory.mktemp("contract") / "cache", 64, 4, 4,
                             progress=False)


def test_frame_and_window_sources_keep_the_contract(cache):
    frames = FrameBatches(cache, cache.episodes, 4, seed=0).batch(1)
    assert check_batch(frames, FRAME_BATCH)["G"] == 64
    latents = torch.zeros(len(cache.frames), 8, 8, 8).numpy()
    windows = WindowBatches(cache, latents, cache.episodes, 3, 2, 4, 0, TextConfig(buckets=64, dim=8),
                            require_actions=True, chunk=4).batch(1)
    sizes = check_batch(windows, {**WINDOW_BATCH, **CHUNK_KEYS})
    assert (sizes["B"], sizes["W"], sizes["K"], sizes["A"], sizes["S"], sizes["H"]) == (4, 3, 2, 4, 4, 4)


def test_an_off_contract_batch_is_named(cache):
    latents = torch.zeros(len(cache.frames), 8, 8, 8).numpy()
    batch = WindowBatches(cache, latents, cache.episodes, 3, 2, 4, 0, TextConfig(buckets=64, dim=8)).batch(1)
    with pytest.raises(ValueError, match="'state' has B = 2 where earlier keys had 4"):
        check_batch({**batch, "state": batch["state"][:2]}, WINDOW_BATCH)
    with pytest.raises(ValueError, match="no 'reward_mask'"):
        check_batch({k: v for k, v in batch.items() if k != "reward_mask"}, WINDOW_BATCH)
    with pytest.raises(ValueError, match="'success' is torch.float32"):
        check_batch({**batch, "success": batch["success"].float()}, WINDOW_BATCH)
