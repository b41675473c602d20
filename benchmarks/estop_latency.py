"""Emergency-stop latency on the Physical API: four 64-action chunks queued on each of N robots, then the stop.

    python benchmarks/estop_latency.py [--robots 4] [--rounds 10] [--modes robot,fleet]

Starts a server with N state-only Meta-World robots (one worker process each, every
episode recorded). The server runs in a thread of this process, as
`wam.api.server.BackgroundServer` does, because the figures come from each worker's own
action counter and clock (memory it shares with the server, read through the fleet),
which no route exposes. Each round leases and resets every robot, holds it for a moment
(the worker's `sleep` test command, so that however loaded the machine, all four chunks
are queued before the first runs), sends it its four chunks at once from four clients,
waits until the first is executing and three wait behind it, then presses the stop from
a fifth client: one request per robot, all at once (`robot`), or one /v1/fleet/estop
(`fleet`). Per robot it reports the actions executed after the stop's answer (must be
0), the time from the stop request to the robot's last executed action, from the server
setting the stop flag to that action (the preemption itself: the action in progress, at
most one, finishes), and from the request to the
answer (median, p99; the answer comes once the stop's episode is committed to the
dataset), and how many of the 256 queued actions were cut; it checks that the recorded
episode ends with reason "estop" and holds exactly the actions executed, and that the
chunks' answers add up to them. Writes benchmarks/results/estop_latency.json and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
CHUNKS, CHUNK = 4, 64
HOLD_S = 1.0  # each robot is held this long while its chunks arrive


async def one_round(url: str, key: str, app, robots: list[str], mode: str, seed: int) -> list[dict]:
    """Queue four chunks on every robot, stop them, and measure each robot's stop."""
    from wam.api.client import ApiError, AsyncClient

    rng = np.random.default_rng(seed)
    clients = {r: [AsyncClient(url, key) for _ in range(CHUNKS)] for r in robots}
    stopper = AsyncClient(url, key)  # its own connections: a stop never waits in a chunk client's pool
    fleet = app.state.fleet
    handles = {r: fleet.robots[r] for r in robots}
    try:
        for r in robots:
            await stopper.lease(r, 600)
        await asyncio.gather(*(stopper.reset(r, seed=seed) for r in robots))
        start = {r: handles[r].actions_executed for r in robots}
        holds = [asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fleet.call(r, "sleep", {"seconds": HOLD_S}), app.state.loop))
                 for r in robots]  # on the server's loop, as a request would be
        while not all(handles[r].queued for r in robots):
            await asyncio.sleep(0.0005)

        async def chunk(client, robot: str) -> int:
            """The actions this chunk ran, as its answer says (the cut one names its count)."""
            try:
                return (await client.step(robot, actions=rng.uniform(-1, 1, (CHUNK, 4)).round(4).tolist()))["steps"]
            except ApiError as error:
                if error.status != 409 or "emergency-stopped" not in error.detail:
                    raise
                ran = error.detail.split("after ")[1].split(" of")[0] if "after " in error.detail else "0"
                return int(ran)

        chunks = {r: [asyncio.ensure_future(chunk(c, r)) for c in clients[r]] for r in robots}
        deadline = time.monotonic() + 60
        while not all(handles[r].queued == CHUNKS and handles[r].actions_executed > start[r] for r in robots):
            if time.monotonic() > deadline:
                raise TimeoutError("the chunks were not all queued within 60 s")
            await asyncio.sleep(0.0005)

        pressed, answered, at_request, at_answer, queued = {}, {}, {}, {}, {}

        async def stop(robot: str) -> None:
            at_request[robot], queued[robot] = handles[robot].actions_executed, handles[robot].queued
            pressed[robot] = time.monotonic()
            await stopper.estop(robot)
            answered[robot] = time.monotonic()
            at_answer[robot] = handles[robot].actions_executed

        if mode == "fleet":
            for r in robots:
                at_request[r], queued[r] = handles[r].actions_executed, handles[r].queued
            t0 = time.monotonic()
            await stopper.estop_fleet()
            t1 = time.monotonic()
            for r in robots:
                at_answer[r], pressed[r], answered[r] = handles[r].actions_executed, t0, t1
        else:
            await asyncio.gather(*(stop(r) for r in robots))
        await asyncio.gather(*holds)
        said = {r: sum(await asyncio.gather(*chunks[r])) for r in robots}
        await asyncio.sleep(0.3)  # time for any action that still ran to show in the worker's counter
        rows = []
        for r in robots:
            executed = handles[r].actions_executed - start[r]
            episode = (await stopper.episodes(robot=r, limit=1000))[-1]
            rows.append({
                "robot": r, "mode": mode,
                "after_answer": handles[r].actions_executed - at_answer[r],
                "between_request_and_answer": at_answer[r] - at_request[r],
                "after_flag": handles[r].actions_executed - handles[r].executed_at_stop,
                "executed": executed, "cut": CHUNKS * CHUNK - executed, "queued_at_stop": queued[r],
                "request_to_last_action_ms": max(0.0, handles[r].last_action_at - pressed[r]) * 1000,
                "flag_to_last_action_ms": max(0.0, handles[r].last_action_at - handles[r].stopped_at) * 1000,
                "request_to_answer_ms": (answered[r] - pressed[r]) * 1000,
                "chunk_answers_agree": said[r] == executed,
                "recorded_estop": episode["end_reason"] == "estop" and episode["length"] == executed + 1,
            })
            await stopper.release_estop(r)
        return rows
    finally:
        for client in [stopper, *(c for cs in clients.values() for c in cs)]:
            await client.close()


def summarise(rows: list[dict]) -> dict:
    last = np.asarray([r["request_to_last_action_ms"] for r in rows])
    answer = np.asarray([r["request_to_answer_ms"] for r in rows])
    flag = np.asarray([r["flag_to_last_action_ms"] for r in rows])
    return {
        "stops": len(rows), "after_answer": int(sum(r["after_answer"] for r in rows)),
        "between_request_and_answer_max": int(max(r["between_request_and_answer"] for r in rows)),
        "after_flag_max": int(max(r["after_flag"] for r in rows)),
        "request_to_last_action_ms": {"median": round(float(np.median(last)), 2), "p99": round(float(np.percentile(last, 99)), 2)},
        "flag_to_last_action_ms": {"median": round(float(np.median(flag)), 3), "p99": round(float(np.percentile(flag, 99)), 3)},
        "request_to_answer_ms": {"median": round(float(np.median(answer)), 2), "p99": round(float(np.percentile(answer, 99)), 2)},
        "cut_median": int(np.median([r["cut"] for r in rows])), "cut_min": int(min(r["cut"] for r in rows)),
        "queued_at_stop_min": int(min(r["queued_at_stop"] for r in rows)),
        "all_recorded_as_estop": all(r["recorded_estop"] for r in rows),
        "chunk_answers_agree": all(r["chunk_answers_agree"] for r in rows),
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(mode, robot, s) for mode, per_robot in results["per_robot"].items() for robot, s in per_robot.items()]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 3.8))
    x = np.arange(len(rows))
    for offset, (what, color) in zip((-0.2, 0.2), (("request_to_last_action_ms", "tab:blue"), ("request_to_answer_ms", "tab:orange"))):
        ax.bar(x + offset, [s[what]["median"] for _, _, s in rows], width=0.4, color=color,
               label=what.replace("_ms", "").replace("_", " ") + " (median; tick: p99)")
        ax.scatter(x + offset, [s[what]["p99"] for _, _, s in rows], marker="_", s=200, color="black")
    ax.set_xticks(x, [f"{mode}\n{robot}" for mode, robot, _ in rows], fontsize=7)
    ax.set_ylabel("ms from the stop request")
    ax.legend(fontsize=7)
    total = sum(s["after_answer"] for _, _, s in rows)
    fig.suptitle(f"Emergency stop, {results['robots']} robots x 4 queued 64-action chunks, {results['rounds']} rounds a mode; "
                 f"actions after the answer: {total}; {results['machine']['cpus']} CPUs", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10, help="stops measured per robot and mode")
    parser.add_argument("--modes", default="robot,fleet", help="robot = one estop request per robot; fleet = /v1/fleet/estop")
    parser.add_argument("--out", type=Path, default=RESULTS / "estop_latency.json")
    args = parser.parse_args()
    logging.getLogger("wam.api.fleet").setLevel(logging.ERROR)  # the server's line per stop, hundreds of them here

    from wam.api.auth import create_key
    from wam.api.server import BackgroundServer, ServerConfig
    from wam.api.store import Store

    data = Path(tempfile.mkdtemp(prefix="wam-estop-")) / "fleet"
    config = ServerConfig(f"metaworld/reach-v3*{args.robots}", data, obs="state", max_episode_steps=500)
    store = Store(config.db_url)
    _, key = create_key(store, "control", name="estop_latency")
    store.close()
    robots = [f"reach-v3-{i}" for i in range(args.robots)]
    rows: list[dict] = []
    started = time.perf_counter()
    with BackgroundServer(config) as server:
        print(f"{args.robots} robots ready in {time.perf_counter() - started:.1f} s")
        for mode in args.modes.split(","):
            for round_ in range(args.rounds):
                rows += asyncio.run(one_round(server.url, key, server.app, robots, mode, seed=round_))
    per_robot = {mode: {r: summarise([row for row in rows if row["mode"] == mode and row["robot"] == r]) for r in robots}
                 for mode in args.modes.split(",")}
    overall = {mode: summarise([row for row in rows if row["mode"] == mode]) for mode in per_robot}
    print(f"{'mode':6} {'robot':12} {'after answer':>12} {'after flag':>10} {'req->last action ms':>20} {'flag->last action ms':>21} "
          f"{'req->answer ms':>16} {'cut (med)':>9}   (median / p99)")
    for mode, stats in per_robot.items():
        for robot, s in [*stats.items(), ("all", overall[mode])]:
            cells = [f"{s[k]['median']:>8.2f} / {s[k]['p99']:<8.2f}" for k in
                     ("request_to_last_action_ms", "flag_to_last_action_ms", "request_to_answer_ms")]
            print(f"{mode:6} {robot:12} {s['after_answer']:>12} {s['after_flag_max']:>10} {cells[0]:>20} {cells[1]:>21} {cells[2]:>16} {s['cut_median']:>9}")
    import torch

    results = {
        "command": "python benchmarks/estop_latency.py " + " ".join(sys.argv[1:]), "robots": args.robots,
        "rounds": args.rounds, "chunks": {"count": CHUNKS, "actions": CHUNK}, "per_robot": per_robot, "overall": overall,
        "rows": rows, "server": "in this process (HTTP front end in a thread; each robot in its own worker process)",
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "device": "cpu"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")
    if any(s["after_answer"] or s["after_flag_max"] > 1 or not s["all_recorded_as_estop"] or not s["chunk_answers_agree"] for s in overall.values()):
        raise SystemExit("an action ran after a stop was answered (or more than the one in progress after its flag), "
                         "or a stop's episode or chunk answers disagree")


if __name__ == "__main__":
    main()
