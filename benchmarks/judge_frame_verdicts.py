"""How should a success judge's per-frame readings become one episode verdict? Measured on real frames.

    python benchmarks/judge_frame_verdicts.py --world runs/worlds/mt10-wam-k3-play4-judge-bal \
        --data data/dojo_rollouts_heldout

The world's judge (`wam judge`) reads every real frame of every labelled episode in `--data` (no
dreaming); each rule below turns the episode's probabilities into success or failure, and the rule's
true- and false-positive rates against the simulator's verdict are reported. "any" is how dreams are
judged by default (success at any frame); "final" is `DreamSettings(verdict="final")` (the mean of the
last 10 frames). A failing policy that hovers at the goal gives an "any" rule a hundred draws.
Writes benchmarks/results/judge_frame_verdicts.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from wam.dojo.dream_env import _load_dreamer
from wam.dojo.replay import _labelled_episodes
from wam.envs.tasks import TASK_TEXT
from wam.models.text import tokenize
from wam.train.judge import load_judge

RESULTS = Path(__file__).resolve().parent / "results"
RULES = {
    "any frame > 0.5": lambda p: bool((p > 0.5).any()),
    "any frame > 0.9": lambda p: bool((p > 0.9).any()),
    "any frame > 0.99": lambda p: bool((p > 0.99).any()),
    "last frame > 0.5": lambda p: bool(p[-1] > 0.5),
    "final: mean of last 10 > 0.5": lambda p: bool(p[-10:].mean() > 0.5),
}


@torch.no_grad()
def frame_probabilities(world: Path, data: list[Path], tasks: list[str]) -> list[tuple[str, bool, np.ndarray]]:
    """(task, real success, the judge's success probability on frames 1..L) for every labelled episode."""
    model, tokenizer, _ = _load_dreamer(world, torch.device("cpu"))
    judge = load_judge(world)
    rows = []
    for task in tasks:
        text_ids = tokenize([TASK_TEXT.get(task, task)], model.config.world.text)
        for episode in _labelled_episodes(data, task, None, None):
            latents = tokenizer.encode_images(episode.images[1:])
            logits = judge.logit(latents, torch.from_numpy(episode.states[1:]), text_ids.expand(len(latents), -1))
            rows.append((task, episode.real_success, torch.sigmoid(logits).numpy()))
    return rows


def rates(rows, rule) -> dict:
    real = np.array([r[1] for r in rows], bool)
    called = np.array([rule(r[2]) for r in rows], bool)
    return {"true_positive_rate": float(called[real].mean()) if real.any() else None,
            "false_positive_rate": float(called[~real].mean()) if (~real).any() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3")
    parser.add_argument("--out", type=Path, default=RESULTS / "judge_frame_verdicts.json")
    args = parser.parse_args()
    rows = frame_probabilities(args.world, args.data, args.tasks.split(","))
    failures = [r[2] for r in rows if not r[1]]
    result = {"world": str(args.world), "data": [str(p) for p in args.data], "episodes": len(rows),
              "real_successes": int(sum(r[1] for r in rows)),
              "failures_mean_fraction_of_frames_called_success": float(np.mean([(p > 0.5).mean() for p in failures])),
              "rules": {name: rates(rows, rule) for name, rule in RULES.items()},
              "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "command": "python benchmarks/judge_frame_verdicts.py " + " ".join(os.sys.argv[1:])}
    args.out.write_text(json.dumps(result, indent=2))
    for name, r in result["rules"].items():
        print(f"{name:30s} TPR {r['true_positive_rate']:.2f}  FPR {r['false_positive_rate']:.2f}")


if __name__ == "__main__":
    main()
