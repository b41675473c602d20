"""Does the dream listen to the actions? Success under actions that cannot solve the task.

    python benchmarks/dream_action_sensitivity.py --world runs/recipe/mt10-wam-k3-s0 \
        --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3 --scenes 10

In the simulator, a robot that sends zero actions (stands still) or uniform random actions
almost never solves a task. A world model that dreams success under them is not
conditioned on the actions: it dreams the demonstrations' typical future from the frame
and the instruction, and then every policy gets the same verdict. For every task, the same
evaluation scenes (dreams start from the simulator's first frame of each) are run with
zero and with random actions, in the dream and in Meta-World; reports success rate and
mean episode length of each. The positive control, `expert`: the scripted expert runs the
scene in Meta-World and its recorded actions are replayed open-loop in the dream (then zero
actions): a dream that listens to actions succeeds there and fails under the other two.
Before the episodes, one-step errors: on labelled windows of the world's own play data (or
its robot data when it has none), the next latent and next state predicted with the real
actions, with actions shuffled across the batch, with zero actions, and with the action
hidden, beside copying the last frame. A model that uses its actions is far better with
the real ones. Writes benchmarks/results/dream_action_sensitivity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from wam.config import DreamSettings
from wam.dojo.evaluate import scene_start, evaluation_seed
from wam.envs.registry import make
from wam.envs.tasks import resolve_tasks

RESULTS = Path(__file__).parent / "results"


def expert_actions(task: str, seed: int, max_steps: int) -> tuple[bool, np.ndarray]:
    """The scripted expert's success and actions in the real scene `seed`."""
    from wam.envs.experts import ScriptedExpert

    env = make(f"metaworld/{task}", obs="state", max_episode_steps=max_steps)
    expert = ScriptedExpert(task, seed=seed)
    obs, _ = env.reset(seed=seed)
    actions, success = [], False
    for _ in range(max_steps):
        actions.append(expert.act(obs))
        obs, _, terminated, truncated, info = env.step(actions[-1])
        success = success or bool(info["success"])
        if terminated or truncated:
            break
    env.close()
    return success, np.stack(actions)


def episode(env, seed: int, options: dict | None, kind: str, rng: np.random.Generator, max_steps: int,
            replay: np.ndarray | None = None) -> tuple[bool, int]:
    env.reset(seed=seed, options=options)
    success = False
    for step in range(1, max_steps + 1):
        if kind == "expert":
            action = replay[step - 1] if step <= len(replay) else np.zeros(4, np.float32)
        else:
            action = np.zeros(4, np.float32) if kind == "zero" else rng.uniform(-1, 1, 4).astype(np.float32)
        _, _, terminated, truncated, info = env.step(action)
        success = success or bool(info["success"])
        if terminated or truncated:
            break
    return success, step


@torch.no_grad()
def one_step_errors(world: Path, cache_dir: Path | None = None, batches: int = 4, batch_size: int = 64) -> dict:
    """Teacher-forced next-latent and next-state MSE of the action-conditioned pass under real and wrong actions."""
    from wam.train.batches import WindowBatches
    from wam.train.finetune import load_finetune_config, load_wam
    from wam.train.frame_cache import load_frame_cache

    model = load_wam(world)
    config, saved = load_finetune_config(world)
    if cache_dir is None:
        cache_dir = world / "cache_play" if (world / "cache_play" / "manifest.json").exists() else world / "cache"
    cache = load_frame_cache(cache_dir)
    latents = np.load(sorted(cache_dir.glob("latents-*.npy"))[-1], mmap_mode="r")
    windows = WindowBatches(cache, latents, [e for e in cache.episodes if e.has_actions], config.window, int(saved["stride"]),
                            batch_size, 0, model.config.world.text, require_actions=True)
    errors: dict[str, list] = {}
    for i in range(batches):
        b = windows.batch(i)
        now, following, state, following_state = b["latents"][:, :-1], b["latents"][:, 1:], b["state"][:, :-1], b["state"][:, 1:]
        actions = b["action"][:, :-1]
        shuffled = actions[torch.randperm(len(actions), generator=torch.Generator().manual_seed(i))]
        for name, a in (("real", actions), ("shuffled", shuffled), ("zero", torch.zeros_like(actions))):
            latent, next_state, _, _ = model.step(now, a, b["text_ids"], state)
            errors.setdefault(name, []).append((float((latent - following).pow(2).mean()), float((next_state - following_state).pow(2).mean())))
        latent, next_state = model.world.heads(model.world.features(now, None, b["text_ids"], state), now, state)
        errors.setdefault("hidden", []).append((float((latent - following).pow(2).mean()), float((next_state - following_state).pow(2).mean())))
        errors.setdefault("copy_last", []).append((float((now - following).pow(2).mean()), float((state - following_state).pow(2).mean())))
    return {"data": str(cache_dir), "windows": batches * batch_size,
            **{k: {"latent_mse": float(np.mean([e[0] for e in v])), "state_mse": float(np.mean([e[1] for e in v]))} for k, v in errors.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3")
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--student", action="store_true", help="dream with the world's distilled student (wam distill)")
    parser.add_argument("--success-hold", type=int, default=1,
                        help="a dream's task is done when its success head agrees this many model steps in a row")
    parser.add_argument("--one-step-cache", type=Path, default=None,
                        help="frame cache of labelled windows for the one-step errors (default: the world's play or robot cache)")
    parser.add_argument("--out", type=Path, default=RESULTS / "dream_action_sensitivity.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"world": str(args.world), "student": args.student, "success_hold": args.success_hold, "scenes": args.scenes, "max_steps": args.max_steps, "tasks": {},
               "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
               "command": "python benchmarks/dream_action_sensitivity.py " + " ".join(os.sys.argv[1:])}
    results["one_step"] = one_step_errors(args.world, args.one_step_cache)
    print("one-step errors:", {k: v for k, v in results["one_step"].items() if isinstance(v, dict)})
    for task in resolve_tasks(args.tasks):
        dream = make(f"dream/{args.world}", task=task, max_episode_steps=args.max_steps, device="cpu", decode_images=False,
                     settings=DreamSettings(student=args.student, success_hold=args.success_hold))
        real = make(f"metaworld/{task}", obs="state", max_episode_steps=args.max_steps)
        row = {}
        experts = [expert_actions(task, evaluation_seed(0, task, n), args.max_steps) for n in range(args.scenes)]
        for kind in ("zero", "random", "expert"):
            for where, env in (("dream", dream), ("real", real)):
                if kind == "expert" and where == "real":
                    row["real_expert"] = {"success_rate": float(np.mean([s for s, _ in experts])),
                                          "mean_length": float(np.mean([len(a) for _, a in experts]))}
                    continue
                rng = np.random.default_rng(0)
                outcomes = []
                for n in range(args.scenes):
                    seed = evaluation_seed(0, task, n)
                    options = scene_start(task, seed, 64, "corner2") if where == "dream" else None
                    outcomes.append(episode(env, seed, options, kind, rng, args.max_steps, experts[n][1]))
                row[f"{where}_{kind}"] = {"success_rate": float(np.mean([s for s, _ in outcomes])),
                                          "mean_length": float(np.mean([n for _, n in outcomes]))}
        results["tasks"][task] = row
        real.close()
        print(task, {k: v["success_rate"] for k, v in row.items()})
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
