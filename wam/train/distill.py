"""Distil a WAM's action-conditioned world model into a fast dream student.

The teacher (the finetuned WAM, frozen) predicts, for real windows of the run's own robot
and play data, the next latent, state, reward and success logit after the last frame,
given the real actions; the student (`wam/models/dream_student.py`) learns to predict the
same from the last two frames. Context lengths vary from one frame to the teacher's full
context, as they do in a dream (a dream starts with one frame). Batches are a pure
function of the step (the teacher is deterministic), so resume is exact like every other
stage. The student lives in the world run, `RUN/student/`, and `DreamSettings(student=True)`
(or `wam eval --env dream/RUN --dream-student`) dreams with it.

Validation: the same loss on windows of the run's held-out robot episodes, and how often
student and teacher agree on success.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from wam.config import DistillConfig
from wam.errors import CheckpointError
from wam.models.dream_student import DreamStudent, DreamStudentConfig
from wam.train.batches import WindowBatches
from wam.train.checkpoint import load_checkpoint, resolve
from wam.runs import load_run
from wam.train.frame_cache import build_frame_cache
from wam.train.loop import TrainResult, resolve_device
from wam.train.pretrain import SPLIT_FILE, encode_latents, load_tokenizer
from wam.data.layout import atomic_write_json
from wam.train import distributed
from wam.train.stages import train_stage, validation_metrics

STUDENT_DIR = "student"


class TeacherBatches:
    """Windows of real data, cut to a random context length, labelled by the teacher; a pure function of step."""

    def __init__(self, windows: list[WindowBatches], teacher, device: torch.device, context: int, seed: int):
        self.windows, self.teacher, self.device, self.context, self.seed = windows, teacher, device, context, seed

    @torch.no_grad()
    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        source = self.windows[int(rng.integers(len(self.windows)))]
        length = int(rng.integers(1, self.context + 1))
        full = source.batch(step)
        batch = {"latents": full["latents"][:, -length:], "action": full["action"][:, -length:],
                 "state": full["state"][:, -length:], "text_ids": full["text_ids"]}
        batch = {k: v.to(self.device) for k, v in batch.items()}
        latent, state, reward, success = self.teacher.step(batch["latents"], batch["action"], batch["text_ids"], batch["state"])
        return {**batch, "teacher_latent": latent[:, -1], "teacher_state": state[:, -1], "teacher_reward": reward[:, -1],
                "teacher_success": success[:, -1]}


def distill(world: str | Path, config: DistillConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train the student of the WAM in `world` into `world/student`; returns a summary (also student/summary.json)."""
    from wam.train.finetune import load_wam

    world = Path(world)
    record = load_run(world, "finetune")
    if not record.rewards:
        raise CheckpointError(f"{world}: finetuned without rewards and success flags; it has no dream to distil")
    out = world / STUDENT_DIR
    if resolve(out / "checkpoint") is not None and not resume:
        raise CheckpointError(f"{out}: a student already exists; pass --resume to continue it")
    device = resolve_device(config.train.device)
    teacher = load_wam(world).to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    tokenizer = load_tokenizer(world)
    step = json.loads((resolve(world / "tokenizer" / "checkpoint") / "config.json").read_text())["step"]
    wc, stride = teacher.config.world, record.stride
    context = record.config.window - 1
    held_out = {tuple(v) for v in json.loads((world / SPLIT_FILE).read_text())["val"]}

    sources, val_source = [], None
    for name, paths in (("cache", record.data["robot"]), ("cache_play", record.data["play"])):
        if not paths:
            continue
        cache = build_frame_cache(paths, world / name, record.image_size, wc.state_dim,
                                  teacher.config.robot_action_dim, progress, record.spec_for(paths), record.fit)
        latents = encode_latents(tokenizer, cache, world / name / f"latents-{step}.npy", device, progress)
        labelled = [e for e in cache.episodes if e.has_actions]
        train_eps = [e for e in labelled if (e.dataset, e.episode) not in held_out or name != "cache"]
        val_eps = [e for e in labelled if (e.dataset, e.episode) in held_out and name == "cache"]
        sources.append(WindowBatches(cache, latents, train_eps, context, stride, config.train.batch_size,
                                     config.seed + len(sources), wc.text, require_actions=True))
        if val_eps:
            val_source = WindowBatches(cache, latents, val_eps, context, stride, 32, config.seed + 100, wc.text, require_actions=True)
    batches = TeacherBatches(sources, teacher, device, context, config.seed)
    val_teacher = TeacherBatches([val_source or sources[0]], teacher, device, context, config.seed + 1)
    val_batches = [val_teacher.batch(i) for i in range(4)]

    student_cfg = DreamStudentConfig(wc.latent_channels, wc.latent_size, wc.state_dim, teacher.config.robot_action_dim, stride,
                                     config.hidden, config.layers, text=wc.text, views=record.views)
    torch.manual_seed(config.seed)
    student = DreamStudent(student_cfg)
    result: TrainResult | None = train_stage(
        student, batches, config.train, out, model_config=student_cfg.to_dict(), kind=DreamStudent.kind, resume=resume,
        evaluate=lambda model: validation_metrics(model, val_batches, "latent_mse"), progress=progress)
    student = load_student(world).to(device)
    summary = {"world": str(world), "config": config.to_dict(), "params": sum(p.numel() for p in student.parameters()),
               "teacher_params": sum(p.numel() for p in teacher.parameters()),
               "seconds": None if result is None else round(result.seconds, 1),
               **validation_metrics(student, val_batches, "latent_mse")}
    if distributed.current().main:  # under torchrun, rank 0 writes
        atomic_write_json(out / "summary.json", summary)
    return summary


def load_student(world: str | Path) -> DreamStudent:
    directory = resolve(Path(world) / STUDENT_DIR / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{world}: no dream student; distil one first (`wam distill --world {world}`)")
    config = json.loads((directory / "config.json").read_text())["config"]
    model = DreamStudent(DreamStudentConfig.from_dict(config))
    load_checkpoint(directory, model, expected_kind=DreamStudent.kind)
    return model.eval()
