"""Does bfloat16 autocast pretrain as well as full precision on a CPU, and how much sooner?

    python benchmarks/bf16_pretrain.py --data data/mt10_video_small --steps 600 [--preset cpu]

The same pretraining (preset, steps, seed, data) run twice in one process, fp32 then bf16, each
timed end to end (tokenizer, encoding, world model), then both scored by `wam eval-world` on the
same held-out windows: 16-step PSNR against the real frames and its margin over copy-last-frame.
The wall-time ratio is the figure (same run, same machine); the seconds are this machine's.
Writes benchmarks/results/bf16_pretrain.json. Runs are kept under --runs; a finished run is
reused with its recorded time when the script is run again. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from wam.config import pretrain_preset
from wam.train.eval_world import EvalWorldConfig, evaluate_world
from wam.train.pretrain import pretrain

RESULTS = Path(__file__).parent / "results"


def run(precision: str, args) -> dict:
    config = pretrain_preset(args.preset).with_steps(args.steps).with_bf16(precision == "bf16")
    out = args.runs / precision
    timing = out / "wall_seconds.json"  # a run finished by an earlier invocation keeps its own time
    if not timing.exists():
        start = time.perf_counter()
        pretrain(args.data, out, config, resume=(out / "pretrain.json").exists())
        timing.write_text(json.dumps({"seconds": time.perf_counter() - start}))
    seconds = json.loads(timing.read_text())["seconds"]
    scores = evaluate_world(out, args.data, out / "eval_world", EvalWorldConfig(samples=args.samples, videos=0))
    h = max(scores["horizons"])
    return {"precision": precision, "seconds": round(seconds, 1),
            "psnr_h16": scores["methods"]["model"][f"h{h}"]["psnr_at"],
            "psnr_h16_copy_last": scores["methods"]["copy_last_frame"][f"h{h}"]["psnr_at"],
            "psnr_h16_model_minus_copy_last": scores["summary"][f"psnr_h{h}_model_minus_copy_last"],
            "tokenizer_ceiling_psnr": scores["tokenizer_ceiling_psnr"],
            "summary": json.loads((out / "summary.json").read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=600, help="world-model steps (the tokenizer's scale with them)")
    parser.add_argument("--samples", type=int, default=64, help="held-out windows eval-world scores")
    parser.add_argument("--runs", type=Path, default=Path("runs/bf16_pretrain"))
    parser.add_argument("--out", type=Path, default=RESULTS / "bf16_pretrain.json")
    args = parser.parse_args()
    rows = {precision: run(precision, args) for precision in ("fp32", "bf16")}
    fp32, bf16 = rows["fp32"], rows["bf16"]
    results = {
        "benchmark": "bf16_pretrain", "command": "python benchmarks/bf16_pretrain.py " + " ".join(os.sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"},
        "date": time.strftime("%Y-%m-%d %H:%M"), "preset": args.preset, "steps": args.steps, "runs": rows,
        "wall_time_speedup": round(fp32["seconds"] / bf16["seconds"], 3) if bf16["seconds"] > 0 else None,
        "psnr_h16_bf16_minus_fp32": round(bf16["psnr_h16"] - fp32["psnr_h16"], 3),
        "note": "seconds: pretraining end to end (frame decoding, tokenizer, latent encoding, world model), not eval-world; "
                "a killed and resumed run counts only its last stretch",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, args.out)
    for precision, row in rows.items():
        print(f"{precision}: {row['seconds']:7.1f} s  16-step PSNR {row['psnr_h16']:.2f} dB "
              f"(copy-last {row['psnr_h16_copy_last']:.2f}, margin {row['psnr_h16_model_minus_copy_last']:+.2f})")
    print(f"bf16 wall time {results['wall_time_speedup']}x faster; PSNR bf16 - fp32 {results['psnr_h16_bf16_minus_fp32']:+.3f} dB")


if __name__ == "__main__":
    main()
