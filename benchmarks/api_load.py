"""Load on the Physical API: 64 simulated robots, one client process stepping all of them at once.

    python benchmarks/api_load.py [--robots 64] [--seconds 20] [--settings robot:1,fleet:1,fleet:1:async:g2,ws:1,...]

Starts `wam serve` in its own process (64 state-only Meta-World robots, one worker process
each, every episode recorded), then this process, the one agent, steps every robot
concurrently through `wam.api.AsyncClient` for a fixed time per setting: one action per
request, action chunks of 8 (what a WAM emits) per request, the same through one
`/v1/fleet/step` request for all robots at once, with episode commits awaited by the step
that ends the episode (durable, the default) or done in the background
(`wait_recorded=false`), and the fleet stepped in two groups in turn. Then the same robots
through the control channel (one WebSocket, `AsyncClient.control()`), a message per tick
with a command for every robot (a reset for those whose episode just ended), in its
default configuration: episodes committed durably in the background, announced when they
land, so that no reply waits on a commit (`:wait` makes each reply wait for them); `:gN`
sends N messages of a group each at once (pipelined). Reports aggregated actions/s,
requests (messages)/s and p50/p99 request latency, beside the raw simulator's steps/s
measured in the same run (one env stepped in-process, no API). Writes
benchmarks/results/api_load.json and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).parent / "results"


def raw_simulator_steps_per_s(seconds: float = 5.0) -> float:
    from wam.envs import make

    env = make("metaworld/reach-v3", obs="state", max_episode_steps=500)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        steps += 1
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) so far of process `pid` and of all its live descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)], used[int(entry)] = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
    tree, grew = {pid}, True
    while grew:
        below = {p for p, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | below, bool(below)
    return used.get(pid, 0.0), sum(used[p] for p in tree - {pid})


def cpu_meter(server_pid: int | None):
    """Call once before the timed window; the function it returns, called after with the actions done, gives the CPU
    milliseconds per action of the server process, its robots (worker processes) and this client process."""
    def now() -> tuple[float, float, float]:
        return (*cpu_seconds(server_pid), time.process_time()) if server_pid else (0.0, 0.0, time.process_time())

    start = now()

    def per_action(actions: int) -> dict:
        spent = [b - a for a, b in zip(start, now())]
        return {name: round(1000 * s / max(actions, 1), 3) for name, s in zip(("server", "robots", "client"), spent)}

    return per_action


async def load(url: str, key: str, robots: list[str], seconds: float, chunk: int, batched: bool, wait_recorded: bool,
               groups: int = 1, server_pid: int | None = None) -> dict:
    from wam.api.client import AsyncClient

    latencies: list[float] = []
    actions = 0
    episodes = 0
    async with AsyncClient(url, key) as client:
        for robot in robots:
            await client.lease(robot, 3600)
        await asyncio.gather(*(client.reset(r, seed=i) for i, r in enumerate(robots)))
        rng = np.random.default_rng(chunk)
        # A fleet's episodes end at different times: each robot first runs a random part of its episode,
        # so the timed window does not see all 64 end (and be recorded) in the same step.
        head = rng.integers(0, 500, len(robots))
        await asyncio.gather(*(client.step(r, actions=[[0.0] * 4] * 50) for r, n in zip(robots, head) for _ in range(n // 50)))
        stop = time.perf_counter() + seconds

        async def drive_fleet() -> None:
            nonlocal actions, episodes
            turn = 0
            while time.perf_counter() < stop:
                group = robots[turn % groups::groups]  # groups > 1: the fleet stepped in turns, fewer actions in flight
                turn += 1
                t0 = time.perf_counter()
                outcomes = await client.step_fleet({r: rng.uniform(-1, 1, (chunk, 4)).round(4).tolist() for r in group},
                                                   wait_recorded=wait_recorded)
                latencies.append(time.perf_counter() - t0)
                done = []
                for outcome in outcomes:
                    actions += outcome["result"]["steps"]
                    if outcome["result"]["observation"]["done"]:
                        done.append(outcome["robot"])
                episodes += len(done)
                await asyncio.gather(*(client.reset(r) for r in done))

        async def drive(robot: str) -> None:
            nonlocal actions, episodes
            while time.perf_counter() < stop:
                batch = rng.uniform(-1, 1, (chunk, 4)).round(4).tolist()
                t0 = time.perf_counter()
                result = await client.step(robot, actions=batch, wait_recorded=wait_recorded)
                latencies.append(time.perf_counter() - t0)
                actions += result["steps"]
                if result["observation"]["done"]:
                    episodes += 1
                    await client.reset(robot)

        start, meter = time.perf_counter(), cpu_meter(server_pid)
        await (drive_fleet() if batched else asyncio.gather(*(drive(r) for r in robots)))
        elapsed, cpu = time.perf_counter() - start, meter(actions)
    ms = np.asarray(latencies) * 1000
    who = "one request per robot" if not batched else "one request for all robots" if groups == 1 else \
        f"one request for {len(robots) // groups} robots, {groups} groups in turn"
    return {"setting": f"{who}, {chunk} action(s) each" + ("" if wait_recorded else ", episodes committed in the background"),
            "batched": batched, "chunk": chunk, "wait_recorded": wait_recorded, "groups": groups, "seconds": round(elapsed, 2), "requests": len(latencies), "actions": actions,
            "episodes_recorded": episodes, "actions_per_s": round(actions / elapsed, 1),
            "requests_per_s": round(len(latencies) / elapsed, 1), "cpu_ms_per_action": cpu, "latency_ms": {
                "p50": round(float(np.percentile(ms, 50)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2), "max": round(float(ms.max()), 2)}}


async def load_control(url: str, key: str, robots: list[str], seconds: float, chunk: int, groups: int = 1,
                       wait_recorded: bool = False, server_pid: int | None = None) -> dict:
    """The control channel: `groups` messages in flight, each with a command for every robot of its group."""
    from wam.api.client import AsyncClient

    latencies: list[float] = []
    actions = 0
    episodes = 0
    async with AsyncClient(url, key) as client:
        leases = {robot: (await client.lease(robot, 3600))["lease_id"] for robot in robots}
        async with client.control(leases) as channel:
            await channel.reset({r: {"seed": i} for i, r in enumerate(robots)})
            rng = np.random.default_rng(chunk)
            head = rng.integers(0, 500, len(robots))  # as in `load`: episodes end at different times
            for part in range(int(head.max()) // 50):
                await channel.step({r: [[0.0] * 4] * 50 for r, n in zip(robots, head) if n // 50 > part})
            stop = time.perf_counter() + seconds

            async def drive(group: list[str]) -> None:
                nonlocal actions, episodes
                ended: set[str] = set()
                while time.perf_counter() < stop:
                    batch = rng.uniform(-1, 1, (len(group), chunk, 4)).round(4).tolist()
                    commands = [channel.reset_command(r) if r in ended else
                                channel.step_command(r, rows if chunk > 1 else rows[0]) for r, rows in zip(group, batch)]
                    t0 = time.perf_counter()
                    outcomes = await channel.send(commands, wait_recorded=wait_recorded)
                    latencies.append(time.perf_counter() - t0)
                    ended.clear()
                    for robot, outcome in outcomes.items():
                        if "error" in outcome:
                            raise RuntimeError(f"{robot}: {outcome['error']}")
                        actions += outcome.get("steps", 0)
                        if outcome["done"]:
                            ended.add(robot)
                    episodes += len(ended)

            start, meter = time.perf_counter(), cpu_meter(server_pid)
            await asyncio.gather(*(drive(robots[g::groups]) for g in range(groups)))
            elapsed, cpu = time.perf_counter() - start, meter(actions)
        for lease in leases.values():
            await client.release(lease)
    ms = np.asarray(latencies) * 1000
    who = "one WebSocket message for all robots" if groups == 1 else \
        f"one WebSocket, {groups} messages of {len(robots) // groups} robots in flight"
    return {"setting": f"{who}, {chunk} action(s) each" + (", replies wait for commits" if wait_recorded else ""),
            "transport": "websocket", "batched": True, "chunk": chunk, "wait_recorded": wait_recorded, "groups": groups,
            "seconds": round(elapsed, 2), "requests": len(latencies), "actions": actions, "episodes_recorded": episodes,
            "actions_per_s": round(actions / elapsed, 1), "requests_per_s": round(len(latencies) / elapsed, 1),
            "cpu_ms_per_action": cpu, "latency_ms": {
                "p50": round(float(np.percentile(ms, 50)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2), "max": round(float(ms.max()), 2)}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["settings"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    def label(r: dict) -> str:
        if r.get("transport") == "websocket":
            return (f"ws{'/' + str(r['groups']) if r['groups'] > 1 else ''}\n{r['chunk']} act/msg"
                    + ("\nwait" if r["wait_recorded"] else ""))
        return (f"{'fleet' if r['batched'] else 'per robot'}{'/' + str(r['groups']) if r.get('groups', 1) > 1 else ''}\n"
                f"{r['chunk']} act/req" + ("" if r.get("wait_recorded", True) else "\nasync"))

    labels = [label(r) for r in rows]
    axes[0].bar(labels, [r["actions_per_s"] for r in rows], color="tab:blue", label=f"through the API ({results['robots']} robots)")
    axes[0].axhline(results["raw_simulator_steps_per_s"], color="tab:gray", ls="--", label="raw simulator, 1 env in-process")
    axes[0].axhline(1000, color="tab:red", ls=":", label="target 1000 actions/s (HTTP)")
    axes[0].axhline(5000, color="tab:purple", ls=":", label="target 5000 actions/s (control channel)")
    axes[0].set_ylabel("actions / s")
    axes[0].legend(fontsize=7)
    for i, r in enumerate(rows):
        axes[1].bar([i - 0.2, i + 0.2], [r["latency_ms"]["p50"], r["latency_ms"]["p99"]], width=0.4,
                    color=["tab:green", "tab:orange"], label=["p50", "p99"] if i == 0 else None)
    axes[1].axhline(50, color="tab:red", ls=":", label="p99 target 50 ms (HTTP)")
    axes[1].axhline(20, color="tab:purple", ls=":", label="p99 target 20 ms (control channel)")
    axes[1].set_xticks(range(len(rows)), labels)
    axes[1].set_ylabel("request / message latency (ms)")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Physical API load, {results['robots']} robots, one client, {results['machine']['cpus']} CPUs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per setting")
    parser.add_argument("--settings", default="robot:1,robot:8,fleet:1,fleet:8,fleet:1:async,fleet:1:async:g2,ws:1,ws:1:g2,ws:8",
                        help="robot:N = one request per robot with N actions; fleet:N = one /v1/fleet/step for all robots; "
                             ":async = the step that ends an episode does not wait for its commit (wait_recorded=false); "
                             ":gN = the fleet stepped in N groups in turn; ws:N = the control channel (one WebSocket), "
                             "a message with N actions for every robot; ws:N:gN = N messages in flight, one per group; "
                             "ws:N:wait = each reply waits for the commits of the episodes it ended")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=RESULTS / "api_load.json")
    args = parser.parse_args()
    # The agent here is latency-sensitive: keep what it has imported (torch, the simulator) out of the
    # garbage collector's full passes, as the server does for itself.
    import gc

    gc.collect()
    gc.freeze()

    from wam.api.auth import create_key
    from wam.api.server import default_db
    from wam.api.store import Store

    data = Path(tempfile.mkdtemp(prefix="wam-api-load-")) / "fleet"
    store = Store(default_db(data))
    _, key = create_key(store, "control", name="api_load")
    store.close()
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "wam.cli", "serve", "--robots", f"metaworld/reach-v3*{args.robots}",
                               "--data", str(data), "--obs", "state", "--max-episode-steps", "500", "--port", str(args.port)],
                              start_new_session=True)
    try:
        started = time.perf_counter()
        while True:
            try:
                health = httpx.get(f"{url}/v1/health").json()
                if health["ready"] == args.robots:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 600:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        startup = time.perf_counter() - started
        print(f"{args.robots} robots ready in {startup:.1f} s")
        robots = [f"reach-v3-{i}" for i in range(args.robots)]
        raw = raw_simulator_steps_per_s()
        print(f"raw simulator: {raw:.0f} steps/s (one env, this process)")
        settings = []
        for setting in args.settings.split(","):
            kind, chunk, *mode = setting.split(":")
            groups = int(next((m[1:] for m in mode if m.startswith("g")), 1))
            if kind == "ws":
                row = asyncio.run(load_control(url, key, robots, args.seconds, int(chunk), groups, "wait" in mode, server.pid))
            else:
                row = asyncio.run(load(url, key, robots, args.seconds, int(chunk), kind == "fleet", "async" not in mode, groups,
                                       server.pid))
            settings.append(row)
            cpu = row["cpu_ms_per_action"]
            print(f"{row['setting']}: {row['actions_per_s']:.0f} actions/s, {row['requests_per_s']:.0f} requests/s, "
                  f"p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms; CPU ms/action: server "
                  f"{cpu['server']}, robots {cpu['robots']}, client {cpu['client']}")
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(120)
    import torch

    results = {
        "command": "python benchmarks/api_load.py " + " ".join(sys.argv[1:]), "robots": args.robots,
        "server_startup_s": round(startup, 1), "raw_simulator_steps_per_s": round(raw, 1), "settings": settings,
        "targets": {"actions_per_s": 1000, "p99_ms": 50, "control_channel": {"actions_per_s": 5000, "p99_ms": 20}},
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "device": "cpu"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
