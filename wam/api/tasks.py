"""Autonomous runs: a language task and a policy, run on N robots for M episodes.

Each chosen robot is leased to the run and runs its share of the episodes inside its own
worker (the policy is loaded there, beside the env, so inference never blocks the server);
every finished episode is recorded as it ends and counted in the run's row.
"""

from __future__ import annotations

import asyncio
import secrets

from wam.api.fleet import Fleet, FleetError, RobotConflict, RobotRejected
from wam.api.schemas import TaskRequest
from wam.api.store import Store

RUN_LEASE_S = 10 * 365 * 24 * 3600.0  # held for the run's life, released when it ends


class TaskRunner:
    def __init__(self, fleet: Fleet, store: Store):
        self.fleet, self.store = fleet, store
        self.running: dict[str, asyncio.Task] = {}

    def _choose(self, request: TaskRequest, allowed) -> list[str]:
        from wam.envs.tasks import MT50

        if request.task not in MT50:
            raise RobotRejected(f"task {request.task!r} is not a Meta-World task name (e.g. reach-v3)")
        if isinstance(request.robots, list):
            if not request.robots:
                raise RobotRejected("robots: give a count or a non-empty list of robot ids")
            for robot_id in request.robots:
                handle = self.fleet.get(robot_id)
                allowed(robot_id)
                if not self._idle(handle):
                    raise RobotConflict(f"robot {robot_id} is not idle ({self._why(handle)})")
            return list(dict.fromkeys(request.robots))
        if not 1 <= request.robots <= len(self.fleet.robots):
            raise RobotRejected(f"robots must be 1..{len(self.fleet.robots)}, got {request.robots}")
        idle = [h.robot_id for h in self.fleet.robots.values() if self._idle(h) and self._allowed(allowed, h.robot_id)]
        # Robots already set up for the task first: no scene to rebuild.
        idle.sort(key=lambda r: self.fleet.robots[r].description.get("task") != request.task)
        if len(idle) < request.robots:
            raise RobotConflict(f"{request.robots} idle robots needed, {len(idle)} available")
        return idle[: request.robots]

    @staticmethod
    def _allowed(allowed, robot_id: str) -> bool:
        try:
            allowed(robot_id)
            return True
        except Exception:  # noqa: BLE001 - the key's robot pattern excludes it
            return False

    @staticmethod
    def _idle(handle) -> bool:
        lease = handle.lease
        return handle.status == "ready" and not handle.estopped and handle.run_id is None and (lease is None or lease.expired)

    @staticmethod
    def _why(handle) -> str:
        if handle.estopped:
            return "emergency-stopped"
        if handle.run_id:
            return f"running {handle.run_id}"
        if handle.lease is not None and not handle.lease.expired:
            return "leased"
        return handle.status

    def submit(self, request: TaskRequest, owner: str, allowed) -> str:
        robots = self._choose(request, allowed)
        if request.episodes < len(robots):
            robots = robots[: request.episodes]
        run_id = "run-" + secrets.token_hex(5)
        for robot_id in robots:
            self.fleet.acquire(robot_id, f"run:{run_id}", RUN_LEASE_S)
            self.fleet.robots[robot_id].run_id = run_id
        self.store.add_run(run_id, request.task, request.policy, robots, request.episodes, owner)
        self.running[run_id] = asyncio.get_running_loop().create_task(self._run(run_id, request, robots))
        return run_id

    async def _run(self, run_id: str, request: TaskRequest, robots: list[str]) -> None:
        share, extra = divmod(request.episodes, len(robots))
        jobs = []
        for i, robot_id in enumerate(robots):
            payload = {"policy": request.policy, "episodes": share + (i < extra), "task": request.task,
                       "seed": request.seed + 100_000 * i}
            jobs.append(self.fleet.run_policy(robot_id, run_id, payload))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [f"{r}: {e}" for r, e in zip(robots, results) if isinstance(e, BaseException)]
        cancelled = any(isinstance(r, dict) and r.get("cancelled") for r in results)
        for robot_id in robots:
            handle = self.fleet.robots[robot_id]
            if handle.lease is not None and handle.lease.holder == f"run:{run_id}":
                handle.lease = None
        status = "failed" if errors else "cancelled" if cancelled else "finished"
        if not self.fleet.closing:
            self.store.update_run(run_id, status=status, error="; ".join(errors)[:2000])
        self.running.pop(run_id, None)

    def cancel(self, run_id: str) -> None:
        run = self.store.get_run(run_id)
        if run is None:
            raise FleetError(f"no task run {run_id!r}")
        if run.status != "running" or run_id not in self.running:
            raise RobotConflict(f"task run {run_id} is {run.status}, not running")
        for robot_id in run.robots.split(","):
            self.fleet.cancel(robot_id)

    async def stop(self) -> None:
        for run_id in list(self.running):
            self.cancel(run_id)
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=30)
