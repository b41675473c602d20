"""The headline results: the few figures the README and docs cite, each built from its benchmark's raw file.

    python benchmarks/headline.py            # rewrite benchmarks/results/headline/*.json
    python benchmarks/pages.py               # then the pages and the README's claims table

The raw files in benchmarks/results/ are what each benchmark script wrote, in its own shape,
beside every variant ever run. A builder here reads the one raw file behind a headline, takes
its figures as they are (nothing is retyped), states the claim and its target, and writes
the common format (`results_io`), keeping the provenance the raw file recorded: its command,
its machine, and its date (the commit that last changed it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Claim, Result, write_result  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HEADLINE = RESULTS / "headline"


def raw(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def recorded(name: str, data: dict) -> dict:
    """The provenance of a raw file as it was recorded; what it did not record is None, never guessed."""
    log = subprocess.run(["git", "log", "-1", "--format=%cI %H", "--", f"benchmarks/results/{name}"], cwd=ROOT,
                         capture_output=True, text=True).stdout.split()
    machine = data.get("machine") or {}
    return {"date": log[0] if log else None, "commit": machine.get("code_commit"), "committed_in": log[1] if log else None,
            "dirty": None, "machine": {"cpu": None, "cores": machine.get("cpus"), "memory_gib": None,
                                       "gpu": None if machine.get("device", "cpu") == "cpu" else machine.get("device"),
                                       "host": machine.get("host"), "python": machine.get("python")},
            "versions": {"torch": machine.get("torch")}}


def points(x: float) -> float:
    return round(100 * x, 1)


def recipe() -> tuple[Result, dict]:
    name = "recipe.json"
    d = raw(name)
    margin, efficiency = d["targets"]["margin"]["per_k"], d["targets"]["data_efficiency"]
    wam, scratch = d["summary"]["wam"], d["summary"]["scratch"]
    held_wam, held_scratch = d["heldout_summary"]["wam"]["1"], d["heldout_summary"]["scratch"]["1"]
    claims = [
        Claim("pretraining on action-free video beats training from scratch (MT10, 3 demos a task)",
              points(margin["3"]["paired_gap"]), "points", ">= +15 points", margin["3"]["met"],
              tuple(points(v) for v in margin["3"]["difference_95"]), f"{margin['3']['seeds']} seeds x 500 episodes a method"),
        Claim("with 3 demos a task the WAM matches training from scratch on 10 (MT10)", points(efficiency["difference"]),
              "points", ">= 0 points", efficiency["met"], tuple(points(v) for v in efficiency["difference_95"]),
              "WAM K=3 minus scratch K=10"),
        Claim("on held-out tasks, one demo each, the WAM beats training from scratch",
              points(held_wam["mean"] - held_scratch["mean"]), "points", "> 0 points", held_wam["mean"] > held_scratch["mean"],
              None, f"WAM {held_wam['mean']:.3f} vs scratch {held_scratch['mean']:.3f}, {held_wam['seeds']} seeds"),
    ]
    rows = [[f"K = {k}", f"{wam[k]['mean']:.3f}", f"[{wam[k]['wilson95_pooled'][0]:.3f}, {wam[k]['wilson95_pooled'][1]:.3f}]",
             f"{scratch[k]['mean']:.3f}", f"[{scratch[k]['wilson95_pooled'][0]:.3f}, {scratch[k]['wilson95_pooled'][1]:.3f}]",
             f"{points(margin[k]['paired_gap']):+.1f}"] for k in sorted(wam, key=int)]
    result = Result(
        "recipe", "The recipe: WAM vs training from scratch on MT10", "bash benchmarks/inputs.sh && bash benchmarks/recipe_grid.sh",
        claims,
        {"columns": ["demos a task", "WAM", "95% (Wilson, pooled)", "from scratch", "95% (Wilson, pooled)", "gap (points)"],
         "rows": rows},
        "benchmarks/results/recipe.png", len(d["planned"]), len(d["cells"]), [f"benchmarks/results/{name}"],
        "Success rate in the simulator of WAM policies (pretrained on action-free MT10 video, finetuned on K demos a "
        "task) and policies trained from scratch on the same demos, 50 episodes a task a cell, 3 seeds. The inputs "
        "(datasets, the pretraining run) are rebuilt by inputs.sh; the grid's driver runs every missing cell of "
        "benchmarks/recipe.py, and each cell in the raw file keeps the command and machine that ran it.", rank=1)
    return result, recorded(name, d)


def scaling() -> tuple[Result, dict]:
    name = "scaling_pretrain_early_stop.json"
    d = raw(name)
    fit = d["fit"]
    claims = [Claim("validation loss falls log-linearly with the amount of action-free video", round(fit["r2"], 3), "R²",
                    ">= 0.98 over 2 decades", fit["r2"] >= 0.98 and fit["decades"] >= 2, None,
                    f"{fit['decades']:.2f} decades of frames, one seed")]
    rows = [[str(p["episodes"]), f"{p['frames']:,.0f}", str(p["steps"]), f"{p['val_loss']:.5f}"]
            for p in d["points"]]
    result = Result("scaling_pretrain", "Pretraining scaling law", d["command"], claims,
                    {"columns": ["episodes", "frames", "training steps", "best validation latent MSE"], "rows": rows},
                    "benchmarks/results/scaling_pretrain_early_stop.png", None, None, [f"benchmarks/results/{name}"],
                    "A fixed world model trained from scratch on nested, task-stratified subsets of the pretraining "
                    "video, evaluated on held-out episodes; the fit is loss = a - b log10(frames).", rank=2)
    return result, recorded(name, d)


def dream_throughput() -> tuple[Result, dict]:
    name = "dream_throughput.json"
    d = raw(name)
    best = max(d["dreams"], key=lambda x: x["ratio_to_real"])
    claims = [Claim("a dream steps faster than the pixel simulator", best["ratio_to_real"], "x", ">= 50x",
                    best["ratio_to_real"] >= 50, None,
                    f"{best['model']}, {best['precision']}, batch {best['batch']}: {best['dream_steps_per_s']:,.0f} "
                    f"steps/s vs {d['real_env_steps_per_s']:,.0f}")]
    rows = [[x["model"], str(x["batch"]), x["precision"], f"{x['dream_steps_per_s']:,.1f}", f"{x['ratio_to_real']:.2f}"]
            for x in d["dreams"]]
    result = Result("dream_throughput", "Dream throughput", d["command"], claims,
                    {"columns": ["model", "batch", "precision", "dream steps/s", "x simulator"], "rows": rows},
                    "benchmarks/results/dream_throughput.png", None, None, [f"benchmarks/results/{name}"],
                    "Steps a second of the dream environment (the WAM, or the student distilled from it) against the "
                    "Meta-World simulator rendering 64x64 pixels, on the same machine in the same run.", rank=3)
    return result, recorded(name, d)


def dream_fidelity() -> tuple[Result, dict]:
    name = "dream_eval_snapshots.json"
    d = raw(name)
    claims = [Claim("the dream ranks policies as reality does", round(d["pearson"], 2), "Pearson", ">= 0.9", d["pearson"] >= 0.9,
                    None, f"{len(d['policies'])} policies, success in dreams vs in the simulator; Spearman {d['spearman']:.2f}")]
    success = {key: cell["mean_success"] for key, cell in d["cells"].items()}
    rows = [[Path(policy).name, f"{success[f'{policy}|real']:.3f}", f"{success[f'{policy}|dream']:.3f}"]
            for policy in d["policies"] if f"{policy}|real" in success and f"{policy}|dream" in success]
    result = Result("dream_fidelity", "Dream fidelity: do dreams rank policies like reality?", d["command"], claims,
                    {"columns": ["policy", "real success", "dream success"], "rows": rows} if rows else None,
                    "benchmarks/results/dream_eval_snapshots.png", None, None, [f"benchmarks/results/{name}"],
                    "Policies of graded quality evaluated in the simulator and in the dream from the same start frames; "
                    "the correlation of their success rates across policies. The full record: docs/dream_dojo.md.", rank=4)
    return result, recorded(name, d)


def api_load() -> tuple[Result, dict]:
    name, channel_name = "api_load.json", "api_load_control_channel_16.json"
    d, channel = raw(name), raw(channel_name)
    within = [s for s in d["settings"] if s["latency_ms"]["p99"] <= 50]
    best = max(within, key=lambda s: s["actions_per_s"]) if within else max(d["settings"], key=lambda s: s["latency_ms"]["p99"])
    ws = max((s for s in channel["settings"] if "WebSocket" in s["setting"]), key=lambda s: s["actions_per_s"])
    claims = [
        Claim(f"{d['robots']} robots driven over HTTP", best["actions_per_s"], "actions/s", ">= 1,000 at p99 <= 50 ms",
              best["actions_per_s"] >= 1000 and best["latency_ms"]["p99"] <= 50, None,
              f"{best['setting']}; p99 {best['latency_ms']['p99']:.0f} ms"),
        Claim(f"one WebSocket drives many robots ({channel['robots']} here)", ws["actions_per_s"], "actions/s",
              ">= 5,000 at p99 <= 20 ms (64 robots)", False, None,
              f"p99 {ws['latency_ms']['p99']:.0f} ms; the simulator alone steps {channel['raw_simulator_steps_per_s']:,.0f}/s "
              "on these 2 cores, below the target"),
    ]
    rows = [[s["setting"], f"{s['actions_per_s']:,.0f}", f"{s['latency_ms']['p50']:.0f}", f"{s['latency_ms']['p99']:.0f}"]
            for s in d["settings"]]
    result = Result("api_load", "Physical API load", d["command"], claims,
                    {"columns": ["setting (64 robots)", "actions/s", "p50 ms", "p99 ms"], "rows": rows},
                    "benchmarks/results/api_load.png", None, None,
                    [f"benchmarks/results/{name}", f"benchmarks/results/{channel_name}"],
                    "One client process drives simulated robots (one worker process each) through the server for a "
                    "fixed time; every episode is recorded. WebSocket figures: " + channel["command"], rank=6)
    return result, recorded(name, d)


def estop() -> tuple[Result, dict]:
    name = "estop_latency.json"
    d = raw(name)
    robot, fleet = d["overall"]["robot"], d["overall"]["fleet"]
    after = robot["after_answer"] + fleet["after_answer"]
    claims = [Claim("no action runs after an emergency stop is answered", after, "actions", "0", after == 0, None,
                    f"{robot['stops'] + fleet['stops']} stops with chunks queued; request to last action: median "
                    f"{robot['request_to_last_action_ms']['median']:.1f} ms, p99 {robot['request_to_last_action_ms']['p99']:.1f} ms")]
    rows = [[kind, str(o["stops"]), str(o["after_answer"]), f"{o['request_to_last_action_ms']['median']:.1f}",
             f"{o['request_to_last_action_ms']['p99']:.1f}", f"{o['request_to_answer_ms']['median']:.0f}"]
            for kind, o in d["overall"].items()]
    result = Result("estop", "Emergency stop preemption", d["command"], claims,
                    {"columns": ["stop", "stops", "actions after the answer", "request to last action, median ms",
                                 "p99 ms", "request to answer, median ms"], "rows": rows},
                    "benchmarks/results/estop_latency.png", None, None, [f"benchmarks/results/{name}"],
                    "Robots executing queued 64-action chunks are stopped; the worker counts every action it executes, "
                    "so actions after the stop's answer are counted, not estimated.", rank=7)
    return result, recorded(name, d)


def collection() -> tuple[Result, dict]:
    name = "collect_throughput.json"
    d = raw(name)
    two = next(c for c in d["collect"] if c["workers"] == 2)
    claims = [Claim("collection renders 64x64 pixels fast enough on 2 cores", two["frames_per_s"], "frames/s",
                    f">= {d['target']['frames_per_s_2_workers']} with 2 workers", d["target"]["met"], None,
                    f"{two['episodes']} expert episodes; physics alone {d['physics_steps_per_s']:,.0f} steps/s")]
    rows = [[str(c["workers"]), str(c["episodes"]), str(c["frames"]), f"{c['frames_per_s']:.1f}"] for c in d["collect"]]
    result = Result("collect_throughput", "Collection throughput", d["command"], claims,
                    {"columns": ["workers", "episodes", "frames", "frames/s"], "rows": rows},
                    "benchmarks/results/collect_throughput.png", None, None, [f"benchmarks/results/{name}"],
                    "Scripted-expert episodes collected into a LeRobot v3 dataset with 64x64 pixels, end to end.", rank=5)
    return result, recorded(name, d)


BUILDERS: dict[str, Callable[[], tuple[Result, dict]]] = {
    "recipe": recipe, "scaling_pretrain": scaling, "dream_throughput": dream_throughput, "dream_fidelity": dream_fidelity,
    "api_load": api_load, "estop": estop, "collect_throughput": collection,
}


def main() -> None:
    for name, build in BUILDERS.items():
        result, provenance = build()
        print(f"wrote {write_result(HEADLINE / f'{name}.json', result, provenance).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
