"""The episode-verdict rules the README compares: a hovering failure and a held success, read frame by frame."""

import numpy as np
import pytest

from tests.support.benchmark_scripts import load_script


@pytest.fixture(scope="module")
def verdicts():
    return load_script("judge_frame_verdicts")


def test_a_hovering_failure_fools_any_frame_but_not_the_final_window(verdicts):
    hovering = np.array([0.1] * 40 + [0.7, 0.2, 0.1] * 10 + [0.1] * 20)  # a few frames misread, the end clearly not done
    held = np.array([0.1] * 60 + [0.9] * 20)  # success reached and held
    rows = [("drawer-open-v3", False, hovering), ("drawer-open-v3", True, held)]
    assert verdicts.rates(rows, verdicts.RULES["any frame > 0.5"]) == {"true_positive_rate": 1.0, "false_positive_rate": 1.0}
    assert verdicts.rates(rows, verdicts.RULES["final: mean of last 10 > 0.5"]) == {"true_positive_rate": 1.0,
                                                                                   "false_positive_rate": 0.0}


def test_rates_without_a_class_are_none_not_zero(verdicts):
    only_failures = [("t", False, np.array([0.9]))]
    assert verdicts.rates(only_failures, verdicts.RULES["last frame > 0.5"]) == {"true_positive_rate": None,
                                                                                  "false_positive_rate": 1.0}
