"""One agent, many robots: a queue of tasks run across a fleet of 16 simulated robots from one process.

    python examples/factory.py                      # starts its own 16-robot server, 4 tasks x 8 episodes
    python examples/factory.py --url http://127.0.0.1:8000 --key wam_...   # or drive a running server

The agent is this script: it leases every robot, pulls jobs (task, episode) off a queue, and
steps all robots concurrently through the async SDK, choosing each action with the task's
scripted expert from the observation the API returns. Jobs go to a robot already set up for
their task when one is free, otherwise any idle robot switches scene. Every episode lands in
the server's dataset, ready for `wam finetune`. Prints throughput and success per task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from wam.api.client import AsyncClient
from wam.envs.experts import ScriptedExpert

TASKS = ("reach-v3", "drawer-open-v3", "button-press-topdown-v3", "window-close-v3")


async def drive(client: AsyncClient, robot: str, queues: dict[str, asyncio.Queue], tally: dict, chunk: int) -> None:
    """One robot's loop: take a job (its own task first), run the episode with the expert, repeat."""
    current = (await client.robot(robot))["task"]
    experts = {}
    while True:
        order = [current] + [t for t in queues if t != current]
        job = next((queues[t].get_nowait() for t in order if not queues[t].empty()), None)
        if job is None:
            return
        task, seed = job
        expert = experts.setdefault(task, ScriptedExpert(task))
        expert.reset(seed=seed)
        obs = await client.reset(robot, task=task, seed=seed)
        current = task
        while not obs["done"]:
            # The expert's next `chunk` actions from the latest observation, sent as one request.
            action = expert.act({"sim_state": np.asarray(obs["sim_state"], dtype=np.float32)})
            result = await client.step(robot, actions=[action.tolist()] * chunk)
            obs = result["observation"]
            tally["actions"] += result["steps"]
        tally[task]["episodes"] += 1
        tally[task]["successes"] += int(obs["success"])


async def run(url: str, key: str, episodes: int, chunk: int) -> dict:
    async with AsyncClient(url, key) as client:
        robots = [r["id"] for r in await client.robots() if r["status"] == "ready"]
        for robot in robots:
            await client.lease(robot, ttl_s=3600)
        queues = {task: asyncio.Queue() for task in TASKS}
        for task in TASKS:
            for seed in range(episodes):
                queues[task].put_nowait((task, 10_000 + seed))
        tally: dict = defaultdict(lambda: {"episodes": 0, "successes": 0})
        tally["actions"] = 0
        start = time.perf_counter()
        await asyncio.gather(*(drive(client, robot, queues, tally, chunk) for robot in robots))
        seconds = time.perf_counter() - start
    per_task = {t: {**tally[t], "success_rate": tally[t]["successes"] / max(1, tally[t]["episodes"])} for t in TASKS}
    total = sum(v["episodes"] for v in per_task.values())
    return {"robots": len(robots), "episodes": total, "seconds": round(seconds, 2), "actions": tally["actions"],
            "actions_per_s": round(tally["actions"] / seconds, 1), "episodes_per_min": round(60 * total / seconds, 1),
            "success_rate": sum(v["successes"] for v in per_task.values()) / max(1, total), "tasks": per_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; default: start one with 16 robots here")
    parser.add_argument("--key", help="a control key for --url")
    parser.add_argument("--robots", type=int, default=16, help="robots of the server this script starts (4 per task)")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per task in the queue")
    parser.add_argument("--chunk", type=int, default=1, help="actions per request (the expert's action repeated)")
    parser.add_argument("--max-episode-steps", type=int, default=150)
    parser.add_argument("--data", type=Path, default=None, help="where the started server records (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = parser.parse_args()
    if args.url:
        summary = asyncio.run(run(args.url, args.key, args.episodes, args.chunk))
    else:
        from wam.api.auth import create_key
        from wam.api.server import BackgroundServer, ServerConfig
        from wam.api.store import Store

        per_task = max(1, args.robots // len(TASKS))
        spec = ",".join(f"metaworld/{t}*{per_task}" for t in TASKS)
        data = args.data or Path(tempfile.mkdtemp(prefix="wam-factory-")) / "fleet"
        config = ServerConfig(spec, data, obs="state", max_episode_steps=args.max_episode_steps)
        store = Store(config.db_url)
        _, key = create_key(store, "control", name="factory")
        store.close()
        print(f"starting {per_task * len(TASKS)} robots, recording into {data} ...")
        with BackgroundServer(config) as server:
            summary = asyncio.run(run(server.url, key, args.episodes, args.chunk))
        summary["data"] = str(data)
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
