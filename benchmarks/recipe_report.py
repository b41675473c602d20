"""The recipe benchmark's report: tables, paired gaps and the targets' verdict, computed from the
cells of a results JSON. Kept apart from the driver (recipe.py) because it only reads cells: the
README's figures come from here, and it is what the tests pin down."""

from __future__ import annotations

import numpy as np

from wam.dojo.evaluate import difference_interval, wilson_interval


def counts(cells: list[dict]) -> tuple[int, int]:
    """Successes and episodes of these cells, every task pooled."""
    return (sum(t["successes"] for c in cells for t in c["tasks"].values()),
            sum(t["episodes"] for c in cells for t in c["tasks"].values()))


def aggregate(cells: dict, experiment: str = "mt10") -> dict:
    """Per method and K: mean over seeds of the mean success over tasks, its std over seeds, and the
    95% Wilson interval of all episodes pooled (the error bar when there is one seed)."""
    table: dict = {}
    for cell in cells.values():
        if cell.get("experiment", "mt10") != experiment:
            continue
        table.setdefault(cell["method"], {}).setdefault(str(cell["k"]), []).append(cell)
    summary = {}
    for method, ks in table.items():
        summary[method] = {}
        for k, group in sorted(ks.items(), key=lambda x: int(x[0])):
            rates = [c["mean_success"] for c in group]
            wins, episodes = counts(group)
            summary[method][k] = {"mean": float(np.mean(rates)), "std": float(np.std(rates)), "seeds": len(group),
                                  "episodes": episodes, "wilson95_pooled": list(wilson_interval(wins, episodes))}
    return summary


def paired_seeds(cells: dict, k: str, experiment: str = "mt10") -> dict[int, dict[str, float]]:
    """Per seed both methods finished at this K: each method's mean success."""
    by_seed: dict = {}
    for cell in cells.values():
        if cell.get("experiment", "mt10") == experiment and str(cell["k"]) == k:
            by_seed.setdefault(cell["seed"], {})[cell["method"]] = cell["mean_success"]
    return {seed: pair for seed, pair in by_seed.items() if {"wam", "scratch"} <= pair.keys()}


def paired_gap(cells: dict, k: str, experiment: str = "mt10") -> tuple[float, int] | None:
    """WAM minus scratch over the seeds both methods finished, and how many: a gap between the
    means of different seeds would mix the method's effect with the demos a seed happens to draw."""
    gaps = [pair["wam"] - pair["scratch"] for pair in paired_seeds(cells, k, experiment).values()]
    return (float(np.mean(gaps)), len(gaps)) if gaps else None


TARGET_MARGIN = 0.15  # the target: WAM beats from scratch by 15 points at every K (MT10 mean)


def pooled(cells: dict, method: str, k: str, seeds: set | None = None, experiment: str = "mt10") -> tuple[int, int]:
    """Successes and episodes of one method and K, pooled over `seeds` (default: every seed run)."""
    return counts([c for c in cells.values() if c.get("experiment", "mt10") == experiment
                   and c["method"] == method and str(c["k"]) == k and (seeds is None or c["seed"] in seeds)])


def targets(cells: dict) -> dict:
    """The benchmark's two targets, judged on what the cells hold: data efficiency (WAM with 3
    demos at least from scratch with 10, on the means over seeds) and the margin (the paired-seed
    gap at least 15 points at every K). Each comes with the 95% interval of the pooled-episode
    difference (over the paired seeds for the margin), so a verdict on the means says how far the
    evaluation's episode noise could move it; the spread between seeds is the tables' std."""
    summary = aggregate(cells)
    wam, scratch = summary.get("wam", {}), summary.get("scratch", {})
    verdict: dict = {}
    if "3" in wam and "10" in scratch:
        difference = wam["3"]["mean"] - scratch["10"]["mean"]
        verdict["data_efficiency"] = {
            "wam_k3": wam["3"]["mean"], "scratch_k10": scratch["10"]["mean"], "difference": difference,
            "difference_95": list(difference_interval(*pooled(cells, "wam", "3"), *pooled(cells, "scratch", "10"))),
            "seeds": {"wam": wam["3"]["seeds"], "scratch": scratch["10"]["seeds"]}, "met": difference >= 0}
    per_k = {}
    for k in sorted(set(wam) & set(scratch), key=int):
        paired = paired_gap(cells, k)
        if paired is None:
            continue
        both = set(paired_seeds(cells, k))
        per_k[k] = {"paired_gap": paired[0], "seeds": paired[1], "met": paired[0] >= TARGET_MARGIN,
                    "difference_95": list(difference_interval(*pooled(cells, "wam", k, both),
                                                              *pooled(cells, "scratch", k, both)))}
    if per_k:
        verdict["margin"] = {"required": TARGET_MARGIN, "per_k": per_k, "met": all(v["met"] for v in per_k.values())}
    return verdict


def targets_text(verdict: dict) -> str:
    """The verdict as the lines `--table` prints under the tables."""
    lines = []
    if "data_efficiency" in verdict:
        d = verdict["data_efficiency"]
        lines.append(f"- data efficiency (WAM K = 3 >= scratch K = 10): {d['wam_k3']:.3f} vs {d['scratch_k10']:.3f}, "
                     f"{100 * d['difference']:+.1f} points [95%: {100 * d['difference_95'][0]:+.1f}, "
                     f"{100 * d['difference_95'][1]:+.1f}] ({d['seeds']['wam']}/{d['seeds']['scratch']} seeds): "
                     f"{'met' if d['met'] else 'missed'}")
    if "margin" in verdict:
        m = verdict["margin"]
        gaps = ", ".join(f"K = {k} {100 * v['paired_gap']:+.1f} [95%: {100 * v['difference_95'][0]:+.1f}, "
                         f"{100 * v['difference_95'][1]:+.1f}]" for k, v in m["per_k"].items())
        lines.append(f"- margin (WAM - scratch >= {100 * m['required']:.0f} points at every K): {gaps}: "
                     f"{'met' if m['met'] else 'missed'}")
    return "\n".join(lines)


def task_table(results: dict, experiment: str = "mt10") -> str:
    """Per task and K: WAM and scratch success averaged over the paired seeds. It shows where a
    gap can come from at all: a task both methods solve, or neither does, has no room for one."""
    pairs: dict = {}
    for cell in results.get("cells", {}).values():
        if cell.get("experiment", "mt10") == experiment:
            pairs.setdefault((str(cell["k"]), cell["seed"]), {})[cell["method"]] = cell
    ks = sorted({k for k, _ in pairs}, key=int)
    tasks = list(dict.fromkeys(t for pair in pairs.values() for c in pair.values() for t in c["tasks"]))
    rows = ["| task | " + " | ".join(f"K = {k}: WAM / scratch" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for task in tasks:
        entries = []
        for k in ks:
            both = [p for (pk, _), p in pairs.items() if pk == k and {"wam", "scratch"} <= p.keys()
                    and task in p["wam"]["tasks"] and task in p["scratch"]["tasks"]]
            rates = {m: np.mean([p[m]["tasks"][task]["success_rate"] for p in both]) for m in ("wam", "scratch")} if both else None
            entries.append("-" if rates is None else f"{rates['wam']:.2f} / {rates['scratch']:.2f}")
        rows.append(f"| {task} | " + " | ".join(entries) + " |")
    return "\n".join(rows)


def markdown_table(results: dict, experiment: str = "mt10") -> str:
    """The README's table: per K, each method's mean over seeds (std) [pooled 95% Wilson], and the
    gap over paired seeds."""
    rows = ["| K | seeds (scratch/WAM) | from scratch | WAM | WAM - scratch (paired seeds) |", "|---|---|---|---|---|"]
    summary = aggregate(results.get("cells", {}), experiment)
    for k in sorted({k for m in summary.values() for k in m}, key=int):
        cells = {m: summary.get(m, {}).get(k) for m in ("scratch", "wam")}
        text = {m: "-" if c is None else f"{c['mean']:.3f} ({c['std']:.3f}) [{c['wilson95_pooled'][0]:.3f}, "
                f"{c['wilson95_pooled'][1]:.3f}]" for m, c in cells.items()}
        seeds = "/".join(str(c["seeds"]) if c else "0" for c in cells.values())
        paired = paired_gap(results.get("cells", {}), k, experiment)
        gap = "-" if paired is None else f"{100 * paired[0]:+.1f} ({paired[1]} seed{'s' if paired[1] > 1 else ''})"
        rows.append(f"| {k} | {seeds} | {text['scratch']} | {text['wam']} | {gap} |")
    return "\n".join(rows)
