"""Training throughput of each preset: frames/s and step time, tokenizer and world model.

    python benchmarks/train_throughput.py [--steps 5] [--presets tiny,cpu,gpu] [--precisions fp32,bf16]
    python benchmarks/train_throughput.py --presets cpu --settings 64x1,128x1,64x2,96x2 --out .../resolution_cost.json

Synthetic batches of the preset's shapes (throughput does not depend on pixel content),
AdamW steps through the same model code the trainer runs, timed after warm-up steps, all
presets in one run. `--settings SIZExVIEWS,...` times one preset at other resolutions and
camera counts (views side by side, as wam trains them), each as a ratio to the first setting
timed in the same run: the cost plan of the resolution and wrist-camera grid. Each step's FLOPs are counted
(torch.utils.flop_counter, forward and backward); on a GPU it also reports model FLOPs utilisation (MFU) against the
bf16 matmul rate measured in the same run. With `--precisions fp32,bf16` each preset is timed in
full precision and under bfloat16 autocast in the same run, and the ratio printed: CPUs with
native bf16 instructions (AVX512-BF16, AMX) may train faster that way, others slower. Writes
benchmarks/results/train_throughput.json.
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
from wam.models.text import tokenize
from wam.models.tokenizer import FrameTokenizer
from wam.models.world_model import WorldModel

RESULTS = Path(__file__).parent / "results"
SYNTHETIC_STATE_DIM = 4  # the timed batches' state size (Meta-World's end effector)


def _time_steps(model: torch.nn.Module, batch: dict, steps: int, device: torch.device, bf16: bool) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def step_flops(model: torch.nn.Module, batch: dict) -> int:
    """Floating-point operations of one training step (forward and backward), counted by PyTorch's FlopCounterMode
    from the operations actually run (matrix products, convolutions, attention), not estimated from the size."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = model(batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def preset_batches(preset: str, device: torch.device, size: int | None = None, views: int = 1,
                   batch: int | None = None) -> tuple:
    """(config, tokenizer batch, world-model batch) of synthetic data in the preset's shapes (`batch`: another size)."""
    from dataclasses import replace

    config = pretrain_preset(preset).with_image_size(size)
    # Synthetic batches: a state the size of Meta-World's (what the presets are timed on), set here as a dataset would.
    config = replace(config, world=replace(config.world, views=views, state_dim=SYNTHETIC_STATE_DIM))
    b, s = batch or config.tokenizer_train.batch_size, config.tokenizer.image_size
    frames = {"frames": torch.randint(0, 255, (b, 3, s, views * s), dtype=torch.uint8, device=device)}
    w, b, cfg = config.window, batch or config.world_train.batch_size, config.world
    windows = {
        "latents": torch.rand(b, w, cfg.latent_channels, cfg.latent_size, views * cfg.latent_size, device=device) * 2 - 1,
        "state": torch.randn(b, w, cfg.state_dim, device=device),
        "state_mask": torch.ones(b, w, dtype=torch.bool, device=device),
        "text_ids": tokenize(["open the drawer"] * b, cfg.text).to(device),
    }
    return config, frames, windows


def matmul_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ a
    torch.cuda.synchronize()
    return 2 * 8192**3 * 20 / (time.perf_counter() - start) / 1e12


def measure(preset: str, steps: int, device: torch.device, bf16: bool, size: int | None = None, views: int = 1) -> dict:
    config, frames, batch = preset_batches(preset, device, size, views)
    out = {"preset": preset, "precision": "bf16" if bf16 else "fp32", "image_size": config.tokenizer.image_size, "views": views}
    tokenizer = FrameTokenizer(config.tokenizer).to(device)
    b = config.tokenizer_train.batch_size
    seconds = _time_steps(tokenizer, frames, steps, device, bf16)
    flops = step_flops(tokenizer, frames)
    out["tokenizer"] = {"params": sum(p.numel() for p in tokenizer.parameters()), "batch": b,
                        "step_s": round(seconds, 4), "frames_per_s": round(b / seconds, 1),
                        "step_gflop": round(flops / 1e9, 2), "model_tflops": round(flops / seconds / 1e12, 4)}
    world = WorldModel(config.world).to(device)
    w, b, cfg = config.window, config.world_train.batch_size, config.world
    seconds = _time_steps(world, batch, steps, device, bf16)
    flops = step_flops(world, batch)
    params = sum(p.numel() for p in world.parameters())
    tokens = b * (w - 1) * (views * cfg.patches_per_frame + 1)
    out["world_model"] = {"params": params, "batch": b, "window": w, "tokens_per_step": tokens,
                          "step_s": round(seconds, 4), "frames_per_s": round(b * w / seconds, 1),
                          "step_gflop": round(flops / 1e9, 2), "model_tflops": round(flops / seconds / 1e12, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--presets", default="tiny,cpu,gpu")
    parser.add_argument("--precisions", default="auto", help="fp32, bf16 or both (fp32,bf16); auto: bf16 on cuda, else fp32")
    parser.add_argument("--settings", default=None, help="SIZExVIEWS,... (e.g. 64x1,128x1,64x2): one preset at other "
                        "resolutions and camera counts, as ratios to the first")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.settings:
        return settings_main(args)
    precisions = args.precisions.split(",")
    if any(p not in ("auto", "fp32", "bf16") for p in precisions):
        parser.error(f"--precisions: {args.precisions!r}; expected auto, fp32, bf16 or fp32,bf16")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    out = args.out or RESULTS / ("train_throughput.json" if device.type == "cpu" else "train_throughput_gpu.json")
    peak = matmul_tflops(device)
    rows = []
    for preset in args.presets.split(","):
        timed = {}
        for precision in precisions:
            bf16 = device.type == "cuda" if precision == "auto" else precision == "bf16"
            row = measure(preset, args.steps, device, bf16)
            if peak:  # model FLOPs utilisation: counted FLOPs per second over the measured bf16 matrix-product rate
                for part in ("tokenizer", "world_model"):
                    row[part]["mfu"] = round(row[part]["model_tflops"] / peak, 4)
            rows.append(row)
            timed[row["precision"]] = row
            print(f"{preset:5s} {row['precision']} tokenizer {row['tokenizer']['frames_per_s']:8.1f} frames/s "
                  f"({row['tokenizer']['step_s']:.3f} s/step)   world model {row['world_model']['frames_per_s']:8.1f} frames/s "
                  f"({row['world_model']['step_s']:.3f} s/step)")
        if {"fp32", "bf16"} <= timed.keys():  # same run, same machine: the ratio is the figure, not the seconds
            for part in ("tokenizer", "world_model"):
                speedup = timed["fp32"][part]["step_s"] / timed["bf16"][part]["step_s"]
                timed["bf16"][part]["speedup_over_fp32"] = round(speedup, 3)
                print(f"{preset:5s} {part}: bf16 step {speedup:.2f}x the speed of fp32")
    results = {"benchmark": "train_throughput", "command": " ".join(["python benchmarks/train_throughput.py", *os.sys.argv[1:]]), "device": name,
               "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "precisions": sorted({r["precision"] for r in rows}),
               "bf16_matmul_tflops": peak, "steps_timed": args.steps, "presets": rows, "complete": True}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def settings_main(args) -> None:
    """One preset at several (size, views) settings, timed back to back, with step-time ratios to the first."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset = args.presets.split(",")[0]
    rows = []
    for setting in args.settings.split(","):
        size, _, views = setting.partition("x")
        row = measure(preset, args.steps, device, device.type == "cuda", int(size), int(views or 1))
        rows.append(row)
        for part in ("tokenizer", "world_model"):
            row[part]["step_ratio_to_first"] = round(row[part]["step_s"] / rows[0][part]["step_s"], 3)
        print(f"{preset} {setting:6s} tokenizer {row['tokenizer']['step_s']:.3f} s/step "
              f"(x{row['tokenizer']['step_ratio_to_first']:.2f})   world model {row['world_model']['step_s']:.3f} s/step "
              f"(x{row['world_model']['step_ratio_to_first']:.2f})")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    out = args.out or RESULTS / "resolution_cost.json"
    results = {"benchmark": "train_throughput --settings", "command": " ".join(["python benchmarks/train_throughput.py", *os.sys.argv[1:]]),
               "device": name, "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "steps_timed": args.steps,
               "settings": rows, "complete": True}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
