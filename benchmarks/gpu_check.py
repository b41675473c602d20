"""The whole GPU check in one call, for the first time a GPU machine is lent (issue 33).

    # on the device machine (python3 there holds a CUDA PyTorch; nothing can be installed, nothing downloads):
    PYTHONPATH=. python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.json"
    # here, to check the script itself on the CPU in a minute:
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.json

It needs only torch and the model code (no MuJoCo, no video decoding), so it runs on the lent machine's own Python:
1. the device's ceilings: the bf16 matrix-product rate (8192^3, random data) and device-to-device copy bandwidth;
2. throughput of the `gpu` preset (and `cpu`) in bf16 through the model code: frames/s, step time, counted FLOPs
   (forward and backward, torch.utils.flop_counter) and model FLOPs utilisation against that measured rate;
3. a short training of the `gpu` preset's world model through the real loop (wam.train.loop: fused AdamW, bf16
   autocast, pinned copies, checkpoints) on synthetic windows, eager and with torch.compile, timed per step after
   warm-up;
4. the same loop under torchrun with NCCL (one process on the one GPU: the launch, process group and DDP path).
Each part writes into one JSON as it finishes (a cut-off run keeps what it measured); the device is named in it.
Commit the JSON as benchmarks/results/gpu_check.json with the machine kind in the message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train_throughput import matmul_tflops, measure, preset_batches  # noqa: E402


class SyntheticWindows:
    """The same synthetic batch every step: throughput does not depend on the pixels."""

    def __init__(self, batch: dict):
        self.batch_value = {k: v.cpu() for k, v in batch.items()}

    def batch(self, step: int) -> dict:
        return self.batch_value


def copy_bandwidth(device: torch.device) -> float | None:
    """Device-to-device copy, GB/s counting bytes read plus bytes written."""
    if device.type != "cuda":
        return None
    a = torch.randn(2**28, device=device)  # 1 GiB of float32
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        b.copy_(a)
    torch.cuda.synchronize()
    return 2 * a.numel() * 4 * 20 / (time.perf_counter() - start) / 1e9


def loop_training(preset: str, steps: int, compile_model: bool, dry: bool) -> dict:
    """Steps/s of the world model through wam's own training loop, the mean of the steps after the first log."""
    from wam.models.world_model import WorldModel
    from wam.train.loop import TrainConfig, train

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config, _, windows = preset_batches(preset, device, batch=2 if dry else None)
    model = WorldModel(config.world)
    half = max(1, steps // 2)
    train_config = TrainConfig(steps=2 * half, batch_size=windows["latents"].shape[0], lr=3e-4, warmup_steps=1,
                               log_every=half, checkpoint_every=2 * half, device=str(device), compile=compile_model)
    with tempfile.TemporaryDirectory() as run:
        started = time.perf_counter()
        train(model, SyntheticWindows(windows), train_config, run, model_config=config.world.to_dict(), kind="world_model",
              progress=False)
        seconds = time.perf_counter() - started
        if not (Path(run) / "metrics.jsonl").exists():
            return {}  # a rank other than 0 under torchrun: it trains, rank 0 logs
        records = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    timed = records[-1]["steps_per_s"]  # the second window: warm-up (and compilation) are in the first
    b, w = windows["latents"].shape[:2]
    return {"preset": preset, "compile": compile_model, "steps": 2 * half, "batch": int(b), "window": int(w),
            "steps_per_s": round(timed, 3), "frames_per_s": round(timed * b * w, 1), "wall_s": round(seconds, 1),
            "loss_last": records[-1]["loss"]}


def torchrun_training(preset: str, steps: int, nproc: int, dry: bool, threads: int = 1, port: int = 29533) -> dict:
    """`loop_training` under torchrun with `nproc` ranks of `threads` threads each (NCCL on GPUs, gloo on the CPU),
    the same global batch as one process; what rank 0 measured."""
    code = ("import sys, torch; sys.path.insert(0, 'benchmarks'); import gpu_check, json; "
            f"torch.set_num_threads({threads}); r = gpu_check.loop_training({preset!r}, {steps}, False, {dry}); "
            "import torch.distributed as d; print('RESULT', json.dumps({**r, 'backend': d.get_backend() if d.is_initialized() "
            "else None}) if not d.is_initialized() or d.get_rank() == 0 else '')")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(code)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port),
               script.name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)}, cwd=Path(__file__).resolve().parent.parent)
    os.unlink(script.name)
    found = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("RESULT {")]
    return {"processes": nproc, "threads_per_process": threads, "returncode": done.returncode,
            **(json.loads(found[0]) if found else {}), **({"stderr_tail": done.stderr[-2000:]} if done.returncode else {})}


def torchrun_check(steps: int, dry: bool) -> dict:
    """The loop under torchrun: NCCL with one rank per GPU, gloo with two ranks on the CPU."""
    gpus = torch.cuda.device_count()
    return torchrun_training("tiny", steps, max(1, gpus) if gpus else 2, dry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--steps", type=int, default=40, help="training steps through the loop (half warm-up)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on whatever device there is: checks the script")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    presets = ("tiny",) if args.dry_run else ("cpu", "gpu")
    steps = 4 if args.dry_run else args.steps
    result: dict = {"benchmark": "gpu_check", "command": " ".join(["python benchmarks/gpu_check.py", *sys.argv[1:]]),
                    "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
                    "torch": torch.__version__, "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"),
                    "dry_run": args.dry_run, "parts": {}}

    def save(part: str, value) -> None:
        result["parts"][part] = value
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{part}: {json.dumps(value)[:400]}", flush=True)

    save("ceilings", {"bf16_matmul_tflops": matmul_tflops(device), "copy_gb_per_s": copy_bandwidth(device)})
    peak = result["parts"]["ceilings"]["bf16_matmul_tflops"]
    rows = []
    for preset in presets:
        row = measure(preset, 2 if args.dry_run else 10, device, device.type == "cuda")
        for part in ("tokenizer", "world_model"):
            if peak:
                row[part]["mfu"] = round(row[part]["model_tflops"] / peak, 4)
        rows.append(row)
    save("throughput", rows)
    training = [loop_training(presets[-1], steps, False, args.dry_run)]
    if device.type == "cuda":
        training.append(loop_training(presets[-1], steps, True, args.dry_run))
    save("loop", training)
    save("torchrun", torchrun_check(steps, args.dry_run))
    result["complete"] = True
    save("summary", {part["preset"] + (" compiled" if part["compile"] else ""): part["frames_per_s"] for part in training})


if __name__ == "__main__":
    main()
