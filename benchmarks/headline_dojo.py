"""The dream dojo's results, built from its raw files as benchmarks/headline.py builds the others (and run by it).

The dojo's benchmarks were run many times, on several worlds, verdicts and RL settings, each
into its own raw file. Beside its headline claims (throughput, fidelity, RL) the builders here
gather those variants into one table each (every ranking, every RL run, every replayed
verdict), so the dream dojo page cites them through generated blocks and none is retyped.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Callable

from results_io import RESULTS, Claim, Result, points, raw, recorded


def variants(prefix: str) -> list[str]:
    """The raw files of one benchmark's variants: `<prefix>.json` and `<prefix>_*.json`, by name."""
    return sorted(p.name for p in RESULTS.glob(f"{prefix}*.json") if p.stem == prefix or p.stem.startswith(prefix + "_"))


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
    paired = d.get("paired", {})
    rows = [[Path(policy).name, f"{success[f'{policy}|real']:.3f}", f"{success[f'{policy}|dream']:.3f}",
             *((f"{paired[policy]['false_positive_rate']:.2f}", f"{paired[policy]['true_positive_rate']:.2f}")
               if policy in paired else ("-", "-"))]
            for policy in d["policies"] if f"{policy}|real" in success and f"{policy}|dream" in success]
    result = Result("dream_fidelity", "Dream fidelity: do dreams rank policies like reality?", d["command"], claims,
                    {"columns": ["policy", "real success", "dream success", "dream success on real failures",
                                 "on real successes"], "rows": rows} if rows else None,
                    "benchmarks/results/dream_eval_snapshots.png", None, None, [f"benchmarks/results/{name}"],
                    "Policies of graded quality evaluated in the simulator and in the dream from the same start frames; "
                    "the correlation of their success rates across policies. The full record: docs/dream_dojo.md.", rank=4)
    return result, recorded(name, d)


def verdict(d: dict) -> str:
    """Which verdict a dream run used, in words: the WAM's success head or the judge, and its options."""
    words = ["judge" if d.get("judge") else "success head"]
    words += ["final verdict"] if d.get("verdict") == "final" else []
    words += [f"held {d['success_hold']} steps"] if (d.get("success_hold") or 1) > 1 else []
    words += ["student"] if d.get("student") else []
    return ", ".join(words)


def dream_rankings() -> tuple[Result, dict]:
    names = variants("dream_eval")
    rows = []
    for name in names:
        d = raw(name)
        pooled = d.get("paired_pooled")
        rows.append([name, Path(d["world"]).name, verdict(d), str(len(d["policies"])),
                     "undefined" if d["pearson"] is None else f"{d['pearson']:.2f}",
                     "undefined" if d["spearman"] is None else f"{d['spearman']:.2f}",
                     f"{pooled['false_positive_rate']:.2f} / {pooled['true_positive_rate']:.2f}" if pooled else "-"])
    result = Result("dream_rankings", "Dream rankings: every world and verdict tried",
                    "python benchmarks/dream_eval.py --world RUN --policies ... (each raw file keeps its own command)", [],
                    {"columns": ["raw file", "world", "verdict", "policies", "Pearson", "Spearman",
                                 "dream success on real failures / on real successes"], "rows": rows},
                    None, None, None, [f"benchmarks/results/{n}" for n in names],
                    "The same policies run in the simulator and in a world's dreams from the same first frames; how "
                    "well the dream's success rates rank them as reality does (targets: Pearson >= 0.9, Spearman >= "
                    "0.85). Files that pair episodes scene by scene also give how often the dream calls a real failure "
                    "(or a real success) a success. What each world is: docs/notebook/dream_dojo_record.md.")
    return result, recorded("dream_eval_snapshots.json", raw("dream_eval_snapshots.json"))


def dream_rl() -> tuple[Result, dict]:
    names = variants("dream_rl")
    rows = []
    for name in names:
        d = raw(name)
        cells = list(d["cells"].values())
        tasks = list(dict.fromkeys(c["task"] for c in cells))

        def change(before: str, after: str) -> str:
            return ", ".join(f"{t.removesuffix('-v3')} {mean(c[before] for c in cells if c['task'] == t):.2f} -> "
                             f"{mean(c[after] for c in cells if c['task'] == t):.2f}" for t in tasks)

        rows.append([name, f"{len(cells)} of {len(d['planned'])}" if d.get("planned") else f"{len(cells)} (stopped)",
                     change("real_before", "real_after"), change("dream_before", "dream_after"),
                     f"{points(mean(c['real_after'] - c['real_before'] for c in cells)):+.1f}"])
    name = "dream_rl_branched.json"
    d = raw(name)
    by_task = {t: mean(c["real_after"] - c["real_before"] for c in d["cells"].values() if c["task"] == t)
               for t in d["per_task"]}
    claims = [Claim("RL in dreams raises real success (3 tasks x 3 seeds)", points(d["mean_real_gain"]), "points",
                    ">= +10 points, no task down by more than 5", d["mean_real_gain"] >= 0.10 and min(by_task.values()) >= -0.05,
                    None, f"branched rollouts from the policy's own states, centred advantage; worst task "
                    f"{points(min(by_task.values())):+.1f} points; 20 real episodes a task before and after")]
    result = Result("dream_rl", "RL in dreams: real success before and after", d["command"], claims,
                    {"columns": ["raw file", "cells (task x seed)", "real success before -> after, per task",
                                 "the dream's verdict before -> after", "mean real change (points)"], "rows": rows},
                    "benchmarks/results/dream_rl_branched.png", len(d["planned"]), len(d["cells"]),
                    [f"benchmarks/results/{n}" for n in names],
                    "A finetuned WAM policy practises in a world's dreams (group-relative policy gradient with a "
                    "behaviour-cloning anchor); its real success in the simulator is measured before and after, per "
                    "task and seed. The claim is the branched-rollout run; every other variant is a row of the table, "
                    "its settings in its raw file's command and in docs/notebook/dream_dojo_record.md.", rank=4)
    return result, recorded(name, d)


def dream_replay() -> tuple[Result, dict]:
    names = variants("dream_replay")
    rows = []
    for name in names:
        d = raw(name)
        o = d["overall"]
        rows.append([name, Path(d["world"]).name, verdict(d), "real" if d.get("grounded") else "dreamed",
                     f"first {d['horizon']}" if d.get("horizon") else "whole episodes", str(o["episodes"]),
                     str(o["episodes"] - o["real_successes"]), f"{o['true_positive_rate']:.2f}", f"{o['false_positive_rate']:.2f}"])
    name = "judge_frame_verdicts.json"
    d = raw(name)
    for rule, r in d["rules"].items():
        rows.append([name, Path(d["world"]).name, f"judge, {rule}", "real", "whole episodes", str(d["episodes"]),
                     str(d["episodes"] - d["real_successes"]), f"{r['true_positive_rate']:.2f}", f"{r['false_positive_rate']:.2f}"])
    result = Result("dream_replay", "Success verdicts on recorded real episodes",
                    "python benchmarks/dream_replay.py --world RUN --data ROLLOUTS [--judge] [--grounded] [--horizon N] "
                    "(each raw file keeps its own command)", [],
                    {"columns": ["raw file", "world", "verdict", "frames read", "steps", "episodes", "real failures",
                                 "true positives", "false positives"], "rows": rows},
                    None, None, None, [f"benchmarks/results/{n}" for n in [*names, name]],
                    "Recorded real episodes (policy rollouts the world never trained on) replayed open-loop in the "
                    "dream from their first frame, or read on their real frames (`--grounded`): how often the verdict "
                    "calls a real success a success (true positives) and a real failure a success (false positives, "
                    "the room a policy has to exploit the dream). judge_frame_verdicts.json compares rules for turning "
                    "the judge's per-frame probabilities into one verdict.")
    return result, recorded("dream_replay_task_free_h100.json", raw("dream_replay_task_free_h100.json"))


def plan() -> tuple[Result, dict]:
    name = "plan.json"
    d = raw(name)
    rows = [[c["method"], c["task"], f"{c['success_rate']:.1f}", f"[{c['wilson95'][0]:.2f}, {c['wilson95'][1]:.2f}]",
             f"{c['control_steps_per_s']:.1f}"] for c in d["cells"].values()]
    rows += [[method, "mean", f"{s['mean_success']:.2f}", "", f"{s['control_steps_per_s']:.1f}"] for method, s in d["summary"].items()]
    result = Result("plan", "Planning in the dream (CEM) against the policy alone", d["command"], [],
                    {"columns": ["acting", "task", "real success", "95% (Wilson)", "control steps/s"], "rows": rows},
                    None, len(d["planned"]), len(d["cells"]), [f"benchmarks/results/{name}"],
                    f"CEM over action chunks, warm-started at the policy's own chunk and scored by the world's reward "
                    f"and success heads, against the WAM policy alone, on the same {d['episodes_per_task']} real scenes "
                    "a task.")
    return result, recorded(name, d)


def dream_video() -> tuple[Result, dict]:
    names = sorted(f"media/{p.name}" for p in (RESULTS / "media").glob("dream_vs_real_*.json"))
    rows = []
    for name in names:
        d = raw(name)

        def outcome(run: dict) -> str:
            return f"success at step {run['length']}" if run["success"] else f"no success in {run['length']} steps"

        rows.append([d["task"], Path(name).with_suffix(".gif").name, outcome(d["real"]),
                     "success" if d["replay_in_dream"]["success"] else "no success",
                     f"{d['replay_in_dream']['mean_abs_pixel_error']:.2f}", outcome(d["policy_in_dream"])])
    result = Result("dream_video", "One scene, real and dreamed", raw(names[0])["command"], [],
                    {"columns": ["task", "video", "the WAM in Meta-World", "its actions replayed in the dream",
                                 "replay's mean absolute pixel error (of 255)", "the WAM acting in the dream"], "rows": rows},
                    None, None, None, [f"benchmarks/results/{n}" for n in names],
                    "One evaluation scene a task, side by side: the WAM policy in the simulator; the same actions "
                    "replayed open-loop in the dream from the same first frame; the WAM acting in the dream.")
    return result, recorded(names[0], raw(names[0]))


DOJO: dict[str, Callable[[], tuple[Result, dict]]] = {
    "dream_throughput": dream_throughput, "dream_fidelity": dream_fidelity, "dream_rankings": dream_rankings,
    "dream_rl": dream_rl, "dream_replay": dream_replay, "plan": plan, "dream_video": dream_video,
}
