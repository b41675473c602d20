"""Configs survive a JSON round trip; presets are consistent."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from wam.config import PRETRAIN_PRESETS, PretrainConfig, config_changes, pretrain_config_from_dict, pretrain_preset
from wam.models.text import TextConfig
from wam.models.tokenizer import TokenizerConfig
from wam.models.world_model import WorldModelConfig


def test_world_model_config_round_trip():
    cfg = WorldModelConfig(d_model=96, n_layers=3, n_heads=4, context=6, state_dim=7, text=TextConfig(buckets=99, max_words=5, dim=12))
    data = json.loads(json.dumps(cfg.to_dict()))
    back = WorldModelConfig.from_dict(data)
    assert back == cfg
    assert isinstance(back.text, TextConfig)
    assert WorldModelConfig.from_dict(WorldModelConfig().to_dict()) == WorldModelConfig()


@pytest.mark.parametrize("name", sorted(PRETRAIN_PRESETS))
def test_pretrain_presets_round_trip_through_json(name):
    cfg = pretrain_preset(name)
    back = pretrain_config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert isinstance(back.tokenizer.channels, tuple) and isinstance(back.world_train.betas, tuple)
    assert cfg.tokenizer.latent_size == cfg.world.latent_size
    assert cfg.window - 1 <= cfg.world.context


def test_tiny_preset_shape():
    cfg = pretrain_preset("tiny")
    assert cfg.tokenizer.image_size == 64 and cfg.tokenizer.latent_size == 8
    assert cfg.world_train.steps == 30 and cfg.tokenizer_train.steps == 30


def test_unknown_preset_names_it():
    with pytest.raises(ValueError, match="huge"):
        pretrain_preset("huge")


def test_with_steps_scales_both_stages():
    cfg = pretrain_preset("cpu")
    assert cfg.with_steps(None) is cfg
    scaled = cfg.with_steps(300)
    assert scaled.world_train.steps == 300
    assert scaled.tokenizer_train.steps == round(300 * cfg.tokenizer_train.steps / cfg.world_train.steps)
    assert scaled.world_train.warmup_steps <= 30 and scaled.tokenizer_train.warmup_steps <= 30
    assert pretrain_preset("tiny").with_steps(1).world_train.steps == 1


def test_inconsistent_configs_are_refused():
    with pytest.raises(ValueError, match="context"):
        PretrainConfig(window=10, world=WorldModelConfig(context=8))
    with pytest.raises(ValueError, match="disagree"):
        PretrainConfig(tokenizer=TokenizerConfig(64, (32, 64, 128), 8))
    tiny = pretrain_preset("tiny")
    with pytest.raises(ValueError):
        replace(tiny, window=tiny.world.context + 2)


def test_config_changes_lists_nested_differences_and_treats_tuples_as_lists():
    saved = {"a": 1, "train": {"steps": 30, "betas": [0.9, 0.95]}, "gone": 2}
    asked = {"a": 1, "train": {"steps": 99, "betas": (0.9, 0.95)}, "new": 3}
    assert config_changes(asked, saved) == ["gone: 2 -> None", "new: None -> 3", "train.steps: 30 -> 99"]
    assert config_changes(saved, saved) == []
