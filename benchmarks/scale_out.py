"""Scale-out on the same machine: training with 1 and 2 processes, collection with local workers and with Ray.

    python benchmarks/scale_out.py [--train-steps 20] [--episodes 4] [--preset cpu]

1. Training: the `cpu` preset's world model through wam's own loop on synthetic windows (the same global batch),
   as one process with 2 threads and as 2 torchrun processes (DDP on gloo) with 1 thread each: steps/s and frames/s.
   On one machine's 2 cores this measures DDP's overhead, not a speed-up: both use the same two cores.
2. Collection: the same Meta-World episodes with 2 local worker processes and as Ray tasks on a local Ray instance
   of 2 CPUs; the dataset written is the same (tests/test_workers.py checks it), the figure is the overhead.
3. An estimate, with its arithmetic, of the hours to pretrain the `gpu` preset on 1,000 hours of 64x64 video at
   10 fps on one H100 and on 8: training FLOPs per frame counted here (torch.utils.flop_counter), divided by the
   H100 bf16 matrix-product rate this workplace measured, at stated utilisations. An estimate until gpu_check.py runs.
Every figure in parts 1-2 is from this one run; run it on an otherwise idle machine. Writes
benchmarks/results/headline/scale_out.json and benchmarks/results/scale_out.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ROOT, Result, write_result  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "headline" / "scale_out.json"
PLOT = ROOT / "benchmarks" / "results" / "scale_out.png"
H100_BF16_TFLOPS = 798.0  # 8192^3 bf16 matmul on random data, this workplace's H100 (device tool notes, 2026-11-13)
VIDEO_HOURS, VIDEO_FPS = 1000, 10
UTILISATIONS = (0.2, 0.35, 0.5)  # model FLOPs utilisation assumed for the estimate (unmeasured until gpu_check.py)
SCALING_EFFICIENCY_8 = 0.9  # assumed fraction of linear speed-up on 8 GPUs of one node (NVLink, DDP)


def training(preset: str, steps: int) -> list[dict]:
    from gpu_check import torchrun_training

    one = torchrun_training(preset, steps, nproc=1, dry=False, threads=2, port=29541)
    two = torchrun_training(preset, steps, nproc=2, dry=False, threads=1, port=29542)
    for row in (one, two):
        if row["returncode"] != 0:
            raise SystemExit(f"training with {row['processes']} process(es) failed:\n{row.get('stderr_tail', '')}")
    return [one, two]


def collection(episodes: int, size: int) -> list[dict]:
    import ray

    from wam.envs.collect import CollectConfig, collect

    rows = []
    tasks = ("reach-v3", "drawer-open-v3")
    for name, extra in (("2 local workers", {"workers": 2}), ("ray, 2 CPUs", {"ray": "auto"})):
        root = Path(tempfile.mkdtemp(prefix="wam-scale-out-"))
        started_ray = 0.0
        try:
            if "ray" in extra:
                start = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                started_ray = time.perf_counter() - start
            config = CollectConfig(tasks, episodes, root / "data", size=size, max_steps=150, seed=0, **extra)
            result = collect(config, progress=False)
            decode = decode_rate(root / "data") if not rows else None
            rows.append({**({"decode_frames_per_s_one_core": decode} if decode else {}), "backend": name, "episodes": result.added, "frames": result.frames, "seconds": round(result.seconds, 2),
                         "episodes_per_s": round(result.added / result.seconds, 3),
                         "frames_per_s": round(result.frames_per_second, 1), "ray_start_s": round(started_ray, 2)})
        finally:
            if "ray" in extra:
                ray.shutdown()
            shutil.rmtree(root, ignore_errors=True)
    return rows


def decode_rate(data: Path) -> float:
    """Frames/s one process decodes from a dataset's videos (64x64 H.264): the cost of building the frame cache."""
    from wam.data import Dataset

    dataset = Dataset(data)
    start, frames = time.perf_counter(), 0
    for episode in dataset.episodes:
        frames += len(dataset.frames(episode.index))
    return round(frames / (time.perf_counter() - start), 1)


def estimate(decode_per_core: float | None = None) -> dict:
    """Hours to pretrain the gpu preset on 1,000 h of 64x64 video at 10 fps: one pass of every frame through the
    tokenizer and, in windows, through the world model."""
    import torch

    from train_throughput import preset_batches, step_flops
    from wam.models.tokenizer import FrameTokenizer
    from wam.models.world_model import WorldModel

    config, frames, windows = preset_batches("gpu", torch.device("cpu"), batch=2)
    tokenizer_flops = step_flops(FrameTokenizer(config.tokenizer), frames) / 2  # per frame
    world_flops = step_flops(WorldModel(config.world), windows) / (2 * config.window)  # per frame of a window
    total_frames = VIDEO_HOURS * 3600 * VIDEO_FPS
    total_flops = total_frames * (tokenizer_flops + world_flops)
    hours = {f"{u:.2f}": round(total_flops / (H100_BF16_TFLOPS * 1e12 * u) / 3600, 2) for u in UTILISATIONS}
    hours_8 = {u: round(h / (8 * SCALING_EFFICIENCY_8), 2) for u, h in hours.items()}
    return {"frames": total_frames, "tokenizer_gflop_per_frame": round(tokenizer_flops / 1e9, 3),
            "world_model_gflop_per_frame": round(world_flops / 1e9, 3), "total_pflop": round(total_flops / 1e15, 1),
            "h100_bf16_tflops": H100_BF16_TFLOPS, "hours_one_h100": hours, "hours_eight_h100": hours_8,
            "scaling_efficiency_8": SCALING_EFFICIENCY_8, "cache_gib_uint8": round(total_frames * 64 * 64 * 3 / 2**30, 1),
            # the frames are decoded once into the cache: at the rate measured here per core, on a 16-core GPU machine
            **({"decode_hours_16_cores": round(total_frames / (decode_per_core * 16) / 3600, 2),
                "decode_hours_8_machines": round(total_frames / (decode_per_core * 16 * 8) / 3600, 2)} if decode_per_core else {})}


def plot(train_rows: list[dict], collect_rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    left.bar([f"{r['processes']} x {r['threads_per_process']} thr" for r in train_rows], [r["frames_per_s"] for r in train_rows],
             color=["#777", "#2a7"])
    left.set_title("training (cpu preset world model)", fontsize=9)
    left.set_ylabel("frames/s")
    right.bar([r["backend"] for r in collect_rows], [r["episodes_per_s"] for r in collect_rows], color=["#777", "#27a"])
    right.set_title("collection (Meta-World, 2 cores)", fontsize=9)
    right.set_ylabel("episodes/s")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=20, help="loop steps per setting (half of them warm-up)")
    parser.add_argument("--episodes", type=int, default=10, help="collection episodes per task (2 tasks)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    train_rows = training(args.preset, args.train_steps)
    print(f"training: 1 process {train_rows[0]['frames_per_s']} frames/s, 2 processes {train_rows[1]['frames_per_s']}")
    collect_rows = collection(args.episodes, args.size)
    print(f"collection: {collect_rows}")
    guess = estimate(collect_rows[0].get("decode_frames_per_s_one_core"))
    print(f"estimate: {guess}")
    plot(train_rows, collect_rows)
    ddp_ratio = train_rows[1]["frames_per_s"] / train_rows[0]["frames_per_s"]
    ray_ratio = collect_rows[1]["episodes_per_s"] / collect_rows[0]["episodes_per_s"]
    rows = [[f"training, {r['processes']} process(es) x {r['threads_per_process']} thread(s)", f"{r['frames_per_s']:.1f} frames/s",
             f"{r['frames_per_s'] / train_rows[0]['frames_per_s']:.2f}"] for r in train_rows]
    rows += [[f"collection, {r['backend']}", f"{r['episodes_per_s']:.3f} episodes/s", f"{r['episodes_per_s'] / collect_rows[0]['episodes_per_s']:.2f}"]
             for r in collect_rows]
    mid = f"{UTILISATIONS[1]:.2f}"
    summary = (f"On {os.cpu_count()} cores, DDP with 2 one-thread processes trains at {ddp_ratio:.2f}x one two-thread process "
               f"(the same cores: the overhead, not a speed-up), and Ray collects at {ray_ratio:.2f}x two local workers "
               f"(plus {collect_rows[1]['ray_start_s']:.1f} s to start Ray). Estimate, not a measurement: the gpu preset "
               f"costs {guess['tokenizer_gflop_per_frame'] + guess['world_model_gflop_per_frame']:.2f} GFLOP a frame to train "
               f"(counted), so one pass over {VIDEO_HOURS:,} h of video at {VIDEO_FPS} fps ({guess['frames']:,} frames, "
               f"{guess['total_pflop']} PFLOP) takes {guess['hours_one_h100'][mid]} h on one H100 at {mid} utilisation of "
               f"its measured {H100_BF16_TFLOPS:.0f} TFLOP/s bf16 rate, {guess['hours_eight_h100'][mid]} h on 8 at "
               f"{SCALING_EFFICIENCY_8:.0%} scaling efficiency. Decoding the video once into the frame cache "
               f"({guess['cache_gib_uint8']} GiB) at the {collect_rows[0].get('decode_frames_per_s_one_core')} frames/s a "
               f"core measured here takes {guess.get('decode_hours_16_cores')} h on a 16-core machine, "
               f"{'more' if (guess.get('decode_hours_16_cores') or 0) > guess['hours_one_h100'][mid] else 'less'} than the "
               "training pass itself.")
    result = Result("scale_out", "Scale-out: DDP and Ray on one machine, and the arithmetic of a GPU pretraining",
                    f"python benchmarks/scale_out.py --train-steps {args.train_steps} --episodes {args.episodes} "
                    f"--size {args.size} --preset {args.preset}", [],
                    {"columns": ["setting", "rate", "x first of its kind"], "rows": rows}, str(PLOT.relative_to(ROOT)),
                    summary=summary, data={"training": train_rows, "collection": collect_rows, "estimate": guess}, rank=60)
    write_result(OUT, result)
    print(summary)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
