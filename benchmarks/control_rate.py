"""Closed-loop control rate of a WAM policy at batch 1: policy steps per second.

    python benchmarks/control_rate.py --policy runs/recipe/mt10-wam-k10-s0 [--steps 400]

Steps a real Meta-World pixel env with the policy and times `act()` alone, with torch on
1 and on 2 threads, beside the simulator's own step-plus-render time measured in the same
run. One policy step is one control step (80 Hz); the model runs once every `execute`
steps (receding horizon) and the tokenizer once every `stride` steps, so the figure is the
mean over whole chunks. Writes benchmarks/results/control_rate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import wam.policy
from wam.envs import make

RESULTS = Path(__file__).parent / "results"


def measure(policy, env, steps: int, task: str) -> tuple[float, float]:
    obs, _ = env.reset(seed=12345)
    policy.reset(task)
    act_seconds = env_seconds = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        action = policy.act(obs)
        t1 = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        env_seconds += time.perf_counter() - t1
        act_seconds += t1 - t0
        if terminated or truncated:
            obs, _ = env.reset()
            policy.reset(task)
    return steps / act_seconds, steps / env_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--task", default="drawer-open-v3")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS / "control_rate.json")
    args = parser.parse_args()
    policy = wam.policy.load(args.policy, device="cpu")
    env = make(f"metaworld/{args.task}", size=policy.image_size, max_episode_steps=500)
    measure(policy, env, 20, args.task)  # warm-up
    rows = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        policy_rate, env_rate = measure(policy, env, args.steps, args.task)
        rows[f"threads_{threads}"] = {"policy_steps_per_s": round(policy_rate, 1), "env_steps_per_s": round(env_rate, 1)}
        print(f"{threads} thread(s): policy {policy_rate:.1f} steps/s, simulator step + render {env_rate:.1f} steps/s")
    params = sum(p.numel() for p in policy.model.parameters())
    result = {"policy": str(args.policy), "task": args.task, "steps": args.steps, "chunk": policy.chunk, "execute": policy.execute,
              "stride": policy.stride, "context_frames": policy.context, "params": params, "results": rows,
              "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__, "device": "cpu"},
              "command": "python benchmarks/control_rate.py " + " ".join(os.sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
