"""Recorded episodes replayed in a dream: does the dream call the same successes as reality?

A dream evaluation can only be as good as the dream's verdict on what a policy does. The
sharpest check of that verdict needs no policy at all: take recorded episodes (expert,
play, or a policy's rollouts from `wam collect --policy`), start a dream from each
episode's first frame and state, replay its recorded actions open-loop, and compare the
dream's success (the success head, held `success_hold` model steps, at any step within the
episode's length) with the simulator's. A dream that succeeds where reality failed is one
a policy can exploit (its false-positive rate is the exploit); one that fails where
reality succeeded undercounts good policies. All episodes of a task run as one batch.

Recorded episodes end at their first success, so a failure would give the dream the whole
step limit to find a success and a success only the steps it took. Every dream therefore
runs the same number of control steps, `horizon` (default: the longest episode): its
recorded actions, then zero actions (the arm holds still where the episode left it).
Reality's verdict is a success flag within the recorded frames up to the horizon.

`judge_real_frames` takes the dream out: the success head reads the real frames of each
episode (its recorded latents, states and actions as context, no imagined frame), so its
rates say what the head can see at all. A head that separates real successes from real
failures on real frames but not in the replay is let down by the dynamics (the dream
drifts); one that cannot separate them on real frames is let down by the observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.config import DreamSettings
from wam.data import STATE_KEY, Dataset
from wam.data.layout import ACTION_KEY
from wam.envs.tasks import instruction
from wam.errors import DatasetError
from wam.models.text import tokenize


@dataclass(frozen=True)
class ReplayedEpisode:
    task: str
    source: str  # who drove: scripted_expert, policy:RUN, ...
    real_success: bool
    dream_success: bool
    length: int  # recorded actions


def replay_in_dream(world: str | Path, datasets: list[str | Path], tasks: list[str], settings: DreamSettings = DreamSettings(),
                    device: str = "auto", max_episodes: int | None = None, horizon: int | None = None,
                    sources: tuple[str, ...] = ()) -> list[ReplayedEpisode]:
    """Every labelled episode of `tasks` in `datasets`, replayed in dreams of `world` that step and judge as
    `settings` says (its student, its judge, success_hold)."""
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv

    if horizon is not None and horizon < 1:
        raise ValueError(f"horizon must be at least 1 action, got {horizon}")
    results = []
    for task in tasks:
        episodes = _labelled_episodes(datasets, task, horizon, max_episodes, sources)
        images = np.stack([e.images[0] for e in episodes])
        states = np.stack([e.states[0] for e in episodes])
        steps = horizon or max(len(e.actions) for e in episodes)
        env = DreamVectorEnv(DreamConfig(Path(world), task, num_envs=len(episodes), max_episode_steps=steps + 1,
                                         decode_images=False, terminate_on_success=False, device=device, settings=settings))
        if env.tokenizer_image_size != images.shape[1]:
            raise DatasetError(f"{', '.join(map(str, datasets))}: {images.shape[1]}-pixel frames, the world {world} sees "
                               f"{env.tokenizer_image_size}")
        env.reset(seed=list(range(len(episodes))), options={"image": images, "state": states})
        dreamed = np.zeros(len(episodes), bool)
        for t in range(steps):
            batch = np.stack([e.actions[t] if t < len(e.actions) else np.zeros_like(e.actions[0]) for e in episodes])
            _, _, _, _, info = env.step(batch.clip(-1, 1).astype(np.float32))
            dreamed |= np.asarray(info["success"], bool)
        env.close()
        results.extend(ReplayedEpisode(task, e.source, e.real_success, bool(did), len(e.actions))
                       for e, did in zip(episodes, dreamed))
    return results


@dataclass(frozen=True)
class _Episode:
    task: str
    source: str
    images: np.ndarray  # (L, H, W, 3) uint8
    states: np.ndarray  # (L, S)
    actions: np.ndarray  # (L - 1, A): the executed ones
    real_success: bool  # a success flag in frames 1 .. len(actions)


def _labelled_episodes(datasets: list[str | Path], task: str, horizon: int | None, max_episodes: int | None,
                       sources: tuple[str, ...] = ()) -> list[_Episode]:
    """The task's episodes with actions and success flags (of drivers whose source contains one of `sources`)."""

    text = instruction(task)
    found = [(d, m) for d in (Dataset(path) for path in datasets) for m in d.episodes
             if m.task == text and m.has_actions and m.success is not None
             and (not sources or any(name in str(m.info.get("source", "")) for name in sources))][:max_episodes]
    if not found:
        driven = f" driven by {', '.join(sources)}" if sources else ""
        raise DatasetError(f"{', '.join(map(str, datasets))}: no episode of task {text!r}{driven} with actions and a "
                           "success flag to replay")
    episodes = []
    for dataset, meta in found:
        low = dataset.low_dim(meta.index)
        actions = low[ACTION_KEY][:-1][:horizon]  # the last action labels the last frame and is never executed
        frames = len(actions) + 1
        # Reality's verdict over the same actions: frame t + 1 is where action t arrives.
        real = bool(np.asarray(low["success"])[1:frames].any()) if "success" in low else bool(meta.success)
        episodes.append(_Episode(task, str(meta.info.get("source", "unknown")),
                                 dataset.frames(meta.index, dataset.camera_keys[0], count=frames),
                                 np.array(low[STATE_KEY][:frames], np.float32), np.array(actions, np.float32), real))
    return episodes


def judge_real_frames(world: str | Path, datasets: list[str | Path], tasks: list[str], success_hold: int = 1,
                      success_threshold: float = 0.5, device: str = "auto", max_episodes: int | None = None,
                      horizon: int | None = None, sources: tuple[str, ...] = (), judge: bool = False) -> list[ReplayedEpisode]:
    """The success head's verdict on every labelled episode's real frames (no dreaming): `dream_success` is
    the head's probability above the threshold for `success_hold` model steps in a row, at any frame. With
    `judge`, the world's success judge (`wam judge`) reads the frames instead."""
    import torch

    from wam.dojo.dream_env import _load_dreamer

    if success_hold < 1:
        raise ValueError(f"success_hold must be at least 1 model step, got {success_hold}")
    if horizon is not None and horizon < 1:
        raise ValueError(f"horizon must be at least 1 action, got {horizon}")
    torch_device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    model, tokenizer, record = _load_dreamer(Path(world), torch_device)
    if judge:
        from wam.train.judge import load_judge

        success_judge = load_judge(world).to(torch_device)
        if success_judge.kind != "success_judge":
            raise ValueError(f"{world}: its judge is a {success_judge.kind}, which reads clips; judge real frames with a frame "
                             "judge (wam judge --kind frame), or replay in dreams (wam eval --dream-judge)")
    stride, context = record.stride, record.config.window - 1
    results = []
    for task in tasks:
        text_ids = tokenize([instruction(task)], model.config.world.text).to(torch_device)
        for episode in _labelled_episodes(datasets, task, horizon, max_episodes, sources):
            if episode.images.shape[1] != record.image_size:
                raise DatasetError(f"{', '.join(map(str, datasets))}: {episode.images.shape[1]}-pixel frames, the world "
                                   f"{world} sees {record.image_size}")
            verdict = _head_verdict(model, tokenizer, episode, text_ids, stride, context, success_hold, success_threshold,
                                    success_judge if judge else None)
            results.append(ReplayedEpisode(task, episode.source, episode.real_success, verdict, len(episode.actions)))
    return results


def _head_verdict(model, tokenizer, episode: _Episode, text_ids, stride: int, context: int, hold: int,
                  threshold: float, judge=None) -> bool:
    """Success-head probabilities on real frames, every `stride`-th frame from each offset (so a success on
    any frame is seen), each read with up to `context` real frames of history as the dream would have."""
    import torch

    device = text_ids.device
    with torch.no_grad():
        latents = tokenizer.encode_images(episode.images)
        states = torch.from_numpy(episode.states).to(device)
        actions = torch.from_numpy(episode.actions).to(device)
        for offset in range(stride):
            grid = list(range(offset, len(episode.actions) - stride + 1, stride))  # frames whose next frame exists
            if not grid:
                continue
            if judge is not None:  # the judge reads the arrival frames themselves
                arrivals = torch.tensor(grid, device=device) + stride
                probabilities = torch.sigmoid(judge.logit(latents[arrivals], states[arrivals],
                                                          text_ids.expand(len(grid), -1))).cpu().numpy()
            else:
                probabilities = _head_probabilities(model, latents, states, actions, text_ids, grid, stride, context)
            agreeing = 0
            for probability in probabilities:
                agreeing = agreeing + 1 if probability > threshold else 0
                if agreeing >= hold:
                    return True
    return False


def _head_probabilities(model, latents, states, actions, text_ids, grid: list[int], stride: int, context: int) -> np.ndarray:
    """The WAM head's success probability for the frame after each grid frame, batched by window length."""
    import torch

    device = text_ids.device
    probabilities = np.zeros(len(grid))
    by_length: dict[int, list[int]] = {}
    for j in range(len(grid)):
        by_length.setdefault(min(j + 1, context), []).append(j)
    for length, rows in by_length.items():
        windows = torch.tensor([grid[j - length + 1: j + 1] for j in rows], device=device)  # (G, T)
        acted = actions[windows[..., None] + torch.arange(stride, device=device)]  # (G, T, stride, A)
        _, _, _, success = model.step(latents[windows], acted, text_ids.expand(len(rows), -1), states[windows])
        probabilities[rows] = torch.sigmoid(success[:, -1]).cpu().numpy()
    return probabilities


def agreement(episodes: list[ReplayedEpisode]) -> dict:
    """Counts and rates: the dream's true-positive rate on real successes, false-positive rate on real failures."""
    real = np.array([e.real_success for e in episodes])
    dream = np.array([e.dream_success for e in episodes])

    def rate(mask: np.ndarray) -> float | None:
        return float(dream[mask].mean()) if mask.any() else None

    tpr, fpr = rate(real), rate(~real)
    return {"episodes": len(episodes), "real_successes": int(real.sum()), "real_success": float(real.mean()),
            "dream_success": float(dream.mean()), "agreement": float((real == dream).mean()),
            "true_positive_rate": tpr, "false_positive_rate": fpr,
            "balanced_accuracy": None if tpr is None or fpr is None else (tpr + 1 - fpr) / 2}
