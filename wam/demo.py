"""`make demo`: the whole recipe on a small built-in default, ending in an HTML report.

Six stages on three easy Meta-World tasks, each with its own progress bar:
1. collect action-free video and a few labelled robot episodes from the scripted experts;
2. pretrain the frame tokenizer and the world model on the video (`demo` preset);
3. dream: world-model rollouts on held-out video beside copy-last-frame;
4. finetune the WAM on the robot episodes, and train the from-scratch baseline on the same;
5. evaluate both policies in real simulator episodes on scenes no training episode used;
6. write `report.html`: the success table and plot, a dream video and real rollout videos.
About 15 minutes on 2 CPU cores; every stage resumes if the demo is run again.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from wam.data import Dataset
from wam.data.check import check_dataset
from wam.data.export import export_episode
from wam.data.summary import dataset_summary
from wam.envs.collect import CollectConfig, collect

DEMO_TASKS = ("reach-v3", "drawer-close-v3", "button-press-topdown-v3")
METHODS = {"wam": "WAM (pretrained on video)", "scratch": "from scratch (same robot data)"}


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo_out")
    episodes: int = 5  # labelled robot episodes per task
    video_episodes: int = 40  # action-free episodes per task
    eval_episodes: int = 10  # per task and method
    workers: int = 2
    tasks: tuple[str, ...] = DEMO_TASKS
    pretrain_preset: str = "demo"
    finetune_preset: str = "demo"
    max_steps: int = 200
    seed: int = 0

    def __post_init__(self):
        """Refuse what would otherwise fail minutes into the demo, before any stage runs."""
        from wam.config import finetune_preset, pretrain_preset

        for name in ("episodes", "video_episodes", "eval_episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.max_steps <= 500:
            raise ValueError(f"max_steps must be in 1..500 (Meta-World's episode limit), got {self.max_steps}")
        pretrain_preset(self.pretrain_preset), finetune_preset(self.finetune_preset)  # an unknown name is named
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"out {out} is a file, not a directory")
        if any((out / name).exists() for name in ("meta/info.json", "pretrain.json", "finetune.json")):
            raise ValueError(f"out {out} is a dataset or a run; the demo writes its datasets and runs into a directory of its own")


def run_demo(config: DemoConfig) -> Path:
    from wam.config import finetune_preset, pretrain_preset
    from wam.dojo.evaluate import EvalConfig, evaluate_policy
    from wam.runs import run_kind
    from wam.train.eval_world import EvalWorldConfig, evaluate_world
    from wam.train.finetune import finetune
    from wam.train.pretrain import pretrain

    console = Console(stderr=True)
    out = Path(config.out)
    robot_dir, video_dir, runs = out / "robot", out / "video", out / "runs"
    seconds: dict[str, float] = {}

    def stage(number: int, name: str) -> float:
        console.rule(f"[bold]stage {number}/6: {name}")
        return time.perf_counter()

    t0 = stage(1, "collect video and robot episodes")
    collected = {
        "video": collect(CollectConfig(config.tasks, config.video_episodes, video_dir, False, config.workers, noise=0.1, seed=config.seed + 1)),
        "robot": collect(CollectConfig(config.tasks, config.episodes, robot_dir, True, config.workers, noise=0.1, seed=config.seed)),
    }
    seconds["collect"] = time.perf_counter() - t0

    t0 = stage(2, "pretrain on action-free video")
    pretrain_run = runs / "pretrain"
    pretrain([video_dir], pretrain_run, replace(pretrain_preset(config.pretrain_preset), seed=config.seed),
             resume=run_kind(pretrain_run) == "pretrain")
    seconds["pretrain"] = time.perf_counter() - t0

    t0 = stage(3, "dream: world-model rollouts on held-out video")
    dream = evaluate_world(pretrain_run, [video_dir], out / "dream", EvalWorldConfig(context=4, horizons=(1, 8, 16), samples=16, videos=2))
    seconds["dream"] = time.perf_counter() - t0

    t0 = stage(4, "finetune the WAM, and train the from-scratch baseline")
    ft = replace(finetune_preset(config.finetune_preset), episodes_per_task=config.episodes, seed=config.seed)
    for method in METHODS:
        run = runs / method
        if not (run / "summary.json").exists():
            finetune(pretrain_run if method == "wam" else None, [robot_dir], run, ft,
                     video=[video_dir] if method == "wam" else [], resume=run_kind(run) == "finetune")
    seconds["finetune"] = time.perf_counter() - t0

    t0 = stage(5, "evaluate both policies in the simulator")
    evaluations = {}
    for method in METHODS:
        evaluations[method] = evaluate_policy(EvalConfig(runs / method, config.tasks, config.eval_episodes, config.workers,
                                                         seed=config.seed, max_steps=config.max_steps, video_out=out / "rollouts" / method))
    seconds["evaluate"] = time.perf_counter() - t0

    stage(6, "report")
    sections = _dataset_sections(out, robot_dir, video_dir)
    plot = _plot(evaluations, out / "success.png")
    summary = {"collection": {k: vars(v) for k, v in collected.items()}, "datasets": [s[1] for s in sections],
               "dream": {"methods": dream["methods"], "summary": dream["summary"]},
               "success": {m: {"mean": e["mean_success"], "tasks": e["tasks"], "policy_steps_per_s": e["policy_steps_per_s"]}
                           for m, e in evaluations.items()},
               "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = out / "report.html"
    report.write_text(_render(out, config, sections, collected, dream, evaluations, plot, seconds))
    return report


def _dataset_sections(out: Path, robot_dir: Path, video_dir: Path) -> list:
    sections = []
    for name, directory in (("robot episodes (with actions)", robot_dir), ("action-free video", video_dir)):
        dataset = Dataset(directory)
        problems = [str(p) for p in check_dataset(directory) if p.severity == "error"]
        gifs = []
        for task in dataset.tasks:
            first = next(e.index for e in dataset.episodes if e.task == task)
            gif = out / "gifs" / f"{directory.name}-{first}.gif"
            export_episode(dataset, first, gif, scale=2)
            gifs.append((task, gif.relative_to(out)))
        sections.append((name, dataset_summary(dataset), problems, gifs))
    return sections


def _plot(evaluations: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(next(iter(evaluations.values()))["tasks"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(evaluations)
    for i, (method, result) in enumerate(evaluations.items()):
        rates = [result["tasks"][t]["success_rate"] for t in tasks]
        low = [r - result["tasks"][t]["wilson95"][0] for r, t in zip(rates, tasks)]
        high = [result["tasks"][t]["wilson95"][1] - r for r, t in zip(rates, tasks)]
        ax.bar(np.arange(len(tasks)) + i * width, rates, width, yerr=[low, high], capsize=3, label=METHODS[method])
    ax.set_xticks(np.arange(len(tasks)) + width * (len(evaluations) - 1) / 2, [t.removesuffix("-v3") for t in tasks], fontsize=8)
    ax.set_ylabel("success rate (95% Wilson)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _render(out, config, sections, collected, dream, evaluations, plot, seconds) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>wam demo</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}td,th{padding:2px 8px;text-align:left}"
             "figure{display:inline-block;margin:4px}img.px{image-rendering:pixelated}</style></head><body>",
             "<h1>wam demo: the World Action Model recipe, end to end</h1>",
             f"<p>Tasks: {e(', '.join(config.tasks))}. {config.video_episodes} action-free video episodes and "
             f"{config.episodes} labelled robot episodes per task; {config.eval_episodes} evaluation episodes per task "
             f"and method (limit {config.max_steps} steps), on scenes no training episode used. Stage times: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".</p>",
             "<h2>Success in the simulator</h2><table><tr><th>task</th>"
             + "".join(f"<th>{e(METHODS[m])}</th>" for m in evaluations) + "</tr>"]
    tasks = list(next(iter(evaluations.values()))["tasks"])
    for task in tasks:
        cells = "".join(f"<td>{r['tasks'][task]['success_rate']:.2f} [{r['tasks'][task]['wilson95'][0]:.2f}, "
                        f"{r['tasks'][task]['wilson95'][1]:.2f}]</td>" for r in evaluations.values())
        parts.append(f"<tr><td>{e(task)}</td>{cells}</tr>")
    parts.append("<tr><th>mean</th>" + "".join(f"<th>{r['mean_success']:.2f}</th>" for r in evaluations.values()) + "</tr>")
    parts.append("<tr><td>control rate</td>" + "".join(f"<td>{r['policy_steps_per_s']:.0f} policy steps/s</td>" for r in evaluations.values())
                 + "</tr></table>")
    parts.append(f"<p><img src='{Path(plot).relative_to(out)}' width='600'></p>")
    parts.append("<h2>Real rollouts</h2>")
    for method, result in evaluations.items():
        for video in result["videos"]:
            if video.endswith(".gif"):
                parts.append(f"<figure><img class='px' src='{Path(video).relative_to(out)}' width='128'>"
                             f"<figcaption>{e(METHODS[method])}<br>{e(Path(video).stem)}</figcaption></figure>")
    h = max(dream["horizons"])
    parts.append(f"<h2>Dreams</h2><p>Pretrained world model on held-out video: PSNR at {h} steps "
                 f"{dream['methods']['model'][f'h{h}']['psnr_at']:.1f} dB vs copy-last-frame "
                 f"{dream['methods']['copy_last_frame'][f'h{h}']['psnr_at']:.1f} dB "
                 f"(zeroed actions {dream['methods']['zeroed_actions'][f'h{h}']['psnr_at']:.1f} dB). "
                 "Left: ground truth; middle: the dream; right: the dream with the action input zeroed.</p>")
    for video in dream["videos"]:
        if video.endswith(".gif"):
            parts.append(f"<figure><img class='px' src='dream/{video}' width='384'></figure>")
    for key, result in collected.items():
        parts.append(f"<p>{key}: collected {result.added} episodes, {result.frames} frames, "
                     f"{result.frames_per_second:.0f} frames/s, {result.successes}/{result.added} successful.</p>")
    for name, summary, problems, gifs in sections:
        parts.append(f"<h2>{e(name)}</h2><table>")
        for key in ("path", "episodes", "frames", "fps", "episodes_with_actions", "episodes_without_actions", "success_rate", "size_mb"):
            parts.append(f"<tr><th>{key}</th><td>{e(str(summary[key]))}</td></tr>")
        parts.append(f"<tr><th>check</th><td>{'ok' if not problems else e('; '.join(problems))}</td></tr></table>")
        for task, gif in gifs:
            parts.append(f"<figure><img class='px' src='{gif}' width='128'><figcaption>{e(task)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
