"""A robot as the server holds it (its worker, lease, stops, subscribers) and the errors the fleet answers with.

Each error carries the HTTP status its routes answer with, so that routes map a fleet refusal
to a response without knowing which one it is.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from wam.api.spec import RobotSpec
from wam.api.worker import EXECUTED, LAST_ACTION

ENDED_LEASES = 8  # lease ids remembered per robot after they end, so that using one is answered "stale"


class FleetError(Exception):
    """Base: `status` is the HTTP status the API answers with."""

    status = 500


class RobotNotFound(FleetError):
    status = 404


class RobotConflict(FleetError):
    """Leased by someone else, emergency-stopped, busy with a task, or in the wrong state."""

    status = 409


class RobotStopped(RobotConflict):
    """Emergency-stopped: the command (or the rest of its chunk) never reached the robot."""


class RobotForbidden(FleetError):
    """The key may see the robot but not do this to it (release another key's emergency stop)."""

    status = 403


class RobotUnavailable(FleetError):
    """Crashed and restarting, or failed to start."""

    status = 503


class RobotTimeout(FleetError):
    status = 504


class RobotRejected(FleetError):
    """The robot refused the command's values (an unknown task, ...)."""

    status = 422


@dataclass
class Lease:
    lease_id: str
    robot_id: str
    holder: str  # an API key id, or "run:<id>" for an autonomous run
    expires_at: float  # time.time()

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class RobotHandle:
    spec: RobotSpec
    process: Any = None
    conn: Any = None
    status: str = "starting"  # starting | ready | running | crashed | failed | stopped
    restarts: int = 0
    last_error: str | None = None
    description: dict = field(default_factory=dict)
    latest: dict | None = None
    current_lease: Lease | None = None  # read and set as `lease`
    ended_leases: deque = field(default_factory=lambda: deque(maxlen=ENDED_LEASES))  # (lease id, holder), newest last
    stops: set = field(default_factory=set)  # the keys whose emergency stop holds the robot ("" for an unnamed one)
    signals: Any = None  # shared with the worker, across its restarts: see wam.api.worker.STOP
    stopped_at: float = 0.0  # time.monotonic() when a stop was last pressed, and the actions executed by then
    executed_at_stop: int = 0
    run_id: str | None = None
    steps: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: int = 0  # commands sent or waiting to be sent to the worker
    pending: asyncio.Future | None = None
    ready: asyncio.Future | None = None
    subscribers: set = field(default_factory=set)
    recording: set = field(default_factory=set)  # commits of episodes handed over during an autonomous run
    link: Any = None  # a remote robot's pipe between its worker's env and the server (wam.api.bridge_link)
    bridge: Any = None  # the attached bridge of a remote robot (a BridgeLink), if any

    @property
    def robot_id(self) -> str:
        return self.spec.robot_id

    @property
    def estopped(self) -> bool:
        return bool(self.stops)

    @property
    def actions_executed(self) -> int:
        """Every action the robot's workers have executed, counted by the worker as it executes them."""
        return int(self.signals[EXECUTED]) if self.signals is not None else 0

    @property
    def last_action_at(self) -> float:
        """When the robot last executed an action, on time.monotonic()'s clock (the same in every process)."""
        return self.signals[LAST_ACTION] if self.signals is not None else 0.0

    @property
    def lease(self) -> Lease | None:
        return self.current_lease

    @lease.setter
    def lease(self, lease: Lease | None) -> None:
        """Replacing or clearing a lease (acquire, release, a run, an admin's break) remembers the old id as stale."""
        old = self.current_lease
        if old is not None and (lease is None or lease.lease_id != old.lease_id):
            self.ended_leases.append((old.lease_id, old.holder))
        self.current_lease = lease

    def ended_by(self, lease_id: str, holder: str) -> bool:
        """Whether `lease_id` was one of `holder`'s leases on this robot, since replaced or ended."""
        return (lease_id, holder) in self.ended_leases
