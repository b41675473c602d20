"""Guards wam.runs: one loader for every run record, and asking for the wrong kind names what the run is."""

import json

import pytest

from wam.config import finetune_preset, pretrain_preset
from wam.errors import CheckpointError
from wam.runs import load_run, run_kind


def _finetune_run(path, **fields):
    path.mkdir()
    record = {"config": finetune_preset("tiny").to_dict(), "pretrained": "/runs/pre", "robot": ["/data/robot"], "video": [],
              "play": ["/data/play"], "init_from": None, "stride": 2, "frame_seconds": None, "image_size": 64,
              "tasks": ["open the drawer"], "rewards": True, **fields}
    (path / "finetune.json").write_text(json.dumps(record))
    return path


def _pretrain_run(path, **fields):
    path.mkdir()
    (path / "pretrain.json").write_text(json.dumps({**pretrain_preset("tiny").to_dict(), **fields}))
    return path


def test_a_finetuning_record_reads_typed(tmp_path):
    record = load_run(_finetune_run(tmp_path / "ft", init_from="/runs/parent"), "finetune")
    assert record.kind == "finetune" and record.config == finetune_preset("tiny")
    assert (record.stride, record.image_size, record.rewards, record.tasks) == (2, 64, True, ("open the drawer",))
    assert str(record.pretrained) == "/runs/pre" and str(record.init_from) == "/runs/parent"
    assert record.data == {"robot": ["/data/robot"], "video": [], "play": ["/data/play"]}
    assert record.spec is None and record.views == 1  # saved before feature specs: one camera


def test_a_pretraining_record_reads_typed(tmp_path):
    record = load_run(_pretrain_run(tmp_path / "pre", init_from="/runs/first"), "pretrain")
    config = pretrain_preset("tiny")
    assert record.config == config and record.image_size == config.tokenizer.image_size and record.stride == config.stride
    assert str(record.init_from) == "/runs/first" and record.pretrained is None


def test_the_wrong_kind_is_named(tmp_path):
    pre, ft = _pretrain_run(tmp_path / "pre"), _finetune_run(tmp_path / "ft")
    assert (run_kind(pre), run_kind(ft), run_kind(tmp_path)) == ("pretrain", "finetune", None)
    with pytest.raises(CheckpointError, match=r"a pretraining run, not a finetuned WAM \(finetune it with `wam finetune"):
        load_run(pre, "finetune")
    with pytest.raises(CheckpointError, match="a finetuned WAM, not a pretraining run"):
        load_run(ft, "pretrain")
    assert load_run(pre).kind == "pretrain" and load_run(ft).kind == "finetune"


def test_a_directory_of_neither_kind_says_which_file_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match=r"finetune.json: missing \(not a finetuning run directory\)"):
        load_run(tmp_path, "finetune")
    with pytest.raises(CheckpointError, match=r"pretrain.json: missing \(not a pretraining run directory\)"):
        load_run(tmp_path, "pretrain")
    with pytest.raises(CheckpointError, match="not a finetuning run directory; .*nothing: no such run directory"):
        load_run(tmp_path / "nothing", "finetune")


def test_a_damaged_record_is_a_checkpoint_error_naming_the_file(tmp_path):
    (_finetune_run(tmp_path / "ft") / "finetune.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"finetune.json: not valid JSON"):
        load_run(tmp_path / "ft", "finetune")
    (tmp_path / "ft" / "finetune.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(CheckpointError, match=r"finetune.json: malformed run record \(KeyError"):
        load_run(tmp_path / "ft", "finetune")
