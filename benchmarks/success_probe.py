"""Does the observation carry success? A success detector trained on real frames, tested on unseen policies.

    python benchmarks/success_probe.py --world runs/worlds/mt10-wam-k3-play4-s0 \
        --train data/mt10_robot data/mt10_play data/mt10_noisy --rollouts data/mt10_rollouts

The dream's success head called success on most real failures of policies, even on the
real frames (benchmarks/dream_replay.py --grounded). Either the head is weak or the frame
(64x64 through the tokenizer) and the 4-number state do not show a near miss. This probe
trains a detector per task on real frames only and asks it the same question on episodes
of policies it never saw: if a detector separates their successes from their failures, the
information is there and the world needs a better judge; if none does, the observation
must change (resolution, camera, object state).

Inputs compared: `latent` (the world's tokenizer latent and the state, an MLP: what a judge
inside the dream would read) and `pixels` (the 64x64 frame and the state, a small CNN with
random shifts: the upper bound at this resolution). Settings: `demos_play` trains on the
`--train` datasets and tests on every rollout; `leave_one_policy_out` also trains on the
rollouts of all policies but one and tests on that one (hard negatives from other policies).
Per episode the verdict is a success probability above 0.5 at any frame within `--horizon`
actions; the rates are the dream replay's (true positives on real successes, false
positives on real failures), and `episode_auc` ranks episodes by their highest probability
(threshold-free). Cells (task x setting x input x fold) are written to the JSON as they
finish and skipped when rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wam.envs.tasks import TASK_TEXT, resolve_tasks

RESULTS = Path(__file__).parent / "results"


@dataclass
class TaskFrames:
    images: np.ndarray  # (N, H, W, 3) uint8
    states: np.ndarray  # (N, S) float32
    success: np.ndarray  # (N,) bool, the simulator's flag
    episode: np.ndarray  # (N,) int, index into `episodes`
    step: np.ndarray  # (N,) int, frame index within its episode
    episodes: list[dict]  # group ("train" or the rollout's source), real success within the horizon


def load_task(task: str, train: list[Path], rollouts: list[Path], horizon: int) -> TaskFrames:
    from wam.data import STATE_KEY, Dataset

    text = TASK_TEXT.get(task, task)
    images, states, success, episode, step, episodes = [], [], [], [], [], []
    for group, paths in (("train", train), ("rollout", rollouts)):
        for path in paths:
            dataset = Dataset(path)
            for meta in dataset.episodes:
                if meta.task != text:
                    continue
                low = dataset.low_dim(meta.index)
                if "success" not in low:
                    raise SystemExit(f"{path}: episode {meta.index} has no success flags; record with wam collect")
                flags = np.asarray(low["success"], bool)
                source = group if group == "train" else str(meta.info.get("source", "unknown"))
                episodes.append({"group": source, "real_success": bool(flags[1: horizon + 1].any())})
                images.append(dataset.frames(meta.index, dataset.camera_keys[0]))
                states.append(np.asarray(low[STATE_KEY], np.float32))
                success.append(flags)
                episode.append(np.full(len(flags), len(episodes) - 1))
                step.append(np.arange(len(flags)))
    if not episodes:
        raise SystemExit(f"no episode of {task!r} in {', '.join(map(str, train + rollouts))}")
    return TaskFrames(np.concatenate(images), np.concatenate(states), np.concatenate(success), np.concatenate(episode),
                      np.concatenate(step), episodes)


class LatentJudge(nn.Module):
    def __init__(self, latent_size: int, state_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_size + state_dim, hidden), nn.SiLU(), nn.Dropout(0.1),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), state], 1)).squeeze(1)


class PixelJudge(nn.Module):
    def __init__(self, state_dim: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 32, 4, 2, 1), nn.SiLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.SiLU(),
                                  nn.Conv2d(64, 64, 4, 2, 1), nn.SiLU(), nn.Conv2d(64, 64, 3, 1, 1), nn.SiLU())
        self.head = nn.Sequential(nn.Linear(64 * 8 * 8 + state_dim, 256), nn.SiLU(), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(x).flatten(1), state], 1)).squeeze(1)


def _shift(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Random translations by up to `pixels` (replicate padding): the near-miss must be read, not memorised."""
    padded = F.pad(images, [pixels] * 4, mode="replicate")
    size = images.shape[-1]
    out = torch.empty_like(images)
    offsets = torch.randint(0, 2 * pixels + 1, (len(images), 2), generator=generator)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy: dy + size, dx: dx + size]
    return out


def train_judge(kind: str, inputs: torch.Tensor, states: torch.Tensor, labels: torch.Tensor, steps: int,
                seed: int) -> nn.Module:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = LatentJudge(inputs[0].numel(), states.shape[1]) if kind == "latent" else PixelJudge(states.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        rows = torch.randint(0, len(labels), (128,), generator=generator)
        x = inputs[rows]
        if kind == "pixels":
            x = _shift(x, 2, generator)
        loss = F.binary_cross_entropy_with_logits(model(x, states[rows]), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def probabilities(model: nn.Module, inputs: torch.Tensor, states: torch.Tensor) -> np.ndarray:
    return np.concatenate([torch.sigmoid(model(inputs[i: i + 1024], states[i: i + 1024])).numpy()
                           for i in range(0, len(inputs), 1024)])


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half)."""
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return None
    greater = (positive[:, None] > negative[None]).mean()
    ties = (positive[:, None] == negative[None]).mean()
    return float(greater + 0.5 * ties)


def score_cell(frames: TaskFrames, test_episodes: np.ndarray, probability: np.ndarray, horizon: int) -> dict:
    """Episode verdicts (any frame 1..horizon above 0.5) against reality, and the threshold-free AUCs."""
    in_window = np.isin(frames.episode, test_episodes) & (frames.step >= 1) & (frames.step <= horizon)
    real = np.array([frames.episodes[e]["real_success"] for e in test_episodes])
    peak = np.array([probability[in_window & (frames.episode == e)].max() for e in test_episodes])
    called = peak > 0.5
    tpr = float(called[real].mean()) if real.any() else None
    fpr = float(called[~real].mean()) if (~real).any() else None
    return {"episodes": len(test_episodes), "real_successes": int(real.sum()), "true_positive_rate": tpr,
            "false_positive_rate": fpr, "balanced_accuracy": None if tpr is None or fpr is None else (tpr + 1 - fpr) / 2,
            "episode_auc": auc(peak, real), "frame_auc": auc(probability[in_window], frames.success[in_window])}


def summarise(cells: dict) -> dict:
    """Pooled over tasks and folds, per setting and input: episode rates and the mean episode AUC."""
    pooled: dict[str, dict] = {}
    for key, cell in cells.items():
        _, setting, kind, _ = key.split("/", 3)
        row = pooled.setdefault(f"{setting}/{kind}", {"cells": 0, "episodes": 0, "successes": 0, "called_successes": 0.0,
                                                      "called_failures": 0.0, "aucs": []})
        failures = cell["episodes"] - cell["real_successes"]
        row["cells"] += 1
        row["episodes"] += cell["episodes"]
        row["successes"] += cell["real_successes"]
        row["called_successes"] += (cell["true_positive_rate"] or 0.0) * cell["real_successes"]
        row["called_failures"] += (cell["false_positive_rate"] or 0.0) * failures
        if cell["episode_auc"] is not None:
            row["aucs"].append(cell["episode_auc"])
    summary = {}
    for name, row in pooled.items():
        failures = row["episodes"] - row["successes"]
        summary[name] = {"cells": row["cells"], "episodes": row["episodes"], "real_successes": row["successes"],
                         "true_positive_rate": row["called_successes"] / row["successes"] if row["successes"] else None,
                         "false_positive_rate": row["called_failures"] / failures if failures else None,
                         "mean_episode_auc": float(np.mean(row["aucs"])) if row["aucs"] else None}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True, help="a finetuned WAM: its tokenizer encodes the latents")
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--rollouts", type=Path, nargs="+", required=True, help="datasets of wam collect --policy")
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3")
    parser.add_argument("--inputs", default="latent,pixels")
    parser.add_argument("--settings", default="demos_play,leave_one_policy_out")
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "success_probe.json")
    args = parser.parse_args()
    from wam.train.pretrain import load_tokenizer

    tasks = resolve_tasks(args.tasks)
    kinds, settings = args.inputs.split(","), args.settings.split(",")
    unknown = (set(kinds) - {"latent", "pixels"}) | (set(settings) - {"demos_play", "leave_one_policy_out"})
    if unknown:
        parser.error(f"unknown input or setting: {sorted(unknown)}")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({"world": str(args.world), "train": [str(p) for p in args.train], "rollouts": [str(p) for p in args.rollouts],
                    "horizon": args.horizon, "steps": args.steps, "seed": args.seed,
                    "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__}})
    command = "python benchmarks/success_probe.py " + " ".join(os.sys.argv[1:])
    commands = results.setdefault("commands", [])  # a rerun with other inputs or settings adds cells
    if command not in commands:
        commands.append(command)
    results.pop("command", None)
    cells = results.setdefault("cells", {})
    tokenizer = load_tokenizer(args.world).eval()

    def save() -> None:
        results["summary"] = summarise(cells)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.rename(args.out)

    for task in tasks:
        frames = load_task(task, args.train, args.rollouts, args.horizon)
        groups = sorted({e["group"] for e in frames.episodes} - {"train"})
        with torch.no_grad():
            latents = torch.cat([tokenizer.encode_images(frames.images[i: i + 512]) for i in range(0, len(frames.images), 512)])
        pixels = torch.from_numpy(frames.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        states = torch.from_numpy(frames.states)
        labels = torch.from_numpy(frames.success.astype(np.float32))
        for setting in settings:
            for kind in kinds:
                group_of = np.array([e["group"] for e in frames.episodes])
                folds = ["all"] if setting == "demos_play" else groups
                for fold in folds:
                    key = f"{task}/{setting}/{kind}/{fold}"
                    if cells.get(key, {}).get("done"):
                        print(f"{key}: done, skipped")
                        continue
                    held_out = group_of != "train" if fold == "all" else group_of == fold
                    train_mask = ~held_out[frames.episode]
                    start = time.perf_counter()
                    inputs = latents if kind == "latent" else pixels
                    model = train_judge(kind, inputs[train_mask], states[train_mask], labels[train_mask], args.steps, args.seed)
                    test = np.flatnonzero(held_out)
                    cell = score_cell(frames, test, probabilities(model, inputs, states), args.horizon)
                    cell.update({"train_frames": int(train_mask.sum()), "train_positives": int(frames.success[train_mask].sum()),
                                 "seconds": round(time.perf_counter() - start, 1), "done": True})
                    cells[key] = cell
                    save()
                    print(f"{key}: TPR {cell['true_positive_rate']}, FPR {cell['false_positive_rate']}, "
                          f"episode AUC {cell['episode_auc']}, frame AUC {cell['frame_auc']} ({cell['seconds']} s)")
    save()


if __name__ == "__main__":
    main()
