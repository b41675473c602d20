"""Real to sim to real, measured: reconstruction quality, and policies trained on a twin or on digital cousins.

    python benchmarks/real2sim.py reconstruction [--scenes 5]
    python benchmarks/real2sim.py policy [--seeds 0,1,2] [--demos 40] [--episodes 50] [--sources twin,cousins,real]
                                         [--methods scratch,wam]
    python benchmarks/real2sim.py figure    # phone frame | real | twin | cousins, one camera

The "real world" is a tabletop of held-out objects (kinds the cousin library does not have), scanned by the
synthetic phone scanner (wam.real2sim.scanner) and written in Record3D's or Polycam's own format, then run
through the pipeline a user runs: `import -> build -> cousins`.

`reconstruction`: for each scene and depth-noise level, F-score of the visible surfaces at 0.5/1/2 cm, the
worst object-centroid error, objects found, the drift of the built scene left alone for 2 s, and the
scan-to-scene time (on this machine; the issue's bar is under a minute on two cores).

`policy`: demos of the push task collected (a) in the reconstructed twin, (b) spread over K cousins of it, and
(c) in the real scene itself (the upper bound); the same number of demos each; a from-scratch policy (wam
finetune without pretraining, the cpu preset) trained on each, and evaluated in the real scene (`wam eval --env
scan/REAL`), 50 episodes a seed; every source trains on the same number of successful demos (failed expert episodes
are dropped with `wam data filter --success`'s copy). ACDC's bar: cousins at least twice the twin. With `--methods scratch,wam`, a WAM
too: pretrained on action-free play video collected across the cousins, finetuned on the same demos.

Cells are written to benchmarks/results/real2sim_*.json as they finish; a rerun skips finished ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Claim, Result, provenance, this_command, write_result  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "runs" / "real2sim"
REAL_KINDS = ("stone", "l-block", "hexagon")  # none of them in the cousin library
NOISE = (0.0025, 0.005, 0.01)  # depth noise std per metre of depth


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"cells": {}}


def save(path: Path, results: dict) -> None:
    results["provenance"] = provenance()
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=1))
    os.replace(temporary, path)


def real_scene(seed: int) -> Path:
    from wam.real2sim.arrange import arranged_scene

    directory = WORK / f"real{seed}"
    if not (directory / "scene.json").exists():
        arranged_scene(directory, REAL_KINDS, seed=100 + seed)
    return directory


def scan_through_files(scene: Path, noise: float, seed: int, fmt: str):
    """Scan the scene, write the scan in a real app's format, read it back as a user would."""
    from wam.real2sim.formats import import_scan, write_polycam, write_r3d
    from wam.real2sim.scanner import ScannerConfig, scan_scene

    scan, truth = scan_scene(scene, ScannerConfig(depth_noise=noise, seed=seed))
    path = WORK / "scans" / f"{scene.name}-{noise}-{seed}" / ("scan.r3d" if fmt == "record3d" else "polycam")
    if path.parent.exists():
        import shutil

        shutil.rmtree(path.parent)  # a rerun rescans: the writers refuse to write over a scan
    path.parent.mkdir(parents=True)
    (write_r3d if fmt == "record3d" else write_polycam)(scan, path)
    start = time.perf_counter()
    imported = import_scan(path)
    truth.import_seconds = time.perf_counter() - start
    return imported, truth


def reconstruction_cell(seed: int, noise: float) -> dict:
    from wam.real2sim.build import build_scene
    from wam.real2sim.metrics import evaluate
    from wam.real2sim.reconstruct import reconstruct

    scene = real_scene(seed)
    fmt = "record3d" if seed % 2 == 0 else "polycam"
    scan, truth = scan_through_files(scene, noise, seed, fmt)
    quality = evaluate(reconstruct(scan), truth)
    built = build_scene(scan, WORK / "twins" / f"{scene.name}-{noise}")
    return {"scene": scene.name, "noise_per_m": noise, "format": fmt, **quality,
            "max_drift_m": max(built["drift_m"].values()), "unstable": built["unstable"],
            "scan_to_scene_s": truth.import_seconds + built["seconds"]["total"],
            "seconds": {"import": truth.import_seconds, **built["seconds"]}}


def plot_reconstruction(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for tau, marker in (("0.5cm", "o"), ("1cm", "s"), ("2cm", "^")):
        xs = [c["noise_per_m"] * 1000 for c in cells]
        axes[0].scatter(xs, [c["f_scores"][tau]["f_score"] for c in cells], marker=marker, label=f"F@{tau}")
    axes[0].axhline(0.9, color="grey", ls="--", lw=0.8)
    axes[0].set(xlabel="depth noise (mm per m of depth)", ylabel="F-score", title="surface", ylim=(0, 1.02))
    axes[0].legend(fontsize=8)
    axes[1].scatter([c["noise_per_m"] * 1000 for c in cells], [1000 * (c["max_centroid_error_m"] or np.nan) for c in cells])
    axes[1].axhline(10, color="grey", ls="--", lw=0.8)
    axes[1].set(xlabel="depth noise (mm per m of depth)", ylabel="worst centroid error (mm)", title="objects")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_reconstruction(args) -> None:
    out = RESULTS / "real2sim_reconstruction.json"
    results = load(out)
    planned = [f"s{seed}-n{noise}" for seed in range(args.scenes) for noise in NOISE]
    for name in planned:
        if name in results["cells"]:
            continue
        seed, noise = int(name.split("-")[0][1:]), float(name.split("-n")[1])
        cell = reconstruction_cell(seed, noise)
        results["cells"][name] = cell
        results["planned"], results["partial"] = planned, any(n not in results["cells"] for n in planned)
        save(out, results)
        print(f"{name}: F@1cm {cell['f_scores']['1cm']['f_score']:.3f}  worst centroid "
              f"{1000 * (cell['max_centroid_error_m'] or np.nan):.1f} mm  found {cell['objects_found']}/"
              f"{cell['objects_true']}  drift {1000 * cell['max_drift_m']:.2f} mm  {cell['scan_to_scene_s']:.1f} s")
    cells = [results["cells"][n] for n in planned]
    plot_reconstruction(cells, out.with_suffix(".png"))
    headline(results, load(RESULTS / "real2sim_policy.json"))


# -- policies: twin vs cousins vs real ---------------------------------------------------------------------------
def sources(args, seed: int) -> dict[str, list[Path]]:
    """The demonstration datasets of each source for one seed (collected once, resumable)."""
    from wam.envs.tabletop.scene import load_scene
    from wam.real2sim.build import BuildConfig, build_scene
    from wam.real2sim.cousins import CousinConfig, make_cousins

    real = real_scene(0)
    twin = WORK / "policy" / "twin"
    if not (twin / "scene.json").exists():
        scan, truth = scan_through_files(real, 0.005, 0, "record3d")
        from wam.real2sim.reconstruct import reconstruct

        rebuilt = reconstruct(scan)
        target_position = truth.positions[load_scene(real).target]
        nearest = int(np.argmin([np.linalg.norm(o.world_centroid[:2] - target_position[:2]) for o in rebuilt.objects]))
        build_scene(scan, twin, config=BuildConfig(target=nearest))
    cousins = WORK / "policy" / "cousins"
    if not (cousins / f"cousin{args.k - 1}" / "scene.json").exists():
        make_cousins(twin, cousins, CousinConfig(k=args.k))
    per_cousin = max(1, args.demos // args.k)
    plans = {"twin": [(twin, args.demos)], "real": [(real, args.demos)],
             "cousins": [(cousins / f"cousin{j}", per_cousin) for j in range(args.k)]}
    made = {}
    for source in args.sources:
        datasets = []
        for scene, wanted in plans[source]:
            datasets.append(successful_demos(args, source, scene, wanted, seed))
        made[source] = datasets
    return made


def successful_demos(args, source: str, scene: Path, wanted: int, seed: int) -> Path:
    """`wanted` successful expert demos in `scene`: the expert fails on some cousins' objects (a mug's handle), and
    behaviour cloning would copy its failures, so every source trains on the same number of successes."""
    from wam.data.reader import Dataset
    from wam.data.subset import copy_episodes
    from wam.envs.collect import CollectConfig, collect

    kept = WORK / "policy" / "data" / f"{source}-{scene.name}-s{seed}-successes"
    if (kept / "meta" / "info.json").exists():
        return kept
    raw = WORK / "policy" / "data" / f"{source}-{scene.name}-s{seed}"
    episodes = wanted
    for _ in range(6):
        collect(CollectConfig((args.task,), episodes, raw, size=64, cameras=("front",), max_steps=150, noise=0.1,
                              seed=1000 * seed + 1, env=f"scan/{scene}"), progress=False)
        wins = [e.index for e in Dataset(raw).episodes if e.success]
        if len(wins) >= wanted:
            break
        episodes *= 2  # the same seeds again first, then new ones: a rerun adds only what is missing
    copy_episodes(Dataset(raw), wins[:wanted], kept)
    return kept


def cousin_video(args) -> Path:
    """Action-free play video over every cousin (the WAM's pretraining data): scenes a phone scan buys for free."""
    from wam.envs.collect import CollectConfig, collect

    cousins = WORK / "policy" / "cousins"
    video = WORK / "policy" / "data" / "cousin-video"
    for j in range(args.k):
        collect(CollectConfig(("push", "pick-place"), args.video_episodes // (2 * args.k), video, actions=False, size=64,
                              cameras=("front",), max_steps=150, noise=0.1, explore=0.3, seed=500 + j,
                              env=f"scan/{cousins / f'cousin{j}'}"), progress=False)
    return video


def pretrained_world(args) -> Path:
    from wam.config import pretrain_preset
    from wam.train.pretrain import pretrain

    run = WORK / "policy" / "pretrain"
    if not (run / "summary.json").exists():
        pretrain([cousin_video(args)], run, pretrain_preset(args.preset), resume=(run / "pretrain.json").exists(),
                 progress=False)
    return run


def policy_cell(args, source: str, method: str, seed: int, datasets: list[Path]) -> dict:
    from wam.config import finetune_preset
    from wam.dojo.evaluate import EvalConfig, evaluate_policy
    from wam.train.finetune import finetune

    run = WORK / "policy" / "runs" / cell_name(source, method, seed)
    config = finetune_preset(args.preset)
    config = replace(config, train=replace(config.train, seed=seed), seed=seed, subset_seed=seed)
    start = time.perf_counter()
    if not (run / "summary.json").exists():
        pretrained = pretrained_world(args) if method == "wam" else None
        video = [WORK / "policy" / "data" / "cousin-video"] if method == "wam" else []
        finetune(pretrained, datasets, run, config, video=video, resume=(run / "finetune.json").exists(), progress=False)
    trained = time.perf_counter() - start
    real = real_scene(0)
    results = evaluate_policy(EvalConfig(run, (args.task,), args.episodes, args.workers, seed=seed, max_steps=150,
                                         env=f"scan/{real}"), progress=False)
    task = results["tasks"][args.task]
    return {"source": source, "method": method, "seed": seed, "success_rate": task["success_rate"],
            "wilson95": task["wilson95"], "episodes": task["episodes"], "successes": task["successes"],
            "train_seconds": round(trained, 1),
            "demos": sum(json.loads((d / "meta" / "info.json").read_text())["total_episodes"] for d in datasets)}


def cell_name(source: str, method: str, seed: int) -> str:
    return f"{source}-s{seed}" if method == "scratch" else f"{source}-{method}-s{seed}"


def run_policy(args) -> None:
    out = RESULTS / "real2sim_policy.json"
    results = load(out)
    planned = [cell_name(source, method, seed) for method in args.methods for seed in args.seeds for source in args.sources]
    results["planned"] = [*results.get("planned", []), *(n for n in planned if n not in results.get("planned", []))]
    for method in args.methods:
        for seed in args.seeds:
            todo = [s for s in args.sources if cell_name(s, method, seed) not in results["cells"]]
            if not todo:
                continue
            made = sources(argparse.Namespace(**{**vars(args), "sources": todo}), seed)
            for source in todo:
                cell = policy_cell(args, source, method, seed, made[source])
                results["cells"][cell_name(source, method, seed)] = cell
                results["partial"] = any(n not in results["cells"] for n in results["planned"])
                save(out, results)
                print(f"{source} {method} seed {seed}: {cell['successes']}/{cell['episodes']} in the real scene")
    headline(load(RESULTS / "real2sim_reconstruction.json"), results)


def headline(reconstruction: dict, policy: dict) -> None:
    """The claims page: reconstruction targets from the default-noise cells, cousins vs twin when measured."""
    cells = [c for c in reconstruction["cells"].values() if c["noise_per_m"] == 0.005]
    claims = []
    if cells:
        worst_f = min(c["f_scores"]["1cm"]["f_score"] for c in cells)
        worst_centroid = max(c["max_centroid_error_m"] or np.inf for c in cells)
        worst_drift = max(c["max_drift_m"] for c in cells)
        slowest = max(c["scan_to_scene_s"] for c in cells)
        n = len(cells)
        claims += [
            Claim("reconstruction of noisy synthetic phone scans: F-score at 1 cm (worst scene)", round(worst_f, 3), "",
                  ">= 0.9", worst_f >= 0.9, note=f"{n} scenes of held-out objects, 5 mm depth noise per m"),
            Claim("object centroid error (worst object of all scenes)", round(worst_centroid * 1000, 1), "mm", "<= 10",
                  worst_centroid <= 0.01, note=f"{n} scenes x 3 objects"),
            Claim("a built scene left alone for 2 s: largest object drift", round(worst_drift * 1000, 2), "mm", "<= 5",
                  worst_drift <= 0.005),
            Claim("scan to scene on this machine (slowest scene)", round(slowest, 1), "s", "< 60", slowest < 60),
        ]
    rates = {}
    for cell in policy.get("cells", {}).values():
        if cell.get("method", "scratch") == "scratch":
            rates.setdefault(cell["source"], []).append(cell)
    if "twin" in rates and "cousins" in rates:
        twin = sum(c["successes"] for c in rates["twin"]) / sum(c["episodes"] for c in rates["twin"])
        cousins = sum(c["successes"] for c in rates["cousins"]) / sum(c["episodes"] for c in rates["cousins"])
        done = not policy.get("partial", True)
        claims.append(Claim("from-scratch policies trained on digital cousins vs on the twin, success in the real scene",
                            round(cousins, 3),
                            "", f">= 2 x twin ({twin:.3f})", (cousins >= 2 * twin) if done else None,
                            note=f"seeds {sorted({c['seed'] for c in rates['cousins']})}, 50 episodes each"))
    rows = [[c["scene"], f"{c['noise_per_m'] * 1000:g}", c["format"], f"{c['f_scores']['1cm']['f_score']:.3f}",
             f"{1000 * (c['max_centroid_error_m'] or np.nan):.1f}", f"{c['objects_found']}/{c['objects_true']}",
             f"{1000 * c['max_drift_m']:.2f}", f"{c['scan_to_scene_s']:.1f}"] for c in reconstruction["cells"].values()]
    planned = len(reconstruction.get("planned", [])) + len(policy.get("planned", []))
    finished = len(reconstruction["cells"]) + len(policy.get("cells", {}))
    result = Result("real2sim", "Real to sim: phone scans to scenes and digital cousins", this_command(), claims,
                    {"columns": ["scene", "noise (mm/m)", "format", "F@1cm", "worst centroid (mm)", "found", "drift (mm)",
                                 "scan to scene (s)"], "rows": rows},
                    "benchmarks/results/real2sim_reconstruction.png", planned=planned, finished=finished,
                    sources=[f"benchmarks/results/{name}.json" for name in ("real2sim_reconstruction", "real2sim_policy")
                             if (RESULTS / f"{name}.json").exists()],
                    summary=("Tabletops of held-out objects scanned by the synthetic phone scanner (24 frames, 256x192 "
                             "LiDAR-like depth, noise, dropout, pose jitter), written as Record3D or Polycam files, "
                             "imported, fused at 5 mm, segmented and built into MuJoCo scenes."),
                    data={"policy": policy.get("cells", {})}, rank=40)
    write_result(RESULTS / "headline" / "real2sim.json", result)


def figure(args) -> None:
    """The real scene, its scan, its twin and three cousins from the same camera: what the pipeline makes."""
    import imageio.v2 as imageio

    from wam.envs.tabletop.env import make_scan_env

    real = real_scene(0)
    twin, cousins = WORK / "policy" / "twin", WORK / "policy" / "cousins"
    if not (cousins / "cousin2" / "scene.json").exists():
        raise SystemExit("run the policy part first (it builds the twin and the cousins)")
    scan, _ = scan_through_files(real, 0.005, 0, "record3d")
    frames = []
    for scene in (real, twin, cousins / "cousin0", cousins / "cousin1", cousins / "cousin2"):
        env = make_scan_env(str(scene), task="push", size=160, jitter=0.0)
        frames.append(env.reset(seed=0)[0]["image"])
        env.close()
    phone = scan.rgb[len(scan.rgb) // 2]
    from PIL import Image

    square = phone[:, (phone.shape[1] - phone.shape[0]) // 2:][:, : phone.shape[0]]
    phone = np.asarray(Image.fromarray(np.ascontiguousarray(square)).resize((160, 160)))
    out = RESULTS / "media" / "real2sim_cousins.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, np.concatenate([phone, *frames], axis=1))
    print(f"wrote {out.relative_to(ROOT)}: phone frame | real | twin | cousins 0-2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("reconstruction", "policy", "figure"))
    parser.add_argument("--scenes", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sources", default="twin,cousins,real")
    parser.add_argument("--demos", type=int, default=40)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--task", default="push")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--methods", default="scratch", help="scratch, and wam: pretrained on play video of the cousins")
    parser.add_argument("--video-episodes", type=int, default=400, help="the cousins' play video for the WAM")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.sources = [s for s in args.sources.split(",") if s]
    args.methods = [m for m in args.methods.split(",") if m]
    if args.part == "reconstruction":
        run_reconstruction(args)
    elif args.part == "figure":
        figure(args)
    else:
        run_policy(args)


if __name__ == "__main__":
    main()
