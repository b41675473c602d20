"""The fleet: one worker process per robot, leases, emergency stops, and crash recovery.

Everything here runs on the server's event loop and never blocks it: a request to a robot
writes one message to that robot's pipe and awaits a future; a reader thread per robot
blocks on the pipe and hands each answer to the loop, so a robot that is slow to answer
delays only the requests sent to it. A robot that dies (its pipe closes) or stops answering (past its
timeout, then killed) is restarted with a fresh env, its restart counted in its status;
the episode it was in the middle of is lost, never half-recorded.

An emergency stop preempts: it sets a flag the worker checks before every action (shared
memory, not the pipe, so it does not queue behind the chunks already sent), every command
still waiting for the robot is refused, and the stop is answered once the robot has
stopped and its episode is recorded as ended by "estop". A stop holds until every key that
pressed it releases it, or an admin does.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import secrets
import threading
import time
from typing import Any, Awaitable, Callable

from wam.api.bridge_link import answer_lost, start_relay
from wam.api.robot_handle import (
    FleetError, Lease, RobotConflict, RobotForbidden, RobotHandle, RobotNotFound, RobotRejected, RobotStopped,
    RobotTimeout, RobotUnavailable,
)
from wam.api.spec import RobotSpec
from wam.api.worker import SIGNALS, STOP, WorkerConfig, robot_main

RESTART_DELAY_S = 0.5
DRIVING = ("step", "reset", "run_policy")  # the commands an emergency stop refuses
log = logging.getLogger("wam.api.fleet")


# Called with (robot_id, staged episode, run id) when a worker hands over a finished episode.
RecordEpisode = Callable[[str, Any, str], Awaitable[int]]


class Fleet:
    def __init__(self, specs: list[RobotSpec], config: WorkerConfig, record: RecordEpisode, timeout_s: float = 30.0,
                 start_method: str = "forkserver", ray: str | None = None):
        self.config, self.record, self.timeout_s, self.ray = config, record, timeout_s, ray
        self.context = multiprocessing.get_context(start_method)
        self.robots = {spec.robot_id: RobotHandle(spec, signals=self.context.RawArray("d", SIGNALS)) for spec in specs}
        if start_method == "forkserver":
            # Workers fork from a server process that has already imported the simulator once.
            self.context.set_forkserver_preload(["wam.api.worker", "wam.envs.metaworld_env", "wam.data.writer"])
        self.closing = False
        self._background: set[asyncio.Task] = set()

    # -- life cycle -----------------------------------------------------------------------
    async def start(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every robot; `on_started` is called as each one is up (or has failed), for a progress bar."""
        async def spawn(handle: RobotHandle) -> None:
            await self._spawn(handle)
            if on_started is not None:
                on_started()

        await asyncio.gather(*(spawn(handle) for handle in self.robots.values()))

    async def _spawn(self, handle: RobotHandle) -> None:
        loop = asyncio.get_running_loop()
        if self.ray is not None and not handle.spec.remote:  # a simulated robot on a node of the Ray cluster
            parent = await self._spawn_on_ray(handle)
        else:
            parent, child = self.context.Pipe()
            link_child = None
            if handle.spec.remote:
                handle.link, link_child = self.context.Pipe()
                start_relay(handle, handle.link, loop)
            handle.process = self.context.Process(target=robot_main, args=(child, handle.spec, self.config, handle.signals,
                                                                           link_child), name=f"robot-{handle.robot_id}",
                                                  daemon=True)
            handle.process.start()
            child.close()
            if link_child is not None:
                link_child.close()
        handle.conn, handle.status = parent, "starting"
        handle.ready = loop.create_future()
        threading.Thread(target=self._read, args=(handle, parent, loop), name=f"read-{handle.robot_id}", daemon=True).start()
        try:
            handle.description = await asyncio.wait_for(handle.ready, timeout=max(self.timeout_s, 120.0))
            handle.status = "running" if handle.run_id else "offline" if handle.spec.remote else "ready"
        except Exception as error:  # noqa: BLE001 - a robot that cannot start is marked, the others go on
            handle.status, handle.last_error = "failed", str(error)

    async def _spawn_on_ray(self, handle: RobotHandle):
        from wam.api.ray_robots import start_on_ray
        from wam.workers import connect_ray

        connect_ray(self.ray)
        if handle.process is not None:  # a restart: the crashed worker's actor goes too (its node may be gone already)
            await asyncio.to_thread(handle.process.kill)
        handle.process, conn, handle.signals = await asyncio.to_thread(start_on_ray, handle.spec, self.config, handle.signals)
        return conn

    async def stop(self) -> None:
        """Close every worker; each stages the episode it was recording, and that episode is committed."""
        self.closing = True
        for handle in self.robots.values():
            if handle.bridge is not None:
                handle.bridge.drop(1001, "the server is shutting down")
            for queue in list(handle.subscribers):  # end every observation stream
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

        async def close(handle: RobotHandle) -> None:
            if handle.status in ("ready", "running", "offline") and handle.conn is not None:
                try:
                    if handle.run_id:
                        handle.conn.send(("cancel", {}))
                    async with handle.lock:
                        result = await self._request(handle, "close", {}, timeout=30.0)
                    if result.get("staged") is not None:
                        await self.record(handle.robot_id, result["staged"], handle.run_id or "")
                except FleetError:
                    pass
            if handle.process is not None:
                await asyncio.to_thread(handle.process.join, 5)
                if handle.process.is_alive():
                    handle.process.kill()
            handle.status = "stopped"
        await asyncio.gather(*(close(h) for h in self.robots.values()))
        await asyncio.gather(*list(self._background), return_exceptions=True)  # background commits land before the writer closes

    def _read(self, handle: RobotHandle, conn, loop: asyncio.AbstractEventLoop) -> None:
        """Reader thread: every message to the loop; a closed pipe (the worker died) as a crash."""
        while True:
            try:
                kind, payload = conn.recv()
            except Exception:  # noqa: BLE001 - EOF, a reset pipe or a torn message: the worker is gone
                loop.call_soon_threadsafe(self._on_crash, handle, conn)
                return
            loop.call_soon_threadsafe(self._dispatch, handle, kind, payload)

    def _dispatch(self, handle: RobotHandle, kind: str, payload: Any) -> None:
        if kind == "ready":
            if handle.ready is not None and not handle.ready.done():
                handle.ready.set_result(payload)
        elif kind == "event":
            self._observe(handle, payload.get("observation"))
            if payload.get("staged") is not None:
                self._record_later(handle, payload["staged"])
        elif handle.ready is not None and not handle.ready.done() and kind == "error":
            handle.ready.set_exception(RobotUnavailable(payload[1]))
        elif handle.pending is not None and not handle.pending.done():
            if kind == "reply":
                handle.pending.set_result(payload)
            else:
                error_kind, message = payload
                error = {"state": RobotConflict, "estop": RobotStopped, "value": RobotRejected,
                         "offline": RobotUnavailable}.get(error_kind, FleetError)
                handle.pending.set_exception(error(message))

    def _observe(self, handle: RobotHandle, observation: dict | None) -> None:
        if observation is None:
            return
        handle.latest = observation
        for queue in list(handle.subscribers):
            if queue.full():
                queue.get_nowait()  # a slow watcher sees the newest observations, never blocks the robot
            queue.put_nowait(observation)

    def _on_crash(self, handle: RobotHandle, conn) -> None:
        conn.close()
        if handle.conn is not conn:  # the pipe of a worker already replaced
            return
        handle.conn = None
        if handle.process is not None:
            handle.process.join(timeout=0.2)
        code = handle.process.exitcode if handle.process is not None else None
        if self.closing:
            return
        starting = handle.status == "starting"
        handle.status = "crashed"
        if handle.bridge is not None:  # the new worker has no robot attached: the bridge reconnects to attach it
            handle.bridge.drop(1012, "the robot's worker restarted; reconnect")
        handle.last_error = f"worker exited (exit code {code}); restarting"
        for future in (handle.pending, handle.ready):
            if future is not None and not future.done():
                future.set_exception(RobotUnavailable(f"robot {handle.robot_id} crashed (exit code {code}); it is restarting"))
        if not starting:  # a robot that cannot even start stays failed rather than crash-looping
            self._spawn_background(self._restart(handle))

    async def _restart(self, handle: RobotHandle) -> None:
        await asyncio.sleep(RESTART_DELAY_S)
        if self.closing:
            return
        handle.restarts += 1
        handle.latest = None
        await self._spawn(handle)
        if handle.status == "ready":
            handle.last_error = f"restarted after a crash ({handle.restarts} restart(s)); reset before stepping"

    def _record_later(self, handle: RobotHandle, staged) -> None:
        """Commit an episode in the background; `handle.recording` lets a run wait for its last one."""
        # The episode's own run (the worker's word), not the robot's current one: an episode driven by hand and ended
        # by a run's first reset is not the run's.
        task = self._spawn_background(self.record(handle.robot_id, staged, str(staged.info.get("run") or "")))
        handle.recording.add(task)
        task.add_done_callback(handle.recording.discard)

    def _spawn_background(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _request(self, handle: RobotHandle, command: str, payload: dict, timeout: float | None) -> Any:
        """Send one command and await its answer; the caller holds `handle.lock`."""
        if handle.conn is None or handle.status in ("starting", "crashed", "failed", "stopped"):
            raise RobotUnavailable(f"robot {handle.robot_id} is {handle.status}" + (f": {handle.last_error}" if handle.last_error else ""))
        handle.pending = asyncio.get_running_loop().create_future()
        handle.conn.send((command, payload))
        try:
            return await asyncio.wait_for(asyncio.shield(handle.pending), timeout=timeout)
        except asyncio.TimeoutError:
            handle.last_error = f"no answer to {command!r} within {timeout:.0f} s; the worker was killed and restarts"
            handle.process.kill()
            raise RobotTimeout(f"robot {handle.robot_id} did not answer {command!r} within {timeout:.0f} s; it is restarting") from None
        finally:
            handle.pending = None

    def get(self, robot_id: str) -> RobotHandle:
        if robot_id not in self.robots:
            raise RobotNotFound(f"no robot {robot_id!r}; robots: {', '.join(list(self.robots)[:8])}{' ...' if len(self.robots) > 8 else ''}")
        return self.robots[robot_id]

    # -- remote robots ----------------------------------------------------------------------
    async def attach(self, robot_id: str, bridge) -> dict:
        """A bridge connected for remote robot `robot_id`: its worker takes the declared robot; the robot is ready."""
        handle = self.get(robot_id)
        if not handle.spec.remote:
            raise RobotConflict(f"robot {robot_id} is not a remote robot; serve it as remote/<name>")
        if handle.bridge is not None:
            raise RobotConflict(f"robot {robot_id} already has a bridge connected")
        if handle.status != "offline":
            raise RobotUnavailable(f"robot {robot_id} is {handle.status}; try again shortly")
        handle.bridge = bridge
        try:
            await self.call(robot_id, "attach", {"declaration": bridge.declaration})
        except BaseException:
            handle.bridge = None
            raise
        handle.status, handle.last_error = "ready", None
        return handle.description

    async def detach(self, robot_id: str, bridge, reason: str) -> None:
        """The bridge went away: the request it owed is answered "lost", the episode is recorded "interrupted"."""
        handle = self.get(robot_id)
        if handle.bridge is not bridge:
            return
        handle.bridge = None
        answer_lost(handle.link, bridge.pending, reason)
        if handle.status in ("ready", "running"):
            handle.status = "offline"
        if handle.conn is not None and not self.closing:
            try:
                await self.call(robot_id, "detach", {})
            except FleetError:
                pass

    # -- leases ---------------------------------------------------------------------------
    def acquire(self, robot_id: str, holder: str, ttl_s: float) -> Lease:
        handle = self.get(robot_id)
        lease = handle.lease
        if lease is not None and not lease.expired and lease.holder != holder:
            raise RobotConflict(f"robot {robot_id} is leased by another agent until {time.strftime('%H:%M:%S', time.localtime(lease.expires_at))}")
        handle.lease = Lease(secrets.token_hex(8), robot_id, holder, time.time() + ttl_s)
        return handle.lease

    def find_lease(self, lease_id: str, holder: str) -> Lease:
        for handle in self.robots.values():
            lease = handle.lease
            if lease is not None and lease.lease_id == lease_id:
                if lease.holder != holder:
                    raise RobotConflict(f"lease {lease_id} belongs to another agent")
                if lease.expired:
                    raise RobotConflict(f"lease {lease_id} on {handle.robot_id} has expired; acquire a new one")
                return lease
        for handle in self.robots.values():
            if handle.ended_by(lease_id, holder):
                raise RobotConflict(_stale(handle, lease_id, holder))
        raise RobotNotFound(f"no lease {lease_id!r}")

    def renew(self, lease_id: str, holder: str, ttl_s: float) -> Lease:
        lease = self.find_lease(lease_id, holder)
        lease.expires_at = time.time() + ttl_s
        return lease

    def release(self, lease_id: str, holder: str) -> None:
        lease = self.find_lease(lease_id, holder)
        self.robots[lease.robot_id].lease = None

    def check_control(self, robot_id: str, lease_id: str | None, holder: str) -> RobotHandle:
        """The robot if `holder` may send it actions now; RobotConflict saying why not otherwise."""
        handle = self.get(robot_id)
        if handle.estopped:
            raise RobotConflict(f"robot {robot_id} is emergency-stopped; release the stop first")
        if handle.run_id is not None:
            raise RobotConflict(f"robot {robot_id} is running task {handle.run_id}; cancel it first")
        lease = handle.lease
        held = lease is not None and not lease.expired
        if lease_id is not None and not (held and lease.lease_id == lease_id) and handle.ended_by(lease_id, holder):
            raise RobotConflict(_stale(handle, lease_id, holder))
        if lease is not None and lease.lease_id == lease_id and lease.expired:
            raise RobotConflict(f"lease {lease_id} on robot {robot_id} has expired; acquire a new one")
        if not held:
            raise RobotConflict(f"robot {robot_id} is not leased; acquire a lease (POST /v1/robots/{robot_id}/lease) first")
        if lease.holder != holder:
            raise RobotConflict(f"robot {robot_id} is leased by another agent")
        if lease_id is not None and lease_id != lease.lease_id:
            raise RobotConflict(f"lease {lease_id} is not this key's lease on robot {robot_id}; use the id that "
                                f"POST /v1/robots/{robot_id}/lease last returned")
        return handle

    # -- control --------------------------------------------------------------------------
    async def call(self, robot_id: str, command: str, payload: dict | None = None, timeout: float | None = -1.0,
                   wait_recorded: bool = True) -> Any:
        handle = self.get(robot_id)
        handle.queued += 1
        try:
            async with handle.lock:
                if handle.status == "offline" and command in DRIVING:
                    raise RobotUnavailable(f"robot {robot_id} is offline: no bridge is connected for it (run `wam bridge` "
                                           "next to the robot)")
                if handle.estopped and command in DRIVING:  # queued before the stop was pressed: it never runs
                    raise RobotStopped(f"robot {robot_id} was emergency-stopped before this {command!r} reached it; "
                                       "none of it ran")
                result = await self._request(handle, command, payload or {}, self.timeout_s if timeout == -1.0 else timeout)
        finally:
            handle.queued -= 1
        if isinstance(result, dict):
            if "description" in result:  # a reset may build a new scene (another task, a dream's first one)
                handle.description = result.pop("description")
            self._observe(handle, result.get("observation"))
            if result.get("staged") is not None and not wait_recorded:
                self._record_later(handle, result.pop("staged"))
                result["recording"] = True
            elif result.get("staged") is not None:
                result["episode_id"] = await self.record(robot_id, result.pop("staged"), handle.run_id or "")
            elif "staged" in result:
                result.pop("staged")
        if command == "step" and result.get("estopped"):
            raise RobotStopped(f"robot {robot_id} was emergency-stopped after {len(result['rewards'])} of this chunk's "
                               f"{result['estopped']} action(s); the rest never ran")
        if command == "step":
            handle.steps += 1
        return result

    async def run_policy(self, robot_id: str, run_id: str, payload: dict) -> dict:
        """Run an autonomous task on one robot; its episodes are recorded as they finish."""
        handle = self.get(robot_id)
        if handle.status == "offline":
            raise RobotUnavailable(f"robot {robot_id} is offline: no bridge is connected for it")
        handle.run_id, handle.status = run_id, "running"
        try:
            return await self.call(robot_id, "run_policy", {**payload, "run": run_id}, timeout=None)
        finally:
            if handle.recording:  # the run ends when its last episode is in the dataset
                await asyncio.gather(*list(handle.recording), return_exceptions=True)
            handle.run_id = None
            if handle.status == "running":
                handle.status = "ready"

    def cancel(self, robot_id: str) -> None:
        handle = self.get(robot_id)
        if handle.run_id is not None and handle.conn is not None:
            handle.conn.send(("cancel", {}))

    async def estop(self, robot_id: str, holder: str = "") -> None:
        """Stop the robot at once for key `holder`: the worker stops before its next action, every command queued for
        it is refused, a running task ends; answered once the robot has stopped and its episode is recorded ("estop")."""
        await self.estop_fleet([robot_id], holder)

    async def estop_fleet(self, robot_ids: list[str], holder: str = "") -> None:
        """`estop` for many robots: every flag is set before any of them is waited for."""
        handles = [self.get(robot_id) for robot_id in robot_ids]
        for handle in handles:
            handle.stops.add(holder)
            handle.signals[STOP] = 1.0
            if handle.bridge is not None:
                handle.bridge.hold()
            handle.stopped_at, handle.executed_at_stop = time.monotonic(), handle.actions_executed
        await asyncio.gather(*(self._settle_stop(handle, holder) for handle in handles))

    async def _settle_stop(self, handle: RobotHandle, holder: str) -> None:
        if handle.conn is not None and handle.status in ("ready", "running"):
            try:  # behind the command in flight (cut within one action) and the refused ones: it does not queue long
                await self.call(handle.robot_id, "end_episode", {"reason": "estop"})
            except FleetError:  # a robot that crashed or timed out meanwhile is stopped too
                pass
        if handle.recording:  # a task's last episode, ended by the stop
            await asyncio.gather(*list(handle.recording), return_exceptions=True)
        log.warning("robot %s emergency-stopped by key %s: %d action(s) ran after the stop, the last ending %.1f ms after it",
                    handle.robot_id, holder or "?", handle.actions_executed - handle.executed_at_stop,
                    max(0.0, handle.last_action_at - handle.stopped_at) * 1000)

    def release_estop(self, robot_id: str, holder: str | None = None) -> None:
        """Release key `holder`'s stop; the robot moves again when no other key's stop holds it. `holder` None (an
        admin) releases every stop. RobotForbidden if the robot is stopped and `holder` never pressed it."""
        handle = self.get(robot_id)
        if holder is None:
            handle.stops.clear()
        elif holder in handle.stops:
            handle.stops.discard(holder)
        elif handle.stops:
            raise RobotForbidden(f"robot {robot_id} was emergency-stopped by another key; only that key or an admin "
                                 "may release it")
        if not handle.stops:
            handle.signals[STOP] = 0.0


def _stale(handle: RobotHandle, lease_id: str, holder: str) -> str:
    lease = handle.lease
    if lease is not None and not lease.expired and lease.holder == holder:
        return (f"lease {lease_id} on robot {handle.robot_id} is stale: this key has acquired the robot again since; "
                "use the lease id that acquisition returned")
    return f"lease {lease_id} on robot {handle.robot_id} is stale: it was released or replaced; acquire a new one"
