"""The rollouts of RL in dreams: groups of dreams from one first frame each, rolled out by the current policy with noise.

A group is the unit: its first frame (the dream's reset seed) and its exploration noise come from generators seeded by
(seed, step, group index), so any set of groups can be rolled out anywhere, in one batched dream on this device or
spread over Ray actors (`RayDreamRollouts`), and the rollouts are the same. Rollouts are the training loop's batches:
batch N is collected with the weights after step N - 1, so a resumed run repeats the same rollouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch


def group_seed(seed: int, step: int, group: int, stream: int) -> int:
    """Stream 0: the group's first frame; stream 1: its exploration noise."""
    return int(np.random.SeedSequence([seed, step, group, stream]).generate_state(1)[0] & 0x7FFFFFFF)


@torch.no_grad()
def rollout_groups(chunk: Callable, dreams, groups: Sequence[int], step: int, stride: int, execute: int, context: int,
                   config) -> dict[str, Any]:
    """Roll out `config.group` dreams from each group's first frame for `config.horizon` control steps.

    `chunk(latents, text_ids, state)` is the policy's chunk mean; `dreams` a batched dream of len(groups) * group
    envs. Returns the decisions (context, noisy chunk), the mean predicted reward per step and the first success step."""
    n = len(groups) * config.group
    if dreams.num_envs != n:
        raise ValueError(f"the dream holds {dreams.num_envs} envs, {len(groups)} groups of {config.group} need {n}")
    obs, _ = dreams.reset(seed=[group_seed(config.seed, step, g, 0) for g in groups for _ in range(config.group)])
    noise_rngs = [torch.Generator(device="cpu").manual_seed(group_seed(config.seed, step, g, 1)) for g in groups]
    frames, states = [[] for _ in range(n)], [[] for _ in range(n)]
    decisions, rewards = [], np.zeros(n)
    first_success = np.full(n, config.horizon)  # control step (0-based) of each rollout's first success; horizon: none
    queue: np.ndarray | None = None
    for t in range(config.horizon):
        if t % stride == 0:
            for i in range(n):
                frames[i] = (frames[i] + [torch.from_numpy(obs["latent"][i])])[-context:]
                states[i] = (states[i] + [torch.from_numpy(obs["state"][i])])[-context:]
        if t % execute == 0:
            latents = torch.stack([torch.stack(f) for f in frames]).to(dreams.device)
            state = torch.stack([torch.stack(s) for s in states]).to(dreams.device)
            mean = chunk(latents, dreams.text_ids, state)
            noise = torch.cat([torch.randn((config.group, *mean.shape[1:]), generator=g) for g in noise_rngs])
            noisy = mean + noise.to(mean.device) * config.sigma
            decisions.append({"latents": latents.cpu(), "state": state.cpu(), "chunk": noisy.cpu()})
            queue = noisy[:, :execute].clamp(-1, 1).cpu().numpy()
        obs, reward, _, _, info = dreams.step(queue[:, t % execute])
        rewards += reward / config.horizon
        first_success[np.asarray(info["success"], dtype=bool) & (first_success == config.horizon)] = t
    return {"decisions": decisions, "rewards": rewards, "first_success": first_success, "text_ids": dreams.text_ids.cpu()}


def merge_parts(parts: list[dict]) -> dict:
    """Rollouts of consecutive group ranges, joined as if one dream had run them all."""
    if len(parts) == 1:
        return parts[0]
    decisions = [{key: torch.cat([p["decisions"][d][key] for p in parts]) for key in parts[0]["decisions"][d]}
                 for d in range(len(parts[0]["decisions"]))]
    return {"decisions": decisions, "rewards": np.concatenate([p["rewards"] for p in parts]),
            "first_success": np.concatenate([p["first_success"] for p in parts]),
            "text_ids": torch.cat([p["text_ids"] for p in parts])}


def to_batch(rolled: dict, config, returns_of: Callable, advantages_of: Callable) -> dict:
    """The loop's batch: every decision with its rollout's advantage, and the rollouts' mean return and success."""
    returns = returns_of(rolled["rewards"], rolled["first_success"], config)
    success = (rolled["first_success"] < config.horizon).astype(float)
    advantage = torch.from_numpy(advantages_of(returns, config.group, config.advantage))
    return {"decisions": [{**d, "text_ids": rolled["text_ids"], "advantage": advantage} for d in rolled["decisions"]],
            "mean_return": float(returns.mean()), "success_rate": float(success.mean())}


class RolloutWorker:
    """A Ray actor's state: its own batched dream for a fixed range of groups, and a copy of the policy."""

    def __init__(self, world_run: str, policy_run: str, which: str, groups: int, config):
        from wam.envs.registry import make
        from wam.train.finetune import load_wam

        torch.set_num_threads(1)
        self.config = config
        self.dreams = make(f"dream/{world_run}", task=config.task, num_envs=groups * config.group,
                           max_episode_steps=config.horizon + 1, decode_images=False, terminate_on_success=False,
                           device="cpu", data=tuple(Path(p) for p in config.start_data),
                           start_anywhere=config.start_anywhere, settings=config.dream)
        self.dreams = getattr(self.dreams, "dreams", self.dreams)
        self.policy = load_wam(Path(policy_run), which).eval()

    def rollout(self, weights: dict, step: int, groups: list[int], stride: int, execute: int, context: int) -> dict:
        self.policy.load_state_dict(weights)

        def chunk(latents, text_ids, state):
            return self.policy.imagine_and_act(latents, text_ids, state)[2][:, -1]

        return rollout_groups(chunk, self.dreams, groups, step, stride, execute, context, self.config)


class DreamRollouts:
    """Batch source: rollouts of the current policy in one batched dream on this device."""

    def __init__(self, learner, dreams, stride: int, execute: int, context: int, config, returns_of, advantages_of):
        self.learner, self.dreams, self.config = learner, dreams, config
        self.stride, self.execute, self.context = stride, execute, context
        self.returns_of, self.advantages_of = returns_of, advantages_of

    def batch(self, step: int) -> dict:
        rolled = rollout_groups(self.learner.chunk, self.dreams, range(self.config.starts), step, self.stride, self.execute,
                                self.context, self.config)
        return to_batch(rolled, self.config, self.returns_of, self.advantages_of)


class RayDreamRollouts:
    """Batch source: the same rollouts, the groups split over Ray actors (one CPU each) that receive the current
    weights every step. An actor whose process or node dies is restarted and its rollouts rerun (a pure function of
    the weights, the step and its groups)."""

    def __init__(self, learner, address: str, world_run: Path, policy_run: Path, which: str, stride: int, execute: int,
                 context: int, config, returns_of, advantages_of, actors: int = 0):
        from wam.workers import RAY_RETRIES, connect_ray

        self.ray = connect_ray(address)
        self.learner, self.config = learner, config
        self.stride, self.execute, self.context = stride, execute, context
        self.returns_of, self.advantages_of = returns_of, advantages_of
        count = actors or int(self.ray.cluster_resources().get("CPU", 1))
        self.ranges = [r.tolist() for r in np.array_split(np.arange(config.starts), max(1, min(count, config.starts)))]
        actor = self.ray.remote(num_cpus=1, max_restarts=RAY_RETRIES, max_task_retries=RAY_RETRIES)(RolloutWorker)
        self.actors = [actor.remote(str(world_run), str(policy_run), which, len(groups), config) for groups in self.ranges]

    def batch(self, step: int) -> dict:
        weights = self.ray.put({k: v.detach().cpu() for k, v in self.learner.policy.state_dict().items()})
        refs = [a.rollout.remote(weights, step, groups, self.stride, self.execute, self.context)
                for a, groups in zip(self.actors, self.ranges)]
        return to_batch(merge_parts(self.ray.get(refs)), self.config, self.returns_of, self.advantages_of)
