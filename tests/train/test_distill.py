import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from wam.config import DreamSettings
from wam.config import distill_preset
from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
from wam.envs import make
from wam.errors import CheckpointError
from wam.train.distill import distill, load_student

from tests.support.finetune_fixtures import tiny_dream_run, tiny_wam_run

pytestmark = pytest.mark.slow  # the shared tiny pretraining, WAM and dream runs (trained once per session)

TASK = "move the square"
_CACHE: dict = {}


def _config(steps: int = 40):
    config = distill_preset("tiny")
    return replace(config, train=replace(config.train, device="cpu", steps=steps, eval_every=steps, checkpoint_every=steps))


def student_run(tmp_path_factory):
    """A copy of the tiny dream run with a distilled student in it."""
    if "run" not in _CACHE:
        run = tmp_path_factory.mktemp("distil") / "world"
        shutil.copytree(tiny_dream_run(tmp_path_factory), run)
        _CACHE["run"] = run, distill(run, _config(), progress=False)
    return _CACHE["run"]


def test_distillation_brings_the_student_towards_the_teacher(tmp_path_factory):
    run, summary = student_run(tmp_path_factory)
    metrics = [json.loads(line) for line in (run / "student" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["latent_mse"] for m in metrics if "latent_mse" in m]
    assert losses[-1] < 0.7 * losses[0], losses
    assert summary["params"] < summary["teacher_params"]
    assert json.loads((run / "student" / "summary.json").read_text())["val_latent_mse"] == pytest.approx(summary["val_latent_mse"])


def test_teacher_batches_are_a_pure_function_of_the_step(tmp_path_factory):
    from wam.train.distill import TeacherBatches
    from wam.train.finetune import load_wam

    run, _ = student_run(tmp_path_factory)
    teacher = load_wam(run)
    from wam.train.batches import WindowBatches
    from wam.train.frame_cache import load_frame_cache

    cache = load_frame_cache(run / "cache")
    latents = np.load(next((run / "cache").glob("latents-*.npy")), mmap_mode="r")
    windows = WindowBatches(cache, latents, cache.episodes, 3, teacher.config.stride, 4, 0, teacher.config.world.text,
                            require_actions=True)
    batches = TeacherBatches([windows], teacher, torch.device("cpu"), 3, seed=1)
    a, b = batches.batch(7), batches.batch(7)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lengths = {batches.batch(s)["latents"].shape[1] for s in range(20)}
    assert lengths == {1, 2, 3}, "contexts of every length a dream goes through"


def test_a_student_dream_passes_the_env_checker_and_batches_like_single_dreams(tmp_path_factory):
    run, _ = student_run(tmp_path_factory)
    check_env(make(f"dream/{run}", task=TASK, max_episode_steps=12, device="cpu", settings=DreamSettings(student=True)), skip_render_check=False)
    actions = np.random.default_rng(0).uniform(-1, 1, (9, 2, 4)).astype(np.float32)
    batch = DreamVectorEnv(DreamConfig(run, TASK, num_envs=2, max_episode_steps=6, device="cpu", settings=DreamSettings(student=True)))
    assert batch.stepper is not batch.model
    obs, _ = batch.reset(seed=[3, 4])
    latents = [obs["latent"]]
    for a in actions:
        latents.append(batch.step(a)[0]["latent"])
    single = DreamVectorEnv(DreamConfig(run, TASK, num_envs=1, max_episode_steps=6, device="cpu", settings=DreamSettings(student=True)))
    obs, _ = single.reset(seed=[4])
    alone = [obs["latent"]]
    for a in actions:
        alone.append(single.step(a[1:])[0]["latent"])
    np.testing.assert_allclose(np.stack(latents)[:, 1], np.stack(alone)[:, 0], atol=1e-5)


def test_a_student_dream_differs_from_the_teacher_dream_but_stays_close(tmp_path_factory):
    run, _ = student_run(tmp_path_factory)
    actions = np.random.default_rng(1).uniform(-1, 1, (6, 1, 4)).astype(np.float32)
    traces = []
    for student in (False, True):
        env = DreamVectorEnv(DreamConfig(run, TASK, num_envs=1, max_episode_steps=20, device="cpu", settings=DreamSettings(student=student)))
        obs, _ = env.reset(seed=[2])
        trace = [obs["latent"]]
        for a in actions:
            trace.append(env.step(a)[0]["latent"])
        traces.append(np.stack(trace))
    teacher, student = traces
    np.testing.assert_array_equal(teacher[0], student[0])
    assert not np.array_equal(teacher[-1], student[-1])
    assert np.abs(teacher - student).mean() < 0.2


def test_missing_and_existing_students_are_clear_errors(tmp_path_factory):
    run, _ = student_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="--resume"):
        distill(run, _config(), progress=False)
    assert distill(run, _config(), resume=True, progress=False)["seconds"] is None  # finished: nothing to train
    with pytest.raises(CheckpointError, match="no dream student"):
        load_student(tiny_dream_run(tmp_path_factory))
    labelled, _ = tiny_wam_run(tmp_path_factory)
    with pytest.raises(CheckpointError, match="without rewards"):
        distill(labelled, _config(), progress=False)


def test_a_policy_is_evaluated_in_a_student_dream(tmp_path_factory):
    from wam.dojo.evaluate import EvalConfig, evaluate_policy

    run, _ = student_run(tmp_path_factory)
    result = evaluate_policy(EvalConfig(run, (TASK,), episodes=2, max_steps=8, env=f"dream/{run}", dream=DreamSettings(student=True)),
                             progress=False)
    assert result["tasks"][TASK]["episodes"] == 2
