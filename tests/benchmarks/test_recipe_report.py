"""The recipe benchmark's report: the README's table is computed from these, so a wrong pairing
would put a figure in the README that no run measured."""

import json
import sys

import pytest

from tests.support.benchmark_scripts import BENCHMARKS, load_script

RECIPE = BENCHMARKS / "recipe.py"


@pytest.fixture(scope="module")
def report():
    return load_script("recipe_report")


@pytest.fixture(scope="module")
def recipe(report):
    return load_script("recipe", "recipe_benchmark")  # after `report`: recipe.py imports its sibling by name


def cell(method, k, seed, rate, experiment="mt10", episodes=10):
    wins = round(rate * episodes)
    return {"method": method, "k": k, "seed": seed, "mean_success": rate, "experiment": experiment,
            "tasks": {"reach-v3": {"successes": wins, "episodes": episodes, "success_rate": wins / episodes}}}


def test_gap_pairs_seeds_that_both_methods_finished(report):
    cells = {"a": cell("wam", 10, 0, 0.6), "b": cell("scratch", 10, 0, 0.5), "c": cell("wam", 10, 1, 0.9)}
    gap, pairs = report.paired_gap(cells, "10")
    assert pairs == 1
    assert gap == pytest.approx(0.1)  # seed 1's unpaired WAM cell (0.9) stays out of the gap
    assert report.paired_gap(cells, "3") is None


def test_table_rows_per_experiment(report):
    cells = {"a": cell("wam", 1, 0, 0.4), "b": cell("scratch", 1, 0, 0.3), "c": cell("wam", 1, 1, 0.2),
             "d": cell("scratch", 1, 1, 0.3), "h": cell("wam", 1, 0, 0.5, experiment="heldout")}
    table = report.markdown_table({"cells": cells})
    row = table.splitlines()[2]
    assert row.startswith("| 1 | 2/2 | 0.300 (0.000)")
    assert row.endswith("| +0.0 (2 seeds) |")  # (+10 - 10) / 2
    heldout = report.markdown_table({"cells": cells}, "heldout").splitlines()[2]
    assert heldout.startswith("| 1 | 0/1 | - | 0.500")
    assert heldout.endswith("| - |")


def test_pooled_wilson_counts_every_episode(report):
    summary = report.aggregate({"a": cell("wam", 3, 0, 0.5, episodes=50), "b": cell("wam", 3, 1, 0.7, episodes=50)})
    row = summary["wam"]["3"]
    assert row["episodes"] == 100 and row["seeds"] == 2
    low, high = row["wilson95_pooled"]
    assert low < 0.6 < high and high - low < 0.2


def test_plan_only_grows(recipe):
    full = ["mt10-wam-k1-s0", "mt10-wam-k1-s1", "heldout-wam-k1-s1"]
    assert recipe.merge_planned(full, ["mt10-wam-k1-s0", "heldout-wam-k1-s0"]) == [*full, "heldout-wam-k1-s0"]
    assert recipe.merge_planned([], full) == full


def test_save_keeps_partial_while_planned_cells_are_missing(recipe, tmp_path):
    out = tmp_path / "recipe.json"
    results = {"cells": {"mt10-wam-k1-s0": cell("wam", 1, 0, 0.4)}, "episodes_per_task": 10}
    recipe.save(results, ["mt10-wam-k1-s0", "mt10-scratch-k1-s0"], out)
    saved = json.loads(out.read_text())
    assert saved["partial"] is True and saved["summary"]["wam"]["1"]["mean"] == 0.4
    assert out.with_suffix(".png").exists() and not out.with_suffix(".json.tmp").exists()
    results["cells"]["mt10-scratch-k1-s0"] = cell("scratch", 1, 0, 0.3)
    recipe.save(results, ["mt10-wam-k1-s0", "mt10-scratch-k1-s0"], out)
    assert json.loads(out.read_text())["partial"] is False


def test_task_table_averages_paired_seeds_only(report):
    cells = {"a": cell("wam", 3, 0, 0.6), "b": cell("scratch", 3, 0, 0.2), "c": cell("wam", 3, 1, 1.0),
             "d": cell("scratch", 3, 1, 0.4), "e": cell("wam", 3, 2, 0.0)}
    rows = report.task_table({"cells": cells}).splitlines()
    assert rows[0] == "| task | K = 3: WAM / scratch |"
    assert rows[2] == "| reach-v3 | 0.80 / 0.30 |"  # seed 2 has no scratch cell: left out


def results_file(cells, planned, settings=None, command="python benchmarks/recipe.py --seeds 2"):
    return {"settings": settings or {"preset": "cpu", "steps": None}, "episodes_per_task": 10, "cells": cells,
            "planned": planned, "machine": {"host": "side"}, "command": command}


def test_merge_adds_cells_with_their_origin_and_grows_the_plan(recipe):
    main = results_file({"mt10-wam-k1-s0": cell("wam", 1, 0, 0.4)}, ["mt10-wam-k1-s0", "mt10-scratch-k1-s0"])
    again = {**cell("wam", 1, 0, 0.4), "eval_seconds": 999.0, "train_seconds": 0.1}  # evaluated again: other timings
    side = results_file({"mt10-scratch-k1-s0": cell("scratch", 1, 0, 0.3), "mt10-wam-k1-s0": again},
                        ["mt10-scratch-k1-s0", "mt10-scratch-k1-s2"])
    added = recipe.merge_results(main, [("side.json", side)])
    assert added == ["mt10-scratch-k1-s0"]  # the cell both hold, with the same episodes scored, is not added twice
    assert "eval_seconds" not in main["cells"]["mt10-wam-k1-s0"]  # the first record of it is kept
    origin = main["cells"]["mt10-scratch-k1-s0"]["merged_from"]
    assert origin == {"file": "side.json", "machine": {"host": "side"}, "command": "python benchmarks/recipe.py --seeds 2"}
    assert main["planned"] == ["mt10-wam-k1-s0", "mt10-scratch-k1-s0", "mt10-scratch-k1-s2"]


def test_merge_refuses_other_settings_and_conflicting_cells(recipe):
    main = results_file({"mt10-wam-k1-s0": cell("wam", 1, 0, 0.4)}, ["mt10-wam-k1-s0"])
    with pytest.raises(ValueError, match="other.json: settings"):
        recipe.merge_results(main, [("other.json", results_file({}, [], settings={"preset": "gpu", "steps": None}))])
    with pytest.raises(ValueError, match="cell mt10-wam-k1-s0 is already in the results with other figures"):
        recipe.merge_results(main, [("rerun.json", results_file({"mt10-wam-k1-s0": cell("wam", 1, 0, 0.5)}, []))])
    assert list(main["cells"]) == ["mt10-wam-k1-s0"] and main["cells"]["mt10-wam-k1-s0"]["mean_success"] == 0.4


@pytest.mark.slow  # two subprocesses that import torch and MetaWorld
def test_merge_cli_writes_out_and_names_a_missing_file(tmp_path):
    import subprocess

    out, side = tmp_path / "recipe.json", tmp_path / "side.json"
    out.write_text(json.dumps(results_file({"mt10-wam-k1-s0": cell("wam", 1, 0, 0.4)}, ["mt10-wam-k1-s0", "mt10-scratch-k1-s0"])))
    side.write_text(json.dumps(results_file({"mt10-scratch-k1-s0": cell("scratch", 1, 0, 0.3)}, ["mt10-scratch-k1-s0"])))
    done = subprocess.run([sys.executable, str(RECIPE), "--merge", str(side), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    merged = json.loads(out.read_text())
    assert sorted(merged["cells"]) == ["mt10-scratch-k1-s0", "mt10-wam-k1-s0"] and merged["partial"] is False
    missing = subprocess.run([sys.executable, str(RECIPE), "--merge", str(tmp_path / "nope.json"), "--out", str(out)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.json not found" in missing.stderr


def test_targets_judge_data_efficiency_on_means_and_margin_on_paired_seeds(report):
    cells = {"w3": cell("wam", 3, 0, 0.6), "s3": cell("scratch", 3, 0, 0.4), "s10": cell("scratch", 10, 0, 0.5),
             "w1": cell("wam", 1, 0, 0.5), "s1": cell("scratch", 1, 0, 0.4),
             "w1b": cell("wam", 1, 1, 0.9)}  # seed 1 has no scratch cell: not in the margin
    verdict = report.targets(cells)
    assert verdict["data_efficiency"]["met"] and verdict["data_efficiency"]["difference"] == pytest.approx(0.1)
    per_k = verdict["margin"]["per_k"]
    assert per_k["3"]["met"] and per_k["3"]["paired_gap"] == pytest.approx(0.2)
    assert not per_k["1"]["met"] and per_k["1"]["seeds"] == 1 and per_k["1"]["paired_gap"] == pytest.approx(0.1)
    assert not verdict["margin"]["met"]  # one K short fails the target
    assert "missed" in report.targets_text(verdict) and "+20.0" in report.targets_text(verdict)
    cells["s10"] = cell("scratch", 10, 0, 0.7)
    assert not report.targets(cells)["data_efficiency"]["met"]


def test_targets_are_empty_without_both_methods(report):
    assert report.targets({"w": cell("wam", 3, 0, 0.6)}) == {}
