"""What a bridge costs: one action's round trip to a robot behind `wam bridge`, against the same arm served locally.

    python benchmarks/bridge_latency.py [--seconds 20] [--pixels]

Two servers in turn, each with one Meta-World reach arm and every episode recorded: the
arm in the server's own worker (`metaworld/reach-v3`), then the same simulated arm behind a
bridge in a process of its own (`remote/arm`, the bridge's `SimulatedRobot`, its pacing off
so that only the transport is timed). One client sends one action a request for the given
time, resetting when an episode ends, and times each request. The difference is what the
bridge adds to each action: a WebSocket hop each way and the frame's encoding (with
`--pixels`, a 64x64 camera frame each step). Both settings run in the same process on the
same machine one after the other: read the ratio, not the absolute times, on a busy machine.
Writes benchmarks/results/headline/bridge_latency.json (the common results format) and a PNG.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import Claim, Result, this_command, write_result  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def run_bridge(url: str, key: str, pixels: bool, stop) -> None:
    """The bridge process: a simulated arm, paced by nothing but the requests."""
    from wam.bridge import Bridge, BridgeConfig, SimulatedRobot
    from wam.bridge.bridge import run_in_thread

    bridge = Bridge(SimulatedRobot("metaworld/reach-v3", size=64, pixels=pixels),
                    BridgeConfig(url, key, "arm-0", watchdog_s=5.0, max_rate_hz=1e6))
    thread = run_in_thread(bridge)
    stop.wait()
    bridge.stop.set()
    thread.join(10)


def drive(url: str, key: str, robot: str, seconds: float) -> list[float]:
    """Milliseconds of each one-action request over `seconds`."""
    from wam.api.client import Client

    client = Client(url, key)
    lease = client.lease(robot, ttl_s=600)["lease_id"]
    rng = np.random.default_rng(0)
    client.reset(robot, task="reach-v3", seed=0, lease_id=lease)
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        result = client.step(robot, action=rng.uniform(-1, 1, 4).round(3).tolist(), lease_id=lease, wait_recorded=False)
        times.append(1000 * (time.perf_counter() - start))
        if result["observation"]["done"]:
            client.reset(robot, seed=len(times), lease_id=lease)
    client.release(lease)
    return times


def setting(robots: str, seconds: float, pixels: bool, tmp: Path) -> dict:
    from wam.api.auth import create_key
    from wam.api.server import BackgroundServer, ServerConfig
    from wam.api.store import Store

    config = ServerConfig(robots, tmp / robots.replace("/", "_"), obs="pixels" if pixels else "state", max_episode_steps=100)
    store = Store(config.db_url)
    key = create_key(store, "control")[1]
    store.close()
    stop, bridge = None, None
    with BackgroundServer(config) as server:
        robot = "reach-v3-0"
        if robots.startswith("remote/"):
            robot, stop = "arm-0", multiprocessing.get_context("spawn").Event()
            bridge = multiprocessing.get_context("spawn").Process(target=run_bridge, args=(server.url, key, pixels, stop))
            bridge.start()
            from wam.api.client import Client

            deadline = time.monotonic() + 120
            while Client(server.url, key).robot(robot)["status"] != "ready":
                if time.monotonic() > deadline:
                    raise TimeoutError("the bridge did not attach within 120 s")
                time.sleep(0.1)
        try:
            times = drive(server.url, key, robot, seconds)
        finally:
            if bridge is not None:
                stop.set()
                bridge.join(30)
    t = np.asarray(times)
    return {"robots": robots, "actions": len(t), "actions_per_s": round(len(t) / seconds, 1),
            "latency_ms": {q: round(float(np.percentile(t, p)), 2) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))}}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = ["served locally", "behind a bridge"]
    for i, q in enumerate(("p50", "p90", "p99")):
        ax.bar(np.arange(2) + (i - 1) * 0.25, [r["latency_ms"][q] for r in rows], 0.25, label=q)
    ax.set_xticks(range(2), labels)
    ax.set_ylabel("ms per one-action request")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_path(path: Path) -> str:
    """The plot as the pages link it: relative to the repository when it lies inside it."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pixels", action="store_true", help="a 64x64 camera frame with every observation")
    parser.add_argument("--out", default=str(RESULTS / "headline" / "bridge_latency.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [setting(robots, args.seconds, args.pixels, Path(tmp)) for robots in ("metaworld/reach-v3", "remote/arm")]
    local, bridged = rows
    added = bridged["latency_ms"]["p50"] - local["latency_ms"]["p50"]
    out = Path(args.out)
    plot(rows, out.with_suffix(".png"))
    result = Result(
        "bridge_latency", "What a bridge adds to each action", this_command(),
        [Claim("a robot behind a bridge answers an action within a 30 fps control period", bridged["latency_ms"]["p99"], "ms",
               "p99 <= 33 ms", bridged["latency_ms"]["p99"] <= 33, None,
               f"one action a request; the bridge adds {added:.1f} ms at the median "
               f"({local['latency_ms']['p50']:.1f} -> {bridged['latency_ms']['p50']:.1f} ms)")],
        {"columns": ["robot", "actions", "actions/s", "p50 ms", "p90 ms", "p99 ms"],
         "rows": [[r["robots"], str(r["actions"]), f"{r['actions_per_s']:.0f}", *(f"{r['latency_ms'][q]:.1f}" for q in ("p50", "p90", "p99"))]
                  for r in rows]},
        plot_path(out.with_suffix(".png")),
        summary=("One client sends one action a request to one reach arm, served in the server's own worker, then behind "
                 "a bridge in its own process (pacing off, so only the transport is timed); "
                 + ("64x64 pixels" if args.pixels else "state only") + f", {args.seconds:g} s each."),
        data={"settings": rows, "pixels": args.pixels, "seconds": args.seconds}, rank=8)
    write_result(out, result)
    print(f"locally {local['latency_ms']}, bridged {bridged['latency_ms']}; wrote {out}")


if __name__ == "__main__":
    main()
