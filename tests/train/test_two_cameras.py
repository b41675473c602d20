"""Meta-World with the wrist camera, end to end: collected with two cameras, pretrained and finetuned on both
views, and evaluated in the simulator, which shows the policy the same two cameras."""

from __future__ import annotations

import numpy as np
import pytest

from wam.dojo.evaluate import EvalConfig, evaluate_policy
from wam.envs.collect import CollectConfig, collect
from wam.runs import load_run
from wam.train.finetune import finetune
from wam.train.pretrain import pretrain

from tests.support.finetune_fixtures import tiny_finetune_config
from tests.support.pretrain_fixtures import tiny_config

pytestmark = pytest.mark.slow  # the whole recipe on two cameras


def test_corner_and_wrist_cameras_through_the_recipe(tmp_path):
    data = tmp_path / "data"
    collect(CollectConfig(("reach-v3",), episodes=4, out=data, size=64, cameras=("corner2", "gripperPOV"),
                          max_steps=12, noise=0.1), progress=False)
    pretrain([data], tmp_path / "pre", tiny_config(), progress=False)
    finetune(tmp_path / "pre", [data], tmp_path / "wam", tiny_finetune_config(val_episodes=1), progress=False)
    record = load_run(tmp_path / "wam", "finetune")
    assert record.spec.views == ("corner2", "gripperPOV")
    from wam.train.pretrain import load_tokenizer

    latents_width = load_tokenizer(tmp_path / "wam").encode_images(np.zeros((1, 64, 128, 3), np.uint8)).shape[-1]
    assert latents_width == 2 * 8  # two views of an 8x8 latent grid side by side
    results = evaluate_policy(EvalConfig(tmp_path / "wam", ("reach-v3",), episodes=1, max_steps=8), progress=False)
    assert results["tasks"]["reach-v3"]["episodes"] == 1
