import json
from dataclasses import replace

import pytest

from wam.errors import CheckpointError, DatasetError
from wam.train.finetune import finetune, load_wam, select_episodes
from wam.train.frame_cache import CachedEpisode

from tests.support.finetune_fixtures import tiny_finetune_config, tiny_wam_run
from tests.support.pretrain_fixtures import tiny_dataset, tiny_run, write_dataset

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)


def _metrics(run):
    return [json.loads(line) for line in (run / "wam" / "metrics.jsonl").read_text().splitlines()]


def test_finetuning_a_tiny_pretrained_model_lowers_the_action_loss(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    config = tiny_finetune_config(steps=120, episodes_per_task=6)
    config = replace(config, train=replace(config.train, eval_every=0))
    finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "ft", config, progress=False)
    losses = [m["action_l1"] for m in _metrics(tmp_path / "ft")]
    assert losses[-1] < 0.7 * losses[0], losses


def test_the_run_is_self_contained_and_loads(tmp_path_factory):
    run, summary = tiny_wam_run(tmp_path_factory)
    assert (run / "tokenizer" / "checkpoint" / "config.json").exists()
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) == 4 and summary["episodes"]["train"] == 4
    assert not {tuple(e) for e in split["train"]} & {tuple(e) for e in split["val"]}
    model = load_wam(run)
    assert model.config.chunk == tiny_finetune_config().chunk


def test_an_existing_run_needs_resume_and_resume_of_a_finished_run_trains_nothing(tmp_path_factory, capfd):
    run, summary = tiny_wam_run(tmp_path_factory)
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="--resume"):
        finetune(pretrained, [tiny_dataset(tmp_path_factory)], run, tiny_finetune_config(), progress=False)
    capfd.readouterr()
    again = finetune(pretrained, [tiny_dataset(tmp_path_factory)], run, tiny_finetune_config(), resume=True, progress=False)
    assert again["seconds"] == summary["seconds"] and again["wam"]["val_loss"] == pytest.approx(summary["wam"]["val_loss"], rel=1e-5)
    assert "episodes_per_task: 4 -> None" in capfd.readouterr().err  # the run was made with K = 4
    finetune(pretrained, [tiny_dataset(tmp_path_factory)], run, tiny_finetune_config(episodes_per_task=4), resume=True,
             progress=False)
    assert "saved config" not in capfd.readouterr().err  # the same settings: nothing to say
    again = finetune(pretrained, [tiny_dataset(tmp_path_factory)], run, tiny_finetune_config(steps=99, episodes_per_task=4),
                     resume=True, progress=False)
    assert again["seconds"] == summary["seconds"]  # the saved 30 steps stand: no training time added
    assert "train.steps: 30 -> 99" in capfd.readouterr().err


def test_from_scratch_trains_its_own_tokenizer_on_the_robot_frames(tmp_path_factory, tmp_path):
    summary = finetune(None, [tiny_dataset(tmp_path_factory)], tmp_path / "scratch", tiny_finetune_config(episodes_per_task=2),
                       progress=False)
    assert summary["pretrained"] is None and "tokenizer" in summary["seconds"]
    assert (tmp_path / "scratch" / "tokenizer" / "metrics.jsonl").exists()


def test_video_mixing_reuses_the_pretraining_cache(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    data = tiny_dataset(tmp_path_factory)  # the pretraining run's own data
    finetune(pretrained, [data], tmp_path / "mixed", tiny_finetune_config(steps=10, episodes_per_task=2), video=[data], progress=False)
    assert "video_mse" in _metrics(tmp_path / "mixed")[-1]
    assert not (tmp_path / "mixed" / "cache_video").exists()


def test_play_data_trains_the_dynamics_alongside_the_demonstrations(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    play = write_dataset(tmp_path / "play", range(40, 43), rewards=True)
    summary = finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "ft", tiny_finetune_config(steps=10, episodes_per_task=2),
                       play=[play], progress=False)
    assert summary["play"] == {"datasets": [str(play)], "episodes": 3}
    assert summary["episodes"]["train"] == 2 * len(json.loads((tmp_path / "ft" / "finetune.json").read_text())["tasks"])
    assert "play_dynamics" in _metrics(tmp_path / "ft")[-1]
    assert json.loads((tmp_path / "ft" / "finetune.json").read_text())["play"] == [str(play)]


def test_action_free_play_data_is_refused(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    video = write_dataset(tmp_path / "video", range(3), labelled=False)
    with pytest.raises(DatasetError, match="play data needs the actions"):
        finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "ft", tiny_finetune_config(), play=[video], progress=False)


def test_action_free_data_alone_is_refused_before_training(tmp_path_factory, tmp_path):
    pretrained, _ = tiny_run(tmp_path_factory)
    video = write_dataset(tmp_path / "video", range(3), labelled=False)
    with pytest.raises(DatasetError, match="no labelled episode"):
        finetune(pretrained, [video], tmp_path / "ft", tiny_finetune_config(), progress=False)
    assert not (tmp_path / "ft" / "wam").exists()


def test_a_pretraining_run_is_not_a_wam(tmp_path_factory):
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="pretraining run, not a finetuned WAM"):
        load_wam(pretrained)


def test_k_episodes_per_task_are_chosen_by_seed_and_validation_is_disjoint():
    episodes = [CachedEpisode("d", i, i * 10, 10, f"task {i % 3}", True, True) for i in range(30)]
    train, val = select_episodes(episodes, per_task=2, val_episodes=5, seed=0)
    assert sorted(e.task for e in train) == ["task 0"] * 2 + ["task 1"] * 2 + ["task 2"] * 2
    assert len(val) == 5 and not {e.episode for e in train} & {e.episode for e in val}
    assert {e.task for e in val} == {"task 0", "task 1", "task 2"}  # spread across tasks
    again, _ = select_episodes(episodes, per_task=2, val_episodes=5, seed=0)
    other, _ = select_episodes(episodes, per_task=2, val_episodes=5, seed=1)
    assert [e.episode for e in again] == [e.episode for e in train]
    assert [e.episode for e in other] != [e.episode for e in train]
    unlabelled = [CachedEpisode("v", 99, 0, 10, "task 0", True, False)]
    assert all(e.has_actions for e in select_episodes(episodes + unlabelled, None, 3, 0)[0])


def test_nested_k_subsets_grow_by_adding_episodes():
    episodes = [CachedEpisode("d", i, i * 10, 10, f"task {i % 2}", True, True) for i in range(20)]
    one = {e.episode for e in select_episodes(episodes, 1, 0, 3)[0]}
    three = {e.episode for e in select_episodes(episodes, 3, 0, 3)[0]}
    assert one < three


def test_init_from_starts_at_the_given_wams_weights(tmp_path_factory, tmp_path):
    """A world update: one step at a negligible rate from --init-from leaves the weights those of the run started from,
    while the same step from the pretrained world lands far from them (fresh action and reward heads)."""
    import torch

    start, _ = tiny_wam_run(tmp_path_factory)
    pretrained, _ = tiny_run(tmp_path_factory)
    config = tiny_finetune_config(steps=1, episodes_per_task=4)
    config = replace(config, train=replace(config.train, lr=1e-12, warmup_steps=1, weight_decay=0.0))
    finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "updated", config, init_from=start, progress=False)
    finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "plain", config, progress=False)
    before = load_wam(start).state_dict()
    updated, plain = load_wam(tmp_path / "updated").state_dict(), load_wam(tmp_path / "plain").state_dict()
    assert all(torch.allclose(before[n], updated[n], atol=1e-6) for n in before)
    assert not all(torch.allclose(before[n], plain[n], atol=1e-6) for n in before)
    assert json.loads((tmp_path / "updated" / "finetune.json").read_text())["init_from"] == str(start)
    # the robot frames the start run decoded are hard-linked, not decoded again; the plain run decodes its own
    inode = (start / "cache" / "frames.npy").stat().st_ino
    assert (tmp_path / "updated" / "cache" / "frames.npy").stat().st_ino == inode
    assert (tmp_path / "plain" / "cache" / "frames.npy").stat().st_ino != inode


def test_init_from_a_wam_of_another_pretraining_is_refused(tmp_path_factory, tmp_path):
    scratch = tmp_path / "scratch"
    finetune(None, [tiny_dataset(tmp_path_factory)], scratch, tiny_finetune_config(steps=2, episodes_per_task=2), progress=False)
    pretrained, _ = tiny_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="same pretraining"):
        finetune(pretrained, [tiny_dataset(tmp_path_factory)], tmp_path / "ft", tiny_finetune_config(), init_from=scratch,
                 progress=False)
    assert not (tmp_path / "ft" / "wam").exists()


def test_snapshots_keep_the_policy_as_it_was_at_earlier_steps(tmp_path_factory, tmp_path):
    import torch

    import wam.policy
    from wam.train.finetune import snapshot_steps

    pretrained, _ = tiny_run(tmp_path_factory)
    config = tiny_finetune_config(steps=12, episodes_per_task=2)
    config = replace(config, train=replace(config.train, snapshot_every=4))
    run = tmp_path / "snap"
    finetune(pretrained, [tiny_dataset(tmp_path_factory)], run, config, progress=False)
    assert snapshot_steps(run) == [4, 8, 12]
    early, last = load_wam(f"{run}@4"), load_wam(run)
    assert json.loads((run / "wam" / "snapshots" / "step-000004" / "config.json").read_text())["step"] == 4
    differs = [not torch.equal(a, b) for a, b in zip(early.state_dict().values(), last.state_dict().values())]
    assert any(differs)  # four steps of training in between
    assert all(torch.equal(a, b) for a, b in zip(load_wam(f"{run}@12").state_dict().values(), last.state_dict().values()))
    policy = wam.policy.load(f"{run}@8", device="cpu")
    assert policy.run == run and policy.chunk == config.chunk
    with pytest.raises(CheckpointError, match=r"kept steps \[4, 8, 12\]"):
        load_wam(f"{run}@5")
    (run / "wam" / "snapshots" / "step-000016.tmp-99999").mkdir()  # what a save killed midway leaves
    assert snapshot_steps(run) == [4, 8, 12]
    with pytest.raises(CheckpointError, match="not a finetuning run"):
        load_wam(f"{run}@last")  # not a step: the name of a run that does not exist
    with pytest.raises(CheckpointError, match="no such run directory"):
        wam.policy.load(f"{tmp_path / 'nothing'}@4")
