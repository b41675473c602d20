"""Autonomous runs: a language task and a policy, run on N robots for M episodes.

Each chosen robot is leased to the run and runs its share of the episodes inside its own
worker (the policy is loaded there, beside the env, so inference never blocks the server);
every finished episode is recorded as it ends and counted in the run's row.

A policy is a built-in (`expert`, `random`) or a finetuned run under the server's runs
directory (`wam serve --runs DIR`, default `runs` beside the data), named relative to it
or by a path inside it; anything else is refused at submission with one message, the same
for a path that exists elsewhere, one that does not exist and a directory that is not a
run, so a key cannot probe the server's files. A run that fails tells its client which
robot failed and where to look; the worker's message and traceback go to the server log.
An emergency stop cuts a run's share on that robot before its next action (the episode
ends as "estop"); the run ends as cancelled, its error naming the stopped robots.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Callable

from wam.api.fleet import Fleet
from wam.api.robot_handle import RobotConflict, RobotNotFound, RobotRejected, RobotStopped, RobotTimeout, RobotUnavailable
from wam.api.schemas import TaskRequest
from wam.api.store import Store

RUN_LEASE_S = 10 * 365 * 24 * 3600.0  # held for the run's life, released when it ends
BUILTIN_POLICIES = ("expert", "random")
POLICY_REFUSED = ("policy must be 'expert', 'random' or a finetuned run in the server's runs directory "
                  "(its name there, e.g. 'wam-reach', or 'wam-reach@300' for a snapshot)")
log = logging.getLogger("wam.api.tasks")


def default_runs(data: str | Path) -> Path:
    """The runs directory a server uses when not told: `runs` beside its dataset."""
    return Path(data).resolve().parent / "runs"


def resolve_policy(policy: str, runs: Path) -> str:
    """The policy a worker should load: a built-in name, or the absolute path of a finetuned run inside `runs`.

    `RUN@STEP` (a snapshot) is checked on RUN. Every refusal is RobotRejected(POLICY_REFUSED), whatever the reason.
    """
    if policy in BUILTIN_POLICIES:
        return policy
    name, at, step = policy.rpartition("@")
    tries = [(policy, "")] + ([(name, f"@{step}")] if at and step.isdigit() else [])
    for base, suffix in tries:  # a run whose own name has "@300" in it is itself, as for `wam.policy.load`
        found = _run_inside(base, Path(runs))
        if found is not None:
            return str(found) + suffix
    raise RobotRejected(POLICY_REFUSED)


def _run_inside(name: str, runs: Path) -> Path | None:
    """The finetuned run `name` names inside `runs` (resolved), or None."""
    try:
        root = runs.resolve()
        lexical = Path(os.path.normpath(root / name))  # `..` and absolute paths, judged before the disk is touched
        if not lexical.is_relative_to(root) or lexical == root:
            return None
        real = lexical.resolve()  # a link inside the runs directory that leads out of it is refused too
        if not real.is_relative_to(root) or real == root or not (real / "finetune.json").is_file():
            return None
        return real
    except (OSError, ValueError):  # a NUL byte, a name too long, a loop of links: refused the same way
        return None


def client_error(robot_id: str, run_id: str, error: BaseException) -> str:
    """What a run's client is told of a robot's failure: no server paths, no traceback (those are logged)."""
    if isinstance(error, RobotTimeout):
        return f"{robot_id}: stopped answering and was restarted"
    if isinstance(error, RobotUnavailable):
        return f"{robot_id}: crashed or was unavailable"
    return f"{robot_id}: the policy failed on the server (its log has the details under {run_id})"


class TaskRunner:
    def __init__(self, fleet: Fleet, store: Store, runs: str | Path | None = None):
        self.fleet, self.store = fleet, store
        self.runs = Path(runs) if runs is not None else default_runs(fleet.config.data)
        self.running: dict[str, asyncio.Task] = {}

    def _choose(self, request: TaskRequest, visible: Callable[[str], bool]) -> list[str]:
        from wam.api.auth import no_robot

        if isinstance(request.robots, list):
            if not request.robots:
                raise RobotRejected("robots: give a count or a non-empty list of robot ids")
            for robot_id in request.robots:
                if robot_id not in self.fleet.robots or not visible(robot_id):
                    raise RobotNotFound(no_robot(robot_id))
                handle = self.fleet.robots[robot_id]
                if not self._idle(handle):
                    raise RobotConflict(f"robot {robot_id} is not idle ({self._why(handle)})")
            return list(dict.fromkeys(request.robots))
        mine = [h for h in self.fleet.robots.values() if visible(h.robot_id)]
        if not 1 <= request.robots <= len(mine):
            raise RobotRejected(f"robots must be 1..{len(mine)} (the robots this key can use), got {request.robots}")
        idle = [h.robot_id for h in mine if self._idle(h)]
        # Robots already set up for the task first: no scene to rebuild.
        idle.sort(key=lambda r: self.fleet.robots[r].description.get("task") != request.task)
        if len(idle) < request.robots:
            raise RobotConflict(f"{request.robots} idle robots needed, {len(idle)} available")
        return idle[: request.robots]

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

    def submit(self, request: TaskRequest, owner: str, visible: Callable[[str], bool]) -> str:
        """Start a run for key `owner` on robots `visible` to it; the run records its owner (for cancel)."""
        from wam.envs.tasks import MT50

        if request.policy == "expert" and request.task not in MT50:
            raise RobotRejected(f"the expert policy knows Meta-World tasks only; {request.task!r} is not one")
        policy = resolve_policy(request.policy, self.runs)
        robots = self._choose(request, visible)
        for robot_id in robots:
            if error := self.fleet.robots[robot_id].spec.task_error(request.task):
                raise RobotRejected(error)
        if request.episodes < len(robots):
            robots = robots[: request.episodes]
        run_id = "run-" + secrets.token_hex(5)
        for robot_id in robots:
            self.fleet.acquire(robot_id, f"run:{run_id}", RUN_LEASE_S)
            self.fleet.robots[robot_id].run_id = run_id
        self.store.add_run(run_id, request.task, request.policy, robots, request.episodes, owner)
        self.running[run_id] = asyncio.get_running_loop().create_task(self._run(run_id, request, policy, robots))
        return run_id

    async def _run(self, run_id: str, request: TaskRequest, policy: str, robots: list[str]) -> None:
        share, extra = divmod(request.episodes, len(robots))
        jobs = []
        for i, robot_id in enumerate(robots):
            payload = {"policy": policy, "episodes": share + (i < extra), "task": request.task,
                       "seed": request.seed + 100_000 * i}
            jobs.append(self.fleet.run_policy(robot_id, run_id, payload))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors, stopped = [], []
        for robot_id, result in zip(robots, results):
            if isinstance(result, RobotStopped) or isinstance(result, dict) and result.get("estopped"):
                stopped.append(f"{robot_id}: emergency-stopped")
            elif isinstance(result, BaseException):
                log.error("task run %s failed on robot %s (policy %s): %s: %s", run_id, robot_id, policy,
                          type(result).__name__, result)
                errors.append(client_error(robot_id, run_id, result))
        cancelled = bool(stopped) or any(isinstance(r, dict) and r.get("cancelled") for r in results)
        for robot_id in robots:
            handle = self.fleet.robots[robot_id]
            if handle.lease is not None and handle.lease.holder == f"run:{run_id}":
                handle.lease = None
        status = "failed" if errors else "cancelled" if cancelled else "finished"
        if not self.fleet.closing:
            self.store.update_run(run_id, status=status, error="; ".join(errors + stopped)[:2000])
        self.running.pop(run_id, None)

    def cancel(self, run_id: str) -> None:
        run = self.store.get_run(run_id)
        if run is None:
            raise RobotNotFound(f"no task run {run_id!r}")
        if run.status != "running" or run_id not in self.running:
            raise RobotConflict(f"task run {run_id} is {run.status}, not running")
        for robot_id in run.robots.split(","):
            self.fleet.cancel(robot_id)

    async def stop(self) -> None:
        for run_id in list(self.running):
            self.cancel(run_id)
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=30)
