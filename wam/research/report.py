"""The study's live report: `STUDY/report.html` (one file, the plot inlined), rewritten after every trial.

The plot is autoresearch's: every trial's score, the running best of the kept ones as a step line, and the
baseline's noise band (mean +- 2 sigma). Below it the kept changes (what changed against the baseline, the gain and
the bar it cleared), the rejected proposals with the reason, and the crashed runs with their error.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

from wam.research.loop import Ledger, State, replay
from wam.research.spec import load_study


def progress_plot(state: State) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    numbers = sorted(t for t in state.trials if t > 0)
    baseline = state.baseline
    if baseline and baseline.scores():
        mean, sigma = baseline.mean, state.noise_floor() or 0.0
        ax.axhspan(mean - 2 * sigma, mean + 2 * sigma, color="grey", alpha=0.2, label="baseline +- 2 sigma")
        ax.axhline(mean, color="grey", lw=0.8)
    kept_x, kept_y, other_x, other_y = [], [], [], []
    for number in numbers:
        trial = state.trials[number]
        if trial.mean is None:
            continue
        kept = bool(trial.decision and trial.decision.get("kept"))
        (kept_x if kept else other_x).append(number)
        (kept_y if kept else other_y).append(trial.mean)
    ax.scatter(other_x, other_y, s=14, color="#9aa5b1", label="trial")
    ax.scatter(kept_x, kept_y, s=30, color="#1f77b4", label="kept", zorder=3)
    if baseline and baseline.scores():
        best, xs, ys = baseline.mean, [0], [baseline.mean]
        for number in numbers:
            trial = state.trials[number]
            if trial.decision and trial.decision.get("kept"):
                best = trial.mean
            xs.append(number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="#1f77b4", lw=1.2, label="incumbent")
        scores = other_y + kept_y
        if scores:  # far-off failures would squash the part that matters: show down to twice the gain below
            ax.set_ylim(bottom=max(min(scores), baseline.mean - 2 * max(best - baseline.mean, 1e-6)) - 0.02)
    ax.set(xlabel="trial", ylabel="metric")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>none</p>"


def write_report(directory: str | Path) -> Path:
    study = load_study(directory)
    state = replay(Ledger(study.directory).events())
    baseline = study.baseline
    kept = [t for t in state.trials.values() if t.decision and t.decision.get("kept")]
    crashed = [(t.trial, r, run.get("error", "")) for t in state.trials.values() for r, run in t.runs.items()
               if "error" in run and "metric" not in run]
    finished = [t for t in state.trials.values() if t.trial > 0 and t.mean is not None]
    sigma = state.noise_floor()
    image = base64.b64encode(progress_plot(state)).decode()
    summary = (f"{len(finished)} trials finished, {len(kept)} kept, {len(state.rejected)} proposals rejected, "
               f"{len(crashed)} runs crashed; baseline {state.baseline.mean:.4f}" if state.baseline and state.baseline.mean
               is not None else "the baseline has not finished yet")
    if sigma is not None:
        summary += f", noise floor sigma {sigma:.4f}; incumbent: trial {state.incumbent.trial} ({state.incumbent.mean:.4f})"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>study {html.escape(study.directory.name)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head><body>
<h1>Study {html.escape(study.directory.name)}</h1><p>{html.escape(summary)}</p>
<p>Evaluator: {html.escape(study.evaluator.kind)}, metric {html.escape(study.evaluator.metric)}, budget
{html.escape(json.dumps(study.evaluator.budget))}; spent {state.seconds:.0f} s.</p>
<img alt="metric per trial" src="data:image/png;base64,{image}">
<h2>Kept changes</h2>{_table(["trial", "changes from the baseline", "score", "gain", "bar", "holdout"],
    [[t.trial, {k: v for k, v in t.config.items() if baseline.get(k) != v}, f"{t.mean:.4f}", f"{t.decision['gain']:+.4f}",
      f"{t.decision['bar']:.4f}", t.decision["holdout"]] for t in kept])}
<h2>Rejected proposals</h2>{_table(["proposal", "why"], [[json.dumps(r["proposal"]), r["error"]] for r in state.rejected])}
<h2>Crashed runs</h2>{_table(["trial", "repeat", "error"], crashed)}
</body></html>"""
    path = study.directory / "report.html"
    temporary = path.with_suffix(".html.tmp")
    temporary.write_text(page)
    os.replace(temporary, path)
    return path
