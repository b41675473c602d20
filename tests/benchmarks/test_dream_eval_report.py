"""The dream-ranking benchmark's summary: the README's correlations and false-positive rates
come from these, so a wrong pairing of episodes would report a dream verdict no run gave."""

import numpy as np
import pytest

from tests.support.benchmark_scripts import load_script


@pytest.fixture(scope="module")
def report():
    return load_script("dream_eval_report")


def cell(outcomes, task="drawer-open-v3", lengths=None):
    lengths = lengths or [100] * len(outcomes)
    return {"mean_success": float(np.mean(outcomes)), "tasks": {task: float(np.mean(outcomes))},
            "episodes": [[task, n, bool(s), length] for n, (s, length) in enumerate(zip(outcomes, lengths))]}


def test_paired_verdicts_count_each_scene_once(report):
    real = cell([1, 1, 0, 0, 0])
    dream = cell([1, 0, 1, 1, 0])
    paired = report.paired_verdicts(real, dream)
    assert (paired["both_success"], paired["real_only"], paired["dream_only"], paired["both_failure"]) == (1, 1, 2, 1)
    assert paired["false_positive_rate"] == pytest.approx(2 / 3)
    assert paired["true_positive_rate"] == pytest.approx(1 / 2)
    assert paired["agreement"] == pytest.approx(2 / 5)


def test_paired_verdicts_pair_by_scene_not_by_order(report):
    real = cell([1, 0])
    dream = cell([1, 0])
    dream["episodes"].reverse()  # workers finish out of order; scene (task, number) is the key
    assert report.paired_verdicts(real, dream)["agreement"] == 1.0
    assert report.paired_verdicts({"mean_success": 0.5}, dream) is None  # a cell from before episodes were kept


def test_rates_undefined_without_their_class(report):
    paired = report.paired_verdicts(cell([1, 1]), cell([1, 0]))
    assert paired["false_positive_rate"] is None and paired["true_positive_rate"] == 0.5


def test_speed_score_rewards_early_success(report):
    fast = cell([1, 1], lengths=[30, 30])
    slow = cell([1, 1], lengths=[270, 270])
    assert report.speed_score(fast, 300) == pytest.approx(0.9)
    assert report.speed_score(slow, 300) == pytest.approx(0.1)
    assert report.speed_score(cell([0, 0], lengths=[300, 300]), 300) == 0.0


def test_summary_correlations_and_pooled_false_positives(report):
    cells = {}
    for name, real, dream in (("a", [1, 1, 1, 0], [1, 1, 1, 1]), ("b", [1, 0, 0, 0], [1, 1, 1, 0]),
                              ("c", [0, 0, 0, 0], [0, 0, 0, 0])):
        cells[f"{name}|real"], cells[f"{name}|dream"] = cell(real), cell(dream)
    summary = report.summarise(cells, ["a", "b", "c"], ("drawer-open-v3",), 300)
    assert summary["spearman"] == pytest.approx(1.0)
    assert summary["pearson"] == pytest.approx(np.corrcoef([0.75, 0.25, 0.0], [1.0, 0.75, 0.0])[0, 1])
    pooled = summary["paired_pooled"]
    assert pooled["dream_only"] == 3 and pooled["both_failure"] == 5
    assert pooled["false_positive_rate"] == pytest.approx(3 / 8)
    assert summary["most_optimistic"][0] == {"policy": "b", "real": 0.25, "dream": 0.75}
    assert summary["speed_score"]["spearman"] == pytest.approx(1.0)


def test_constant_dream_has_no_correlation(report):
    cells = {"a|real": cell([1, 0]), "a|dream": cell([1, 1]), "b|real": cell([0, 0]), "b|dream": cell([1, 1])}
    summary = report.summarise(cells, ["a", "b"], ("drawer-open-v3",), 300)
    assert summary["pearson"] is None and summary["spearman"] is None
