"""Dream vs reality, side by side: one scene, three panels, as a GIF and an mp4.

    python benchmarks/dream_video.py --policy runs/recipe/mt10-wam-k3-s0 --world runs/recipe/mt10-wam-k3-s0 \
        --task drawer-open-v3 --episode 0

Left: the policy acting in the simulator (Meta-World, or the hand scenes with `--env hand`). Middle: the same actions replayed open loop in a
dream that starts from the simulator's first frame of that scene (how far the world model
drifts from reality under identical controls). Right: the policy acting in the dream,
closed loop (what dream evaluation and RL see). Writes
benchmarks/results/media/dream_vs_real_<task>.{gif,mp4} and a JSON with each panel's
success and length.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from wam.data.export import write_video
from wam.dojo.evaluate import evaluation_seed, scene_start
from wam.envs.families import family_of
from wam.envs.registry import make
from wam.policy import load

MEDIA = Path(__file__).parent / "results" / "media"


def run(env, policy, task: str, seed: int, options: dict | None, actions: list | None = None):
    """Frames, actions, success and length of one episode; `actions` replays those instead of the policy."""
    obs, _ = env.reset(seed=seed, options=options)
    policy.reset(task)
    frames, taken, success = [obs["image"]], [], False
    for step in range(len(actions) if actions is not None else 10**9):
        action = actions[step] if actions is not None else policy.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs["image"])
        taken.append(action)
        success = success or bool(info["success"])
        if terminated or truncated:
            break
    return frames, taken, success


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--task", default="drawer-open-v3")
    parser.add_argument("--episode", type=int, default=0, help="evaluation scene number (as in wam eval, seed 0)")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--env", default="metaworld", help="the simulator family: metaworld or hand (the Shadow hand)")
    args = parser.parse_args()
    family = family_of(args.env)
    if family is None:
        parser.error(f"--env must be metaworld or hand, got {args.env!r}")
    camera, fps = family.default_cameras[0], family.fps
    policy = load(args.policy, device="cpu")
    seed = evaluation_seed(0, args.task, args.episode)
    real = make(f"{args.env}/{args.task}", obs="pixels", size=policy.image_size, camera=camera, max_episode_steps=args.max_steps)
    real_frames, actions, real_success = run(real, policy, args.task, seed, None)
    start = scene_start(args.task, seed, policy.image_size, camera, args.env)
    # The replay must not stop at the dream's success verdict: it shows the drift over the whole episode.
    replay_env = make(f"dream/{args.world}", task=args.task, max_episode_steps=len(actions) + 1, device="cpu",
                      terminate_on_success=False)
    replay_frames, _, replay_success = run(replay_env, policy, args.task, seed, start, actions)
    dream = make(f"dream/{args.world}", task=args.task, max_episode_steps=args.max_steps, device="cpu")
    dream_frames, _, dream_success = run(dream, policy, args.task, seed, start)

    length = max(len(real_frames), len(replay_frames), len(dream_frames))
    pad = lambda frames: frames + [frames[-1]] * (length - len(frames))  # noqa: E731  (hold the last frame)
    gap = np.full((policy.image_size, 2, 3), 255, np.uint8)
    panels = [np.concatenate([a, gap, b, gap, c], axis=1) for a, b, c in zip(pad(real_frames), pad(replay_frames), pad(dream_frames))]
    video = np.stack(panels).repeat(2, axis=1).repeat(2, axis=2)
    MEDIA.mkdir(parents=True, exist_ok=True)
    stem = MEDIA / f"dream_vs_real_{'hand_' if args.env == 'hand' else ''}{args.task.removesuffix('-v3')}"
    step = 4 if fps > 40 else 1  # every 4th of Meta-World's 80 frames a second keeps the GIF small
    write_video(video, stem.with_suffix(".mp4"), fps)
    write_video(video[::step], stem.with_suffix(".gif"), max(1, fps // step))
    drift = float(np.mean([np.abs(a.astype(float) - b.astype(float)).mean() for a, b in zip(real_frames, replay_frames)]))
    summary = {"policy": str(args.policy), "world": str(args.world), "task": args.task, "scene_seed": seed,
               "real": {"success": real_success, "length": len(actions)},
               "replay_in_dream": {"success": replay_success, "mean_abs_pixel_error": round(drift, 2)},
               "policy_in_dream": {"success": dream_success, "length": len(dream_frames) - 1},
               "command": "python benchmarks/dream_video.py " + " ".join(os.sys.argv[1:])}
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
