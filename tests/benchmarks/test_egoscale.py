"""The EgoScale benchmark's verdicts: which cells each target compares, and when the results stop being partial."""

import json

import pytest

from tests.support.benchmark_scripts import load_script


@pytest.fixture(scope="module")
def egoscale():
    load_script("recipe_report")
    load_script("recipe")  # egoscale.py imports its siblings by name
    return load_script("egoscale")


def cell(experiment, method, k, seed, wins, episodes=50, task="touch"):
    return {"experiment": experiment, "method": method, "k": k, "seed": seed, "mean_success": wins / episodes,
            "tasks": {task: {"successes": wins, "episodes": episodes}}}


def test_targets_compare_the_right_cells_pooled_over_seeds(egoscale):
    cells = {
        "a": cell("main", "human", 3, 0, 40), "b": cell("main", "human", 3, 1, 30),
        "c": cell("main", "scratch", 3, 0, 20), "d": cell("main", "scratch", 3, 1, 20),
        "e": cell("main", "human_retargeted", 3, 0, 36),
        "f": cell("main", "human", 1, 0, 50),  # another K: must not count
        "g": cell("oneshot", "human", 1, 0, 10, task="open-drawer"), "h": cell("oneshot", "scratch", 1, 0, 5, task="open-drawer"),
    }
    verdict = egoscale.verdict(cells)
    human = verdict["human_vs_scratch_k3"]
    assert human["difference"] == pytest.approx(70 / 100 - 40 / 100) and human["met"] and human["episodes"] == [100, 100]
    assert human["difference_95"][0] < 0.3 < human["difference_95"][1]
    retargeted = verdict["retargeted_vs_human_k3"]
    assert retargeted["difference"] == pytest.approx(36 / 50 - 70 / 100) and not retargeted["met"]
    assert verdict["oneshot_vs_scratch"]["difference"] == pytest.approx(0.1) and not verdict["oneshot_vs_scratch"]["met"]


def test_results_stay_partial_until_every_planned_cell_is_in(egoscale, tmp_path):
    out = tmp_path / "egoscale.json"
    results = {"cells": {"main-human-k3-s0": cell("main", "human", 3, 0, 40)}}
    egoscale.save(results, ["main-human-k3-s0", "main-scratch-k3-s0"], out)
    assert json.loads(out.read_text())["partial"] is True
    results["cells"]["main-scratch-k3-s0"] = cell("main", "scratch", 3, 0, 20)
    egoscale.save(results, ["main-human-k3-s0", "main-scratch-k3-s0"], out)
    saved = json.loads(out.read_text())
    assert saved["partial"] is False and saved["summary"]["main"]["human"]["3"]["episodes"] == 50
