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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.errors import DatasetError


@dataclass(frozen=True)
class ReplayedEpisode:
    task: str
    source: str  # who drove: scripted_expert, policy:RUN, ...
    real_success: bool
    dream_success: bool
    length: int  # recorded actions


def replay_in_dream(world: str | Path, datasets: list[str | Path], tasks: list[str], student: bool = False,
                    success_hold: int = 1, device: str = "auto", max_episodes: int | None = None,
                    horizon: int | None = None) -> list[ReplayedEpisode]:
    """Every labelled episode of `tasks` in `datasets`, replayed in dreams of `world`."""
    from wam.data import STATE_KEY, Dataset
    from wam.data.layout import ACTION_KEY
    from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
    from wam.envs.tasks import TASK_TEXT

    if horizon is not None and horizon < 1:
        raise ValueError(f"horizon must be at least 1 action, got {horizon}")
    opened = [Dataset(path) for path in datasets]
    results = []
    for task in tasks:
        text = TASK_TEXT.get(task, task)
        episodes = [(d, m) for d in opened for m in d.episodes
                    if m.task == text and m.has_actions and m.success is not None][:max_episodes]
        if not episodes:
            raise DatasetError(f"{', '.join(map(str, datasets))}: no episode of task {text!r} with actions and a "
                               "success flag to replay")
        images = np.stack([d.frames(m.index, d.camera_keys[0])[0] for d, m in episodes])
        lows = [d.low_dim(m.index) for d, m in episodes]
        states = np.stack([low[STATE_KEY][0] for low in lows]).astype(np.float32)
        # An episode's last action is the label of its last frame, never executed: replay the ones before it.
        actions = [low[ACTION_KEY][:-1][:horizon] for low in lows]
        # Reality's verdict over the same actions: frame t + 1 is where action t arrives.
        real = [bool(np.asarray(low["success"])[1 : len(a) + 1].any()) if "success" in low else bool(m.success)
                for low, a, (_, m) in zip(lows, actions, episodes)]
        steps = horizon or max(len(a) for a in actions)
        env = DreamVectorEnv(DreamConfig(Path(world), task, num_envs=len(episodes), max_episode_steps=steps + 1,
                                         decode_images=False, terminate_on_success=False, device=device, student=student,
                                         success_hold=success_hold))
        if env.tokenizer_image_size != images.shape[1]:
            raise DatasetError(f"{episodes[0][0].root}: {images.shape[1]}-pixel frames, the world {world} sees "
                               f"{env.tokenizer_image_size}")
        env.reset(seed=list(range(len(episodes))), options={"image": images, "state": states})
        dreamed = np.zeros(len(episodes), bool)
        for t in range(steps):
            batch = np.stack([a[t] if t < len(a) else np.zeros_like(a[0]) for a in actions]).clip(-1, 1)
            _, _, _, _, info = env.step(batch.astype(np.float32))
            dreamed |= np.asarray(info["success"], bool)
        env.close()
        for (_, meta), did, acted, succeeded in zip(episodes, dreamed, actions, real):
            results.append(ReplayedEpisode(task, str(meta.info.get("source", "unknown")), succeeded, bool(did), len(acted)))
    return results


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
