"""Reinforcement learning inside a dream: a group-relative policy gradient with a BC anchor.

The policy is a finetuned WAM; its action chunk becomes the mean of a Gaussian with a
fixed std `sigma`. Every iteration starts `starts` dreams from real first frames, each
`group` times (the same start for the whole group), and rolls the policy out with noise
for `horizon` control steps in the world model of another (or the same) WAM run. A
rollout's return is its mean predicted reward per step plus `success_bonus` if the success
head said success at any step; its advantage is the return minus its group's mean (the
group is the baseline: no value network). GRPO also divides by the group's std; that is
`advantage="std"` here, no longer the default: when every rollout of a group ends the same
way (in a dream, success often depends on the first frame and not on the exploration noise)
the std is the spread of the reward head's shaping alone, and dividing by it turns that
noise into unit-sized advantages that push the policy as hard as a real difference would
(measured: drawer-open 0.40 -> 0.00 in reality after 12 such updates). Centred only, a
group without a difference gives a gradient near zero and the anchor holds. The loss per
chunk decision is

    - advantage * log N(chunk | action_chunk(context), sigma)        improve in the dream
    + bc_weight * || action_chunk(context) - anchor(context) ||^2     stay near the demos

where `anchor` is the frozen finetuned policy: the dream is only trustworthy near the data
it was trained on, and the anchor keeps the policy there. Only the action head trains by
default (`train_backbone` opens up the rest).

Rollouts are the loop's batches (wam/train/rl_rollouts.py): batch N is collected with the weights after step N - 1
from dreams seeded by N and each group's index, so a resumed run repeats the same rollouts, and `ray` spreads the
groups over Ray actors with the same result. The run directory is
a policy run like a finetuning run (`wam.policy.load(OUT)`), plus `rl/` with the loop's
checkpoints and logs.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wam.config import DreamSettings
from wam.errors import CheckpointError
from wam.models.wam import WorldActionModel
from wam.runs import RUN_FILES, load_run
from wam.train.checkpoint import save_checkpoint
from wam.train.finetune import load_wam, split_snapshot
from wam.train.loop import TrainConfig, train
from wam.train.rl_rollouts import DreamRollouts, RayDreamRollouts


@dataclass(frozen=True)
class RLConfig:
    task: str  # a Meta-World task name or an instruction
    iterations: int = 40  # policy updates
    starts: int = 8  # different first frames per iteration
    group: int = 8  # rollouts per first frame
    horizon: int = 160  # control steps per dream
    sigma: float = 0.15  # exploration std on every action of a chunk
    bc_weight: float = 1.0
    success_bonus: float = 1.0
    lr: float = 1e-4
    train_backbone: bool = False
    seed: int = 0
    device: str = "auto"
    # Datasets whose first frames of the task start the practice dreams (default: the world's robot data). With K = 3
    # demos a task has three first frames, and a policy tuned on three scenes learns those scenes; play data and
    # recorded rollouts (wam collect --policy) have tens.
    start_data: tuple[str, ...] = ()
    # How the practice dreams step and call success (the world's student, its judge, success_hold): passed whole
    dream: DreamSettings = DreamSettings()
    # A success earns success_bonus x (1 - first success step / (2 horizon)), from the whole bonus at once to half of
    # it at the last step: when every rollout of a group succeeds in the dream (its verdict saturates on near-expert
    # policies), how soon still tells them apart, and any success still beats a failure.
    success_timing: bool = False
    advantage: str = "center"  # "center": return minus the group mean; "std": also over the group std (GRPO; runs before 2026-12-04)
    # Practice dreams start at any frame of start_data before its episode's success, not at first frames: with the
    # policy's own recorded rollouts (wam collect --policy) and a short horizon, these are MBPO's branched rollouts,
    # short dreams from states the policy really reaches, where the world model's errors have had little time to grow.
    start_anywhere: bool = False
    ray: str | None = None  # roll the dreams out on Ray actors of this cluster ("auto", "local" or an address)
    ray_actors: int = 0  # how many (each a share of the groups); 0: one per CPU of the cluster, at most `starts`


class DreamPolicyGradient(nn.Module):
    """What the loop trains: the WAM's action head, scored against a frozen copy of itself."""

    kind = "dream_pg"

    def __init__(self, policy: WorldActionModel, config: RLConfig):
        super().__init__()
        self.policy, self.config = policy, config
        self.anchor = copy.deepcopy(policy).eval()
        for p in self.anchor.parameters():
            p.requires_grad_(False)
        for name, p in self.policy.named_parameters():
            p.requires_grad_(config.train_backbone or name.startswith("action_chunk."))

    def chunk(self, latents: torch.Tensor, text_ids: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The chunk mean after the last context frame: (B, H, A)."""
        return self.policy.imagine_and_act(latents, text_ids, state)[2][:, -1]

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        sigma, losses, bc_terms, n = self.config.sigma, [], [], 0
        for group in batch["decisions"]:  # decisions grouped by context length
            mean = self.chunk(group["latents"], group["text_ids"], group["state"])
            with torch.no_grad():
                anchor = self.anchor.imagine_and_act(group["latents"], group["text_ids"], group["state"])[2][:, -1]
            log_prob = -((group["chunk"] - mean) ** 2).sum((-1, -2)) / (2 * sigma**2)
            losses.append(-(group["advantage"] * log_prob).sum())
            bc_terms.append(((mean - anchor) ** 2).mean((-1, -2)).sum())
            n += len(mean)
        pg, bc = torch.stack(losses).sum() / n, torch.stack(bc_terms).sum() / n
        loss = pg + self.config.bc_weight * bc
        return loss, {"pg_loss": pg.detach(), "bc_mse": bc.detach(), "return": batch["mean_return"],
                      "success": batch["success_rate"]}


def rollout_returns(mean_reward: np.ndarray, first_success: np.ndarray, config: RLConfig) -> np.ndarray:
    """A rollout's return: its mean predicted reward per step (the heads' 0-10 scale, over 10) plus the success bonus,
    all of it, or with `success_timing` less the later the first success came (first_success = horizon: none)."""
    success = (first_success < config.horizon).astype(float)
    if config.success_timing:
        success = success * (1.0 - first_success / (2.0 * config.horizon))
    return mean_reward / 10.0 + config.success_bonus * success


def group_advantages(returns: np.ndarray, group: int, mode: str = "center") -> np.ndarray:
    """Each rollout's return against its group's (consecutive rollouts from one first frame): (N,) float32."""
    grouped = returns.reshape(-1, group)
    advantage = grouped - grouped.mean(1, keepdims=True)
    if mode == "std":
        advantage = advantage / (grouped.std(1, keepdims=True) + 1e-6)
    elif mode != "center":
        raise ValueError(f"advantage must be 'center' or 'std', got {mode!r}")
    return advantage.reshape(-1).astype(np.float32)


def rl(policy_run: str | Path, world_run: str | Path, out: str | Path, config: RLConfig, resume: bool = False,
       progress: bool = True) -> dict:
    """Improve the policy of `policy_run` inside dreams of `world_run`; `out` becomes a policy run."""
    from wam.envs.registry import make

    for name in ("iterations", "starts", "group", "horizon"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    if not (config.sigma > 0 and config.lr > 0 and config.bc_weight >= 0):
        raise ValueError(f"sigma and lr must be > 0 and bc_weight >= 0, got {config.sigma}, {config.lr}, {config.bc_weight}")
    group_advantages(np.zeros(config.group), config.group, config.advantage)  # an unknown mode fails before anything is written
    named = str(policy_run)  # RUN or RUN@STEP (a snapshot)
    (policy_run, which), world_run, out = split_snapshot(policy_run), Path(world_run), Path(out)
    record = load_run(policy_run, "finetune")
    load_run(world_run, "finetune")  # a clear error for a world that is no finetuned WAM, before the tokenizers are compared
    if _tokenizer_weights(policy_run) != _tokenizer_weights(world_run):
        raise CheckpointError(f"{policy_run} and {world_run} use different frame tokenizers; RL in a dream needs a policy "
                              "finetuned from the same pretraining run as the world")
    if (out / "rl.json").exists() and not resume:
        raise CheckpointError(f"{out}: an RL run already exists here; pass --resume to continue it or choose another --out")
    # The dreams first: a bad task or start dataset is refused before anything is written.
    # Dreams run the whole horizon (no termination at success), so every rollout of a group has the same length.
    dreams = make(f"dream/{world_run}", task=config.task, num_envs=config.starts * config.group,
                  max_episode_steps=config.horizon + 1, decode_images=False, terminate_on_success=False, device=config.device,
                  data=tuple(Path(p) for p in config.start_data), start_anywhere=config.start_anywhere, settings=config.dream)
    dreams = getattr(dreams, "dreams", dreams)  # one start, one rollout: make() gives a single DreamEnv; its batch of one
    out.mkdir(parents=True, exist_ok=True)
    (out / "rl.json").write_text(json.dumps({"config": asdict(config), "policy": named, "world": str(world_run)}, indent=2))
    for name in (RUN_FILES["finetune"], "split.json"):
        shutil.copy(policy_run / name, out / name)
    if not (out / "tokenizer").exists():
        shutil.copytree(policy_run / "tokenizer", out / "tokenizer")
    policy = load_wam(policy_run, which).to(dreams.device)
    learner = DreamPolicyGradient(policy, config)
    timing = (record.stride, record.config.execute, record.config.window - 1)
    if config.ray is None:
        rollouts = DreamRollouts(learner, dreams, *timing, config, rollout_returns, group_advantages)
    else:
        rollouts = RayDreamRollouts(learner, config.ray, world_run, policy_run, which, *timing, config, rollout_returns,
                                    group_advantages, actors=config.ray_actors)
    train_config = TrainConfig(steps=config.iterations, batch_size=config.starts * config.group, lr=config.lr,
                               warmup_steps=min(5, config.iterations), min_lr_ratio=1.0, weight_decay=0.0, log_every=1,
                               checkpoint_every=max(1, config.iterations // 4), seed=config.seed, device=str(dreams.device))
    result = train(learner, rollouts, train_config, out / "rl", model_config=asdict(config), kind=DreamPolicyGradient.kind,
                   resume=resume, progress=progress)
    save_checkpoint(out / "wam" / "checkpoint", learner.policy, learner.policy.config.to_dict(), result.step,
                    rng_state=False, kind="wam")
    metrics = [json.loads(line) for line in (out / "rl" / "metrics.jsonl").read_text().splitlines()]
    summary = {"run": str(out), "policy": str(policy_run), "world": str(world_run), "task": config.task,
               "dream_return": {"first": metrics[0]["return"], "last": metrics[-1]["return"]},
               "dream_success": {"first": metrics[0]["success"], "last": metrics[-1]["success"]},
               "seconds": round(result.seconds, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _tokenizer_weights(run: Path) -> bytes:
    from wam.train.checkpoint import resolve

    directory = resolve(run / "tokenizer" / "checkpoint")
    if directory is None:
        raise CheckpointError(f"{run / 'tokenizer'}: no tokenizer checkpoint")
    return (directory / "model.safetensors").read_bytes()
