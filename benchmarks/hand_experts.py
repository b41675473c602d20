"""Scripted experts of the hand scenes: success per task and embodiment, 50 episodes each, with Wilson intervals.

    python benchmarks/hand_experts.py [--episodes 50]

The episodes are the ones `wam collect --env hand --seed 0` records (same episode seeds), run on state
observations (rendering does not change what the expert does). The robot (Shadow hand) experts must
solve each task at least 90% of the time so that collection makes demonstrations; the human hand's
rate is reported beside them (its video is pretraining data, failures included). Writes
benchmarks/results/headline/hand_experts.json (the docs page and README claim come from it) and a plot.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Claim, Result, write_result  # noqa: E402

from wam.dojo.evaluate import wilson_interval  # noqa: E402
from wam.envs.collect import episode_seed  # noqa: E402
from wam.envs.hands.env import make_hand_env  # noqa: E402
from wam.envs.hands.experts import HandExpert  # noqa: E402
from wam.envs.hands.tasks import HAND_TASKS  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "headline" / "hand_experts.json"
PLOT = ROOT / "benchmarks" / "results" / "hand_experts.png"
TARGET = 0.9


def run(task: str, embodiment: str, episodes: int, max_steps: int = 100) -> dict:
    env = make_hand_env(task, embodiment=embodiment, obs="state", max_episode_steps=max_steps)
    wins, lengths, start = 0, [], time.perf_counter()
    for number in range(episodes):
        seed = episode_seed(0, task, number)
        expert = HandExpert(task, env.hand.synergy, embodiment, seed=seed)
        obs, _ = env.reset(seed=seed)
        for step in range(max_steps):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        wins += int(info["success"])
        lengths.append(step + 1)
    env.close()
    low, high = wilson_interval(wins, episodes)
    return {"task": task, "embodiment": embodiment, "episodes": episodes, "successes": wins, "rate": wins / episodes,
            "wilson95": [low, high], "mean_steps": float(np.mean(lengths)), "seconds": time.perf_counter() - start}


def plot(cells: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2))
    width = 0.38
    for offset, (embodiment, colour) in zip((-width / 2, width / 2), (("robot", "#4c72b0"), ("human", "#dd8452"))):
        rows = [c for c in cells if c["embodiment"] == embodiment]
        x = np.arange(len(rows)) + offset
        rates = np.array([c["rate"] for c in rows])
        errors = np.array([[c["rate"] - c["wilson95"][0], c["wilson95"][1] - c["rate"]] for c in rows]).T
        axis.bar(x, rates, width, yerr=errors, capsize=3, color=colour, label=f"{embodiment} hand expert")
    axis.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label="target for the robot: 0.9")
    axis.set_xticks(np.arange(len(HAND_TASKS)), HAND_TASKS)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("success (95% Wilson)")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    cells = [run(task, embodiment, args.episodes) for embodiment in ("robot", "human") for task in HAND_TASKS]
    for cell in cells:
        print(f"{cell['embodiment']:6s} {cell['task']:13s} {cell['successes']}/{cell['episodes']}")
    robot = [c for c in cells if c["embodiment"] == "robot"]
    worst = min(robot, key=lambda c: c["rate"])
    claims = [Claim("the Shadow-hand scripted experts solve every hand task (worst task shown)", round(worst["rate"], 3), "",
                    f">= {TARGET} on each of {len(HAND_TASKS)} tasks", all(c["rate"] >= TARGET for c in robot),
                    tuple(round(v, 3) for v in worst["wilson95"]), f"{worst['task']}, {args.episodes} episodes a task")]
    rows = [[c["task"], c["embodiment"], f"{c['successes']}/{c['episodes']}", f"{c['rate']:.2f}",
             f"[{c['wilson95'][0]:.2f}, {c['wilson95'][1]:.2f}]", f"{c['mean_steps']:.0f}"] for c in cells]
    plot(cells)
    result = Result("hand_experts", "Hand-scene scripted experts", f"python benchmarks/hand_experts.py --episodes {args.episodes}",
                    claims, {"columns": ["task", "hand", "successes", "rate", "95% Wilson", "mean steps"], "rows": rows},
                    str(PLOT.relative_to(ROOT)), summary=(
                        "Scripted experts (wrist control toward task phases plus finger synergies) on the five hand tasks, "
                        "the Shadow robot hand and wam's human hand, on the episode seeds collection uses."),
                    data={"cells": cells}, rank=8)
    write_result(OUT, result)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
