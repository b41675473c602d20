"""The headline results: the few figures the README and docs cite, each built from its benchmark's raw file.

    python benchmarks/headline.py            # rewrite benchmarks/results/headline/*.json
    python benchmarks/pages.py               # then the pages and the README's claims table

The raw files in benchmarks/results/ are what each benchmark script wrote, in its own shape,
beside every variant ever run. A builder here reads the raw file behind a headline, takes
its figures as they are (nothing is retyped), states the claim and its target, and writes
the common format (`results_io`), keeping the provenance the raw file recorded: its command,
its machine, and its date (the commit that last changed it). A result may have no claim: a
table a docs page cites (the recipe per task, training throughput, the demo) is built the same
way. The dream dojo's builders are in headline_dojo.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import mean, median
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from headline_dojo import DOJO  # noqa: E402
from results_io import RESULTS, ROOT, Claim, Result, points, raw, recorded, write_result  # noqa: E402

HEADLINE = RESULTS / "headline"


def interval(pair: list[float], digits: int = 3) -> str:
    return f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"


def paired(cells: dict, experiment: str, k: str) -> list[float]:
    """WAM minus scratch mean success, per seed both methods ran (seed order)."""
    by_seed: dict = {}
    for c in cells.values():
        if c.get("experiment", "mt10") == experiment and str(c["k"]) == k:
            by_seed.setdefault(c["seed"], {})[c["method"]] = c["mean_success"]
    return [p["wam"] - p["scratch"] for _, p in sorted(by_seed.items()) if {"wam", "scratch"} <= p.keys()]


def recipe() -> tuple[Result, dict]:
    name = "recipe.json"
    d = raw(name)
    margin, efficiency = d["targets"]["margin"]["per_k"], d["targets"]["data_efficiency"]
    wam, scratch = d["summary"]["wam"], d["summary"]["scratch"]
    held_wam, held_scratch = d["heldout_summary"]["wam"]["1"], d["heldout_summary"]["scratch"]["1"]
    rates = sorted(c["policy_steps_per_s"] for c in d["cells"].values() if c["method"] == "wam")
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
        Claim("the WAM acts in closed loop fast enough (cpu preset, batch 1; slowest evaluation)", round(rates[0]),
              "policy steps/s", ">= 30", rates[0] >= 30, None,
              f"{rates[0]:.0f} to {rates[-1]:.0f} (median {median(rates):.0f}) "
              f"over the {len(rates)} WAM cells' evaluations, each on one torch thread"),
    ]

    def row(label: str, w: dict, s: dict, experiment: str, k: str, gap_95: list[float] | None) -> list[str]:
        gaps = paired(d["cells"], experiment, k)
        return [label, f"{s['seeds']}/{w['seeds']}", f"{s['mean']:.3f} ({s['std']:.3f}) {interval(s['wilson95_pooled'])}",
                f"{w['mean']:.3f} ({w['std']:.3f}) {interval(w['wilson95_pooled'])}",
                f"{points(mean(gaps)):+.1f}" + (f" [{points(gap_95[0]):+.1f}, {points(gap_95[1]):+.1f}]" if gap_95 else ""),
                ", ".join(f"{points(g):+.1f}" for g in gaps)]

    rows = [row(f"K = {k}", wam[k], scratch[k], "mt10", k, margin[k]["difference_95"]) for k in sorted(wam, key=int)]
    rows.append(row("held-out tasks, K = 1", held_wam, held_scratch, "heldout", "1", None))
    result = Result(
        "recipe", "The recipe: WAM vs training from scratch on MT10", "bash benchmarks/inputs.sh && bash benchmarks/recipe_grid.sh",
        claims,
        {"columns": ["demos a task", "seeds (scratch/WAM)", "from scratch: mean (std over seeds) [95% Wilson, pooled]",
                     "WAM: mean (std) [95%]", "WAM - scratch, paired seeds (points) [95%]", "per seed"], "rows": rows},
        "benchmarks/results/recipe.png", len(d["planned"]), len(d["cells"]), [f"benchmarks/results/{name}"],
        "Success rate in the simulator of WAM policies (pretrained on action-free MT10 video, finetuned on K demos a "
        "task) and policies trained from scratch on the same demos, 50 episodes a task a cell, 3 seeds; the held-out "
        "row: two tasks outside MT10 (their video in pretraining), one demo of every task, evaluated on the two. The "
        "95% intervals of the differences are Newcombe's over pooled episodes (episode noise only; the seeds' spread "
        "is the std). The inputs (datasets, the pretraining run) are rebuilt by inputs.sh; the grid's driver runs "
        "every missing cell of benchmarks/recipe.py, and each cell in the raw file keeps the command and machine that "
        "ran it.", rank=1)
    return result, recorded(name, d)


def recipe_tasks() -> tuple[Result, dict]:
    name = "recipe.json"
    d = raw(name)
    pairs: dict = {}  # (experiment, K, seed) -> {method: cell}
    for c in d["cells"].values():
        pairs.setdefault((c.get("experiment", "mt10"), str(c["k"]), c["seed"]), {})[c["method"]] = c
    ks = sorted({k for _, k, _ in pairs}, key=int)
    rows = []
    for experiment in ("mt10", "heldout"):
        both = {k: [p for (e, pk, _), p in pairs.items() if e == experiment and pk == k and {"wam", "scratch"} <= p.keys()]
                for k in ks}
        for task in dict.fromkeys(t for ps in both.values() for p in ps for t in p["wam"]["tasks"]):
            rows.append([task + (" (held out)" if experiment == "heldout" else "")] + [
                " / ".join(f"{mean(p[m]['tasks'][task]['success_rate'] for p in both[k]):.2f}" for m in ("wam", "scratch"))
                if both[k] else "-" for k in ks])
    result = Result("recipe_tasks", "The recipe per task: where a gap can come from", d["command"], [],
                    {"columns": ["task", *(f"K = {k}: WAM / scratch" for k in ks)], "rows": rows}, None, None, None,
                    [f"benchmarks/results/{name}"],
                    "The recipe grid's success per task, each method averaged over the seeds both ran (`python "
                    "benchmarks/recipe.py --table` prints the same). A task both methods solve, or neither does, "
                    "leaves no room for a gap. Held-out tasks were finetuned on one demo and evaluated alone. The "
                    "grid's command as its first cell ran it (each cell keeps its own in the raw file).")
    return result, recorded(name, d)


def control_modes() -> tuple[Result, dict]:
    name = "control_modes_heldout_wam_k1.json"
    d = raw(name)
    rows = [[mode, f"{c['mean_success']:.3f}", interval(c["wilson95_pooled"]), f"{c['policy_steps_per_s']:.0f}",
             f"{c['mean_length']:.0f}"] for mode, c in sorted(d["cells"].items())]
    result = Result("control_modes", "Executing action chunks: how much of each chunk, or temporal ensembling",
                    d["command"], [],
                    {"columns": ["mode", "success", "95% (Wilson)", "policy steps/s", "mean episode length"], "rows": rows},
                    None, len(d["modes"]), len(d["cells"]), [f"benchmarks/results/{name}"],
                    f"One WAM policy ({d['policy']}) on the same {d['episodes_per_task']} scenes of each of "
                    f"{len(d['tasks'])} tasks: executing the first 2, 4 or 8 actions of each predicted chunk before "
                    "predicting again, or ACT's temporal ensembling (a fresh chunk every frame, exp(-m * age) weights).")
    return result, recorded(name, d)


def demo() -> tuple[Result, dict]:
    names = ("demo_summary.json", "demo_summary_normalised.json")
    runs = [raw(n) for n in names]
    stages = list(runs[0]["seconds"])
    rows = [[f"{stage}, s", *(f"{r['seconds'][stage]:.0f}" for r in runs)] for stage in stages]
    rows.append(["all stages, s", *(f"{sum(r['seconds'].values()):.0f}" for r in runs)])
    for method in ("wam", "scratch"):
        label = {"wam": "WAM", "scratch": "from scratch"}[method]
        rows.append([f"{label}: success, mean", *(f"{r['success'][method]['mean']:.2f}" for r in runs)])
        rows += [[f"{label}: {task}", *(f"{r['success'][method]['tasks'][task]['success_rate']:.1f}" for r in runs)]
                 for task in runs[0]["success"][method]["tasks"]]
    result = Result("demo", "The demo (`make demo`)", "make demo", [],
                    {"columns": ["", *(f"{n} ({'after normalisation, beside other work' if 'normalised' in n else 'quiet cores'})"
                                       for n in names)], "rows": rows},
                    None, None, None, [f"benchmarks/results/{n}" for n in names],
                    "The whole recipe on three tasks at the demo presets: collect, pretrain, dream, finetune (the WAM "
                    "and from scratch), evaluate 10 episodes a task and method. Stage times in seconds from the demo's "
                    "own summary; the rerun after normalisation shared its cores with a pretraining, so its times are "
                    "not timings.")
    return result, recorded(names[0], runs[0])


def pretraining() -> tuple[Result, dict]:
    name, quiet_name = "eval_world_cpu.json", "pretrain_cpu_30min.json"
    d, quiet = raw(name), raw(quiet_name)
    h16 = d["methods"]["model"]["h16"]["psnr_at"]
    claims = [
        Claim("the pretrained world model predicts 16 steps ahead better than copying the last frame",
              round(d["summary"]["psnr_h16_model_minus_copy_last"], 2), "dB", ">= +3 dB",
              d["summary"]["psnr_h16_model_minus_copy_last"] >= 3, None,
              f"16-step PSNR {h16:.2f} dB on {d['samples']} held-out windows; the tokenizer's own reconstruction, the "
              f"ceiling, {d['tokenizer_ceiling_psnr']:.2f} dB; above zeroed actions by "
              f"{d['summary']['psnr_h16_model_minus_zeroed']:.2f} dB, above shuffled latent actions by "
              f"{d['summary']['psnr_h16_model_minus_shuffled']:.2f} dB"),
        Claim("the cpu preset pretrains end to end within 30 minutes on 2 quiet cores", round(quiet["wall_seconds"] / 60, 1),
              "minutes", f"<= {quiet['target_seconds'] / 60:.0f} minutes", quiet["wall_seconds"] <= quiet["target_seconds"],
              None, f"tokenizer {quiet['preset']['tokenizer_steps']} steps in {quiet['training_seconds']['tokenizer']:.0f} "
              f"s, world model {quiet['preset']['world_model_steps']} steps in {quiet['training_seconds']['world_model']:.0f} "
              f"s; its 16-step PSNR {quiet['eval_world']['summary']['psnr_h16_model_minus_copy_last']:+.2f} dB over "
              f"copy-last (target +3 dB), above zeroed actions by "
              f"{quiet['eval_world']['summary']['psnr_h16_model_minus_zeroed']:.2f} dB; tokenizer ceiling "
              f"{quiet['eval_world']['tokenizer_ceiling_psnr']:.2f} dB ({quiet_name})"),
    ]
    labels = {"model": "world model, true latent actions", "shuffled_actions": "same, latent actions shuffled across windows",
              "zeroed_actions": "same, action input zeroed",
              "hidden_actions": "same, action hidden (the unknown-action token: what the WAM imagines)",
              "copy_last_frame": "copy last frame"}
    rows = [[labels.get(method, method), *(f"{h[f'h{n}']['psnr_at']:.2f} ({h[f'h{n}']['ssim_at']:.3f})" for n in d["horizons"])]
            for method, h in d["methods"].items()]
    result = Result("pretraining", "Pretraining: the world model's rollouts, and the 30-minute preset",
                    "bash benchmarks/inputs.sh && wam eval-world runs/pretrain_cpu --data data/mt10_video --data "
                    f"data/heldout_video --samples {d['samples']}", claims,
                    {"columns": ["method", *(f"PSNR dB (SSIM), h = {n}" for n in d["horizons"])], "rows": rows},
                    None, None, None, [f"benchmarks/results/{name}", f"benchmarks/results/{quiet_name}"],
                    f"Rollouts of the pretrained world model from {d['context']} real frames, {max(d['horizons'])} frames "
                    f"ahead at stride {d['stride']}, conditioned on latent actions inferred from the true future, on "
                    f"{d['samples']} held-out windows: PSNR and SSIM of the frame h steps ahead. The table is the run "
                    "behind the recipe benchmark (the cpu preset at twice its steps, built by inputs.sh); the 30-minute "
                    "claim is the preset itself, on quiet cores: " + " && ".join(quiet["commands"]), rank=2)
    return result, recorded(name, d)


def train_throughput() -> tuple[Result, dict]:
    names = ("train_throughput.json", "train_throughput_bf16_cpu.json")
    rows = []
    for name in names:
        d = raw(name)
        for p in d["presets"]:
            tok, wm = p["tokenizer"], p["world_model"]
            rows.append([p["preset"], p.get("precision", "bf16" if d.get("bf16") else "fp32"), f"{tok['frames_per_s']:.1f}",
                         f"{tok['step_s']:.3f}", f"{wm['frames_per_s']:.1f}", f"{wm['step_s']:.3f}", d["date"], name])
    e2e_name = "bf16_pretrain.json"
    e2e = raw(e2e_name)
    fp32, bf16 = e2e["runs"]["fp32"], e2e["runs"]["bf16"]
    result = Result("train_throughput", "Training throughput, fp32 and bf16 on a CPU", raw(names[0])["command"], [],
                    {"columns": ["preset", "precision", "tokenizer frames/s", "s/step", "world model frames/s", "s/step",
                                 "measured", "raw file"], "rows": rows},
                    None, None, None, [f"benchmarks/results/{n}" for n in (*names, e2e_name)],
                    "Bare training steps on a fixed synthetic batch of each preset (no data loading, logging or "
                    "checkpoints), on 2 threads; the bf16 rows autocast on a CPU with AVX512-BF16 (`wam pretrain --bf16`)"
                    ". Machines differ between the two files' sessions, so compare rows within one file. End to end, "
                    f"`{e2e['command']}`: {e2e['steps']} steps of the {e2e['preset']} preset took {bf16['seconds']:.0f} s "
                    f"in bf16 against {fp32['seconds']:.0f} s in fp32 ({e2e['wall_time_speedup']:.2f}x), 16-step PSNR "
                    f"{bf16['psnr_h16']:.2f} against {fp32['psnr_h16']:.2f} dB (copying the last frame: "
                    f"{fp32['psnr_h16_copy_last']:.2f} dB at so short a run).")
    return result, recorded(names[0], raw(names[0]))


def scaling() -> tuple[Result, dict]:
    name = "scaling_pretrain_early_stop.json"
    d = raw(name)
    fit = d["fit"]
    claims = [Claim("validation loss falls log-linearly with the amount of action-free video", round(fit["r2"], 3), "R²",
                    ">= 0.98 over 2 decades", fit["r2"] >= 0.98 and fit["decades"] >= 2, None,
                    f"loss = {fit['a']:.5f} - {fit['b']:.5f} log10(frames) over {fit['decades']:.2f} decades of frames, "
                    f"one seed, {sum(c['seconds'] for c in d['cells'].values()) / 60:.0f} minutes of training; a power "
                    f"law with a floor, {fit['power_law']['e']:.5f} + c D^-{fit['power_law']['alpha']:.2f}, fits with "
                    f"R² {fit['power_law']['r2']:.3f}")]
    rows = [[str(p["episodes"]), f"{p['frames']:,.0f}", str(p["steps"]), f"{p['val_loss']:.5f}"]
            for p in d["points"]]
    result = Result("scaling_pretrain", "Pretraining scaling law", d["command"], claims,
                    {"columns": ["episodes", "frames", "training steps", "best validation latent MSE"], "rows": rows},
                    "benchmarks/results/scaling_pretrain_early_stop.png", None, None, [f"benchmarks/results/{name}"],
                    "A fixed world model trained from scratch on nested, task-stratified subsets of the pretraining "
                    "video, evaluated on held-out episodes; the fit is loss = a - b log10(frames).", rank=2)
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
    rows = [[s["setting"], f"{s['actions_per_s']:,.0f}", *(f"{s['latency_ms'][q]:.0f}" for q in ("p50", "p90", "p99"))]
            for s in d["settings"]]
    result = Result("api_load", "Physical API load", d["command"], claims,
                    {"columns": [f"setting ({d['robots']} robots)", "actions/s", "p50 ms", "p90 ms", "p99 ms"], "rows": rows},
                    "benchmarks/results/api_load.png", None, None,
                    [f"benchmarks/results/{name}", f"benchmarks/results/{channel_name}"],
                    "One client process drives simulated robots (one worker process each) through the server for a "
                    "fixed time; every episode is recorded. In the same run the simulator alone, one env in-process, "
                    f"stepped {d['raw_simulator_steps_per_s']:,.0f} times/s. WebSocket figures: " + channel["command"], rank=6)
    return result, recorded(name, d)


def api_control_channel() -> tuple[Result, dict]:
    name = "api_load_control_channel_16.json"
    d = raw(name)
    rows = [[s["setting"], s.get("transport", "http"), f"{s['actions_per_s']:,.0f}",
             *(f"{s['latency_ms'][q]:.0f}" for q in ("p50", "p99")),
             *(f"{s['cpu_ms_per_action'][part]:.2f}" for part in ("server", "robots", "client"))] for s in d["settings"]]
    result = Result("api_control_channel", f"Physical API: the WebSocket control channel beside HTTP ({d['robots']} robots)",
                    d["command"], [],
                    {"columns": ["setting", "transport", "actions/s", "p50 ms", "p99 ms", "CPU ms an action: server",
                                 "robots", "client"], "rows": rows},
                    None, None, None, [f"benchmarks/results/{name}"],
                    "One connection (`/v1/control`) carries steps for many robots, against the HTTP fleet step, "
                    "with the CPU each action costs in the server, the robots' worker processes and the client. The "
                    f"simulator alone stepped {d['raw_simulator_steps_per_s']:,.0f} times/s in this run; the cores were "
                    "shared with a training run.")
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
    "recipe": recipe, "recipe_tasks": recipe_tasks, "control_modes": control_modes, "demo": demo,
    "pretraining": pretraining, "train_throughput": train_throughput, "scaling_pretrain": scaling,
    "api_load": api_load, "api_control_channel": api_control_channel, "estop": estop, "collect_throughput": collection,
    **DOJO,
}


def main() -> None:
    for name, build in BUILDERS.items():
        result, provenance = build()
        print(f"wrote {write_result(HEADLINE / f'{name}.json', result, provenance).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
