"""The resolution grid's report pools seeds per task and marks unfinished settings partial."""

from __future__ import annotations

from tests.support.benchmark_scripts import load_script

report = load_script("resolution_report")


def cell(method: str, seed: int, wins: dict[str, int]) -> dict:
    tasks = {t: {"episodes": 50, "successes": w, "success_rate": w / 50} for t, w in wins.items()}
    return {"method": method, "k": 3, "seed": seed, "tasks": tasks, "mean_success": sum(wins.values()) / (50 * len(wins))}


def test_seeds_pool_per_task_and_an_unfinished_method_is_partial():
    grid = {"planned": [f"mt10-{m}-k3-s{s}" for m in ("scratch", "wam") for s in range(3)],
            "cells": {f"mt10-wam-k3-s{s}": cell("wam", s, {"reach-v3": 10 + s, "push-v3": 5}) for s in range(3)}
            | {"mt10-scratch-k3-s0": cell("scratch", 0, {"reach-v3": 1, "push-v3": 0})}}
    out = report.summarise(grid)
    assert out["wam"]["complete"] and not out["scratch"]["complete"]
    assert out["wam"]["tasks"]["reach-v3"] == round((10 + 11 + 12) / 150, 4)
    low, high = out["wam"]["wilson95"]
    assert low < (33 + 15) / 300 < high
