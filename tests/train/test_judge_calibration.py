"""The verdict's calibration: a threshold chosen for precision on held-out policies' episodes."""

import numpy as np
import pytest

from wam.train.judge_calibration import Calibration, calibrate, held_score, load_calibration, reliability, save_calibration


def test_held_score_is_the_best_probability_held_for_the_window():
    p = np.array([0.1, 0.9, 0.2, 0.7, 0.8, 0.6])
    assert held_score(p, 1) == pytest.approx(0.9)
    assert held_score(p, 2) == pytest.approx(0.7)  # a lone spike no longer counts
    assert held_score(p, 3) == pytest.approx(0.6)
    assert held_score(p[:2], 3) == 0.0  # too short to hold the verdict that long
    with pytest.raises(ValueError, match="hold"):
        held_score(p, 0)


def test_the_threshold_is_the_lowest_that_reaches_the_precision():
    # scores (hold 1): successes at 0.9, 0.8, 0.5; failures at 0.85, 0.4, 0.3
    episodes = [np.array([0.1, s]) for s in (0.9, 0.8, 0.5, 0.85, 0.4, 0.3)]
    real = [True, True, True, False, False, False]
    labels = [np.array([False, r]) for r in real]
    strict = calibrate(episodes, real, labels, precision=0.99, hold=1, policies=["policy:b", "policy:a"])
    assert strict.reached and strict.threshold == pytest.approx(0.9) and strict.true_positive_rate == pytest.approx(1 / 3)
    loose = calibrate(episodes, real, labels, precision=0.6, hold=1, policies=[])
    # at 0.5: 3 successes and 1 failure called (0.75); at 0.4: 3 of 5 (0.6) is the lowest reaching 0.6
    assert loose.reached and loose.threshold == pytest.approx(0.4) and loose.precision == pytest.approx(0.6)
    assert loose.false_positive_rate == pytest.approx(2 / 3) and loose.true_positive_rate == 1.0
    assert strict.policies == ["policy:a", "policy:b"] and strict.episodes == 6 and strict.real_successes == 3
    assert [c["threshold"] for c in strict.curve] == sorted({0.9, 0.8, 0.5, 0.85, 0.4, 0.3}, reverse=True)


def test_a_precision_no_threshold_reaches_is_reported_as_missed():
    episodes = [np.array([0.9]), np.array([0.95])]  # the failure scores highest
    result = calibrate(episodes, [True, False], [np.array([True]), np.array([False])], precision=0.9, hold=1, policies=[])
    assert not result.reached and result.precision == pytest.approx(0.5)


def test_reliability_bins_compare_predictions_with_what_happened():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.95, 0.95])
    y = np.array([False, False, True, True, True, False])
    bins = reliability(p, y, bins=10)
    assert [b["frames"] for b in bins] == [2, 4]
    assert bins[1]["observed"] == pytest.approx(0.75) and bins[0]["observed"] == 0.0


def test_a_calibration_round_trips_through_its_file(tmp_path):
    result = calibrate([np.array([0.2, 0.8])], [True], [np.array([False, True])], precision=0.9, hold=1, policies=["p"])
    save_calibration(tmp_path, result)
    assert load_calibration(tmp_path) == Calibration.from_dict(result.to_dict())
    assert load_calibration(tmp_path / "none") is None
