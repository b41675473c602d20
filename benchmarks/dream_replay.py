"""Where is the dream exploitable? Recorded real episodes replayed open-loop in a world.

    python benchmarks/dream_replay.py --world runs/worlds/mt10-wam-k3-play4-s0 --data data/mt10_rollouts \
        --tasks drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3

Every episode of the tasks in `--data` (with actions and a success flag) starts a dream from
its first frame and state and replays its recorded actions; the dream's success (any model
step within the episode's length) is compared with the simulator's. The false-positive
rate (dream success on a real failure) is the room a policy has to exploit the dream; the
true-positive rate is how much real success the dream can see. Per task, per source (who
drove the episode) and overall. Use episodes the world never trained on: rollouts of
policies (wam collect --policy) are the point, since they fail the way policies fail.
With `--grounded` nothing is dreamed: the success head reads each episode's real frames
(wam.dojo.replay.judge_real_frames), which separates what the head cannot see from where
the dream drifts. Writes benchmarks/results/dream_replay.json (dream_replay_grounded.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import torch

from wam.config import DreamSettings
from wam.dojo.replay import agreement, judge_real_frames, replay_in_dream
from wam.envs.tasks import resolve_tasks

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--tasks", default="drawer-open-v3,window-open-v3,button-press-topdown-v3,drawer-close-v3")
    parser.add_argument("--student", action="store_true", help="dream with the world's distilled student (wam distill)")
    parser.add_argument("--success-hold", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=None,
                        help="judge dream and reality on each episode's first N actions (takes out the length bias)")
    parser.add_argument("--grounded", action="store_true",
                        help="no dream: the success head judges the real frames (what the head can see at all)")
    parser.add_argument("--judge", action="store_true", help="the verdict from the world's success judge (wam judge)")
    parser.add_argument("--sources", default="", help="comma list: only episodes whose driver (source) contains one")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.success_hold < 1:
        parser.error(f"--success-hold must be at least 1, got {args.success_hold}")
    tasks = resolve_tasks(args.tasks)
    start = time.perf_counter()
    if args.grounded and args.student:
        parser.error("--grounded reads real frames with the WAM's own success head; --student has nothing to add")
    out = args.out or RESULTS / ("dream_replay_grounded.json" if args.grounded else "dream_replay.json")
    sources = tuple(s for s in args.sources.split(",") if s)
    if args.grounded:
        episodes = judge_real_frames(args.world, args.data, tasks, success_hold=args.success_hold, horizon=args.horizon,
                                     sources=sources, judge=args.judge)
    else:
        settings = DreamSettings(student=args.student, success_hold=args.success_hold, judge=args.judge)
        episodes = replay_in_dream(args.world, args.data, tasks, settings, horizon=args.horizon, sources=sources)
    by_task, by_source = defaultdict(list), defaultdict(list)
    for e in episodes:
        by_task[e.task].append(e)
        by_source[e.source].append(e)
    results = {
        "world": str(args.world), "data": [str(p) for p in args.data], "tasks": tasks, "student": args.student, "grounded": args.grounded, "judge": args.judge, "sources": list(sources),
        "success_hold": args.success_hold, "horizon": args.horizon, "seconds": round(time.perf_counter() - start, 1),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "command": "python benchmarks/dream_replay.py " + " ".join(os.sys.argv[1:]),
        "overall": agreement(episodes),
        "per_task": {t: agreement(v) for t, v in by_task.items()},
        "per_source": {s: agreement(v) for s, v in sorted(by_source.items())},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.rename(out)
    overall = results["overall"]
    print(f"{overall['episodes']} episodes: real success {overall['real_success']:.2f}, dream {overall['dream_success']:.2f}, "
          f"true-positive rate {overall['true_positive_rate']}, false-positive rate {overall['false_positive_rate']}")
    for task, row in results["per_task"].items():
        print(f"  {task}: TPR {row['true_positive_rate']}, FPR {row['false_positive_rate']} ({row['episodes']} episodes, "
              f"{row['real_successes']} real successes)")


if __name__ == "__main__":
    main()
