"""The success judge's dreamed training frames: real episodes replayed open-loop in the world's dream.

A judge trained on real frames alone is fooled by dreamed ones; replaying the real episodes
in the dream, labelled with reality's success flags, shows it what the world draws for the
same actions. Dreaming is the dojo's (a later stage than training), so `wam judge --dreamed`
hands `dreamed_source` to `wam.train.judge.train_judge`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wam.dojo.dream_env import DreamConfig, DreamVectorEnv
from wam.errors import DatasetError
from wam.train.frame_cache import CachedEpisode, FrameCache
from wam.train.judge import JudgeSource
from wam.train.progress import progress_bar


def dreamed_source(world: Path, source: JudgeSource, device: torch.device, batch: int = 64, progress: bool = True) -> JudgeSource:
    """`source`'s training episodes replayed open-loop in the world's dream, as judge training frames: the
    dream's frame after each model step, labelled with the real success flag of the frame the actions reached."""
    cache = source.cache
    by_task: dict[str, list[CachedEpisode]] = {}
    for e in source.train:
        if e.has_actions and e.length > 1:
            by_task.setdefault(e.task, []).append(e)
    chunks = [(task, eps[i: i + batch]) for task, eps in by_task.items() for i in range(0, len(eps), batch)]
    latents, states, flags, episodes = [], [], [], []
    with progress_bar("dream replays", sum(len(c) for _, c in chunks), "episodes", enabled=progress) as advance:
        for task, chunk in chunks:
            steps = max(e.length - 1 for e in chunk)  # the last action labels the last frame and is never executed
            env = DreamVectorEnv(DreamConfig(world, task, num_envs=len(chunk), max_episode_steps=steps + 1,
                                             decode_images=False, terminate_on_success=False, device=str(device)))
            env.reset(seed=list(range(len(chunk))),
                      options={"image": np.stack([cache.frames[e.start] for e in chunk]),
                               "state": np.stack([cache.state[e.start] for e in chunk]).astype(np.float32)})
            rows: list[list[tuple]] = [[] for _ in chunk]
            for t in range(steps):
                actions = np.stack([cache.action[e.start + t] if t < e.length - 1 else np.zeros_like(cache.action[0])
                                    for e in chunk]).clip(-1, 1).astype(np.float32)
                obs, *_ = env.step(actions)
                if (t + 1) % env.stride:
                    continue  # no model step yet: the observation is the last predicted frame
                for i, e in enumerate(chunk):
                    if t + 1 < e.length:
                        rows[i].append((obs["latent"][i], obs["state"][i], bool(cache.success[e.start + t + 1])))
            for e, replay in zip(chunk, rows):
                if not replay:
                    continue
                episodes.append(CachedEpisode(e.dataset, e.episode, sum(len(x) for x in latents), len(replay), e.task,
                                              has_state=True, has_actions=False, has_reward=True))
                latents.append(np.stack([r[0] for r in replay]).astype(np.float16))
                states.append(np.stack([r[1] for r in replay]).astype(np.float32))
                flags.append(np.array([r[2] for r in replay], bool))
            advance(len(chunk))
    if not episodes:
        raise DatasetError(f"{world}: no episode with actions to replay in the dream for the judge")
    state = np.concatenate(states)
    dreamed = FrameCache(world / "dreamed", np.empty((0,), np.uint8), state, np.zeros((len(state), cache.action.shape[1]),
                         np.float32), episodes, np.zeros(len(state), np.float32), np.concatenate(flags))
    return JudgeSource(dreamed, np.concatenate(latents), episodes, [])
