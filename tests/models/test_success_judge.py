"""Guards wam.models.judge (named apart from tests/train/test_judge.py: test modules share one namespace)."""

import pytest
import torch

from wam.models.judge import SuccessJudge, SuccessJudgeConfig
from wam.models.text import tokenize


def test_a_judge_of_two_camera_views_reads_side_by_side_latents():
    config = SuccessJudgeConfig(latent_channels=4, latent_size=4, state_dim=3, hidden=16, views=2)
    judge = SuccessJudge(config)
    torch.manual_seed(0)
    latents = torch.rand(5, 4, 4, 8) * 2 - 1  # (B, C, h, 2*w): two views side by side
    batch = {"latents": latents, "state": torch.randn(5, 3), "text_ids": tokenize(["open the drawer"] * 5, config.text),
             "success": torch.tensor([0, 1, 0, 1, 1], dtype=torch.float32)}
    assert judge.logit(batch["latents"], batch["state"], batch["text_ids"]).shape == (5,)
    loss, metrics = judge(batch)
    loss.backward()
    assert torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1 and judge.net[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"2 camera view\(s\)"):
        judge.logit(latents[..., :4], batch["state"], batch["text_ids"])  # one view where the judge reads two


def test_a_judge_saved_before_views_loads_with_one_view():
    saved = SuccessJudgeConfig(hidden=16).to_dict()
    del saved["views"]
    config = SuccessJudgeConfig.from_dict(saved)
    assert config.views == 1 and config.latent_shape == (16, 8, 8)
