"""`make demo`: the pipeline as far as it exists, on a small default, ending in an HTML report.

Today that is collection (labelled robot episodes and action-free video from the scripted
experts), an integrity check, and a report with the dataset summary and episode GIFs.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from wam.data import Dataset
from wam.data.check import check_dataset
from wam.data.export import export_episode
from wam.data.summary import dataset_summary
from wam.envs.collect import CollectConfig, collect

DEMO_TASKS = ("reach-v3", "drawer-close-v3", "button-press-topdown-v3")


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo_out")
    episodes: int = 4
    workers: int = 2
    tasks: tuple[str, ...] = DEMO_TASKS
    seed: int = 0


def run_demo(config: DemoConfig) -> Path:
    out = Path(config.out)
    robot_dir, video_dir = out / "robot", out / "video"
    results = {}
    for name, directory, actions, seed in (("robot", robot_dir, True, config.seed), ("video", video_dir, False, config.seed + 1)):
        result = collect(CollectConfig(config.tasks, config.episodes, directory, actions, config.workers, noise=0.1, seed=seed))
        results[name] = result
    sections = []
    for name, directory in (("robot episodes (with actions)", robot_dir), ("action-free video", video_dir)):
        dataset = Dataset(directory)
        summary = dataset_summary(dataset)
        problems = [str(p) for p in check_dataset(directory) if p.severity == "error"]
        gifs = []
        for task in dataset.tasks:
            first = next(e.index for e in dataset.episodes if e.task == task)
            gif = out / "gifs" / f"{directory.name}-{first}.gif"
            export_episode(dataset, first, gif, scale=2)
            gifs.append((task, gif.relative_to(out)))
        sections.append((name, summary, problems, gifs))
    (out / "summary.json").write_text(
        json.dumps({"collection": {k: vars(v) for k, v in results.items()}, "datasets": [s[1] for s in sections]}, indent=2)
    )
    report = out / "report.html"
    report.write_text(_render(sections, results))
    return report


def _render(sections, results) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>wam demo</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:2px 8px;text-align:left}"
             "figure{display:inline-block;margin:4px}img{image-rendering:pixelated}</style></head><body>",
             "<h1>wam demo report</h1>"]
    for key, result in results.items():
        parts.append(f"<p>{key}: collected {result.added} episodes, {result.frames} frames, "
                     f"{result.frames_per_second:.0f} frames/s, {result.successes}/{result.added} successful.</p>")
    for name, summary, problems, gifs in sections:
        parts.append(f"<h2>{html.escape(name)}</h2><table>")
        for key in ("path", "episodes", "frames", "fps", "episodes_with_actions", "episodes_without_actions", "success_rate", "size_mb"):
            parts.append(f"<tr><th>{key}</th><td>{html.escape(str(summary[key]))}</td></tr>")
        parts.append(f"<tr><th>check</th><td>{'ok' if not problems else html.escape('; '.join(problems))}</td></tr></table>")
        for task, gif in gifs:
            parts.append(f"<figure><img src='{gif}' width='128'><figcaption>{html.escape(task)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
