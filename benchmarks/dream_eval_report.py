"""What the dream-ranking benchmark concludes from its cells: correlations, per-task gaps and,
where the cells kept their episodes, the dream's verdict on the same scenes as reality.

A correlation of success rates says whether the dream orders policies like reality; the paired
episodes say why it does not. The dream and the simulator start every episode of a policy from
the same scene, so each episode has a real outcome and a dream outcome: a dream success on a
real failure is the room a policy has to exploit the dream (its false-positive rate), a dream
failure on a real success is a policy the dream undersells. Kept apart from dream_eval.py (the
driver) so the summary can be recomputed and tested without running a policy.
"""

from __future__ import annotations

import numpy as np


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float)  # noqa: E731
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def correlations(real: np.ndarray, dream: np.ndarray) -> tuple[float | None, float | None]:
    """Pearson and Spearman, None when either side is constant (the correlation is undefined)."""
    if len(real) < 2 or not real.std() or not dream.std():
        return None, None
    return float(np.corrcoef(real, dream)[0, 1]), spearman(real, dream)


def compact_episodes(episode_results: list[dict]) -> list[list]:
    """[task, number, success, length] per episode: what pairing and the speed score need, small in JSON."""
    return [[e["task"], int(e["number"]), bool(e["success"]), int(e["length"])] for e in episode_results]


def paired_verdicts(real_cell: dict, dream_cell: dict) -> dict | None:
    """The dream's verdict against reality on the same scenes; None if a cell kept no episodes."""
    if "episodes" not in real_cell or "episodes" not in dream_cell:
        return None
    real = {(t, n): s for t, n, s, _ in real_cell["episodes"]}
    dream = {(t, n): s for t, n, s, _ in dream_cell["episodes"]}
    both = sorted(real.keys() & dream.keys())
    counts = {"both_success": 0, "dream_only": 0, "real_only": 0, "both_failure": 0}
    for key in both:
        name = ("both_success" if dream[key] else "real_only") if real[key] else ("dream_only" if dream[key] else "both_failure")
        counts[name] += 1
    real_wins = counts["both_success"] + counts["real_only"]
    real_losses = counts["dream_only"] + counts["both_failure"]
    return {**counts, "episodes": len(both),
            "agreement": (counts["both_success"] + counts["both_failure"]) / max(1, len(both)),
            "true_positive_rate": counts["both_success"] / real_wins if real_wins else None,
            "false_positive_rate": counts["dream_only"] / real_losses if real_losses else None}


def speed_score(cell: dict, max_steps: int) -> float | None:
    """Mean over episodes of success x (1 - steps taken / step limit): a success earns more the sooner it comes.

    Declared before the snapshot run as the benchmark's secondary dream score: when the dream
    calls most episodes of most policies a success, how soon it does may still order them."""
    if "episodes" not in cell:
        return None
    return float(np.mean([s * (1.0 - length / max_steps) for _, _, s, length in cell["episodes"]]))


def summarise(cells: dict, names: list[str], tasks: tuple[str, ...], max_steps: int) -> dict:
    """Correlations over the policies, per-task gaps, paired verdicts and the dream's most optimistic policies."""
    real = np.array([cells[f"{n}|real"]["mean_success"] for n in names])
    dream = np.array([cells[f"{n}|dream"]["mean_success"] for n in names])
    pearson, rank = correlations(real, dream)
    summary = {"pearson": pearson, "spearman": rank, "per_task": {}}
    # Per task, over the same policies: a task whose dream success is the same for every policy, or rises where
    # reality falls, is one the dream cannot tell apart.
    for task in tasks:
        r_t = np.array([cells[f"{n}|real"]["tasks"][task] for n in names])
        d_t = np.array([cells[f"{n}|dream"]["tasks"][task] for n in names])
        summary["per_task"][task] = {"real": r_t.tolist(), "dream": d_t.tolist(), "mean_gap": float((d_t - r_t).mean()),
                                     "pearson": correlations(r_t, d_t)[0]}
    gap = dream - real
    summary["most_optimistic"] = [{"policy": names[i], "real": float(real[i]), "dream": float(dream[i])}
                                  for i in np.argsort(-gap)[:3]]
    paired = {n: paired_verdicts(cells[f"{n}|real"], cells[f"{n}|dream"]) for n in names}
    paired = {n: v for n, v in paired.items() if v is not None}
    summary["paired"] = paired
    if paired:
        pooled = {k: sum(v[k] for v in paired.values()) for k in ("both_success", "dream_only", "real_only", "both_failure")}
        losses, wins = pooled["dream_only"] + pooled["both_failure"], pooled["both_success"] + pooled["real_only"]
        summary["paired_pooled"] = {**pooled, "false_positive_rate": pooled["dream_only"] / losses if losses else None,
                                    "true_positive_rate": pooled["both_success"] / wins if wins else None}
    speeds = [speed_score(cells[f"{n}|dream"], max_steps) for n in names]
    if all(s is not None for s in speeds):
        speed_pearson, speed_spearman = correlations(real, np.array(speeds))
        summary["speed_score"] = {"dream": speeds, "pearson": speed_pearson, "spearman": speed_spearman}
    return summary
