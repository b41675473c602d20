"""Robot workers placed on a Ray cluster (`wam serve --ray ADDRESS`): the fleet's control stays on this node.

Locally a robot is a worker process with a pipe to the server and a few shared-memory signals (the emergency stop
flag above all). On Ray, a `RobotHost` actor on some node of the cluster starts that same worker process there
(`wam.api.worker.robot_main`, unchanged) and relays: the server's side holds a `RayConnection` and `RaySignals` that
stand in for the pipe and the shared memory, and a `RayProcess` that stands in for the process. Everything else stays
on the head node, as before: keys, leases, task runs, the recorder and the dataset, and the estop logic.

Why the relay keeps the guarantees:
- the estop flag is written through its own concurrency group of the actor, so it never waits behind commands or
  a blocking read; the worker checks its node-local flag before every action, as it does locally;
- commands go through a one-thread group, so they arrive in the order sent; replies and events come back through
  another, read by the fleet's reader thread as from a pipe;
- an episode the worker staged on its node's disk comes back with its videos as bytes and is staged again in the
  server's dataset before the recorder commits it (`wam.data.writer.pack_staged`);
- a worker that dies, or an actor whose node is lost, reads as a closed pipe: the fleet restarts the robot, on
  whichever node Ray places the new actor.
Bridged robots (`remote/...`) relay through the head and stay local.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import sys
from pathlib import Path
from typing import Any

import ray

from wam.api.worker import SIGNALS, STOP, robot_main
from wam.data.writer import StagedEpisode, pack_staged, unpack_staged


def _map_staged(payload: Any, convert) -> Any:
    """The payload with any staged episode in it converted (a worker's events and its reply to "close" carry one)."""
    if isinstance(payload, dict) and isinstance(payload.get("staged"), StagedEpisode):
        return {**payload, "staged": convert(payload["staged"])}
    return payload


@contextlib.contextmanager
def _main_module_hidden():
    """A process spawned from a Ray worker would re-run the worker's own main script (Ray's default_worker.py) before
    the target, and hang there; with the main module's name and file hidden, the child imports only the target's."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


@ray.remote(concurrency_groups={"send": 1, "recv": 1, "signal": 1})
class RobotHost:
    """One robot's worker process on a Ray node, and the relay to it."""

    def start(self, spec, config) -> str:
        context = multiprocessing.get_context("spawn")  # EGL contexts and MuJoCo state must not be forked
        self.signals = context.RawArray("d", SIGNALS)
        parent, child = context.Pipe()
        self.process = context.Process(target=robot_main, args=(child, spec, config, self.signals, None),
                                       name=f"robot-{spec.robot_id}", daemon=True)
        with _main_module_hidden():
            self.process.start()
        child.close()
        self.conn = parent
        return socket.gethostname()

    @ray.method(concurrency_group="send")
    def send(self, message: tuple) -> None:
        self.conn.send(message)

    @ray.method(concurrency_group="recv")
    def recv(self) -> tuple:
        kind, payload = self.conn.recv()  # EOFError once the worker is gone: the caller's pipe closes
        return kind, _map_staged(payload, pack_staged)

    @ray.method(concurrency_group="signal")
    def set_signal(self, index: int, value: float) -> None:
        self.signals[index] = value

    @ray.method(concurrency_group="signal")
    def get_signal(self, index: int) -> float:
        return float(self.signals[index])

    @ray.method(concurrency_group="signal")
    def exitcode(self) -> int | None:
        self.process.join(timeout=0)
        return self.process.exitcode

    @ray.method(concurrency_group="signal")
    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()


class RayConnection:
    """The server's end of the pipe to a robot on Ray."""

    def __init__(self, actor, data: Path):
        self.actor, self.data, self.closed = actor, Path(data), False

    def send(self, message: tuple) -> None:
        if self.closed:
            raise OSError("the connection to the robot is closed")
        self.actor.send.remote(message)

    def recv(self) -> tuple:
        try:
            kind, payload = ray.get(self.actor.recv.remote())
        except (ray.exceptions.RayError, OSError) as error:  # the worker or its node is gone
            raise EOFError(str(error)) from None
        return kind, _map_staged(payload, lambda packed: unpack_staged(packed, self.data))

    def close(self) -> None:
        self.closed = True


class RaySignals:
    """The server's view of a robot's signals: writes go to the worker's node at once (and are kept here, so a held
    emergency stop survives the worker's restart on a new actor), reads ask it."""

    def __init__(self, actor):
        self.actor, self.written = actor, [0.0] * SIGNALS

    def __setitem__(self, index: int, value: float) -> None:
        self.written[index] = float(value)
        ray.get(self.actor.set_signal.remote(index, float(value)))

    def __getitem__(self, index: int) -> float:
        try:
            return ray.get(self.actor.get_signal.remote(index), timeout=5.0)
        except ray.exceptions.RayError:
            return 0.0


class RayProcess:
    """What the fleet asks of a worker process, for a robot on Ray."""

    def __init__(self, actor):
        self.actor, self.node = actor, ""

    @property
    def exitcode(self) -> int | None:
        try:
            return ray.get(self.actor.exitcode.remote(), timeout=5.0)
        except ray.exceptions.RayError:
            return -1  # the actor (or its node) is gone

    def is_alive(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        import time

        deadline = time.monotonic() + (timeout or 0)
        while self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        try:
            ray.get(self.actor.kill.remote(), timeout=5.0)
        except ray.exceptions.RayError:
            pass
        ray.kill(self.actor)


def start_on_ray(spec, config, previous: Any = None) -> tuple[RayProcess, RayConnection, RaySignals]:
    """A robot's worker started on the cluster (one CPU), and the stand-ins the fleet holds for it; `previous`: the
    signals of the worker it replaces (an emergency stop it held holds on the new one before it answers anything)."""
    actor = RobotHost.options(num_cpus=1).remote()
    process = RayProcess(actor)
    process.node = ray.get(actor.start.remote(spec, config))
    signals = RaySignals(actor)
    if isinstance(previous, RaySignals) and previous.written[STOP]:
        signals[STOP] = previous.written[STOP]
    return process, RayConnection(actor, config.data), signals
