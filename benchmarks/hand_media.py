"""The picture of the hand scenes: the human hand and the Shadow hand doing the same task, side by side, from the
head camera (same seed, so the same scene), and the retargeted human motion replayed by the robot.

    python benchmarks/hand_media.py [--tasks lift,open-drawer,press-button,touch,push] [--size 128]

Writes benchmarks/results/media/hands_side_by_side.gif (per task: human | robot expert) and
benchmarks/results/media/hands_poster.png (the first and a late frame of each, for pages that show no GIFs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wam.data.export import write_video
from wam.envs.collect import episode_seed
from wam.envs.hands.env import make_hand_env
from wam.envs.hands.experts import HandExpert

MEDIA = Path(__file__).resolve().parent / "results" / "media"


def episode_frames(task: str, embodiment: str, seed: int, size: int, steps: int) -> list[np.ndarray]:
    env = make_hand_env(task, embodiment=embodiment, size=size, max_episode_steps=steps, terminate_on_success=False)
    expert = HandExpert(task, env.hand.synergy, embodiment, seed=seed)
    obs, _ = env.reset(seed=seed)
    frames, success_at = [obs["image"]], None
    for step in range(steps):
        obs, _, _, _, info = env.step(expert.act(obs))
        frames.append(obs["image"])
        if info["success"] and success_at is None:
            success_at = step
        if success_at is not None and step >= success_at + 8:
            break
    env.close()
    return frames


def labelled(frame: np.ndarray, text: str) -> np.ndarray:
    image = Image.fromarray(frame)
    ImageDraw.Draw(image).text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="lift,open-drawer,press-button,touch,push")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    clips, posters = [], []
    for task in args.tasks.split(","):
        seed = episode_seed(0, task, 0)
        human = episode_frames(task, "human", seed, args.size, args.steps)
        robot = episode_frames(task, "robot", seed, args.size, args.steps)
        length = max(len(human), len(robot))
        human += [human[-1]] * (length - len(human))
        robot += [robot[-1]] * (length - len(robot))
        clip = [np.concatenate([labelled(h, f"human: {task}"), labelled(r, "Shadow hand")], axis=1) for h, r in zip(human, robot)]
        clips += clip[::2]
        posters.append(np.concatenate([clip[0], clip[min(len(clip) - 1, 3 * len(clip) // 4)]], axis=1))
        print(f"{task}: {len(human)} human frames, {len(robot)} robot frames")
    MEDIA.mkdir(parents=True, exist_ok=True)
    write_video(np.stack(clips), MEDIA / "hands_side_by_side.gif", 12)
    Image.fromarray(np.concatenate(posters, axis=0)).save(MEDIA / "hands_poster.png")
    print(f"wrote {MEDIA / 'hands_side_by_side.gif'} and hands_poster.png")


if __name__ == "__main__":
    main()
